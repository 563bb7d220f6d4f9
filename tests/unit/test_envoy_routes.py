"""DAG routes → Envoy routes: one row per feature, plus the prefix-rewrite semantics, the
ingress-nginx vocabulary (issue 10) and the values the translator refuses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.protobuf import json_format

from controlplane.dag.types import (
    DAG,
    HTTPS_REDIRECT,
    INFINITE,
    Cluster,
    CorsPolicy,
    HeaderMatch,
    LoadBalancerPolicy,
    Origin,
    PathMatch,
    PathMatchKind,
    RateLimit,
    Redirect,
    RegexRewrite,
    RetryPolicy,
    Route,
    SecureVirtualHost,
    SessionCookie,
    SourceRanges,
    TCPProxy,
    TLSSecret,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import IncrementalTranslator
from controlplane.envoy.options import CommonMessages, Timeouts, TranslateOptions
from controlplane.envoy.routes import prefix_rewrite_regex, route
from controlplane.envoy.translate import translate
from controlplane.typeurls import ROUTE_TYPE

KUARD = Cluster("default", "kuard", 80)
NGINX = Cluster("default", "nginx", 8080, port_name="http")
STICKY = Cluster("default", "kuard", 80, load_balancer=LoadBalancerPolicy.COOKIE)
SHARED = CommonMessages.of(TranslateOptions())
SECRET = TLSSecret("default", "tls", b"CERT", b"KEY")


def prefix(value: str, kind: PathMatchKind = PathMatchKind.SEGMENT_PREFIX) -> PathMatch:
    return PathMatch(kind, value)


def to(*clusters: Cluster | tuple[Cluster, int]) -> tuple[WeightedCluster, ...]:
    return tuple(
        WeightedCluster(*c) if isinstance(c, tuple) else WeightedCluster(c) for c in clusters
    )


def as_json(value: Route, options: TranslateOptions | None = None) -> dict[str, Any]:
    shared = SHARED if options is None else CommonMessages.of(options)
    result: dict[str, Any] = json_format.MessageToDict(
        route(value, shared), preserving_proto_field_name=True
    )
    return result


ROUTE_ROWS = [
    pytest.param(
        Route(PathMatch(PathMatchKind.EXACT, "/exact"), to(KUARD)),
        {"match": {"path": "/exact"}, "route": {"cluster": KUARD.name}},
        id="exact",
    ),
    pytest.param(
        Route(prefix("/foo", PathMatchKind.PREFIX), to(KUARD)),
        {"match": {"prefix": "/foo"}, "route": {"cluster": KUARD.name}},
        id="prefix",
    ),
    pytest.param(
        Route(prefix("/foo/"), to(KUARD)),
        {"match": {"path_separated_prefix": "/foo"}, "route": {"cluster": KUARD.name}},
        id="segment-prefix-strips-trailing-slash",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD)),
        {"match": {"prefix": "/"}, "route": {"cluster": KUARD.name}},
        id="segment-prefix-root",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD), redirect=HTTPS_REDIRECT),
        {"match": {"prefix": "/"}, "redirect": {"https_redirect": True}},
        id="https-redirect",
    ),
    pytest.param(
        Route(prefix("/"), ()),
        {"match": {"prefix": "/"}, "direct_response": {"status": 503}},
        id="no-cluster-503",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD), timeout_seconds=INFINITE),
        {"match": {"prefix": "/"}, "route": {"cluster": KUARD.name, "timeout": "0s"}},
        id="timeout-infinite",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD), timeout_seconds=90),
        {"match": {"prefix": "/"}, "route": {"cluster": KUARD.name, "timeout": "90s"}},
        id="timeout-value",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD), timeout_seconds=0.25),
        {"match": {"prefix": "/"}, "route": {"cluster": KUARD.name, "timeout": "0.250s"}},
        id="timeout-fraction",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD), websocket=True),
        {
            "match": {"prefix": "/"},
            "route": {
                "cluster": KUARD.name,
                "upgrade_configs": [{"upgrade_type": "websocket"}],
                "idle_timeout": "3600s",
            },
        },
        id="websocket",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD), retry=RetryPolicy("gateway-error", 3, 0.5)),
        {
            "match": {"prefix": "/"},
            "route": {
                "cluster": KUARD.name,
                "retry_policy": {
                    "retry_on": "gateway-error",
                    "num_retries": 3,
                    "per_try_timeout": "0.500s",
                },
            },
        },
        id="retry",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD), retry=RetryPolicy()),
        {
            "match": {"prefix": "/"},
            "route": {"cluster": KUARD.name, "retry_policy": {"retry_on": "5xx", "num_retries": 1}},
        },
        id="retry-defaults",
    ),
    pytest.param(
        Route(prefix("/"), to((KUARD, 80), (NGINX, 20))),
        {
            "match": {"prefix": "/"},
            "route": {
                "weighted_clusters": {
                    "clusters": [
                        {"name": KUARD.name, "weight": 80},
                        {"name": NGINX.name, "weight": 20},
                    ]
                }
            },
        },
        id="weighted",
    ),
    pytest.param(
        Route(prefix("/"), to((KUARD, 0), (NGINX, 5))),
        {
            "match": {"prefix": "/"},
            "route": {
                "weighted_clusters": {
                    "clusters": [
                        {"name": KUARD.name, "weight": 0},
                        {"name": NGINX.name, "weight": 5},
                    ]
                }
            },
        },
        id="weighted-some-zero",
    ),
    pytest.param(
        Route(prefix("/"), to((KUARD, 0), (NGINX, 0))),
        {
            "match": {"prefix": "/"},
            "route": {
                "weighted_clusters": {
                    "clusters": [
                        {"name": KUARD.name, "weight": 1},
                        {"name": NGINX.name, "weight": 1},
                    ]
                }
            },
        },
        id="weighted-all-zero-means-equal",
    ),
    pytest.param(
        Route(prefix("/"), to(STICKY)),
        {
            "match": {"prefix": "/"},
            "route": {
                "cluster": STICKY.name,
                "hash_policy": [
                    {"cookie": {"name": "X-Contour-Session-Affinity", "ttl": "0s", "path": "/"}}
                ],
            },
        },
        id="cookie-affinity",
    ),
    pytest.param(
        Route(prefix("/app"), to(KUARD), prefix_rewrite="/"),
        {
            "match": {"path_separated_prefix": "/app"},
            "route": {
                "cluster": KUARD.name,
                "regex_rewrite": {"pattern": {"regex": "^/app/*"}, "substitution": "/"},
            },
        },
        id="prefix-rewrite",
    ),
    pytest.param(
        Route(prefix("/"), to(KUARD), prefix_rewrite="/"),
        {"match": {"prefix": "/"}, "route": {"cluster": KUARD.name}},
        id="prefix-rewrite-identity",
    ),
]


@pytest.mark.parametrize(("value", "expected"), ROUTE_ROWS)
def test_route(value: Route, expected: dict[str, Any]) -> None:
    if "route" in expected:  # every forwarding route stamps the request, as Contour's do
        expected = {**expected, "request_headers_to_add": [REQUEST_START]}
    assert as_json(value) == expected


REQUEST_START = {
    "header": {"key": "x-request-start", "value": "t=%START_TIME(%s.%3f)%"},
    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
}


def test_forwarding_routes_stamp_x_request_start_and_redirects_do_not() -> None:
    assert as_json(Route(prefix("/"), to(KUARD)))["request_headers_to_add"] == [REQUEST_START]
    assert "request_headers_to_add" not in as_json(Route(prefix("/"), redirect=HTTPS_REDIRECT))


def test_websocket_idle_timeout_follows_options() -> None:
    options = TranslateOptions(timeouts=Timeouts(websocket_idle_seconds=INFINITE))
    result = as_json(Route(prefix("/"), to(KUARD), websocket=True), options)
    assert result["route"]["idle_timeout"] == "0s"
    options = TranslateOptions(timeouts=Timeouts(websocket_idle_seconds=None))
    assert "idle_timeout" not in as_json(Route(prefix("/"), to(KUARD), websocket=True), options)


def test_ttl_zero_is_present_so_the_cookie_is_a_session_cookie() -> None:
    action = route(Route(prefix("/"), to(STICKY)), SHARED).route
    assert action.hash_policy[0].cookie.HasField("ttl")


def _envoy_rewrite(pattern: str, substitution: str, path: str) -> str:
    """What Envoy does with regex_rewrite: match the path without the query, keep the query."""
    path_only, sep, query = path.partition("?")
    python_substitution = substitution.replace("\\\\", "\\")  # RE2 escapes, same as Python's
    rewritten = re.sub(pattern, lambda _: python_substitution, path_only, count=1)
    return rewritten + sep + query


REWRITE_ROWS = [
    pytest.param("/app", PathMatchKind.SEGMENT_PREFIX, "/", "/app", "/", id="root-exact"),
    pytest.param("/app", PathMatchKind.SEGMENT_PREFIX, "/", "/app/", "/", id="root-slash"),
    pytest.param("/app", PathMatchKind.SEGMENT_PREFIX, "/", "/app/x?q=1", "/x?q=1", id="root-q"),
    pytest.param("/app", PathMatchKind.PREFIX, "/", "/app", "/", id="prefix-root-exact"),
    pytest.param("/app", PathMatchKind.PREFIX, "/", "/app/", "/", id="prefix-root-slash"),
    pytest.param("/app", PathMatchKind.PREFIX, "/", "/app/x?q=1", "/x?q=1", id="prefix-root-q"),
    pytest.param("/app/", PathMatchKind.PREFIX, "/", "/app/x", "/x", id="match-trailing-slash"),
    pytest.param("/app", PathMatchKind.SEGMENT_PREFIX, "/", "/app//x", "/x", id="no-double-slash"),
    pytest.param("/api/", PathMatchKind.PREFIX, "/v1/", "/api/users", "/v1/users", id="api-v1"),
    pytest.param("/api", PathMatchKind.SEGMENT_PREFIX, "/v1/", "/api/u", "/v1/u", id="slash-r"),
    pytest.param("/api/", PathMatchKind.PREFIX, "/v1", "/api/u", "/v1/u", id="slash-m"),
    pytest.param("/api", PathMatchKind.SEGMENT_PREFIX, "/v1", "/api", "/v1", id="api-bare"),
    pytest.param("/", PathMatchKind.PREFIX, "/v1", "/", "/v1/", id="root-match"),
    pytest.param("/", PathMatchKind.PREFIX, "/v1/", "/x/y?z", "/v1/x/y?z", id="root-match-q"),
    pytest.param("/a.b", PathMatchKind.SEGMENT_PREFIX, "/", "/a.b/c", "/c", id="escaped-dot"),
    pytest.param("/a.b", PathMatchKind.PREFIX, "/", "/axb/c", "/axb/c", id="dot-is-literal"),
    pytest.param("/app", PathMatchKind.EXACT, "/", "/app", "/", id="exact-match"),
]


@pytest.mark.parametrize(("match", "kind", "rewrite", "path", "expected"), REWRITE_ROWS)
def test_prefix_rewrite_semantics(
    match: str, kind: PathMatchKind, rewrite: str, path: str, expected: str
) -> None:
    regex = prefix_rewrite_regex(PathMatch(kind, match), rewrite)
    assert regex is not None
    pattern, substitution = regex
    assert pattern.startswith("^"), "anchored: replaces at most once"
    assert _envoy_rewrite(pattern, substitution, path) == expected


def test_route_configurations_order_hosts_and_keep_route_order() -> None:
    routes = (
        Route(PathMatch(PathMatchKind.EXACT, "/z"), to(KUARD)),
        Route(prefix("/a/b"), to(KUARD)),
        Route(prefix("/"), to(KUARD)),
    )
    dag = DAG(
        virtual_hosts=(
            VirtualHost("*", routes),
            VirtualHost("b.local", routes),
            VirtualHost("a.local", routes),
        ),
        secure_virtual_hosts=(SecureVirtualHost("s.local", routes, secret=SECRET),),
    )
    config = translate(dag)
    assert list(config.routes) == ["ingress_http", "ingress_https"]
    http = config.routes["ingress_http"]
    assert [(h.name, list(h.domains)) for h in http.virtual_hosts] == [
        ("a.local", ["a.local"]),
        ("b.local", ["b.local"]),
        ("*", ["*"]),
    ]
    assert [r.match.WhichOneof("path_specifier") for r in http.virtual_hosts[0].routes] == [
        "path",
        "path_separated_prefix",
        "prefix",
    ]
    assert [h.name for h in config.routes["ingress_https"].virtual_hosts] == ["s.local"]


def test_https_route_configuration_exists_when_empty_and_skips_tcp_hosts() -> None:
    assert not translate(DAG()).routes["ingress_https"].virtual_hosts
    dag = DAG(
        secure_virtual_hosts=(
            SecureVirtualHost("pass.local", tcp_proxy=TCPProxy(to(KUARD))),
            SecureVirtualHost("tcp.local", secret=SECRET, tcp_proxy=TCPProxy(to(KUARD))),
            SecureVirtualHost("web.local", secret=SECRET),
        )
    )
    assert [h.name for h in translate(dag).routes["ingress_https"].virtual_hosts] == ["web.local"]


# -- the ingress-nginx vocabulary (issue 10) ---------------------------------------------------

ROOT = prefix("/", PathMatchKind.PREFIX)
TYPED = "type.googleapis.com/"
CORS_FILTER = "envoy.filters.http.cors"
RBAC_FILTER = "envoy.filters.http.rbac"
RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit"
BUFFER_FILTER = "envoy.filters.http.buffer"


def forwarded(**route_fields: Any) -> dict[str, Any]:
    """The JSON of a route to KUARD on `/` with `route_fields` in its route action."""
    return {"cluster": KUARD.name, **route_fields}


def cidr(address: str, length: int) -> dict[str, Any]:
    return {"remote_ip": {"address_prefix": address, "prefix_len": length}}


def rbac(principal: dict[str, Any]) -> dict[str, Any]:
    policy = {"permissions": [{"any": True}], "principals": [principal]}
    return {
        RBAC_FILTER: {
            "@type": TYPED + "envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
            "rbac": {"rules": {"policies": {"source-ranges": policy}}},
        }
    }


ALWAYS = {"default_value": {"numerator": 100}}

NGINX_ROWS = [
    pytest.param(
        Route(PathMatch(PathMatchKind.REGEX, "(?i)/something(/|$)(.*).*"), to(KUARD)),
        {"match": {"safe_regex": {"regex": "(?i)/something(/|$)(.*).*"}}, "route": forwarded()},
        id="regex-match",
    ),
    pytest.param(
        Route(
            PathMatch(PathMatchKind.REGEX, "(?i)/something(/|$)(.*).*"),
            to(KUARD),
            regex_rewrite=RegexRewrite("(?i)/something(/|$)(.*)", r"/\2"),
        ),
        {
            "match": {"safe_regex": {"regex": "(?i)/something(/|$)(.*).*"}},
            "route": forwarded(
                regex_rewrite={
                    "pattern": {"regex": "(?i)/something(/|$)(.*)"},
                    "substitution": r"/\2",
                }
            ),
        },
        id="regex-rewrite-capture-groups",
    ),
    pytest.param(
        Route(
            prefix("/app"),
            to(KUARD),
            headers=(
                HeaderMatch("x-canary", exact="always"),
                HeaderMatch("cookie", regex=r"(.*;\s*)?canary=always(;.*)?"),
            ),
        ),
        {
            "match": {
                "path_separated_prefix": "/app",
                "headers": [
                    {"name": "x-canary", "string_match": {"exact": "always"}},
                    {
                        "name": "cookie",
                        "string_match": {"safe_regex": {"regex": r"(.*;\s*)?canary=always(;.*)?"}},
                    },
                ],
            },
            "route": forwarded(),
        },
        id="header-conditions",
    ),
    pytest.param(
        Route(ROOT, redirect=Redirect(code=308, scheme="https")),
        {
            "match": {"prefix": "/"},
            "redirect": {"https_redirect": True, "response_code": "PERMANENT_REDIRECT"},
        },
        id="redirect-308-https",
    ),
    pytest.param(
        Route(ROOT, redirect=Redirect(code=302, host="b.example", path="/x", strip_query=True)),
        {
            "match": {"prefix": "/"},
            "redirect": {
                "host_redirect": "b.example",
                "path_redirect": "/x",
                "response_code": "FOUND",
                "strip_query": True,
            },
        },
        id="redirect-302-host-path-query",
    ),
    pytest.param(
        Route(ROOT, redirect=Redirect(code=303, scheme="http", port=8080)),
        {
            "match": {"prefix": "/"},
            "redirect": {
                "scheme_redirect": "http",
                "port_redirect": 8080,
                "response_code": "SEE_OTHER",
            },
        },
        id="redirect-303-scheme-port",
    ),
    pytest.param(
        Route(ROOT, redirect=Redirect(code=307, path="/")),
        {
            "match": {"prefix": "/"},
            "redirect": {"path_redirect": "/", "response_code": "TEMPORARY_REDIRECT"},
        },
        id="redirect-307",
    ),
    pytest.param(
        Route(ROOT, redirect=Redirect(code=301, path="/y")),
        {"match": {"prefix": "/"}, "redirect": {"path_redirect": "/y"}},
        id="redirect-301-is-the-default-code",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), host_rewrite="upstream.example"),
        {"match": {"prefix": "/"}, "route": forwarded(host_rewrite_literal="upstream.example")},
        id="host-rewrite",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), idle_timeout_seconds=120),
        {"match": {"prefix": "/"}, "route": forwarded(idle_timeout="120s")},
        id="idle-timeout",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), websocket=True, idle_timeout_seconds=30),
        {
            "match": {"prefix": "/"},
            "route": forwarded(upgrade_configs=[{"upgrade_type": "websocket"}], idle_timeout="30s"),
        },
        id="idle-timeout-overrides-the-websocket-default",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), idle_timeout_seconds=INFINITE),
        {"match": {"prefix": "/"}, "route": forwarded(idle_timeout="0s")},
        id="idle-timeout-infinite",
    ),
    pytest.param(
        Route(ROOT, to(STICKY), session_cookie=SessionCookie("route", 172800, "/app")),
        {
            "match": {"prefix": "/"},
            "route": {
                "cluster": STICKY.name,
                "hash_policy": [{"cookie": {"name": "route", "ttl": "172800s", "path": "/app"}}],
            },
        },
        id="session-cookie",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), session_cookie=SessionCookie("route")),
        {"match": {"prefix": "/"}, "route": forwarded()},
        id="session-cookie-without-cookie-affinity-hashes-nothing",
    ),
    pytest.param(
        Route(
            ROOT,
            to(KUARD),
            cors=CorsPolicy(
                allow_origins=("*", "https://*.example.com", "https://a.example"),
                allow_methods="GET",
                allow_headers="X-A",
                expose_headers="X-B",
                allow_credentials=False,
                max_age_seconds=60,
            ),
        ),
        {
            "match": {"prefix": "/"},
            "route": forwarded(),
            "typed_per_filter_config": {
                CORS_FILTER: {
                    "@type": TYPED + "envoy.extensions.filters.http.cors.v3.CorsPolicy",
                    "allow_origin_string_match": [
                        {"safe_regex": {"regex": ".*"}},
                        {"safe_regex": {"regex": r"(?i)https://[A-Za-z0-9-]+\.example\.com"}},
                        {"exact": "https://a.example", "ignore_case": True},
                    ],
                    "allow_methods": "GET",
                    "allow_headers": "X-A",
                    "expose_headers": "X-B",
                    "max_age": "60",
                    "allow_credentials": False,
                }
            },
        },
        id="cors",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), source_ranges=SourceRanges(allow=("10.0.0.0/8", "192.168.1.7"))),
        {
            "match": {"prefix": "/"},
            "route": forwarded(),
            "typed_per_filter_config": rbac(
                {"or_ids": {"ids": [cidr("10.0.0.0", 8), cidr("192.168.1.7", 32)]}}
            ),
        },
        id="source-ranges-allow",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), source_ranges=SourceRanges(deny=("2001:db8::1/32",))),
        {
            "match": {"prefix": "/"},
            "route": forwarded(),
            "typed_per_filter_config": rbac({"not_id": cidr("2001:db8::", 32)}),
        },
        id="source-ranges-deny-clears-host-bits",
    ),
    pytest.param(
        Route(
            ROOT,
            to(KUARD),
            source_ranges=SourceRanges(allow=("10.0.0.0/8",), deny=("10.1.0.0/16", "10.2.0.0/16")),
        ),
        {
            "match": {"prefix": "/"},
            "route": forwarded(),
            "typed_per_filter_config": rbac(
                {
                    "and_ids": {
                        "ids": [
                            cidr("10.0.0.0", 8),
                            {
                                "not_id": {
                                    "or_ids": {"ids": [cidr("10.1.0.0", 16), cidr("10.2.0.0", 16)]}
                                }
                            },
                        ]
                    }
                }
            ),
        },
        id="source-ranges-allow-and-deny",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), source_ranges=SourceRanges()),
        {"match": {"prefix": "/"}, "route": forwarded()},
        id="source-ranges-empty-restrict-nothing",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), rate_limit=RateLimit(requests=5, period_seconds=1, burst=25)),
        {
            "match": {"prefix": "/"},
            "route": forwarded(),
            "typed_per_filter_config": {
                RATE_LIMIT_FILTER: {
                    "@type": TYPED
                    + "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                    "stat_prefix": "ingress_route",
                    "status": {"code": "ServiceUnavailable"},
                    "token_bucket": {"max_tokens": 25, "tokens_per_fill": 5, "fill_interval": "1s"},
                    "filter_enabled": ALWAYS,
                    "filter_enforced": ALWAYS,
                    "descriptors": [
                        {
                            "entries": [{"key": "remote_address"}],
                            "token_bucket": {
                                "max_tokens": 25,
                                "tokens_per_fill": 5,
                                "fill_interval": "1s",
                            },
                        }
                    ],
                    "always_consume_default_token_bucket": False,
                    "rate_limits": [{"actions": [{"remote_address": {}}]}],
                    "max_dynamic_descriptors": 10000,
                }
            },
        },
        id="rate-limit-per-client-address",
    ),
    pytest.param(
        Route(ROOT, to(KUARD), max_request_bytes=1024),
        {
            "match": {"prefix": "/"},
            "route": forwarded(),
            "typed_per_filter_config": {
                BUFFER_FILTER: {
                    "@type": TYPED + "envoy.config.route.v3.FilterConfig",
                    "config": {
                        "@type": TYPED + "envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
                        "buffer": {"max_request_bytes": 1024},
                    },
                }
            },
        },
        id="body-limit",
    ),
    pytest.param(
        Route(ROOT, redirect=HTTPS_REDIRECT, source_ranges=SourceRanges(deny=("10.0.0.0/8",))),
        {
            "match": {"prefix": "/"},
            "redirect": {"https_redirect": True},
            "typed_per_filter_config": rbac({"not_id": cidr("10.0.0.0", 8)}),
        },
        id="filters-apply-to-redirects-too",
    ),
]


@pytest.mark.parametrize(("value", "expected"), NGINX_ROWS)
def test_nginx_vocabulary(value: Route, expected: dict[str, Any]) -> None:
    if "route" in expected:
        expected = {**expected, "request_headers_to_add": [REQUEST_START]}
    assert as_json(value) == expected


def test_todays_routes_keep_their_bytes() -> None:
    """The defaults of the new fields encode exactly as the routes always did."""
    https = route(Route(prefix("/"), to(KUARD), redirect=HTTPS_REDIRECT), SHARED)
    assert https.redirect.SerializeToString() == b"\x20\x01"  # https_redirect: true, alone
    default_cookie = Route(prefix("/"), to(STICKY), session_cookie=SessionCookie())
    assert route(default_cookie, SHARED) == route(Route(prefix("/"), to(STICKY)), SHARED)


HOSTILE = Origin("Ingress", "tenant", "hostile")

REFUSED_ROWS = [
    pytest.param(dict(redirect=Redirect(code=399)), "redirect code 399", id="redirect-code-399"),
    pytest.param(dict(redirect=Redirect(code=10**9)), "redirect code", id="redirect-code-huge"),
    pytest.param(dict(redirect=Redirect(port=0)), "port 0", id="redirect-port-0"),
    pytest.param(dict(redirect=Redirect(port=70000)), "port 70000", id="redirect-port-70000"),
    pytest.param(dict(redirect=Redirect(scheme="ftp")), "scheme 'ftp'", id="redirect-scheme"),
    pytest.param(dict(redirect=Redirect(host="")), "host is empty", id="redirect-empty-host"),
    pytest.param(dict(redirect=Redirect(path="x")), "does not start", id="redirect-path"),
    pytest.param(
        dict(redirect=Redirect(host="a\nb")), "redirect.host_redirect", id="redirect-host-lf"
    ),
    pytest.param(dict(host_rewrite=""), "host rewrite is empty", id="host-rewrite-empty"),
    pytest.param(dict(host_rewrite="a\r\nb"), "host_rewrite_literal", id="host-rewrite-crlf"),
    pytest.param(
        dict(source_ranges=SourceRanges(allow=("10.0.0.0/33",))), "not an IP", id="cidr-33"
    ),
    pytest.param(
        dict(source_ranges=SourceRanges(deny=("banana",))), "'banana'", id="cidr-not-a-cidr"
    ),
    pytest.param(
        dict(cors=CorsPolicy(allow_methods="GET\r\nX-Evil: 1")), "allow-methods", id="cors-crlf"
    ),
    pytest.param(dict(cors=CorsPolicy(allow_origins=())), "at least one", id="cors-no-origin"),
    pytest.param(
        dict(cors=CorsPolicy(allow_origins=("https://a\n",))), "CORS origin", id="cors-origin-lf"
    ),
    pytest.param(dict(rate_limit=RateLimit(1, 1, 1, status=499)), "status.code", id="status-499"),
    pytest.param(
        dict(rate_limit=RateLimit(1, 1, 1, status=70000)), "status.code", id="status-70000"
    ),
    pytest.param(dict(rate_limit=RateLimit(2**40, 1, 1)), "cannot be translated", id="rps-huge"),
    pytest.param(dict(rate_limit=RateLimit(1, 0, 1)), "fill_interval", id="rate-period-0"),
    pytest.param(dict(rate_limit=RateLimit(1, 1, 0)), "max_tokens", id="rate-burst-0"),
    pytest.param(dict(max_request_bytes=0), "max_request_bytes", id="body-limit-0"),
    pytest.param(dict(max_request_bytes=2**32), "cannot be translated", id="body-limit-2^32"),
    pytest.param(dict(idle_timeout_seconds=-1), "idle_timeout", id="idle-negative"),
    pytest.param(
        dict(match=PathMatch(PathMatchKind.REGEX, "/(?<=a)b")), "not a valid RE2", id="lookbehind"
    ),
    pytest.param(
        dict(match=PathMatch(PathMatchKind.REGEX, "/(abc|def|ghi){20}")),
        "over Envoy's limit of 100",
        id="regex-program-too-large",
    ),
    pytest.param(
        dict(headers=(HeaderMatch("x", regex="(a"),)), "headers[0].string_match", id="header-re"
    ),
    pytest.param(dict(headers=(HeaderMatch("x\x00y", exact="a"),)), "name", id="header-nul"),
    pytest.param(dict(headers=(HeaderMatch("x"),)), "exactly one", id="header-no-condition"),
    pytest.param(
        dict(regex_rewrite=RegexRewrite("(a", "/")), "regex_rewrite.pattern", id="rewrite-re"
    ),
    pytest.param(
        dict(regex_rewrite=RegexRewrite("a", "/"), prefix_rewrite="/"), "not both", id="rewrites"
    ),
    pytest.param(
        dict(session_cookie=SessionCookie("a b")), "not an HTTP token", id="cookie-name-space"
    ),
    pytest.param(
        dict(session_cookie=SessionCookie(path="/;x")), "control character or ;", id="cookie-path"
    ),
    pytest.param(dict(session_cookie=SessionCookie(ttl_seconds=-5)), "negative", id="cookie-ttl"),
]


@pytest.mark.parametrize(("fields", "reason"), REFUSED_ROWS)
def test_hostile_values_are_refused_with_their_origin(fields: dict[str, Any], reason: str) -> None:
    """Each hostile value leaves its own route out, reported against its origin; the host's
    other route is served."""
    match = fields.pop("match", prefix("/hostile"))
    target = to(STICKY) if "session_cookie" in fields else to(KUARD)
    hostile = Route(match, target, origin=HOSTILE, **fields)
    good = Route(prefix("/"), to(KUARD))
    translator = IncrementalTranslator()
    encoded = translator.translate(DAG(virtual_hosts=(VirtualHost("a.local", (hostile, good)),)))
    rejections = translator.rejections()
    assert rejections, "refused"
    assert {(r.origin, r.type_url, r.resource) for r in rejections} == {
        (HOSTILE, ROUTE_TYPE, "a.local")
    }
    text = " | ".join(f"{r.path}: {r.describe()}" for r in rejections)
    assert reason in text
    served = translate(DAG(virtual_hosts=(VirtualHost("a.local", (good,)),)))
    assert encoded[ROUTE_TYPE]["ingress_http"] == served.encode()[ROUTE_TYPE]["ingress_http"]
