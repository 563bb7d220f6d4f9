"""Ingress paths on a host an IngressRoute owns: what merges into the host, and what does not.

One owner per host, across kinds (`builder.py`): the oldest claimant of an fqdn owns it. When a
root IngressRoute owns it, Ingresses claiming the same host are not dropped whole, as they were:
their paths that do not collide with the IngressRoute's routes merge into the host, as Contour
0.15 merged Ingress and IngressRoute routes of one virtual host. Above all this is what lets
cert-manager issue the certificate of an IngressRoute host with an HTTP-01 challenge: its solver
Ingress (`/.well-known/acme-challenge/<token>`, `Exact` or `ImplementationSpecific`, no TLS)
must answer on plain HTTP, even when the IngressRoute forces TLS (`permitInsecure` unset, every
other path redirected), and even while the IngressRoute is still invalid because the Secret it
names is the very one being issued.

Which Ingresses may merge (the tenant model of docs/security.md: a host's owner decides what
its host serves): those in the owner's namespace, and those in the namespace of the Secret its
`virtualhost.tls.secretName` names (a certificate shared from another namespace is issued
there, and so is its solver Ingress), read from the owner's spec whether or not it is valid.
An Ingress in any other namespace is ignored for the host, rules and TLS, with a Problem
naming the owner and the namespaces it trusts. Among the trusted Ingresses the usual Ingress
rules settle who wins a path (`ingress.py`); then:

- A winning path merges unless it collides with a route the IngressRoute serves on the host
  (delegates included). Two prefixes collide when they are the same path, trailing `/` aside,
  whether segment or string prefixes (`/foo`, `/foo/`), which is how Contour keyed them; the
  IngressRoute keeps the path and the Ingress path is dropped with a Problem naming the
  IngressRoute that routes it (and the owner, when that is a delegate). An `Exact` path never
  collides (IngressRoutes match prefixes only) and, being more specific, takes that one path.
- On the plain listener a merged path is served as the Ingress says (its own
  `force-ssl-redirect` and `allow-http` apply), never redirected because the IngressRoute
  enforces TLS: the redirect is for the IngressRoute's routes.
- On the TLS listener a merged path is served too when the IngressRoute terminates TLS for the
  host with routes (never into a TCP proxy or a passthrough host).
- An Ingress's `tls` entry for the host is ignored, with a Problem: the IngressRoute owns the
  host's certificate (`virtualhost.tls`).

Problems of one host come in a fixed order: untrusted Ingresses (by namespace/name), colliding
paths (in claim order), ignored TLS entries (in claim order); hosts in `host_order`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from controlplane.dag.ingress import (
    IngressReading,
    RouteClaim,
    TLSClaim,
    route_order,
)
from controlplane.dag.memo import text_memo
from controlplane.dag.secrets import split_secret_name
from controlplane.dag.types import (
    PathMatch,
    PathMatchKind,
    Problem,
    Route,
    SecureVirtualHost,
    VirtualHost,
)
from controlplane.model import IngressRoute, NamespacedName

__all__ = [
    "OwnedHostClaims",
    "merge_host",
    "trusted_namespaces",
    "untrusted_problem",
    "without_hosts",
]


@dataclass(frozen=True, slots=True)
class OwnedHostClaims:
    """What the Ingresses ask of one host an IngressRoute owns, settled among themselves."""

    routes: tuple[RouteClaim, ...]
    """The winning path claims of the trusted Ingresses, in claim order."""
    tls: tuple[TLSClaim, ...]
    """Every TLS claim of the trusted Ingresses for the host, in claim order."""
    untrusted: tuple[NamespacedName, ...]
    """The Ingresses outside the trusted namespaces claiming the host, sorted."""


def trusted_namespaces(owner: IngressRoute) -> frozenset[str]:
    """The namespaces whose Ingresses may add paths to the host `owner` owns: its own, and that
    of the Secret its `virtualhost.tls.secretName` names."""
    vhost = owner.spec.virtualhost
    secret_name = (vhost.tls.secret_name or "").strip() if vhost and vhost.tls else ""
    if not secret_name:
        return _only(owner.namespace)
    namespaces = {owner.namespace}
    namespace, _ = split_secret_name(secret_name, owner.namespace)
    if namespace:
        namespaces.add(namespace)
    return frozenset(namespaces)


@text_memo()
def _only(namespace: str) -> frozenset[str]:
    """One namespace as a set: the trust of nearly every owner, one value per namespace."""
    return frozenset((namespace,))


def without_hosts(reading: IngressReading, hosts: Iterable[str]) -> IngressReading:
    """`reading` without its claims for `hosts` (the problems are kept)."""
    dropped = frozenset(hosts)
    if not dropped:
        return reading
    default = reading.default
    if default is not None and default.host in dropped:
        default = None
    return IngressReading(
        reading.ingress,
        reading.problems,
        tuple(claim for claim in reading.rules if claim.host not in dropped),
        default,
        tuple(claim for claim in reading.tls if claim.host not in dropped),
    )


def _collision_key(match: PathMatch) -> tuple[bool, str]:
    """Equal for matches that collide: prefixes of the same path (trailing `/` aside, segment
    or string), or equal exact paths."""
    if match.kind is PathMatchKind.EXACT:
        return (True, match.value)
    return (False, match.value.rstrip("/") or "/")


def _describe(fqdn: str, match: PathMatch) -> str:
    kinds = {
        PathMatchKind.EXACT: "exact path",
        PathMatchKind.SEGMENT_PREFIX: "path prefix",
        PathMatchKind.PREFIX: "string prefix",
    }
    return f'host "{fqdn}" {kinds[match.kind]} "{match.value}"'


def _display(key: NamespacedName) -> str:
    return f"{key[0]}/{key[1]}"


def _ingress_problem(key: NamespacedName, field: str, reason: str) -> Problem:
    return Problem("Ingress", key[0], key[1], field, reason)


def untrusted_problem(
    fqdn: str, owner: NamespacedName, trusted: frozenset[str], ingress: NamespacedName
) -> Problem:
    """An Ingress outside the namespaces the owner trusts claims the owner's host."""
    names = ", ".join(sorted(trusted))
    where = f"namespace {names}" if len(trusted) == 1 else f"namespaces {names}"
    return _ingress_problem(
        ingress,
        "spec.rules[].host",
        f'host "{fqdn}" belongs to IngressRoute {_display(owner)}; only Ingresses in {where} '
        "may add paths to it: this Ingress's rules and TLS for it are ignored",
    )


def merge_host(
    fqdn: str,
    owner: NamespacedName,
    trusted: frozenset[str],
    plain: VirtualHost | None,
    secure: SecureVirtualHost | None,
    claims: OwnedHostClaims,
) -> tuple[VirtualHost | None, SecureVirtualHost | None, tuple[Problem, ...]]:
    """The owner's hosts of `fqdn` with the trusted Ingress paths merged in, and the problems
    of the Ingresses (see the module docstring). Hosts into which nothing merges are returned
    as they are given."""
    problems = [untrusted_problem(fqdn, owner, trusted, key) for key in claims.untrusted]
    taken: dict[tuple[bool, str], Route] = {}
    for route in (*(plain.routes if plain else ()), *(secure.routes if secure else ())):
        taken.setdefault(_collision_key(route.match), route)
    merged: list[RouteClaim] = []
    for claim in claims.routes:
        routed = taken.get(_collision_key(claim.route.match))
        if routed is None:
            merged.append(claim)
        else:
            problems.append(_collision(fqdn, owner, claim, routed))
    for tls in claims.tls:
        problems.append(
            _ingress_problem(
                (tls.ingress.namespace, tls.ingress.name),
                tls.field,
                f'host "{fqdn}" belongs to IngressRoute {_display(owner)}, which sets its '
                "certificate (virtualhost.tls): this TLS entry is ignored for it; the paths of "
                "this Ingress for it still merge",
            )
        )
    return _merged_plain(fqdn, plain, merged), _merged_secure(secure, merged), tuple(problems)


def _collision(fqdn: str, owner: NamespacedName, claim: RouteClaim, route: Route) -> Problem:
    origin = route.origin
    if origin is None:  # IngressRoute routes always carry one; say who owns the host then
        by = f"IngressRoute {_display(owner)}"
    else:
        by = f"IngressRoute {origin.namespace}/{origin.name}"
        if origin.field:
            by += f" ({origin.field})"
        if (origin.namespace, origin.name) != owner:
            by += f", under the host IngressRoute {_display(owner)} owns"
    return _ingress_problem(
        (claim.ingress.namespace, claim.ingress.name),
        claim.field,
        f"{_describe(fqdn, claim.route.match)} is already routed by {by}: the IngressRoute "
        "owns this host; this path is ignored",
    )


def _sorted(routes: Iterable[Route]) -> tuple[Route, ...]:
    return tuple(sorted(routes, key=route_order))


def _merged_plain(
    fqdn: str, plain: VirtualHost | None, merged: Sequence[RouteClaim]
) -> VirtualHost | None:
    # Never redirected for the IngressRoute's TLS (an ACME solver must answer on plain HTTP):
    # only the Ingress's own annotations redirect, as `secured=False` says.
    added = [route for claim in merged for route in claim.plain_routes(secured=False)]
    if not added:
        return plain
    if plain is None:
        origin = added[0].origin
        return VirtualHost(fqdn, _sorted(added), origin)
    return VirtualHost(fqdn, _sorted((*plain.routes, *added)), plain.origin)


def _merged_secure(
    secure: SecureVirtualHost | None, merged: Sequence[RouteClaim]
) -> SecureVirtualHost | None:
    if secure is None or secure.tcp_proxy is not None or secure.secret is None or not merged:
        return secure
    return replace(
        secure,
        routes=_sorted((*secure.routes, *(route for claim in merged for route in claim.routes()))),
    )
