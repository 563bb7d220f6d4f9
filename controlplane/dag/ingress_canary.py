"""ingress-nginx canaries: a canary Ingress's path joins the main Ingress's route of that path.

A canary Ingress (`nginx.ingress.kubernetes.io/canary: "true"`) does not compete for its hosts
and paths. Each of its paths attaches to the winning claim of the same host, path and path type
(nginx merges the canary's backend into the main location with the same host, path and path
type), and the main route becomes, in this order (nginx's precedence: header, cookie, weight):

1. `canary-by-header: H`: `H: always` → canary, `H: never` → main backend (no further rule);
   with `canary-by-header-value: V`, `H: V` → canary instead (no `never`); with
   `canary-by-header-pattern: P`, a value P matches → canary.
2. `canary-by-cookie: C`: cookie `C=always` → canary, `C=never` → main backend (a regex on the
   `cookie` header).
3. The main route itself, its traffic split by `canary-weight: w` out of `canary-weight-total: T`
   (main T-w, canary w; a weight of 0 leaves the main route as it was).

Rules 1 and 2 are routes with header conditions and the same match, placed before the main
route (`RouteClaim.extra_routes`); every canary route is the main route with other clusters, so
the main Ingress's rewrites, timeouts and limits apply to the canary's traffic too, and the
canary's cluster is shaped by the main Ingress's `ClusterPolicy`.

A canary with no main claim for its host and path, or for a path that already has a canary (nginx
allows one per path), or whose main path redirects, is reported and ignored, as in nginx.

Unlike nginx, a canary attaches only to a main Ingress of its own namespace: the namespace is the
unit of trust (docs/security.md), and a canary elsewhere would let one tenant take another's
traffic (`canary-weight: "100"`). A canary in another namespace is reported and ignored.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from controlplane.dag.regexes import re2_problem
from controlplane.dag.types import HeaderMatch, Route, WeightedCluster

if TYPE_CHECKING:
    from controlplane.dag.ingress_claims import RouteClaim

__all__ = ["attach_canary", "cookie_pattern"]


def cookie_pattern(name: str, value: str) -> str:
    """An RE2 pattern matching a `cookie` header that holds `name=value`."""
    return rf"(?:.*;\s*)?{re.escape(name)}={re.escape(value)}(?:\s*;.*)?"


def attach_canary(main: RouteClaim | None, canary: RouteClaim, where: str) -> RouteClaim | str:
    """`main` with `canary` attached, or why the canary is ignored (`where` names the canary's
    host and path)."""
    if main is None:
        return (
            f"{where}: no Ingress serves this host and path (with this pathType); the canary is "
            "ignored, as in ingress-nginx"
        )
    if main.ingress.namespace != canary.ingress.namespace:
        return (
            f"{where} is served by Ingress {main.ingress.namespace}/{main.ingress.name}: a canary "
            "attaches only to an Ingress of its own namespace; this one is ignored"
        )
    if main.canary_by is not None:
        other = main.canary_by.ingress
        return (
            f"{where} already has a canary, Ingress {other.namespace}/{other.name}: one canary "
            "per path, as in ingress-nginx; this one is ignored"
        )
    if not main.route.clusters:
        return f"{where} answers with a redirect ({main.field}); the canary is ignored"
    rules = canary.canary
    assert rules is not None  # only canary claims are attached
    cluster = canary.route.clusters[0].cluster
    if main.cluster_policy is not None:
        cluster = main.cluster_policy.apply(cluster)
    base = main.route
    to_canary = replace(base, clusters=(WeightedCluster(cluster),), origin=canary.route.origin)
    extra: list[Route] = []
    if rules.header is not None:
        if rules.header_value is not None:
            extra.append(_when(to_canary, HeaderMatch(rules.header, exact=rules.header_value)))
        elif rules.header_pattern is not None:
            extra.append(_when(to_canary, HeaderMatch(rules.header, regex=rules.header_pattern)))
        else:
            extra.append(_when(to_canary, HeaderMatch(rules.header, exact="always")))
            extra.append(_when(base, HeaderMatch(rules.header, exact="never")))
    if rules.cookie is not None:
        for value, route in (("always", to_canary), ("never", base)):
            pattern = cookie_pattern(rules.cookie, value)
            if re2_problem(pattern) is None:  # a cookie name is a token: always compiles
                extra.append(_when(route, HeaderMatch("cookie", regex=pattern)))
    route = base
    if rules.weight:
        kept = rules.weight_total - rules.weight
        clusters = (*base.clusters[:1],) if kept else ()
        weighted = tuple(replace(c, weight=kept) for c in clusters)
        route = replace(base, clusters=(*weighted, WeightedCluster(cluster, rules.weight)))
    return replace(main, route=route, extra_routes=tuple(extra), canary_by=canary)


def _when(route: Route, condition: HeaderMatch) -> Route:
    return replace(route, headers=(condition,))
