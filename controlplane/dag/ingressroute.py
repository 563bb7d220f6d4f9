"""IngressRoute (`contour.heptio.com/v1beta1`) → virtual hosts, plus one status per IngressRoute.

The steps of an IngressRoute build, as pure functions the builder (`ingressroute_processor.py`)
runs object by object (and the test oracle `reference.py` runs over everything at once):

1. Selection. Only IngressRoutes of our ingress class count (`class_matches`, the same rule as
   for Ingresses). The others are invisible: no status, and a delegation to one is "not found".
2. Local checks (`ingressroute_spec.py`). Each object is checked on its own: malformed spec
   (`parse_error`), root namespace, fqdn, TLS secret and certificate delegation, every route and
   service, the tcpproxy. A failure makes it invalid with a description naming the field.
   Invalid beats orphaned: a broken delegate that no root reaches yet says what is broken.
3. Fqdn claims (`settle_fqdn`). Several valid roots may claim one fqdn: the oldest (creation
   time, then namespace/name) keeps it and stays valid; each later one is invalid with
   `fqdn "x" is already used by IngressRoute ns/name`. Fqdns compare case-insensitively.
   Across kinds: if an Ingress claiming the fqdn is older than every root claiming it, no root
   keeps it and each is invalid with `fqdn "x" is already used by Ingress ns/name`.
4. The delegation walk (`delegation.py`) from every root that kept its fqdn, which finds the
   routes each host serves, the objects reached (valid), and warnings on parents (a delegation
   out of prefix or closing a cycle is skipped and warned on the object that makes it; the
   delegate is not at fault). Objects nothing reaches in place are orphaned.

Listeners. A root without TLS serves its routes on the HTTP listener. A root with TLS (a secret,
or passthrough with a tcpproxy) gets a `SecureVirtualHost`; on the HTTP listener each of its
routes becomes a redirect to https, except routes with `permitInsecure`, which are served on
both. A root whose TLS secret is missing, malformed or not delegated to it is invalid and serves
nothing at all, on HTTP either: no silent downgrade to plain HTTP. With `tcpproxy`, the TLS
listener proxies TCP for the host (terminating TLS with the secret, or passing it through by
SNI); the root's HTTP routes then only serve the HTTP listener, under the same redirect rule.
A host with no routes is not emitted (Envoy would answer 404 for it anyway).

Paths. A route's `match` is a prefix compared by whole segments (`SEGMENT_PREFIX`: `/foo` does
not match `/foobar`), and so is a delegate's containment in its parent's prefix. Contour
compared characters; we correct that on purpose (see `ingressroute_spec.py`).

Routes within a host are sorted most specific first (longer prefix first, then by value); when
two routes of one host have the same match, the first met in the walk wins and the host's root
gets a warning naming the ignored route's owner. How the result merges with Ingresses
(IngressRoute hosts take precedence) is `builder.py`'s business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from controlplane.dag.classes import class_matches
from controlplane.dag.delegation import HostContent, display
from controlplane.dag.ingressroute_spec import (
    CompiledIngressRoute,
    CompiledRoute,
    SpecError,
    compile_ingressroute,
)
from controlplane.dag.options import BuildOptions
from controlplane.dag.reads import BuildInputs
from controlplane.dag.status import (
    KIND,
    StatusWarning,
    fqdn_taken,
    fqdn_used_by_ingress,
    invalid,
    orphaned,
    valid,
)
from controlplane.dag.types import (
    HTTPS_REDIRECT,
    ObjectStatus,
    Origin,
    Problem,
    Route,
    SecureVirtualHost,
    TCPProxy,
    VirtualHost,
    internal_error_description,
)
from controlplane.model import AgeKey, IngressRoute, NamespacedName, ObjectSet

__all__ = [
    "compile_unit",
    "is_ours",
    "oldest",
    "root_hosts",
    "route_status",
    "settle_fqdn",
]


def is_ours(route: IngressRoute, objects: ObjectSet, options: BuildOptions) -> bool:
    """Whether `route` is of our ingress class (IngressRoutes only have the annotation)."""
    return class_matches(route.metadata.annotations, None, objects, options)


def compile_unit(
    route: IngressRoute, inputs: BuildInputs, options: BuildOptions
) -> tuple[CompiledIngressRoute | str, tuple[Problem, ...]]:
    """`compile_ingressroute` with its SpecError as a value: the compiled object or the
    description that makes it invalid, and the (Service) problems found, even when invalid."""
    problems: list[Problem] = []
    try:
        return compile_ingressroute(route, inputs, options, problems), tuple(problems)
    except SpecError as error:
        return str(error), tuple(problems)
    except Exception as error:  # a bug costs this object, never the build (blast radius of one)
        found = Problem.internal_error(KIND, route.namespace, route.name, error)
        return internal_error_description(error), (*problems, found)


def oldest(claimants: Iterable[IngressRoute]) -> IngressRoute:
    """Who keeps a contested fqdn: the oldest root (creation time, then namespace/name)."""
    return min(claimants, key=lambda route: route.age_key)


def settle_fqdn(
    fqdn: str, claimants: Iterable[IngressRoute], oldest_ingress: AgeKey | None = None
) -> tuple[NamespacedName | None, dict[NamespacedName, str]]:
    """Who keeps `fqdn` among the roots claiming it, and the description of every other one.

    `oldest_ingress`: the `age_key` of the oldest Ingress of our class claiming `fqdn` (by a
    rule or under `tls`), if any. Ownership is settled across kinds: when that Ingress is older
    than every root claiming the fqdn, no root owns it (None) and every root is invalid; the
    Ingresses serve it. An exact tie (same time, namespace and name) goes to the IngressRoute."""
    claimants = list(claimants)
    winner = claimants[0] if len(claimants) == 1 else oldest(claimants)
    if oldest_ingress is not None and oldest_ingress < winner.age_key:
        used = fqdn_used_by_ingress(fqdn, display((oldest_ingress[1], oldest_ingress[2])))
        return None, {(route.namespace, route.name): used for route in claimants}
    owner = (winner.namespace, winner.name)
    if len(claimants) == 1:  # the usual case: nobody else to tell anything
        return owner, {}
    others = [route for route in claimants if (route.namespace, route.name) != owner]
    taken = fqdn_taken(fqdn, display(owner))
    return owner, {(route.namespace, route.name): taken for route in others}


def route_status(
    route: IngressRoute,
    reason: str | None,
    reached: bool,
    own_warnings: Sequence[StatusWarning],
    walk_warnings: Sequence[StatusWarning],
) -> ObjectStatus:
    """One IngressRoute's status: invalid (with `reason`), valid if a root reached it, else
    orphaned. Warnings: its own, then those the delegation walk found."""
    if reason is not None:
        return invalid(route, reason)
    if reached:
        return valid(route, (*own_warnings, *walk_warnings))
    return orphaned(route)


def root_hosts(
    content: HostContent, root: CompiledIngressRoute
) -> tuple[VirtualHost | None, SecureVirtualHost | None]:
    """What one served root's host becomes on the HTTP and the TLS listener."""
    vhost = root.virtual_host
    if vhost is None:
        return None, None
    routes = sorted(
        (route for route, _ in content.routes.values()),
        key=lambda route: (route.route.match.specificity, route.route.match.value),
    )
    http_routes = [route.route for route in routes]
    origin = Origin(KIND, *root.key)
    secure = None
    if vhost.enforces_tls:
        http_routes = [_insecure(route) for route in routes]
        tcp_proxy = TCPProxy(content.tcp_clusters) if content.tcp_clusters else None
        if tcp_proxy is not None or (vhost.secret is not None and routes):
            secure = SecureVirtualHost(
                fqdn=vhost.fqdn,
                routes=() if tcp_proxy else tuple(route.route for route in routes),
                secret=vhost.secret,
                minimum_tls_version=vhost.minimum_tls_version,
                tcp_proxy=tcp_proxy,
                origin=origin,
            )
    plain = VirtualHost(vhost.fqdn, tuple(http_routes), origin) if http_routes else None
    return plain, secure


def _insecure(route: CompiledRoute) -> Route:
    """A TLS host's route on the HTTP listener: itself if permitInsecure, else a redirect."""
    if route.permit_insecure:
        return route.route
    return Route(match=route.route.match, redirect=HTTPS_REDIRECT, origin=route.route.origin)
