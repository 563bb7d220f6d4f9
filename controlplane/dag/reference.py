"""The plain full build: every object read, settled and walked from scratch. A test oracle only.

Production (`serve` and `translate`) runs one builder, `builder.DagBuilder`. This module states
the same semantics the simple way, one pass over everything, so the table tests can hold the
builder against it: every row runs through both, cold and as an edit from another prior state,
and the DAGs and statuses must be equal. It shares the per-object steps with the builder (reading
an Ingress, compiling an IngressRoute, settling an fqdn, the delegation walk); what it does not
share is the bookkeeping that makes the builder incremental, which is what it checks.

Nothing in `controlplane` imports it (an import-linter contract says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from controlplane.dag.delegation import walk_delegations
from controlplane.dag.ingress import (
    IngressReading,
    host_order,
    host_values,
    read_ingress,
    route_claim_order,
    settle_routes,
    settle_tls,
    tls_claim_order,
)
from controlplane.dag.ingress import is_ours as ingress_is_ours
from controlplane.dag.ingress_merge import (
    OwnedHostClaims,
    merge_host,
    trusted_namespaces,
    without_hosts,
)
from controlplane.dag.ingressroute import (
    compile_unit,
    is_ours,
    root_hosts,
    route_status,
    settle_fqdn,
)
from controlplane.dag.ingressroute_spec import CompiledIngressRoute, claimed_fqdn
from controlplane.dag.options import BuildOptions
from controlplane.dag.reads import BuildInputs, certificate_targets
from controlplane.dag.types import DAG, Problem, SecureVirtualHost, VirtualHost
from controlplane.model import AgeKey, NamespacedName, ObjectSet

__all__ = ["build_ingresses", "build_ingressroutes", "reference_build"]


def reference_build(objects: ObjectSet, options: BuildOptions | None = None) -> DAG:
    """The whole DAG: the oldest claimant of an fqdn owns it, across kinds; an fqdn an
    IngressRoute owns (served or not) takes the paths of the Ingresses its owner trusts that do
    not collide with its routes (`ingress_merge.py`), and roots claiming an fqdn an older
    Ingress claims are invalid."""
    options = options or BuildOptions()
    readings, claimants, oldest = _read_ingresses(objects, options)
    routes, owners = build_ingressroutes_and_owners(objects, options, oldest)
    trust = {
        fqdn: trusted_namespaces(objects.ingress_routes[owner]) for fqdn, owner in owners.items()
    }
    ingresses, owned = _settle_ingresses(readings, claimants, trust)
    plain = {h.fqdn: h for h in ingresses.virtual_hosts}
    plain.update((h.fqdn, h) for h in routes.virtual_hosts)
    secure = {h.fqdn: h for h in ingresses.secure_virtual_hosts}
    secure.update((h.fqdn, h) for h in routes.secure_virtual_hosts)
    merged: list[Problem] = []
    for fqdn in sorted(owned, key=host_order):
        http, https, found = merge_host(
            fqdn, owners[fqdn], trust[fqdn], plain.get(fqdn), secure.get(fqdn), owned[fqdn]
        )
        _put(plain, fqdn, http)
        _put(secure, fqdn, https)
        merged.extend(found)
    return DAG(
        virtual_hosts=tuple(plain[fqdn] for fqdn in sorted(plain, key=host_order)),
        secure_virtual_hosts=tuple(secure[fqdn] for fqdn in sorted(secure, key=host_order)),
        statuses=tuple(sorted(routes.statuses, key=lambda status: status.key)),
        problems=(*routes.problems, *ingresses.problems, *merged),
    )


H = TypeVar("H", VirtualHost, SecureVirtualHost)


def _put(hosts: dict[str, H], fqdn: str, host: H | None) -> None:
    if host is None:
        hosts.pop(fqdn, None)
    else:
        hosts[fqdn] = host


def build_ingresses(objects: ObjectSet, options: BuildOptions) -> DAG:
    """The virtual hosts (plain and TLS) and problems of every Ingress of our class, as if no
    IngressRoute owned any host."""
    readings, claimants, _ = _read_ingresses(objects, options)
    return _settle_ingresses(readings, claimants, {})[0]


def build_ingressroutes(objects: ObjectSet, options: BuildOptions) -> DAG:
    """Hosts and statuses of every IngressRoute of our class (see `ingressroute.py`)."""
    return build_ingressroutes_and_owners(objects, options)[0]


def _read_ingresses(
    objects: ObjectSet, options: BuildOptions
) -> tuple[list[IngressReading], dict[str, set[NamespacedName]], dict[str, AgeKey]]:
    """Every Ingress of our class read, oldest first; which Ingresses claim each host; and the
    age of the oldest one claiming each host."""
    ours = (i for i in objects.ingresses.values() if ingress_is_ours(i, objects, options))
    readings = []
    claimants: dict[str, set[NamespacedName]] = {}
    oldest: dict[str, AgeKey] = {}
    for ingress in sorted(ours, key=lambda ingress: ingress.age_key):
        reading = read_ingress(ingress, objects, options)
        readings.append(reading)
        for host in reading.hosts:
            claimants.setdefault(host, set()).add((ingress.namespace, ingress.name))
            oldest.setdefault(host, ingress.age_key)
    return readings, claimants, oldest


def _settle_ingresses(
    readings: list[IngressReading],
    claimants: Mapping[str, set[NamespacedName]],
    trust: Mapping[str, frozenset[str]],
) -> tuple[DAG, dict[str, OwnedHostClaims]]:
    """The Ingress hosts and problems of the hosts no IngressRoute owns, and what the trusted
    Ingresses ask of each host an IngressRoute owns (`trust`: its trusted namespaces)."""
    problems = [problem for reading in readings for problem in reading.problems]
    trusted = [
        without_hosts(
            reading,
            (h for h in reading.hosts if h in trust and reading.ingress.namespace not in trust[h]),
        )
        for reading in readings
    ]
    routes_by_host, route_losers = settle_routes(trusted)
    # The certificate of an owned host is the IngressRoute's: never settled among Ingresses.
    tls_by_host, tls_losers = settle_tls(
        [without_hosts(reading, (h for h in reading.hosts if h in trust)) for reading in trusted]
    )
    problems.extend(problem for _, problem in route_losers)
    problems.extend(problem for _, problem in tls_losers)
    owned: dict[str, OwnedHostClaims] = {}
    for host, namespaces in trust.items():
        if not claimants.get(host):
            continue
        owned[host] = OwnedHostClaims(
            tuple(sorted(routes_by_host.get(host, ()), key=route_claim_order)),
            tuple(
                sorted(
                    (claim for reading in trusted for claim in reading.tls if claim.host == host),
                    key=tls_claim_order,
                )
            ),
            tuple(sorted(key for key in claimants[host] if key[0] not in namespaces)),
        )
    virtual_hosts, secure_virtual_hosts = [], []
    for host in sorted(routes_by_host, key=host_order):
        if host in trust:
            continue
        plain, secure = host_values(host, routes_by_host[host], tls_by_host.get(host))
        if plain is not None:
            virtual_hosts.append(plain)
        if secure is not None:
            secure_virtual_hosts.append(secure)
    dag = DAG(
        virtual_hosts=tuple(virtual_hosts),
        secure_virtual_hosts=tuple(secure_virtual_hosts),
        problems=tuple(dict.fromkeys(problems)),
    )
    return dag, owned


def build_ingressroutes_and_owners(
    objects: ObjectSet, options: BuildOptions, ingress_claims: Mapping[str, AgeKey] | None = None
) -> tuple[DAG, dict[str, NamespacedName]]:
    """Hosts and statuses of every IngressRoute of our class, and the fqdns roots own.

    `ingress_claims`: host → age of the oldest Ingress claiming it; a root claiming an fqdn an
    older Ingress claims owns nothing and is invalid."""
    ingress_claims = ingress_claims or {}
    ours = {
        key: route
        for key, route in sorted(objects.ingress_routes.items())
        if is_ours(route, objects, options)
    }
    inputs = BuildInputs(
        objects,
        roots={key: route for key, route in ours.items() if route.is_root},
        certificate_targets=certificate_targets(objects),
    )
    problems: list[Problem] = []
    compiled: dict[NamespacedName, CompiledIngressRoute] = {}
    failed: dict[NamespacedName, str] = {}
    for key, route in ours.items():
        result, found = compile_unit(route, inputs, options)
        problems.extend(found)
        if isinstance(result, str):
            failed[key] = result
        else:
            compiled[key] = result
    claims: dict[str, list[NamespacedName]] = {}
    for key, route in ours.items():
        fqdn = claimed_fqdn(route, options)
        if fqdn is not None:
            claims.setdefault(fqdn, []).append(key)
    roots = []
    owners: dict[str, NamespacedName] = {}
    for fqdn in sorted(claims):
        owner, losers = settle_fqdn(
            fqdn, (ours[key] for key in claims[fqdn]), ingress_claims.get(fqdn)
        )
        if owner is not None:  # None: an older Ingress claims the fqdn
            owners[fqdn] = owner
            if owner in compiled:  # an invalid owner keeps its fqdn, serving nothing
                roots.append(owner)
        for key, reason in losers.items():
            failed.setdefault(key, reason)  # its own fault first, as the status says
    outcome = walk_delegations(roots, compiled, failed)
    plain: list[VirtualHost] = []
    secure: list[SecureVirtualHost] = []
    for content in sorted(outcome.hosts, key=lambda content: content.fqdn):
        http, https = root_hosts(content, compiled[content.root])
        if https is not None:
            secure.append(https)
        if http is not None:
            plain.append(http)
    statuses = []
    for key, route in ours.items():
        compiled_route = compiled.get(key)
        statuses.append(
            route_status(
                route,
                outcome.invalid.get(key),
                key in outcome.reached,
                compiled_route.warnings if compiled_route is not None else (),
                outcome.warnings.get(key, ()),
            )
        )
    dag = DAG(
        virtual_hosts=tuple(plain),
        secure_virtual_hosts=tuple(secure),
        statuses=tuple(statuses),
        problems=tuple(dict.fromkeys(problems)),
    )
    return dag, owners
