"""DAG virtual hosts → Envoy `RouteConfiguration`s `ingress_http` and `ingress_https`.

Order is the DAG's business: virtual hosts are sorted here by fqdn with the `*` catch-all last
(Envoy picks the catch-all only when nothing else matches, but a stable order keeps the bytes
stable), and routes keep the order the DAG gives them (most specific first). Nothing here
re-sorts routes.

Path matches: EXACT → `path`, PREFIX → `prefix`, SEGMENT_PREFIX → `path_separated_prefix`
(which matches `/foo` and `/foo/...` but not `/foobar`; Envoy rejects a trailing slash there, so
it is stripped, and `/` becomes `prefix: /`, which already means "every path").

Prefix rewrite (design)
-----------------------
Envoy's `prefix_rewrite` replaces characters, not segments: match `/app` with rewrite `/` turns
`/app/x` into `//x`. We use `regex_rewrite` instead, one anchored RE2 pattern per route, built
from the match value `M` and the rewrite `R`, both with trailing slashes removed (`m`, `r`):

=============  =====================  ============  =========================================
case           pattern                substitution  effect
=============  =====================  ============  =========================================
r == ""        ``^m/*``               ``/``         `/app`→`/`, `/app/`→`/`, `/app/x`→`/x`
m == ""        ``^/``                 ``r/``        `/`→`/v1/`, `/x`→`/v1/x`
otherwise      ``^m``                 ``r``         `/api/users`→`/v1/users`, `/api`→`/v1`
both empty     (no rewrite)
=============  =====================  ============  =========================================

Envoy matches the pattern against the path without the query string and re-appends the query,
so `/app/x?q=1` → `/x?q=1`. The pattern is anchored, so it can replace at most once. A PREFIX
match keeps plain-prefix semantics (`/api` → `/v1` turns `/apiary` into `/v1ary`). Envoy sets
`x-envoy-original-path` itself when `regex_rewrite` rewrites the path (unless the router
suppresses Envoy headers, which we never do); tests/unit/test_envoy_live.py checks this against
Envoy 1.40, so no `request_headers_to_add` is needed.

Weighted clusters: one cluster is a plain `cluster`; several are `weighted_clusters` whose
weights are the DAG's (negative → 0). Envoy needs a positive sum, so all-zero weights become equal
weights of 1. `total_weight` is deprecated in v3 and left unset: Envoy uses the sum, so it can
never be inconsistent.

Timeouts: `Route.timeout_seconds` None leaves Envoy's route timeout (15 s) alone, INFINITE is
`0s`. Websocket routes get a per-route `idle_timeout` (options.timeouts.websocket_idle_seconds)
so a silent websocket is not reset by the HCM's stream idle timeout. The route timeout needs no
special case for websockets: it starts when the downstream request ends, which an upgraded
stream never does (checked against Envoy 1.40). See docs/timeouts.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2
from google.protobuf import wrappers_pb2

from controlplane.dag import (
    PathMatch,
    PathMatchKind,
    RetryPolicy,
    Route,
    SecureVirtualHost,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy.options import CommonMessages, duration

SESSION_AFFINITY_COOKIE = "X-Contour-Session-Affinity"
_REGEX_META = frozenset("\\.+*?()|[]{}^$")
_WEBSOCKET = "websocket"


def quote_meta(text: str) -> str:
    """Escape `text` for RE2 (and Python `re`): every metacharacter gets a backslash."""
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in text)


def prefix_rewrite_regex(match: PathMatch, rewrite: str) -> tuple[str, str] | None:
    """The (RE2 pattern, substitution) that rewrites `match`'s prefix to `rewrite` by segments.

    None when the rewrite is the identity (`/` → `/`). See the module docstring for the table.
    """
    m = match.value.rstrip("/")
    r = rewrite.rstrip("/")
    if r and not r.startswith("/"):
        r = "/" + r
    substitution = r.replace("\\", "\\\\")
    if not m and not r:
        return None
    if not r:
        return f"^{quote_meta(m)}/*", "/"
    if not m:
        return "^/", substitution + "/"
    return f"^{quote_meta(m)}", substitution


def route_match(match: PathMatch) -> rc.RouteMatch:
    if match.kind is PathMatchKind.EXACT:
        return rc.RouteMatch(path=match.value)
    if match.kind is PathMatchKind.PREFIX:
        return rc.RouteMatch(prefix=match.value)
    value = match.value.rstrip("/")
    if not value:
        return rc.RouteMatch(prefix="/")
    return rc.RouteMatch(path_separated_prefix=value)


def _retry_policy(retry: RetryPolicy) -> rc.RetryPolicy:
    policy = rc.RetryPolicy(
        retry_on=retry.retry_on, num_retries=wrappers_pb2.UInt32Value(value=retry.num_retries)
    )
    if retry.per_try_timeout_seconds is not None:
        policy.per_try_timeout.CopyFrom(duration(retry.per_try_timeout_seconds))
    return policy


def _weights(clusters: Sequence[WeightedCluster]) -> list[int]:
    """Weights as Envoy takes them: negatives are 0; all zero means equal shares."""
    weights = [max(0, weighted.weight) for weighted in clusters]
    if not any(weights):
        return [1] * len(weights)
    return weights


def _route_action(route: Route, shared: CommonMessages) -> rc.RouteAction:
    clusters = route.clusters
    if len(clusters) == 1:
        action = rc.RouteAction(cluster=clusters[0].cluster.name)
    else:
        action = rc.RouteAction(
            weighted_clusters=rc.WeightedCluster(
                clusters=[
                    rc.WeightedCluster.ClusterWeight(
                        name=weighted.cluster.name, weight=wrappers_pb2.UInt32Value(value=weight)
                    )
                    for weighted, weight in zip(clusters, _weights(clusters), strict=True)
                ]
            )
        )
    if route.timeout_seconds is not None:
        action.timeout.CopyFrom(duration(route.timeout_seconds))
    if route.websocket:
        action.upgrade_configs.add(upgrade_type=_WEBSOCKET)
        idle = shared.options.timeouts.websocket_idle_seconds
        if idle is not None:
            action.idle_timeout.CopyFrom(duration(idle))
    if route.retry is not None:
        action.retry_policy.CopyFrom(_retry_policy(route.retry))
    if route.prefix_rewrite is not None:
        rewrite = prefix_rewrite_regex(route.match, route.prefix_rewrite)
        if rewrite is not None:
            pattern, substitution = rewrite
            action.regex_rewrite.CopyFrom(
                regex_pb2.RegexMatchAndSubstitute(
                    pattern=regex_pb2.RegexMatcher(regex=pattern), substitution=substitution
                )
            )
    if route.has_cookie_affinity:
        action.hash_policy.add().cookie.CopyFrom(
            rc.RouteAction.HashPolicy.Cookie(
                name=SESSION_AFFINITY_COOKIE, ttl=duration(0), path="/"
            )
        )
    return action


_REQUEST_START = base_pb2.HeaderValueOption(
    header=base_pb2.HeaderValue(key="x-request-start", value="t=%START_TIME(%s.%3f)%"),
    append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
)
"""As Contour: when Envoy received the request, so upstreams can measure queueing time."""


def route(route: Route, shared: CommonMessages) -> rc.Route:
    """One Envoy route. A route with no cluster (the DAG reports why) answers 503."""
    match = route_match(route.match)
    if route.redirect is not None and route.https_redirect:
        return rc.Route(match=match, redirect=rc.RedirectAction(https_redirect=True))
    if not route.clusters:
        return rc.Route(match=match, direct_response=rc.DirectResponseAction(status=503))
    return rc.Route(
        match=match,
        route=_route_action(route, shared),
        request_headers_to_add=[_REQUEST_START],
    )


def virtual_host(host: VirtualHost | SecureVirtualHost, shared: CommonMessages) -> rc.VirtualHost:
    return virtual_host_of(host, [route(r, shared) for r in host.routes])


def virtual_host_of(
    host: VirtualHost | SecureVirtualHost, routes: list[rc.Route]
) -> rc.VirtualHost:
    """The virtual host of `host` serving `routes` (already translated, possibly fewer)."""
    return rc.VirtualHost(name=host.fqdn, domains=[host.fqdn], routes=routes)


def https_hosts(hosts: Iterable[SecureVirtualHost]) -> list[SecureVirtualHost]:
    """Secure hosts served over HTTP on `ingress_https`: TLS terminated, not TCP-proxied."""
    return [h for h in hosts if h.secret is not None and h.tcp_proxy is None]
