"""DAG clusters → Envoy clusters, and TLS secrets → SDS secrets: one row per feature."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from controlplane.dag.types import (
    DAG,
    CircuitBreakers,
    Cluster,
    HealthCheck,
    LoadBalancerPolicy,
    PathMatch,
    PathMatchKind,
    Route,
    TLSSecret,
    UpstreamProtocol,
    UpstreamValidation,
    VirtualHost,
    WeightedCluster,
)
from controlplane.dag.upstreams import ClustersAndSecrets
from controlplane.envoy import IncrementalTranslator, translate
from controlplane.envoy.clusters import cluster
from controlplane.envoy.jsonview import message_json
from controlplane.envoy.options import CommonMessages, TranslateOptions
from controlplane.envoy.secrets import secret
from controlplane.typeurls import CLUSTER_TYPE

SHARED = CommonMessages.of(TranslateOptions())
ADS = {"ads": {}, "resource_api_version": "V3"}
HTTP2 = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"


def as_json(value: Cluster) -> dict[str, Any]:
    message = cluster(value, SHARED)
    return message_json(message)


def eds(value: Cluster, **extra: Any) -> dict[str, Any]:
    """The JSON of a plain EDS cluster for `value`, plus `extra` fields."""
    return {
        "name": value.name,
        "alt_stat_name": f"{value.namespace}_{value.service}_{value.port}",
        "type": "EDS",
        "eds_cluster_config": {"eds_config": ADS, "service_name": value.eds_name},
        "connect_timeout": "2s",
        **extra,
    }


def tls(common: dict[str, Any] | None = None, sni: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"@type": UPSTREAM_TLS, "common_tls_context": common or {}}
    if sni:
        context["sni"] = sni
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


PLAIN = Cluster("default", "kuard", 80, port_name="http")
LEAST = Cluster("default", "kuard", 80, load_balancer=LoadBalancerPolicy.WEIGHTED_LEAST_REQUEST)
RANDOM = Cluster("default", "kuard", 80, load_balancer=LoadBalancerPolicy.RANDOM)
COOKIE = Cluster("default", "kuard", 80, load_balancer=LoadBalancerPolicy.COOKIE)
CHECKED = Cluster("default", "kuard", 80, health_check=HealthCheck("/healthz", interval_seconds=7))
BREAKERS = Cluster(
    "default", "kuard", 80, circuit_breakers=CircuitBreakers(max_connections=5, max_retries=2)
)
H2C = Cluster("default", "grpc", 9000, protocol=UpstreamProtocol.H2C)
H2 = Cluster("default", "grpc", 9443, protocol=UpstreamProtocol.H2)
TLS = Cluster("default", "secure", 443, protocol=UpstreamProtocol.TLS)
VALIDATED = Cluster(
    "default",
    "secure",
    443,
    protocol=UpstreamProtocol.TLS,
    validation=UpstreamValidation(CA, "backend.local"),
)
EXTERNAL = Cluster(
    "default", "ext", 443, protocol=UpstreamProtocol.TLS, external_name="example.com"
)

SLOW_TO_CONNECT = Cluster("default", "kuard", 80, connect_timeout_seconds=7.5)
FALLBACK = Cluster("default", "default-backend", 8080, port_name="http")
WITH_FALLBACK = Cluster("default", "kuard", 80, port_name="http", fallback=FALLBACK)
AGGREGATE = {
    "name": WITH_FALLBACK.name,
    "connect_timeout": "2s",
    "lb_policy": "CLUSTER_PROVIDED",
    "cluster_type": {
        "name": "envoy.clusters.aggregate",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
            "clusters": [PLAIN.name, FALLBACK.name],
        },
    },
}

CLUSTER_ROWS = [
    pytest.param(PLAIN, eds(PLAIN), id="round-robin-default"),
    pytest.param(LEAST, eds(LEAST, lb_policy="LEAST_REQUEST"), id="least-request"),
    pytest.param(RANDOM, eds(RANDOM, lb_policy="RANDOM"), id="random"),
    pytest.param(COOKIE, eds(COOKIE, lb_policy="RING_HASH"), id="cookie-ring-hash"),
    pytest.param(
        CHECKED,
        eds(
            CHECKED,
            health_checks=[
                {
                    "timeout": "2s",
                    "interval": "7s",
                    "unhealthy_threshold": 3,
                    "healthy_threshold": 2,
                    "http_health_check": {
                        "host": "contour-envoy-healthcheck",
                        "path": "/healthz",
                    },
                }
            ],
            ignore_health_on_host_removal=True,  # as Contour: a removed endpoint goes at once
        ),
        id="health-check",
    ),
    pytest.param(
        BREAKERS,
        eds(BREAKERS, circuit_breakers={"thresholds": [{"max_connections": 5, "max_retries": 2}]}),
        id="circuit-breakers",
    ),
    pytest.param(H2C, eds(H2C, typed_extension_protocol_options=HTTP2), id="h2c"),
    pytest.param(
        H2,
        eds(
            H2,
            typed_extension_protocol_options=HTTP2,
            transport_socket=tls({"alpn_protocols": ["h2"]}),
        ),
        id="h2-tls",
    ),
    pytest.param(TLS, eds(TLS, transport_socket=tls()), id="tls"),
    pytest.param(
        VALIDATED,
        eds(
            VALIDATED,
            transport_socket=tls(
                {
                    "validation_context": {
                        "trusted_ca": {"inline_bytes": base64.b64encode(CA).decode()},
                        "match_typed_subject_alt_names": [
                            {"san_type": "DNS", "matcher": {"exact": "backend.local"}}
                        ],
                    }
                }
            ),
        ),
        id="validation",
    ),
    pytest.param(
        EXTERNAL,
        {
            "name": EXTERNAL.name,
            "alt_stat_name": "default_ext_443",
            "type": "STRICT_DNS",
            "dns_lookup_family": "V4_PREFERRED",
            "connect_timeout": "2s",
            "load_assignment": {
                "cluster_name": EXTERNAL.name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": {
                                        "socket_address": {
                                            "address": "example.com",
                                            "port_value": 443,
                                        }
                                    }
                                }
                            }
                        ]
                    }
                ],
            },
            "transport_socket": tls(sni="example.com"),
        },
        id="external-name",
    ),
    pytest.param(
        SLOW_TO_CONNECT, eds(SLOW_TO_CONNECT, connect_timeout="7.500s"), id="connect-timeout"
    ),
    pytest.param(WITH_FALLBACK, AGGREGATE, id="aggregate-of-primary-and-fallback"),
]


@pytest.mark.parametrize(("value", "expected"), CLUSTER_ROWS)
def test_cluster(value: Cluster, expected: dict[str, Any]) -> None:
    assert as_json(value) == expected


def test_clusters_sorted_by_name() -> None:
    values = [RANDOM, PLAIN, H2C, EXTERNAL]
    hosts = tuple(
        VirtualHost(f"h{i}", (Route(PathMatch(PathMatchKind.PREFIX, "/"), (WeightedCluster(v),)),))
        for i, v in enumerate(values)
    )
    config = translate(DAG(virtual_hosts=hosts))
    assert list(config.clusters) == sorted(v.name for v in values)


def test_separate_mode_eds_source() -> None:
    shared = CommonMessages.of(TranslateOptions(xds_mode="separate"))
    message = cluster(PLAIN, shared)
    source = message.eds_cluster_config.eds_config
    assert source.api_config_source.grpc_services[0].envoy_grpc.cluster_name == "xds_cluster"


def test_secret() -> None:
    value = TLSSecret("default", "tls", b"CERT", b"KEY")
    other = TLSSecret("default", "another", b"CERT2", b"KEY2")
    result = {v.sds_name: secret(v) for v in (value, other)}
    assert message_json(result[value.sds_name]) == {
        "name": value.sds_name,
        "tls_certificate": {
            "certificate_chain": {"inline_bytes": base64.b64encode(b"CERT").decode()},
            "private_key": {"inline_bytes": base64.b64encode(b"KEY").decode()},
        },
    }


def test_a_fallback_brings_its_primary_and_fallback_clusters() -> None:
    """The aggregate is named by the DAG cluster (routes point at it); its members are ordinary
    EDS clusters of their own. The aggregate has no EDS name: only the members subscribe."""
    route = Route(PathMatch(PathMatchKind.PREFIX, "/"), (WeightedCluster(WITH_FALLBACK),))
    host = VirtualHost("a.local", (route,))
    dag = DAG(virtual_hosts=(host,))
    members = sorted([WITH_FALLBACK.name, PLAIN.name, FALLBACK.name])
    assert [c.name for c in dag.clusters()] == members
    # The incremental builder's bookkeeping agrees with the plain walk.
    upstreams = ClustersAndSecrets()
    upstreams.plain_changed("a.local", host)
    assert upstreams.clusters() == dag.clusters()
    upstreams.plain_changed("a.local", None)
    assert upstreams.clusters() == ()
    config = translate(dag)
    assert list(config.clusters) == members
    assert message_json(config.clusters[WITH_FALLBACK.name]) == AGGREGATE
    assert message_json(config.clusters[PLAIN.name]) == eds(PLAIN)
    assert message_json(config.clusters[FALLBACK.name]) == eds(FALLBACK)
    topology = IncrementalTranslator().eds_topology(dag)
    assert topology.by_cluster == {
        PLAIN.name: "default/kuard/http",
        FALLBACK.name: "default/default-backend/http",
    }
    assert list(topology.by_eds_name) == ["default/default-backend/http", "default/kuard/http"]


def test_a_fallback_with_a_fallback_is_refused() -> None:
    nested = replace(WITH_FALLBACK, fallback=replace(FALLBACK, fallback=PLAIN))
    with pytest.raises(ValueError, match="has a fallback itself"):
        cluster(nested, SHARED)


def test_connect_timeout_zero_is_refused() -> None:
    route = Route(
        PathMatch(PathMatchKind.PREFIX, "/"),
        (WeightedCluster(replace(PLAIN, connect_timeout_seconds=0)),),
    )
    translator = IncrementalTranslator()
    encoded = translator.translate(DAG(virtual_hosts=(VirtualHost("a.local", (route,)),)))
    assert encoded[CLUSTER_TYPE] == {}
    assert [r.describe() for r in translator.rejections()] == [
        "Envoy would reject connect_timeout: value must be greater than 0s"
    ]
