"""Hostile sets: a few hostile tenants (namespaces whose objects are wired together, so hostile
values travel all the way to Envoy) plus loose hostile objects of any kind in any namespace.

Names come from small pools, so objects collide, delegate to each other (and to the good
tenant's delegate), and contest the same hosts. `keep_clear_of_good_tenant` renames or drops
what only the good tenant could create; `moved_apart` moves a set into namespaces and hosts of its
own, so the sets of many examples can be thrown at the controller together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from .objects import (
    certificate_delegations,
    endpoint_slices,
    endpoints,
    ingress_classes,
    ingresses,
    ingressroutes,
    namespace_of,
    secrets,
    services,
)
from .tenant import GOOD_FQDN, GOOD_NAMESPACE, GOOD_SERVICES, collides_with_good_tenant
from .values import HOSTILITY, HOSTS, SECRET_NAMES, SERVICE_NAMES

JSON = dict[str, Any]
OWN_HOSTS = [host for host in HOSTS if not host.endswith(GOOD_FQDN)]


ANY_OBJECT: st.SearchStrategy[JSON] = st.one_of(
    ingressroutes(),
    ingresses(),
    services(),
    endpoint_slices(),
    endpoints(),
    secrets(),
    ingress_classes(),
    certificate_delegations(),
)
"""One hostile object of any kind, in any namespace."""


@st.composite
def tenants(draw: st.DrawFn) -> list[JSON]:
    """One hostile namespace's objects, wired together: its Services have EndpointSlices (and
    sometimes Endpoints), its roots route to those Services and delegate to its delegates."""
    level = draw(HOSTILITY)
    namespace = namespace_of(draw, level)
    if draw(st.integers(0, 19)) == 0:  # its Envoy names read like the good tenant's
        namespace = draw(st.sampled_from([f"{GOOD_NAMESPACE}/{name}" for name in GOOD_SERVICES]))
    objects: list[JSON] = []
    # Most of the Services (and Secrets) its routes may name exist, so most routes are used.
    chosen = [name for name in SERVICE_NAMES if draw(st.integers(0, 3))] or [SERVICE_NAMES[0]]
    for service in chosen:
        objects.append(draw(services(level, namespace, service)))
        for _ in range(draw(st.sampled_from([1, 1, 2, 0]))):
            objects.append(draw(endpoint_slices(level, namespace, service)))
        if draw(st.integers(0, 3)) == 0:
            objects.append(draw(endpoints(level, namespace, service)))
    for name, out_of_four in zip(SECRET_NAMES, (3, 3, 1), strict=True):  # tls, ca, other
        if draw(st.integers(0, 3)) < out_of_four:
            objects.append(draw(secrets(level, namespace, name)))
    for _ in range(draw(st.integers(1, 2))):
        objects.append(draw(ingressroutes(level, namespace, root=True)))
    for _ in range(draw(st.integers(0, 2))):
        objects.append(draw(ingressroutes(level, namespace, root=False)))
    for _ in range(draw(st.integers(0, 2))):
        objects.append(draw(ingresses(level, namespace)))
    if draw(st.integers(0, 3)) == 0:
        objects.append(draw(certificate_delegations(level, namespace)))
    return objects


def keep_clear_of_good_tenant(objects: list[JSON]) -> list[JSON]:
    """Rename what would replace one of the good tenant's objects; drop endpoints for its
    Services (only the good tenant could create them)."""
    kept = []
    for raw in objects:
        if not collides_with_good_tenant(raw):
            kept.append(raw)
        elif raw.get("kind") not in ("EndpointSlice", "Endpoints"):
            kept.append({**raw, "metadata": {**raw["metadata"], "name": "squatter"}})
    return kept


@st.composite
def hostile_sets(draw: st.DrawFn, min_tenants: int = 1, max_tenants: int = 3) -> list[JSON]:
    """Raw manifests of a few hostile tenants and some loose hostile objects."""
    objects = [
        raw
        for tenant in draw(st.lists(tenants(), min_size=min_tenants, max_size=max_tenants))
        for raw in tenant
    ]
    objects += draw(st.lists(ANY_OBJECT, max_size=6))
    return keep_clear_of_good_tenant(objects)


def moved_apart(objects: list[JSON], suffix: str) -> list[JSON]:
    """`objects` moved to namespaces and hosts of their own (`bad` → `bad-<suffix>`,
    `bad.example.com` → `<suffix>.bad.example.com`; the good tenant's namespace and hosts
    stay), so the sets of many examples can be thrown at the controller together without
    replacing each other's objects or all contesting the same few hosts."""
    moved = []
    for raw in objects:
        text = json.dumps(raw)
        for host in OWN_HOSTS:
            text = text.replace(host, f"{suffix}.{host}")
        raw = json.loads(text)
        metadata = raw.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
        if isinstance(namespace, str) and namespace and namespace != GOOD_NAMESPACE:
            raw["metadata"]["namespace"] = f"{namespace}-{suffix}"
        moved.append(raw)
    return keep_clear_of_good_tenant(moved)


def count_kinds(objects: Sequence[JSON], into: dict[str, int]) -> None:
    for raw in objects:
        kind = str(raw.get("kind"))
        into[kind] = into.get(kind, 0) + 1
