"""`build(objects, options) -> DAG`: the whole DAG from one ObjectSet, pure and deterministic.

The Ingress part and the IngressRoute part are built independently, then merged host by host.
When both kinds claim one host on the same listener, the IngressRoute wins: it is the richer,
delegated, status-bearing kind, and a team that moved a host to an IngressRoute expects the old
Ingress to stop shadowing it. The Ingress's loss is reported as a `Problem` (Ingress has no
status of ours), naming the IngressRoute that owns the host.

Virtual hosts are sorted by fqdn with the catch-all `*` last; statuses by kind, namespace, name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from controlplane.dag.ingress import build_ingresses, host_order
from controlplane.dag.ingressroute import build_ingressroutes
from controlplane.dag.options import BuildOptions
from controlplane.dag.types import DAG, Problem, SecureVirtualHost, VirtualHost
from controlplane.model import ObjectSet

Host = TypeVar("Host", VirtualHost, SecureVirtualHost)


def _merge(
    preferred: Sequence[Host], other: Sequence[Host], listener: str, problems: list[Problem]
) -> tuple[Host, ...]:
    merged = {host.fqdn: host for host in preferred}
    for host in other:
        if host.fqdn in merged:
            problems.append(
                Problem(
                    "Ingress",
                    "",
                    "",
                    "spec.rules[].host",
                    f'host "{host.fqdn}" on {listener} is served by an IngressRoute; '
                    "the Ingress rules for it are ignored",
                )
            )
            continue
        merged[host.fqdn] = host
    return tuple(merged[fqdn] for fqdn in sorted(merged, key=host_order))


def build(objects: ObjectSet, options: BuildOptions | None = None) -> DAG:
    options = options or BuildOptions()
    routes = build_ingressroutes(objects, options)
    ingresses = build_ingresses(objects, options)
    problems = [*routes.problems, *ingresses.problems]
    return DAG(
        virtual_hosts=_merge(routes.virtual_hosts, ingresses.virtual_hosts, "HTTP", problems),
        secure_virtual_hosts=_merge(
            routes.secure_virtual_hosts, ingresses.secure_virtual_hosts, "HTTPS", problems
        ),
        statuses=tuple(sorted(routes.statuses)),
        problems=tuple(problems),
    )
