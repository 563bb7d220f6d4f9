"""`violations`: each row breaks one rule Envoy enforces and names the path and reason expected.

Three tables: PGV rules as Envoy's own messages carry them (real xds-protos messages), Envoy's
load-time checks outside PGV, and PGV rule semantics Envoy's API does not exercise (synthetic
`validate.FieldRules` on one value). Then: every example translates to resources with no
violation. tests/unit/test_envoy_validation_live.py holds rows of the first two tables against
the real Envoy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    config_source_pb2,
    extension_pb2,
    health_check_pb2,
    protocol_pb2,
)
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.metrics.v3 import stats_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.rate_limit_quota.v3 import rate_limit_quota_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2, timestamp_pb2, wrappers_pb2
from google.protobuf.message import Message
from udpa.data.orca.v1 import orca_load_report_pb2
from validate import validate_pb2

from controlplane.dag.builder import build
from controlplane.dag.certificates import check_key_pair
from controlplane.envoy import load_assignments, translate
from controlplane.envoy.options import pack
from controlplane.envoy.validation import Violation, violations
from controlplane.envoy.validation_rules import go_duration, scalar_predicate
from controlplane.sources.files import FileSource
from controlplane.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(path for path in (ROOT / "examples").iterdir() if path.is_dir())

NOT_IN_HEADER_VALUE = "value contains a character not allowed in an HTTP header value:"
HEADER_VALUE_NL = f"{NOT_IN_HEADER_VALUE} '\\n' at index 2"


@dataclass(frozen=True)
class Row:
    build: Callable[[], Message]
    expected: list[tuple[str, str]]


def route(**action: Any) -> rc.Route:
    return rc.Route(match=rc.RouteMatch(prefix="/"), route=rc.RouteAction(cluster="c", **action))


def route_configuration(*routes: rc.Route, at: int = 3) -> route_pb2.RouteConfiguration:
    """`routes` in virtual host `at`, after plain hosts (so paths show the index)."""
    hosts = [
        rc.VirtualHost(name=f"h{i}", domains=[f"h{i}.local"], routes=[route()]) for i in range(at)
    ]
    hosts.append(rc.VirtualHost(name="bad", domains=["bad.local"], routes=list(routes)))
    return route_pb2.RouteConfiguration(name="ingress_http", virtual_hosts=hosts)


def socket(address: str = "10.0.0.1", port: int = 80) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address, port_value=port)
    )


def assignment(
    *lb_endpoints: endpoint_components_pb2.LbEndpoint,
) -> endpoint_pb2.ClusterLoadAssignment:
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name="default/kuard",
        endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=list(lb_endpoints))],
    )


def lb_endpoint(
    address: str = "10.0.0.1", port: int = 80, **fields: Any
) -> endpoint_components_pb2.LbEndpoint:
    return endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=socket(address, port)), **fields
    )


def seconds(value: int, nanos: int = 0) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=value, nanos=nanos)


def health_check(**http: Any) -> health_check_pb2.HealthCheck:
    return health_check_pb2.HealthCheck(
        timeout=seconds(2),
        interval=seconds(5),
        unhealthy_threshold=wrappers_pb2.UInt32Value(value=3),
        healthy_threshold=wrappers_pb2.UInt32Value(value=2),
        http_health_check=health_check_pb2.HealthCheck.HttpHealthCheck(**{"path": "/h", **http}),
    )


def cluster(**fields: Any) -> cluster_pb2.Cluster:
    values = {"name": "default/kuard/80/x", "connect_timeout": seconds(2), **fields}
    return cluster_pb2.Cluster(**values)


def listener(*chains: listener_components_pb2.FilterChain) -> listener_pb2.Listener:
    return listener_pb2.Listener(
        name="ingress_https", address=socket("0.0.0.0", 8443), filter_chains=list(chains)
    )


def chain(
    *server_names: str, manager: hcm.HttpConnectionManager | None = None
) -> listener_components_pb2.FilterChain:
    manager = manager or hcm.HttpConnectionManager(
        stat_prefix="ingress_https",
        rds=hcm.Rds(route_config_name="ingress_https"),
        http_filters=[hcm.HttpFilter(name="envoy.filters.http.router")],
    )
    return listener_components_pb2.FilterChain(
        filter_chain_match=listener_components_pb2.FilterChainMatch(
            server_names=list(server_names)
        ),
        filters=[
            listener_components_pb2.Filter(
                name="envoy.filters.network.http_connection_manager", typed_config=pack(manager)
            )
        ],
    )


def weighted(*weights: int | None) -> rc.Route:
    clusters = []
    for index, weight in enumerate(weights):
        entry = rc.WeightedCluster.ClusterWeight(name=f"c{index}")
        if weight is not None:
            entry.weight.value = weight
        clusters.append(entry)
    return rc.Route(
        match=rc.RouteMatch(prefix="/"),
        route=rc.RouteAction(weighted_clusters=rc.WeightedCluster(clusters=clusters)),
    )


def tcp_proxy(*weights: int) -> tcp_proxy_pb2.TcpProxy:
    return tcp_proxy_pb2.TcpProxy(
        stat_prefix="ingress_https",
        weighted_clusters=tcp_proxy_pb2.TcpProxy.WeightedCluster(
            clusters=[
                tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(name=f"c{i}", weight=w)
                for i, w in enumerate(weights)
            ]
        ),
    )


def _headers_to_add(count: int) -> list[base_pb2.HeaderValueOption]:
    return [
        base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key="x-a", value=str(i)))
        for i in range(count)
    ]


VH3 = "virtual_hosts[3]"
ROUTE = f"{VH3}.routes[0]"

PGV_ROWS: dict[str, Row] = {
    # strings: HTTP header values (strict: false forbids NUL, LF, CR only)
    "prefix_rewrite with LF": Row(
        lambda: route_configuration(route(prefix_rewrite="/x\ny")),
        [(f"{ROUTE}.route.prefix_rewrite", HEADER_VALUE_NL)],
    ),
    "prefix_rewrite with a tab passes (strict: false)": Row(
        lambda: route_configuration(route(prefix_rewrite="/x\ty")), []
    ),
    "regex_rewrite substitution with CR": Row(
        lambda: route_configuration(
            route(
                regex_rewrite={
                    "pattern": {"regex": "^/a"},
                    "substitution": "/b\r",
                }
            )
        ),
        [
            (
                f"{ROUTE}.route.regex_rewrite.substitution",
                "value contains a character not allowed in an HTTP header value: '\\r' at index 2",
            )
        ],
    ),
    "domain with NUL": Row(
        lambda: route_pb2.RouteConfiguration(
            virtual_hosts=[rc.VirtualHost(name="a", domains=["a.local", "b\x00"], routes=[route()])]
        ),
        [
            (
                "virtual_hosts[0].domains[1]",
                f"{NOT_IN_HEADER_VALUE} '\\x00' at index 1",
            )
        ],
    ),
    # strict HTTP header value: every control character but tab
    "health check path with LF": Row(
        lambda: cluster(health_checks=[health_check(path="/h\nx")]),
        [("health_checks[0].http_health_check.path", HEADER_VALUE_NL)],
    ),
    "health check host with DEL": Row(
        lambda: cluster(health_checks=[health_check(host="a\x7f")]),
        [
            (
                "health_checks[0].http_health_check.host",
                f"{NOT_IN_HEADER_VALUE} '\\x7f' at index 1",
            )
        ],
    ),
    "health check path with a tab passes": Row(
        lambda: cluster(health_checks=[health_check(path="/h\tx")]), []
    ),
    # strict HTTP header name, with ignore_empty
    "header name with a space": Row(
        lambda: protocol_pb2.UpstreamHttpProtocolOptions(override_auto_sni_header="x sni"),
        [
            (
                "override_auto_sni_header",
                "value contains a character not allowed in an HTTP header name: ' ' at index 1",
            )
        ],
    ),
    "header name empty passes (ignore_empty)": Row(
        lambda: protocol_pb2.UpstreamHttpProtocolOptions(override_auto_sni_header=""), []
    ),
    "header name with a comma passes (PGV's +-. range)": Row(
        lambda: protocol_pb2.UpstreamHttpProtocolOptions(override_auto_sni_header="x,y"), []
    ),
    "header name pseudo-header passes": Row(
        lambda: protocol_pb2.UpstreamHttpProtocolOptions(override_auto_sni_header=":authority"), []
    ),
    # string lengths, pattern, prefix/suffix, in
    "empty virtual host name": Row(
        lambda: route_pb2.RouteConfiguration(
            virtual_hosts=[rc.VirtualHost(domains=["a"], routes=[route()])]
        ),
        [("virtual_hosts[0].name", "value length must be at least 1 characters")],
    ),
    "empty cluster name in a route (oneof member)": Row(
        lambda: rc.RouteAction(cluster=""),
        [("cluster", "value length must be at least 1 characters")],
    ),
    "header key over max_bytes": Row(
        lambda: base_pb2.HeaderValue(key="x" * 16385),
        [("key", "value length must be at most 16384 bytes")],
    ),
    "path_separated_prefix with a trailing slash": Row(
        lambda: rc.RouteMatch(path_separated_prefix="/foo/"),
        [
            (
                "path_separated_prefix",
                'value does not match regex pattern "^[^?#]+[^?#/]$"',
            )
        ],
    ),
    "hits addend format without %": Row(
        lambda: rc.RateLimit.HitsAddend(format="abc%"),
        [("format", 'value does not have prefix "%"')],
    ),
    "scheme not in list": Row(
        lambda: protocol_pb2.SchemeHeaderTransformation(scheme_to_overwrite="ftp"),
        [("scheme_to_overwrite", 'value must be in list ["http", "https"]')],
    ),
    # numbers, wrappers included
    "port 70000": Row(
        lambda: assignment(lb_endpoint(port=70000)),
        [
            (
                "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value",
                "value must be less than or equal to 65535",
            )
        ],
    ),
    "load balancing weight 0 (wrapper)": Row(
        lambda: assignment(lb_endpoint(load_balancing_weight=wrappers_pb2.UInt32Value(value=0))),
        [
            (
                "endpoints[0].lb_endpoints[0].load_balancing_weight",
                "value must be greater than or equal to 1",
            )
        ],
    ),
    "tcp_proxy weight 0": Row(
        lambda: tcp_proxy(1, 0),
        [("weighted_clusters.clusters[1].weight", "value must be greater than or equal to 1")],
    ),
    "retry budget over 100 percent": Row(
        lambda: cluster(
            circuit_breakers=circuit_breaker_pb2.CircuitBreakers(
                thresholds=[
                    circuit_breaker_pb2.CircuitBreakers.Thresholds(
                        retry_budget=circuit_breaker_pb2.CircuitBreakers.Thresholds.RetryBudget(
                            budget_percent=percent_pb2.Percent(value=150)
                        )
                    )
                ]
            )
        ),
        [
            (
                "circuit_breakers.thresholds[0].retry_budget.budget_percent.value",
                "value must be inside range [0, 100]",
            )
        ],
    ),
    "histogram bucket 0 (repeated double gt)": Row(
        lambda: stats_pb2.HistogramBucketSettings(match={"exact": "x"}, buckets=[0.5, 0.0]),
        [("buckets[1]", "value must be greater than 0")],
    ),
    "utilization over 1 (map values)": Row(
        lambda: orca_load_report_pb2.OrcaLoadReport(utilization={"gpu": 2.0, "cpu": 0.5}),
        [('utilization["gpu"]', "value must be inside range [0, 1]")],
    ),
    # enums, bools
    "undefined lb_policy": Row(
        lambda: cluster(lb_policy=77),
        [("lb_policy", "value must be one of the defined enum values")],
    ),
    "health check method CONNECT": Row(
        lambda: cluster(health_checks=[health_check(method=base_pb2.CONNECT)]),
        [("health_checks[0].http_health_check.method", "value must not be in list [CONNECT]")],
    ),
    "rbac any: false": Row(
        lambda: rbac_pb2.Permission(any=False),
        [("any", "value must equal true")],
    ),
    # bytes
    "header raw_value over max_len": Row(
        lambda: base_pb2.HeaderValue(key="x", raw_value=b"v" * 16385),
        # PGV reads `min_len: 0` as set, hence the range
        [("raw_value", "value length must be between 0 and 16384 bytes, inclusive")],
    ),
    # messages, oneofs
    "route without match": Row(
        lambda: route_configuration(rc.Route(route=rc.RouteAction(cluster="c"))),
        [(f"{ROUTE}.match", "value is required")],
    ),
    "route without action": Row(
        lambda: route_configuration(rc.Route(match=rc.RouteMatch(prefix="/"))),
        [
            (
                f"{ROUTE}.action",
                "one of route, redirect, direct_response, filter_action or "
                "non_forwarding_action must be set",
            )
        ],
    ),
    "route action without a cluster": Row(
        lambda: rc.Route(match=rc.RouteMatch(prefix="/"), route=rc.RouteAction()),
        [
            (
                "route.cluster_specifier",
                "one of cluster, cluster_header, weighted_clusters, cluster_specifier_plugin "
                "or inline_cluster_specifier_plugin must be set",
            )
        ],
    ),
    "health check without thresholds": Row(
        lambda: health_check_pb2.HealthCheck(
            timeout=seconds(1), interval=seconds(1), tcp_health_check={}
        ),
        [
            ("unhealthy_threshold", "value is required"),
            ("healthy_threshold", "value is required"),
        ],
    ),
    "safe_regex (a required oneof member) unset is fine": Row(
        lambda: rc.RouteMatch(prefix="/"), []
    ),
    # repeated
    "weighted clusters empty": Row(
        lambda: rc.WeightedCluster(),
        [
            ("clusters", "value must contain at least 1 item(s)"),
            ("clusters", "the sum of the weights must be greater than 0"),
        ],
    ),
    "1001 headers to add": Row(
        lambda: rc.VirtualHost(
            name="a", domains=["a"], request_headers_to_add=_headers_to_add(1001)
        ),
        [("request_headers_to_add", "value must contain no more than 1000 item(s)")],
    ),
    "headers to copy not unique": Row(
        lambda: rc.InternalRedirectPolicy(response_headers_to_copy=["x-a", "x-b", "x-a"]),
        [("response_headers_to_copy[2]", "repeated value must contain unique items")],
    ),
    "virtual host without domains": Row(
        lambda: rc.VirtualHost(name="a"),
        [("domains", "value must contain at least 1 item(s)")],
    ),
    # maps
    "metadata with an empty filter name": Row(
        lambda: base_pb2.Metadata(filter_metadata={"": struct_pb2.Struct()}),
        [('filter_metadata[""]', "invalid key: value length must be at least 1 characters")],
    ),
    "bucket id builder empty": Row(
        lambda: rate_limit_quota_pb2.RateLimitQuotaBucketSettings.BucketIdBuilder(),
        [("bucket_id_builder", "value must contain at least 1 pair(s)")],
    ),
    # durations: PGV rules, and Envoy's own range
    "connect timeout 0s": Row(
        lambda: cluster(connect_timeout=seconds(0)),
        [("connect_timeout", "value must be greater than 0s")],
    ),
    "health check interval unset": Row(
        lambda: health_check_pb2.HealthCheck(
            timeout=seconds(1),
            unhealthy_threshold=wrappers_pb2.UInt32Value(value=1),
            healthy_threshold=wrappers_pb2.UInt32Value(value=1),
            tcp_health_check={},
        ),
        [("interval", "value is required")],
    ),
    "stats flush interval 5 minutes": Row(
        lambda: bootstrap_pb2.Bootstrap(stats_flush_interval=seconds(300)),
        [("stats_flush_interval", "value must be inside range [1ms, 5m0s)")],
    ),
    "negative route timeout": Row(
        lambda: route_configuration(route(timeout=seconds(-1))),
        [(f"{ROUTE}.route.timeout", "duration must not be negative")],
    ),
    "negative nanos": Row(
        lambda: cluster(connect_timeout=seconds(2, -5)),
        [("connect_timeout", "duration must not be negative")],
    ),
    "route timeout beyond Envoy's range": Row(
        lambda: route(timeout=seconds(9_223_372_036)),
        [("route.timeout", "duration must be at most 9223372035s")],
    ),
    "route timeout at Envoy's limit passes": Row(
        lambda: route(timeout=seconds(9_223_372_035, 999_999_999)), []
    ),
    # Any: required, and payloads checked with their type in the path
    "typed extension config without typed_config": Row(
        lambda: extension_pb2.TypedExtensionConfig(name="x"),
        [("typed_config", "value is required")],
    ),
    "HCM payload in a filter chain": Row(
        lambda: listener(
            chain(
                "a.local",
                manager=hcm.HttpConnectionManager(
                    stat_prefix="s",
                    route_config=route_configuration(route(prefix_rewrite="/x\ny"), at=1),
                    http_filters=[hcm.HttpFilter(name="envoy.filters.http.router")],
                ),
            )
        ),
        [
            (
                "filter_chains[0].filters[0].typed_config<HttpConnectionManager>"
                ".route_config.virtual_hosts[1].routes[0].route.prefix_rewrite",
                HEADER_VALUE_NL,
            )
        ],
    ),
    "Any that does not decode": Row(
        lambda: listener_components_pb2.Filter(
            name="x",
            typed_config=any_pb2.Any(
                type_url="type.googleapis.com/envoy.extensions.filters.network."
                "http_connection_manager.v3.HttpConnectionManager",
                value=b"\xff\xff\xff",
            ),
        ),
        [
            (
                "typed_config<HttpConnectionManager>",
                "value does not decode as envoy.extensions.filters.network."
                "http_connection_manager.v3.HttpConnectionManager",
            )
        ],
    ),
    "Any of an unknown type is left alone": Row(
        lambda: listener_components_pb2.Filter(
            name="x",
            typed_config=any_pb2.Any(type_url="type.googleapis.com/x.Unknown", value=b"\x01"),
        ),
        [],
    ),
}


def dynamic_metadata_action() -> rc.RateLimit.Action:
    return rc.RateLimit.Action(
        dynamic_metadata=rc.RateLimit.Action.DynamicMetaData(
            descriptor_key="k", metadata_key={"key": "a", "path": [{"key": "b"}]}
        )
    )


SEMANTIC_ROWS: dict[str, Row] = {
    "a field disallowed by default": Row(
        lambda: route(rate_limits=[rc.RateLimit(actions=[dynamic_metadata_action()])]),
        [
            (
                "route.rate_limits[0].actions[0].dynamic_metadata",
                "envoy.config.route.v3.RateLimit.Action.dynamic_metadata is deprecated and "
                "refused by Envoy (disallowed by default)",
            )
        ],
    ),
    # api_type's default is DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE, which Envoy refuses unset too
    "an enum left at a default disallowed by default": Row(
        lambda: config_source_pb2.ApiConfigSource(cluster_names=["xds"]),
        [
            (
                "api_type",
                "enum value DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE is deprecated and refused by "
                "Envoy (disallowed by default)",
            )
        ],
    ),
    "an enum set to a value Envoy takes": Row(
        lambda: config_source_pb2.ApiConfigSource(
            api_type=config_source_pb2.ApiConfigSource.GRPC, cluster_names=["xds"]
        ),
        [],
    ),
    "route weights all 0": Row(
        lambda: route_configuration(weighted(0, 0)),
        [
            (
                f"{ROUTE}.route.weighted_clusters.clusters",
                "the sum of the weights must be greater than 0",
            )
        ],
    ),
    "route weights unset count as 0": Row(
        lambda: weighted(None, None),
        [("route.weighted_clusters.clusters", "the sum of the weights must be greater than 0")],
    ),
    "one route weight 0 passes": Row(lambda: weighted(0, 1), []),
    "route weights over 2^32 - 1": Row(
        lambda: weighted(4_294_967_295, 1),
        [("route.weighted_clusters.clusters", "the sum of the weights must be at most 4294967295")],
    ),
    "a domain twice, in another case": Row(
        lambda: route_pb2.RouteConfiguration(
            virtual_hosts=[
                rc.VirtualHost(name="a", domains=["a.local"]),
                rc.VirtualHost(name="b", domains=["b.local", "A.local"]),
            ]
        ),
        [
            (
                "virtual_hosts[1].domains[1]",
                "domain 'A.local' is already a domain of virtual_hosts[0]",
            )
        ],
    ),
    "two wildcard hosts": Row(
        lambda: route_pb2.RouteConfiguration(
            virtual_hosts=[
                rc.VirtualHost(name="a", domains=["*"]),
                rc.VirtualHost(name="b", domains=["*"]),
            ]
        ),
        [
            (
                "virtual_hosts[1].domains[0]",
                "only one virtual host may have the domain *, as virtual_hosts[0]",
            )
        ],
    ),
    "two chains for one server name": Row(
        lambda: listener(chain("a.local"), chain("b.local"), chain("A.local")),
        [
            (
                "filter_chains[2].filter_chain_match",
                "matches the same server name 'a.local' as filter_chains[0]",
            )
        ],
    ),
    "one chain naming a server twice": Row(
        lambda: listener(chain("a.local", "a.local")),
        [
            (
                "filter_chains[0].filter_chain_match",
                "matches the same server name 'a.local' as filter_chains[0]",
            )
        ],
    ),
    "chains differing by port are fine": Row(
        lambda: listener(
            chain("a.local"),
            listener_components_pb2.FilterChain(
                filter_chain_match=listener_components_pb2.FilterChainMatch(
                    server_names=["a.local"], destination_port=wrappers_pb2.UInt32Value(value=1)
                ),
                filters=[listener_components_pb2.Filter(name="f")],
            ),
        ),
        [],
    ),
    "EDS endpoint that is a name": Row(
        lambda: assignment(lb_endpoint("example.com"), lb_endpoint("010.1.2.3")),
        [
            (
                "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address",
                "'example.com' is not an IP address",
            ),
            (
                "endpoints[0].lb_endpoints[1].endpoint.address.socket_address.address",
                "'010.1.2.3' is not an IP address",
            ),
        ],
    ),
    "EDS endpoints: IPv6 with a scope, IPv4-mapped": Row(
        lambda: assignment(lb_endpoint("fe80::1%eth0"), lb_endpoint("::ffff:1.2.3.4")), []
    ),
    "STATIC cluster endpoint that is a name": Row(
        lambda: cluster(
            type=cluster_pb2.Cluster.STATIC, load_assignment=assignment(lb_endpoint("db"))
        ),
        [
            (
                "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address",
                "'db' is not an IP address",
            )
        ],
    ),
    "STRICT_DNS cluster endpoint may be a name": Row(
        lambda: cluster(
            type=cluster_pb2.Cluster.STRICT_DNS,
            load_assignment=assignment(lb_endpoint("db.example")),
        ),
        [],
    ),
}


@pytest.mark.parametrize(
    "row", [*PGV_ROWS.values(), *SEMANTIC_ROWS.values()], ids=[*PGV_ROWS, *SEMANTIC_ROWS]
)
def test_violations(row: Row) -> None:
    found = violations(row.build())
    assert [(v.path, v.message) for v in found] == row.expected


def test_violation_is_a_frozen_value() -> None:
    (found,) = violations(rc.RouteMatch(path_separated_prefix="/a/"))
    assert found == Violation("path_separated_prefix", found.message)
    with pytest.raises(AttributeError):
        found.path = "x"  # type: ignore[misc]


def test_one_hcm_shared_by_many_chains_is_reported_for_each() -> None:
    manager = hcm.HttpConnectionManager(
        stat_prefix="s", route_config=route_configuration(route(timeout=seconds(-1)), at=0)
    )
    found = violations(
        listener(chain("a.local", manager=manager), chain("b.local", manager=manager))
    )
    assert [v.path for v in found] == [
        f"filter_chains[{i}].filters[0].typed_config<HttpConnectionManager>"
        ".route_config.virtual_hosts[0].routes[0].route.timeout"
        for i in (0, 1)
    ]


# -- PGV rule semantics on one value (rules Envoy's API does not use, and the range forms) ------

FIELD = route_pb2.RouteConfiguration.DESCRIPTOR.fields_by_name["name"]


def rules(**kind: Any) -> Any:
    return validate_pb2.FieldRules(**kind)


RULE_ROWS: list[tuple[str, Any, Any, str | None]] = [
    ("uint32 const", rules(uint32={"const": 3}), 4, "value must equal 3"),
    ("uint32 const ok", rules(uint32={"const": 3}), 3, None),
    (
        "int32 gt+lt inside",
        rules(int32={"gt": 0, "lt": 10}),
        10,
        "value must be inside range (0, 10)",
    ),
    ("int32 gte+lte inside", rules(int32={"gte": 0, "lte": 10}), 10, None),
    (
        "int32 gte+lt inside",
        rules(int32={"gte": 0, "lt": 10}),
        -1,
        "value must be inside range [0, 10)",
    ),
    (
        "int32 gt+lte inside",
        rules(int32={"gt": 0, "lte": 10}),
        0,
        "value must be inside range (0, 10]",
    ),
    (
        "int64 lt<gt outside",
        rules(int64={"lt": 0, "gt": 10}),
        5,
        "value must be outside range [0, 10]",
    ),
    ("int64 lt<gt outside, low", rules(int64={"lt": 0, "gt": 10}), -1, None),
    (
        "int64 lt<gt outside, bound",
        rules(int64={"lt": 0, "gt": 10}),
        10,
        "value must be outside range [0, 10]",
    ),
    ("sint32 lte<gte outside", rules(sint32={"lte": 0, "gte": 10}), 10, None),
    (
        "sint32 lte<gte outside, in",
        rules(sint32={"lte": 0, "gte": 10}),
        5,
        "value must be outside range (0, 10)",
    ),
    ("fixed32 lt<gte", rules(fixed32={"lt": 1, "gte": 5}), 4, "value must be outside range [1, 5)"),
    (
        "sfixed64 lte<gt",
        rules(sfixed64={"lte": 1, "gt": 5}),
        5,
        "value must be outside range (1, 5]",
    ),
    ("uint64 in", rules(uint64={"in": [1, 2]}), 3, "value must be in list [1, 2]"),
    ("fixed64 not_in", rules(fixed64={"not_in": [1, 2]}), 2, "value must not be in list [1, 2]"),
    ("uint32 ignore_empty", rules(uint32={"gte": 5, "ignore_empty": True}), 0, None),
    ("float lt", rules(float={"lt": 1.5}), 1.5, "value must be less than 1.5"),
    (
        "double gte",
        rules(double={"gte": 0.25}),
        0.125,
        "value must be greater than or equal to 0.25",
    ),
    ("bool const", rules(bool={"const": False}), True, "value must equal false"),
    ("string const", rules(string={"const": "a"}), "b", 'value must equal "a"'),
    ("string not_in", rules(string={"not_in": ["a"]}), "a", 'value must not be in list ["a"]'),
    ("string len (code points)", rules(string={"len": 2}), "ñb", None),
    ("string len", rules(string={"len": 2}), "abc", "value length must be 2 characters"),
    (
        "string min=max",
        rules(string={"min_len": 2, "max_len": 2}),
        "a",
        "value length must be 2 characters",
    ),
    (
        "string between",
        rules(string={"min_len": 1, "max_len": 2}),
        "abc",
        "value length must be between 1 and 2 characters, inclusive",
    ),
    ("string len_bytes", rules(string={"len_bytes": 2}), "ñ", None),
    (
        "string min_bytes",
        rules(string={"min_bytes": 3}),
        "ñ",
        "value length must be at least 3 bytes",
    ),
    (
        "string contains",
        rules(string={"contains": "x"}),
        "abc",
        'value does not contain substring "x"',
    ),
    (
        "string not_contains",
        rules(string={"not_contains": "b"}),
        "abc",
        'value contains substring "b"',
    ),
    (
        "string suffix",
        rules(string={"suffix": ".mmdb"}),
        "a.db",
        'value does not have suffix ".mmdb"',
    ),
    (
        "string pattern is a full match",
        rules(string={"pattern": "a+"}),
        "aab",
        'value does not match regex pattern "a+"',
    ),
    (
        "string pattern $ is the end",
        rules(string={"pattern": "^a$"}),
        "a\n",
        'value does not match regex pattern "^a$"',
    ),
    ("string ip", rules(string={"ip": True}), "1.2.3", "value must be a valid IP Address"),
    (
        "string ipv4 refuses v6",
        rules(string={"ipv4": True}),
        "::1",
        "value must be a valid IPv4 Address",
    ),
    ("string ipv6", rules(string={"ipv6": True}), "::1", None),
    (
        "string hostname",
        rules(string={"hostname": True}),
        "-a.example",
        "value must be a valid hostname",
    ),
    ("string hostname ok", rules(string={"hostname": True}), "a-1.example.", None),
    (
        "string address",
        rules(string={"address": True}),
        "a_b",
        "value must be an ip address, or a hostname.",
    ),
    ("string address ip", rules(string={"address": True}), "::1", None),
    ("string uuid", rules(string={"uuid": True}), "not-a-uuid", "value must be a valid UUID"),
    ("string uuid ok", rules(string={"uuid": True}), "123e4567-e89b-12d3-a456-426614174000", None),
    ("string email is unimplemented in C++", rules(string={"email": True}), "nope", None),
    (
        "header name strict, empty",
        rules(string={"well_known_regex": 1}),
        "",
        "value must be a non-empty HTTP header name",
    ),
    (
        "header name strict, non-ASCII",
        rules(string={"well_known_regex": 1}),
        "xé",
        "value contains a character not allowed in an HTTP header name: 'é' at index 1",
    ),
    (
        "header name strict, second colon",
        rules(string={"well_known_regex": 1}),
        "::a",
        "value contains a character not allowed in an HTTP header name: ':' at index 1",
    ),
    ("header name loose, empty", rules(string={"well_known_regex": 1, "strict": False}), "", None),
    (
        "header name loose, space",
        rules(string={"well_known_regex": 1, "strict": False}),
        "a b",
        None,
    ),
    (
        "header value strict, \\x01",
        rules(string={"well_known_regex": 2}),
        "a\x01",
        "value contains a character not allowed in an HTTP header value: '\\x01' at index 1",
    ),
    ("header value strict, non-ASCII", rules(string={"well_known_regex": 2}), "é", None),
    ("bytes len", rules(bytes={"len": 2}), b"a", "value length must be 2 bytes"),
    (
        "bytes prefix",
        rules(bytes={"prefix": b"\x01"}),
        b"\x02",
        'value does not have prefix "\\x01"',
    ),
    (
        "bytes ipv4",
        rules(bytes={"ipv4": True}),
        b"\x01\x02\x03",
        "value must be a valid IPv4 address",
    ),
    ("bytes in", rules(bytes={"in": [b"a"]}), b"b", 'value must be in list ["a"]'),
    (
        "duration const",
        rules(duration={"const": {"seconds": 1}}),
        seconds(2),
        "value must equal 1s",
    ),
    (
        "duration in",
        rules(duration={"in": [{"seconds": 1}]}),
        seconds(2),
        "value must be in list [1s]",
    ),
    (
        "duration lte",
        rules(duration={"lte": {"nanos": 1500}}),
        seconds(0, 1501),
        "value must be less than or equal to 1.5µs",
    ),
    (
        "timestamp gt",
        rules(timestamp={"gt": {"seconds": 10}}),
        timestamp_pb2.Timestamp(seconds=10),
        "value must be greater than 10.000000000s since the epoch",
    ),
]


@pytest.mark.parametrize(
    ("kind", "value", "expected"), [r[1:] for r in RULE_ROWS], ids=[r[0] for r in RULE_ROWS]
)
def test_rule_semantics(kind: Any, value: Any, expected: str | None) -> None:
    predicate = scalar_predicate(kind, FIELD)
    assert (predicate(value) if predicate is not None else None) == expected


def test_enum_rules_name_the_values() -> None:
    field = cluster_pb2.Cluster.DESCRIPTOR.fields_by_name["lb_policy"]
    predicate = scalar_predicate(rules(enum={"in": [0, 1], "const": 0}), field)
    assert predicate is not None
    assert predicate(1) == "value must equal ROUND_ROBIN"
    predicate = scalar_predicate(rules(enum={"in": [0, 1]}), field)
    assert predicate is not None
    assert predicate(3) == "value must be in list [ROUND_ROBIN, LEAST_REQUEST]"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (seconds(0), "0s"),
        (seconds(0, 1_000_000), "1ms"),
        (seconds(0, 1_500), "1.5µs"),
        (seconds(0, 7), "7ns"),
        (seconds(300), "5m0s"),
        (seconds(3661, 500_000_000), "1h1m1.5s"),
        (seconds(-2), "-2s"),
    ],
)
def test_durations_print_like_go(value: duration_pb2.Duration, text: str) -> None:
    assert go_duration(value) == text


# -- what the translator makes from the examples passes --------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_translation_of_each_example_has_no_violation(example: Path) -> None:
    store = Store()
    FileSource(example, store).load_all()
    objects = store.object_set()
    dag = build(objects)
    config = translate(dag)
    resources: list[Message] = [
        *config.listeners.values(),
        *config.routes.values(),
        *config.clusters.values(),
        *config.secrets.values(),
        *load_assignments(dag, objects).values(),
    ]
    assert resources
    assert [(type(r).__name__, v) for r in resources for v in violations(r)] == []
    for secret in dag.secrets():
        assert check_key_pair(secret.certificate_chain, secret.private_key) is None


def test_a_remembered_clean_value_lets_no_bad_one_through() -> None:
    """Header options and config sources are remembered by their bytes once clean: the same
    clean value passes again unchecked, a bad one is found every time, wherever it is."""
    good = base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key="x-a", value="1"))
    bad = base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key="x-a", value="1\n"))
    for _ in range(2):
        assert (
            violations(
                rc.Route(
                    request_headers_to_add=[good],
                    match=rc.RouteMatch(prefix="/"),
                    direct_response=rc.DirectResponseAction(status=503),
                )
            )
            == []
        )
    for index in range(2):
        route = rc.Route(
            match=rc.RouteMatch(prefix="/"),
            direct_response=rc.DirectResponseAction(status=503),
            request_headers_to_add=[good, bad] if index else [bad],
        )
        [found] = violations(route)
        assert found.path == f"request_headers_to_add[{index}].header.value"
