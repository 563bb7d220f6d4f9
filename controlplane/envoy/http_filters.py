"""The HTTP filters of every HTTP connection manager, and the per-route configs that arm them.

The chain (both `ingress_http` and `ingress_https`, this order, always all present):

==========================================  =============================  ======================
filter                                      at the HCM                     armed by a route's
==========================================  =============================  ======================
`envoy.filters.http.cors`                   `Cors{}`: no policy, inert     `CorsPolicy`
`envoy.filters.http.rbac`                   `RBAC{}`: no rules, no-op      `RBACPerRoute`
`envoy.filters.http.local_ratelimit`        no token bucket, not enabled   `LocalRateLimit`
`envoy.filters.http.buffer`                 `disabled: true`: not run      `FilterConfig{Buffer…}`
`envoy.filters.http.router`                 the router                     (routes)
==========================================  =============================  ======================

Why always present: a listener whose bytes change is drained by Envoy (every open connection of
every tenant is closed within the drain time), so the chain must not depend on what routes
use. A filter is armed per route through `typed_per_filter_config`, which lives in the route
configuration (RDS): the first route that starts using CORS changes one virtual host, never the
listener (tests/e2e/test_envoy_route_features_xds.py watches Envoy's listener counters while a
route arms every filter). Each filter is a no-op without a route config (checked against Envoy
1.40 by tests/e2e/test_envoy_route_features.py, which also posts a chunked body through a plain
route and sees it arrive chunked: the buffer filter did not run there).

Websocket upgrades run the same chain without the buffer filter (`upgrade_configs`): the buffer
filter would hold an upgrade request forever, waiting for the end of a body that never comes
(checked live: the upgrade hangs without this). Upgrades stay off unless a route enables them.

Why this order (request path; responses run it backwards):
- CORS first: a preflight (`OPTIONS` with `access-control-request-method`) is answered before
  any other check, as nginx answers it in its rewrite phase, and the CORS headers are added to
  every response of a CORS route, the 403/503/413 local replies of the later filters included,
  so a browser shows the real error instead of a CORS failure.
- RBAC before the rate limit: a client whose address is denied gets its 403 without taking a
  per-client bucket, so a flood from denied addresses cannot evict the buckets of allowed
  clients from the limiter's bounded table (and does not spend their tokens).
- The rate limit before the buffer: a limited request is refused before its body is read.
- The buffer last: it reads (at most `max_request_bytes` of) the body, answers 413 past that,
  and hands the whole request to the router.

Per-route configs (values come from the DAG `Route`):
- CORS (`envoy.extensions.filters.http.cors.v3.CorsPolicy`): origins `*` → the RE2 `.*`
  (Envoy echoes the request's `Origin` in `access-control-allow-origin`, never `*`, so a
  credentialed request works with a wildcard, as browsers require); an origin with a `*` in it
  (`https://*.example.com`) → `*` is one DNS label (`[A-Za-z0-9-]+`), as ingress-nginx; others
  exact. Origins compare without case, as nginx's `~*`. Non-matching preflights go upstream.
- Source ranges (`RBACPerRoute`): one ALLOW policy whose principal is "remote address in an
  allow range (when there are any) and in no deny range"; everything else gets Envoy's 403. The
  remote address is the one Envoy trusts (`use_remote_address`), as nginx's `$remote_addr`.
- Rate limit (`LocalRateLimit`): a token bucket per client address: the filter's own
  `rate_limits` (Envoy 1.40's replacement for the route's `rate_limits`) produce a
  `remote_address` descriptor, and a descriptor entry with an empty value is a wildcard: Envoy
  keeps one bucket per distinct address, up to `max_dynamic_descriptors` (least recently used
  evicted). The default bucket is consumed only when no descriptor matches.
- Body limit: the disabled buffer filter is enabled for the route by a
  `envoy.config.route.v3.FilterConfig` whose `config` is a `BufferPerRoute` with the limit.

A value the protobufs cannot carry faithfully (a CIDR that is not one, a CORS string that is not
a valid header value) raises ValueError: `checked` turns that into a Rejection of the route.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac_config
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
from envoy.extensions.filters.http.buffer.v3 import buffer_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import http_status_pb2, percent_pb2, token_bucket_pb2
from google.protobuf import any_pb2, wrappers_pb2

from controlplane.dag import CorsPolicy, RateLimit, Route, SourceRanges
from controlplane.envoy.options import duration, pack

CORS: Final = "envoy.filters.http.cors"
RBAC: Final = "envoy.filters.http.rbac"
LOCAL_RATE_LIMIT: Final = "envoy.filters.http.local_ratelimit"
BUFFER: Final = "envoy.filters.http.buffer"
ROUTER: Final = "envoy.filters.http.router"
WEBSOCKET: Final = "websocket"

RATE_LIMIT_STAT_PREFIX: Final = "ingress_route"
MAX_CLIENTS_PER_ROUTE: Final = 10_000
"""Per-client buckets a rate-limited route keeps (Envoy's `max_dynamic_descriptors`; its
default of 20 would forget a client's bucket as soon as 20 others arrived)."""
_REMOTE_ADDRESS: Final = "remote_address"
_BUFFER_PLACEHOLDER: Final = 2**32 - 1
"""The HCM-level buffer limit: never used (the filter is disabled there and every route that
enables it brings its own limit), but required to be set."""
_SOURCE_RANGES_POLICY: Final = "source-ranges"
_DNS_LABEL: Final = "[A-Za-z0-9-]+"
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ALWAYS = base_pb2.RuntimeFractionalPercent(
    default_value=percent_pb2.FractionalPercent(
        numerator=100, denominator=percent_pb2.FractionalPercent.HUNDRED
    )
)


def http_filters() -> list[hcm.HttpFilter]:
    """The HCM's filter chain: every filter inert until a route arms it, then the router."""
    return [
        hcm.HttpFilter(name=CORS, typed_config=pack(cors_pb2.Cors())),
        hcm.HttpFilter(name=RBAC, typed_config=pack(rbac_pb2.RBAC())),
        hcm.HttpFilter(
            name=LOCAL_RATE_LIMIT,
            typed_config=pack(local_rate_limit_pb2.LocalRateLimit(stat_prefix="ingress")),
        ),
        hcm.HttpFilter(
            name=BUFFER,
            typed_config=pack(
                buffer_pb2.Buffer(
                    max_request_bytes=wrappers_pb2.UInt32Value(value=_BUFFER_PLACEHOLDER)
                )
            ),
            disabled=True,
        ),
        hcm.HttpFilter(name=ROUTER, typed_config=pack(router_pb2.Router())),
    ]


def upgrade_configs() -> list[hcm.HttpConnectionManager.UpgradeConfig]:
    """Websocket upgrades: off unless a route turns them on (as without this), and run through
    the chain without the buffer filter (see the module docstring); a body limit applies to the
    requests of a route, not to the frames of an upgraded websocket, as nginx's
    `client_max_body_size`."""
    chain = [f for f in http_filters() if f.name != BUFFER]
    return [
        hcm.HttpConnectionManager.UpgradeConfig(
            upgrade_type=WEBSOCKET, filters=chain, enabled=wrappers_pb2.BoolValue(value=False)
        )
    ]


def per_filter_configs(route: Route) -> dict[str, any_pb2.Any]:
    """The `typed_per_filter_config` of `route`: filter name → its config (empty: none)."""
    configs: dict[str, any_pb2.Any] = {}
    if route.cors is not None:
        configs[CORS] = pack(cors_policy(route.cors))
    if route.source_ranges is not None:
        restriction = source_ranges(route.source_ranges)
        if restriction is not None:
            configs[RBAC] = pack(restriction)
    if route.rate_limit is not None:
        configs[LOCAL_RATE_LIMIT] = pack(rate_limit(route.rate_limit))
    if route.max_request_bytes is not None:
        configs[BUFFER] = pack(body_limit(route.max_request_bytes))
    return configs


def _header_value(what: str, value: str) -> str:
    found = _HEADER_VALUE_BAD.search(value)
    if found is not None:
        raise ValueError(
            f"{what} {value!r} is not a valid HTTP header value "
            f"({found.group()!r} at index {found.start()})"
        )
    return value


def origin_matcher(origin: str) -> string_pb2.StringMatcher:
    """`*`: any origin; a `*` inside: one DNS label there; otherwise the origin, any case."""
    _header_value("CORS origin", origin)
    if origin == "*":
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=".*"))
    if "*" in origin:
        pattern = _DNS_LABEL.join(re.escape(part) for part in origin.split("*"))
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex="(?i)" + pattern))
    return string_pb2.StringMatcher(exact=origin, ignore_case=True)


def cors_policy(policy: CorsPolicy) -> cors_pb2.CorsPolicy:
    if not policy.allow_origins:
        raise ValueError("a CORS policy needs at least one allowed origin")
    if policy.max_age_seconds < 0:
        raise ValueError(f"CORS max age {policy.max_age_seconds} is negative")
    return cors_pb2.CorsPolicy(
        allow_origin_string_match=[origin_matcher(o) for o in policy.allow_origins],
        allow_methods=_header_value("CORS allow-methods", policy.allow_methods),
        allow_headers=_header_value("CORS allow-headers", policy.allow_headers),
        expose_headers=_header_value("CORS expose-headers", policy.expose_headers),
        max_age=str(policy.max_age_seconds),
        allow_credentials=wrappers_pb2.BoolValue(value=policy.allow_credentials),
    )


def cidr_range(text: str) -> address_pb2.CidrRange:
    """A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (one host); host bits are
    cleared, as nginx's `allow`/`deny` do."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"source range {text!r} is not an IP address or CIDR") from None
    return address_pb2.CidrRange(
        address_prefix=str(network.network_address),
        prefix_len=wrappers_pb2.UInt32Value(value=network.prefixlen),
    )


def _any_of(principals: list[rbac_config.Principal]) -> rbac_config.Principal:
    if len(principals) == 1:
        return principals[0]
    return rbac_config.Principal(or_ids=rbac_config.Principal.Set(ids=principals))


def source_ranges(ranges: SourceRanges) -> rbac_pb2.RBACPerRoute | None:
    """Allow the remote addresses in `allow` (all, when empty) that are in no `deny` range;
    None when neither list has a range (nothing to restrict)."""
    allow = [rbac_config.Principal(remote_ip=cidr_range(c)) for c in ranges.allow]
    deny = [rbac_config.Principal(remote_ip=cidr_range(c)) for c in ranges.deny]
    conditions = []
    if allow:
        conditions.append(_any_of(allow))
    if deny:
        conditions.append(rbac_config.Principal(not_id=_any_of(deny)))
    if not conditions:
        return None
    if len(conditions) == 1:
        principal = conditions[0]
    else:
        principal = rbac_config.Principal(and_ids=rbac_config.Principal.Set(ids=conditions))
    policy = rbac_config.Policy(
        permissions=[rbac_config.Permission(any=True)], principals=[principal]
    )
    rules = rbac_config.RBAC(
        action=rbac_config.RBAC.ALLOW, policies={_SOURCE_RANGES_POLICY: policy}
    )
    return rbac_pb2.RBACPerRoute(rbac=rbac_pb2.RBAC(rules=rules))


def _token_bucket(limit: RateLimit) -> token_bucket_pb2.TokenBucket:
    return token_bucket_pb2.TokenBucket(
        max_tokens=limit.burst,
        tokens_per_fill=wrappers_pb2.UInt32Value(value=limit.requests),
        fill_interval=duration(limit.period_seconds),
    )


def rate_limit(limit: RateLimit) -> local_rate_limit_pb2.LocalRateLimit:
    """A token bucket per client address (see the module docstring)."""
    bucket = _token_bucket(limit)
    return local_rate_limit_pb2.LocalRateLimit(
        stat_prefix=RATE_LIMIT_STAT_PREFIX,
        status=http_status_pb2.HttpStatus(code=limit.status),
        token_bucket=bucket,
        filter_enabled=_ALWAYS,
        filter_enforced=_ALWAYS,
        descriptors=[
            ratelimit_pb2.LocalRateLimitDescriptor(
                entries=[ratelimit_pb2.RateLimitDescriptor.Entry(key=_REMOTE_ADDRESS, value="")],
                token_bucket=bucket,
            )
        ],
        always_consume_default_token_bucket=wrappers_pb2.BoolValue(value=False),
        rate_limits=[
            rc.RateLimit(
                actions=[rc.RateLimit.Action(remote_address=rc.RateLimit.Action.RemoteAddress())]
            )
        ],
        max_dynamic_descriptors=wrappers_pb2.UInt32Value(value=MAX_CLIENTS_PER_ROUTE),
    )


def body_limit(max_request_bytes: int) -> rc.FilterConfig:
    """Enable the (disabled) buffer filter for one route, with its limit."""
    settings = buffer_pb2.BufferPerRoute(
        buffer=buffer_pb2.Buffer(
            max_request_bytes=wrappers_pb2.UInt32Value(value=max_request_bytes)
        )
    )
    return rc.FilterConfig(config=pack(settings))
