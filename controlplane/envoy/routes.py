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
so a silent websocket is not reset by the HCM's stream idle timeout; `Route.idle_timeout_seconds`
(nginx's proxy-read/send-timeout), when set, is the route's `idle_timeout` instead, websocket or
not. The route timeout needs no special case for websockets: it starts when the downstream
request ends, which an upgraded stream never does (checked against Envoy 1.40). See
docs/timeouts.md.

The ingress-nginx vocabulary (issue 10), field by field:

- REGEX matches → `safe_regex` (RE2, whole path, no query); header conditions → `headers`, each
  a `string_match` (`exact`, or `safe_regex` on the whole value). Every RE2 pattern that reaches
  Envoy (these, `regex_rewrite`, CORS origins) is checked with `dag.regexes.re2_problem` by the
  validation backstop (`validation_semantic`), so a pattern Envoy would refuse rejects its route.
- `Redirect` → `RedirectAction`: scheme `https` → `https_redirect` (so `HTTPS_REDIRECT` keeps the
  exact bytes Contour's redirect always had), another scheme → `scheme_redirect`, then
  `host_redirect`, `port_redirect`, `path_redirect`, `strip_query`, and the code as
  `response_code` (301 is the enum's default and so not written).
- `regex_rewrite` → `RouteAction.regex_rewrite` (groups as `\1`); `host_rewrite` →
  `host_rewrite_literal`.
- Cookie affinity: the hash policy's cookie is `Route.session_cookie` (name, `ttl`, `path`), or
  Contour's `X-Contour-Session-Affinity`, ttl 0 (a session cookie), path `/` (the same bytes as
  always). A session cookie on a route that does not balance by cookie has nothing to hash and
  is not written.
- CORS, source ranges, rate limit and body limit arm the listener's HTTP filters for this route
  only, through `typed_per_filter_config` (`http_filters.py` has the chain and the configs).
  They apply to every route carrying them, redirects and direct responses included.

A value no Envoy field can carry faithfully (a redirect code outside REDIRECT_CODES, a port
outside 1-65535, an empty host rewrite, a cookie name that is not an HTTP token) raises
ValueError, which `checked` turns into a Rejection of this route alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import wrappers_pb2

from controlplane.dag import (
    HeaderMatch,
    PathMatch,
    PathMatchKind,
    Redirect,
    RetryPolicy,
    Route,
    SecureVirtualHost,
    SessionCookie,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy.http_filters import per_filter_configs
from controlplane.envoy.options import CommonMessages, duration

SESSION_AFFINITY_COOKIE = SessionCookie().name
_DEFAULT_SESSION_COOKIE = SessionCookie()
_REGEX_META = frozenset("\\.+*?()|[]{}^$")
_WEBSOCKET = "websocket"
_REDIRECT_CODES = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP token (RFC 9110), which is what a cookie name must be (RFC 6265)."""
_COOKIE_PATH_BAD = re.compile(r"[\x00-\x1f\x7f;]")


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


def _regex(pattern: str) -> regex_pb2.RegexMatcher:
    return regex_pb2.RegexMatcher(regex=pattern)


def route_match(match: PathMatch, headers: Sequence[HeaderMatch] = ()) -> rc.RouteMatch:
    if match.kind is PathMatchKind.EXACT:
        result = rc.RouteMatch(path=match.value)
    elif match.kind is PathMatchKind.PREFIX:
        result = rc.RouteMatch(prefix=match.value)
    elif match.kind is PathMatchKind.REGEX:
        result = rc.RouteMatch(safe_regex=_regex(match.value))
    elif value := match.value.rstrip("/"):
        result = rc.RouteMatch(path_separated_prefix=value)
    else:
        result = rc.RouteMatch(prefix="/")
    if headers:
        result.headers.extend(header_matcher(header) for header in headers)
    return result


def header_matcher(header: HeaderMatch) -> rc.HeaderMatcher:
    """One header condition: the exact value, or an RE2 pattern over the whole value."""
    if (header.exact is None) == (header.regex is None):
        raise ValueError(f"header condition on {header.name!r} needs exactly one of exact, regex")
    if header.exact is not None:
        matcher = string_pb2.StringMatcher(exact=header.exact)
    else:
        matcher = string_pb2.StringMatcher(safe_regex=_regex(header.regex or ""))
    return rc.HeaderMatcher(name=header.name, string_match=matcher)


def redirect_action(redirect: Redirect) -> rc.RedirectAction:
    code = _REDIRECT_CODES.get(redirect.code)
    if code is None:
        codes = ", ".join(str(c) for c in sorted(_REDIRECT_CODES))
        raise ValueError(f"redirect code {redirect.code} is not one of {codes}")
    action = rc.RedirectAction(response_code=code, strip_query=redirect.strip_query)
    if redirect.scheme == "https":
        action.https_redirect = True
    elif redirect.scheme is not None:
        if redirect.scheme != "http":
            raise ValueError(f"redirect scheme {redirect.scheme!r} is not http or https")
        action.scheme_redirect = redirect.scheme
    if redirect.host is not None:
        if not redirect.host:
            raise ValueError("redirect host is empty")
        action.host_redirect = redirect.host
    if redirect.port is not None:
        if not 0 < redirect.port < 65536:
            raise ValueError(f"redirect port {redirect.port} is not in 1-65535")
        action.port_redirect = redirect.port
    if redirect.path is not None:
        if not redirect.path.startswith("/"):
            raise ValueError(f"redirect path {redirect.path!r} does not start with /")
        action.path_redirect = redirect.path
    return action


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
    idle = route.idle_timeout_seconds
    if route.websocket:
        action.upgrade_configs.add(upgrade_type=_WEBSOCKET)
        if idle is None:
            idle = shared.options.timeouts.websocket_idle_seconds
    if idle is not None:
        action.idle_timeout.CopyFrom(duration(idle))
    if route.retry is not None:
        action.retry_policy.CopyFrom(_retry_policy(route.retry))
    rewrite = _rewrite(route)
    if rewrite is not None:
        pattern, substitution = rewrite
        action.regex_rewrite.CopyFrom(
            regex_pb2.RegexMatchAndSubstitute(pattern=_regex(pattern), substitution=substitution)
        )
    if route.host_rewrite is not None:
        if not route.host_rewrite:
            raise ValueError("host rewrite is empty")
        action.host_rewrite_literal = route.host_rewrite
    if route.has_cookie_affinity:
        action.hash_policy.add().cookie.CopyFrom(_affinity_cookie(route.session_cookie))
    return action


def _rewrite(route: Route) -> tuple[str, str] | None:
    """The (pattern, substitution) of the route's path rewrite, if it has one."""
    if route.regex_rewrite is not None:
        if route.prefix_rewrite is not None:
            raise ValueError("a route has a prefix rewrite or a regex rewrite, not both")
        return route.regex_rewrite.pattern, route.regex_rewrite.substitution
    if route.prefix_rewrite is not None:
        return prefix_rewrite_regex(route.match, route.prefix_rewrite)
    return None


def _affinity_cookie(cookie: SessionCookie | None) -> rc.RouteAction.HashPolicy.Cookie:
    cookie = cookie or _DEFAULT_SESSION_COOKIE
    if not _TOKEN.fullmatch(cookie.name):
        raise ValueError(f"session cookie name {cookie.name!r} is not an HTTP token")
    if cookie.ttl_seconds < 0:
        raise ValueError(f"session cookie max age {cookie.ttl_seconds} is negative")
    if _COOKIE_PATH_BAD.search(cookie.path):
        raise ValueError(f"session cookie path {cookie.path!r} has a control character or ;")
    return rc.RouteAction.HashPolicy.Cookie(
        name=cookie.name, ttl=duration(cookie.ttl_seconds), path=cookie.path
    )


_REQUEST_START = base_pb2.HeaderValueOption(
    header=base_pb2.HeaderValue(key="x-request-start", value="t=%START_TIME(%s.%3f)%"),
    append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
)
"""As Contour: when Envoy received the request, so upstreams can measure queueing time."""


def route(route: Route, shared: CommonMessages) -> rc.Route:
    """One Envoy route. A route with no cluster (the DAG reports why) answers 503."""
    match = route_match(route.match, route.headers)
    if route.redirect is not None:
        result = rc.Route(match=match, redirect=redirect_action(route.redirect))
    elif not route.clusters:
        result = rc.Route(match=match, direct_response=rc.DirectResponseAction(status=503))
    else:
        result = rc.Route(
            match=match,
            route=_route_action(route, shared),
            request_headers_to_add=[_REQUEST_START],
        )
    for name, config in per_filter_configs(route).items():
        result.typed_per_filter_config[name].CopyFrom(config)
    return result


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
