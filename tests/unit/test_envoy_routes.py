"""DAG routes → Envoy routes: one row per feature, plus the prefix-rewrite semantics."""

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
    LoadBalancerPolicy,
    PathMatch,
    PathMatchKind,
    RetryPolicy,
    Route,
    SecureVirtualHost,
    TCPProxy,
    TLSSecret,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy.options import CommonMessages, Timeouts, TranslateOptions
from controlplane.envoy.routes import prefix_rewrite_regex, route
from controlplane.envoy.translate import translate

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
