"""DAG → listeners `ingress_http` / `ingress_https`: one row per listener shape."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.dag.types import (
    DAG,
    Cluster,
    CorsPolicy,
    PathMatch,
    PathMatchKind,
    RateLimit,
    Route,
    SecureVirtualHost,
    SourceRanges,
    TCPProxy,
    TLSSecret,
    TLSVersion,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy.jsonview import message_json
from controlplane.envoy.options import Timeouts, TranslateOptions
from controlplane.envoy.translate import translate
from controlplane.typeurls import LISTENER_TYPE, ROUTE_TYPE

KUARD = Cluster("default", "kuard", 80)
NGINX = Cluster("default", "nginx", 80)
SECRET = TLSSecret("default", "tls", b"CERT", b"KEY")
ROUTES = (Route(PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"), (WeightedCluster(KUARD),)),)
ADS = {"ads": {}, "resource_api_version": "V3"}
STDOUT_LOG = [
    {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
        },
    }
]
HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)


HTTP_FILTERS = [
    {
        "name": "envoy.filters.http.cors",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
    },
    {
        "name": "envoy.filters.http.rbac",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"},
    },
    {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": (
                "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
            ),
            "stat_prefix": "ingress",
        },
    },
    {
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": 4294967295,
        },
        "disabled": True,
    },
    {
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        },
    },
]
"""Every HCM's chain: the same filters whatever the routes use (no listener drain when the
first route arms one), each inert until a route's typed_per_filter_config arms it. Websocket
upgrades (off unless a route allows them) run the same chain without the buffer filter."""


def listeners(dag: DAG, options: TranslateOptions | None = None) -> dict[str, dict[str, Any]]:
    config = translate(dag, options or TranslateOptions())
    return {name: message_json(listener) for name, listener in config.listeners.items()}


def hcm(stat_prefix: str, **overrides: Any) -> dict[str, Any]:
    manager = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "rds": {"config_source": ADS, "route_config_name": stat_prefix},
        "http_filters": HTTP_FILTERS,
        "upgrade_configs": [
            {
                "upgrade_type": "websocket",
                "filters": HTTP_FILTERS[:3] + HTTP_FILTERS[4:],
                "enabled": False,
            }
        ],
        "access_log": STDOUT_LOG,
        "use_remote_address": True,
        "strip_any_host_port": True,
        "common_http_protocol_options": {"idle_timeout": "60s"},
        "stream_idle_timeout": "300s",
        "drain_timeout": "5s",
    }
    manager.update(overrides)
    return manager


def tls_socket(minimum: str, alpn: list[str] | None) -> dict[str, Any]:
    common: dict[str, Any] = {
        "tls_params": {"tls_minimum_protocol_version": minimum},
        "tls_certificate_sds_secret_configs": [{"name": SECRET.sds_name, "sds_config": ADS}],
    }
    if alpn:
        common["alpn_protocols"] = alpn
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": (
                "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
            ),
            "common_tls_context": common,
        },
    }


def tcp_proxy(**target: Any) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "ingress_https",
            **target,
            "access_log": STDOUT_LOG,
        },
    }


HTTP_LISTENER = {
    "name": "ingress_http",
    "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
    "filter_chains": [
        {
            "filters": [
                {
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm("ingress_http"),
                }
            ]
        }
    ],
}


def https_listener(*chains: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "ingress_https",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8443}},
        "filter_chains": list(chains),
        "listener_filters": [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {
                    "@type": (
                        "type.googleapis.com/"
                        "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
                    )
                },
            }
        ],
    }


def sni(fqdn: str) -> dict[str, Any]:
    return {"server_names": [fqdn]}


HTTPS_CHAIN = {
    "filter_chain_match": sni("secure.local"),
    "filters": [
        {
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm("ingress_https"),
        }
    ],
    "transport_socket": tls_socket("TLSv1_2", ["h2", "http/1.1"]),
}

LISTENER_ROWS = [
    pytest.param(
        DAG(virtual_hosts=(VirtualHost("kuard.local", ROUTES),)),
        {"ingress_http": HTTP_LISTENER},
        id="http-only",
    ),
    pytest.param(
        DAG(secure_virtual_hosts=(SecureVirtualHost("secure.local", ROUTES, secret=SECRET),)),
        {"ingress_http": HTTP_LISTENER, "ingress_https": https_listener(HTTPS_CHAIN)},
        id="https-sni-chain",
    ),
    pytest.param(
        DAG(
            secure_virtual_hosts=(
                SecureVirtualHost(
                    "secure.local", ROUTES, secret=SECRET, minimum_tls_version=TLSVersion.V1_3
                ),
            )
        ),
        {
            "ingress_http": HTTP_LISTENER,
            "ingress_https": https_listener(
                {**HTTPS_CHAIN, "transport_socket": tls_socket("TLSv1_3", ["h2", "http/1.1"])}
            ),
        },
        id="minimum-tls-version",
    ),
    pytest.param(
        DAG(
            secure_virtual_hosts=(
                SecureVirtualHost("pass.local", tcp_proxy=TCPProxy((WeightedCluster(KUARD),))),
            )
        ),
        {
            "ingress_http": HTTP_LISTENER,
            "ingress_https": https_listener(
                {
                    "filter_chain_match": sni("pass.local"),
                    "filters": [tcp_proxy(cluster=KUARD.name)],
                }
            ),
        },
        id="passthrough",
    ),
    pytest.param(
        DAG(
            secure_virtual_hosts=(
                SecureVirtualHost(
                    "tcp.local",
                    secret=SECRET,
                    tcp_proxy=TCPProxy((WeightedCluster(KUARD, 3), WeightedCluster(NGINX, 1))),
                ),
            )
        ),
        {
            "ingress_http": HTTP_LISTENER,
            "ingress_https": https_listener(
                {
                    "filter_chain_match": sni("tcp.local"),
                    "filters": [
                        tcp_proxy(
                            weighted_clusters={
                                "clusters": [
                                    {"name": KUARD.name, "weight": 3},
                                    {"name": NGINX.name, "weight": 1},
                                ]
                            }
                        )
                    ],
                    "transport_socket": tls_socket("TLSv1_2", None),
                }
            ),
        },
        id="tcp-proxy-terminated-weighted",
    ),
    pytest.param(
        DAG(secure_virtual_hosts=(SecureVirtualHost("nothing.local"),)),
        {"ingress_http": HTTP_LISTENER},
        id="secure-host-serving-nothing-has-no-chain",
    ),
]


@pytest.mark.parametrize(("dag", "expected"), LISTENER_ROWS)
def test_listeners(dag: DAG, expected: dict[str, Any]) -> None:
    assert listeners(dag) == expected


def test_filter_chains_sorted_by_fqdn() -> None:
    hosts = tuple(
        SecureVirtualHost(fqdn, ROUTES, secret=SECRET) for fqdn in ("c.local", "a.local", "b.local")
    )
    https = listeners(DAG(secure_virtual_hosts=hosts))["ingress_https"]
    assert [c["filter_chain_match"]["server_names"] for c in https["filter_chains"]] == [
        ["a.local"],
        ["b.local"],
        ["c.local"],
    ]


def test_options_ports_address_access_log_and_timeouts() -> None:
    options = TranslateOptions(
        http_port=80,
        https_port=443,
        address="::",
        access_log=False,
        timeouts=Timeouts(connection_idle_seconds=None, stream_idle_seconds=10, request_seconds=30),
    )
    dag = DAG(secure_virtual_hosts=(SecureVirtualHost("secure.local", ROUTES, secret=SECRET),))
    result = listeners(dag, options)
    assert result["ingress_http"]["address"] == {
        "socket_address": {"address": "::", "port_value": 80}
    }
    assert result["ingress_https"]["address"]["socket_address"]["port_value"] == 443
    manager = result["ingress_http"]["filter_chains"][0]["filters"][0]["typed_config"]
    assert "access_log" not in manager
    assert "common_http_protocol_options" not in manager
    assert manager["stream_idle_timeout"] == "10s"
    assert manager["request_timeout"] == "30s"


def test_separate_mode_references_xds_cluster() -> None:
    separate = {
        "api_config_source": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}],
        },
        "resource_api_version": "V3",
    }
    dag = DAG(secure_virtual_hosts=(SecureVirtualHost("secure.local", ROUTES, secret=SECRET),))
    result = listeners(dag, TranslateOptions(xds_mode="separate"))
    manager = result["ingress_http"]["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["rds"]["config_source"] == separate
    context = result["ingress_https"]["filter_chains"][0]["transport_socket"]["typed_config"]
    assert context["common_tls_context"]["tls_certificate_sds_secret_configs"][0]["sds_config"] == (
        separate
    )
    delta = listeners(dag, TranslateOptions(xds_mode="delta"))
    assert delta == listeners(dag, TranslateOptions(xds_mode="ads"))


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown xDS mode"):
        TranslateOptions(xds_mode="bogus")  # type: ignore[arg-type]


def test_the_listeners_do_not_depend_on_what_routes_use() -> None:
    """A route that starts using CORS, source ranges, a rate limit or a body limit changes the
    route configuration, never a listener (which Envoy would drain)."""
    armed = Route(
        PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"),
        (WeightedCluster(KUARD),),
        cors=CorsPolicy(),
        source_ranges=SourceRanges(allow=("10.0.0.0/8",)),
        rate_limit=RateLimit(1, 1, 1),
        max_request_bytes=10,
        websocket=True,
    )
    plain = DAG(
        virtual_hosts=(VirtualHost("a.local", ROUTES),),
        secure_virtual_hosts=(SecureVirtualHost("a.local", ROUTES, secret=SECRET),),
    )
    used = DAG(
        virtual_hosts=(VirtualHost("a.local", (armed,)),),
        secure_virtual_hosts=(SecureVirtualHost("a.local", (armed,), secret=SECRET),),
    )
    before, after = translate(plain).encode(), translate(used).encode()
    assert before[LISTENER_TYPE] == after[LISTENER_TYPE]
    assert before[ROUTE_TYPE] != after[ROUTE_TYPE]
