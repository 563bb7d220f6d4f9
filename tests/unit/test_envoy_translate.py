"""The whole translation: determinism, JSON view, incremental equivalence, Envoy's own verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from envoy.config.route.v3 import route_pb2

from controlplane.dag.types import (
    DAG,
    HTTPS_REDIRECT,
    INFINITE,
    CircuitBreakers,
    Cluster,
    CorsPolicy,
    HeaderMatch,
    HealthCheck,
    LoadBalancerPolicy,
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
    TLSVersion,
    UpstreamProtocol,
    UpstreamValidation,
    VirtualHost,
    WeightedCluster,
    host_order,
)
from controlplane.envoy import (
    IncrementalTranslator,
    TranslateOptions,
    static_bootstrap,
    to_json,
    translate,
)
from controlplane.envoy.bootstrap import XdsMode, render_bootstrap
from controlplane.envoy.options import CommonMessages, type_url
from controlplane.envoy.routes import https_hosts, virtual_host
from controlplane.model import EndpointSlice, ObjectSet
from controlplane.testing.certs import make_ca_and_leaf, self_signed
from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    MESSAGE_TYPES,
    ROUTE_TYPE,
    SECRET_TYPE,
)

PAIR = self_signed(["secure.local", "tcp.local"])
CA, _LEAF = make_ca_and_leaf(["backend.local"])
SECRET = TLSSecret("default", "tls", PAIR.cert_pem, PAIR.key_pem)

KUARD = Cluster("default", "kuard", 80, port_name="http")
STICKY = Cluster(
    "default",
    "kuard",
    80,
    port_name="http",
    load_balancer=LoadBalancerPolicy.COOKIE,
    health_check=HealthCheck("/healthz"),
    circuit_breakers=CircuitBreakers(max_connections=10, max_pending_requests=5),
)
GRPC = Cluster(
    "default",
    "grpc",
    9000,
    protocol=UpstreamProtocol.H2C,
    load_balancer=LoadBalancerPolicy.WEIGHTED_LEAST_REQUEST,
)
SECURE = Cluster(
    "default",
    "secure",
    443,
    protocol=UpstreamProtocol.TLS,
    load_balancer=LoadBalancerPolicy.RANDOM,
    validation=UpstreamValidation(CA.cert_pem, "backend.local"),
)
EXTERNAL = Cluster("default", "ext", 443, protocol=UpstreamProtocol.H2, external_name="example.com")


def _routes() -> tuple[Route, ...]:
    return (
        Route(PathMatch(PathMatchKind.EXACT, "/exact"), (WeightedCluster(KUARD),)),
        Route(
            PathMatch(PathMatchKind.SEGMENT_PREFIX, "/app"),
            (WeightedCluster(KUARD),),
            prefix_rewrite="/",
            timeout_seconds=INFINITE,
            retry=RetryPolicy(per_try_timeout_seconds=1.5),
        ),
        Route(
            PathMatch(PathMatchKind.PREFIX, "/api/"),
            (WeightedCluster(KUARD),),
            prefix_rewrite="/v1/",
            timeout_seconds=30,
        ),
        Route(
            PathMatch(PathMatchKind.PREFIX, "/ws"),
            (WeightedCluster(STICKY, 0), WeightedCluster(GRPC, 3)),
            websocket=True,
        ),
        Route(
            PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"),
            (WeightedCluster(SECURE, 0), WeightedCluster(EXTERNAL, 0)),
        ),
    )


FALLBACK = Cluster("default", "default-backend", 80, connect_timeout_seconds=0.5)
WITH_FALLBACK = replace(GRPC, fallback=FALLBACK)


def _nginx_routes() -> tuple[Route, ...]:
    """The ingress-nginx vocabulary (issue 10), every field at least once."""
    to = (WeightedCluster(KUARD),)
    sticky = (WeightedCluster(STICKY),)
    return (
        Route(
            PathMatch(PathMatchKind.REGEX, "(?i)/something(/|$)(.*).*"),
            to,
            regex_rewrite=RegexRewrite("(?i)/something(/|$)(.*)", r"/\2"),
            host_rewrite="upstream.local",
            idle_timeout_seconds=600,
        ),
        Route(
            PathMatch(PathMatchKind.SEGMENT_PREFIX, "/canary"),
            (WeightedCluster(WITH_FALLBACK),),
            headers=(
                HeaderMatch("x-canary", exact="always"),
                HeaderMatch("cookie", regex=r"(.*;\s*)?canary=always(;.*)?"),
            ),
        ),
        Route(
            PathMatch(PathMatchKind.EXACT, "/moved"),
            redirect=Redirect(code=308, scheme="https", host="a.local", port=8443, path="/new"),
        ),
        Route(PathMatch(PathMatchKind.EXACT, "/found"), redirect=Redirect(code=302, scheme="http")),
        Route(
            PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"),
            sticky,
            websocket=True,
            cors=CorsPolicy(allow_origins=("*", "https://*.example.com", "https://a.example")),
            source_ranges=SourceRanges(
                allow=("10.0.0.0/8", "2001:db8::/32"), deny=("10.1.0.0/16",)
            ),
            rate_limit=RateLimit(requests=10, period_seconds=60, burst=50),
            max_request_bytes=1 << 20,
            session_cookie=SessionCookie("route", 3600, "/"),
        ),
    )


def everything() -> DAG:
    """A DAG exercising every feature the translator knows."""
    routes = _routes()
    redirect = Route(
        PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"),
        (WeightedCluster(KUARD),),
        redirect=HTTPS_REDIRECT,
    )
    return DAG(
        virtual_hosts=(
            VirtualHost("*", routes),
            VirtualHost("kuard.local", routes),
            VirtualHost("secure.local", (redirect,)),
            VirtualHost("nginx.local", _nginx_routes()),
        ),
        secure_virtual_hosts=(
            SecureVirtualHost(
                "secure.local", routes, secret=SECRET, minimum_tls_version=TLSVersion.V1_3
            ),
            SecureVirtualHost("pass.local", tcp_proxy=TCPProxy((WeightedCluster(KUARD),))),
            SecureVirtualHost(
                "tcp.local",
                secret=SECRET,
                tcp_proxy=TCPProxy((WeightedCluster(KUARD, 1), WeightedCluster(SECURE, 2))),
            ),
        ),
    )


def objects() -> ObjectSet:
    endpoint_slice = EndpointSlice.model_validate(
        {
            "metadata": {
                "name": "kuard-abc",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kuard"},
            },
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
            "ports": [{"name": "http", "port": 8080}],
        }
    )
    return ObjectSet(endpoint_slices={("default", "kuard"): (endpoint_slice,)})


def test_names_per_type() -> None:
    config = translate(everything())
    assert list(config.listeners) == ["ingress_http", "ingress_https"]
    assert list(config.routes) == ["ingress_http", "ingress_https"]
    clusters = (KUARD, STICKY, GRPC, SECURE, EXTERNAL, WITH_FALLBACK, FALLBACK)
    assert list(config.clusters) == sorted(c.name for c in clusters)
    assert list(config.secrets) == [SECRET.sds_name]
    https = config.listeners["ingress_https"]
    assert [list(c.filter_chain_match.server_names) for c in https.filter_chains] == [
        ["pass.local"],
        ["secure.local"],
        ["tcp.local"],
    ]


def test_every_feature_passes_the_backstop() -> None:
    """Nothing of `everything()` is left out, so Envoy's verdicts below cover every feature."""
    translator = IncrementalTranslator()
    translator.translate(everything(), objects())
    assert translator.rejections() == ()
    hosts = translate(everything()).routes["ingress_http"].virtual_hosts
    assert [len(h.routes) for h in hosts if h.name == "nginx.local"] == [len(_nginx_routes())]


@pytest.mark.parametrize("mode", ["ads", "separate"])
def test_deterministic_bytes(mode: XdsMode) -> None:
    options = TranslateOptions(xds_mode=mode)
    first = translate(everything(), options).encode()
    second = translate(everything(), options).encode()
    assert first == second
    assert list(first) == [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, SECRET_TYPE]


def test_to_json_shape() -> None:
    dag, objs = everything(), objects()
    result = to_json(translate(dag, objects=objs))
    assert list(result) == ["listeners", "routes", "clusters", "endpoints", "secrets"]
    assert [r["name"] for r in result["listeners"]] == ["ingress_http", "ingress_https"]
    assert [r["cluster_name"] for r in result["endpoints"]] == [
        "default/default-backend",
        "default/grpc",
        "default/kuard/http",
        "default/secure",
    ]
    http = result["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert http["strip_any_host_port"] is True  # snake_case, as config_dump prints it
    json.dumps(result)  # JSON-able all the way down


def test_every_type_url_names_its_message() -> None:
    assert {url: type_url(message) for url, message in MESSAGE_TYPES.items()} == {
        url: url for url in MESSAGE_TYPES
    }


def _spliced_route_configurations(dag: DAG) -> dict[str, route_pb2.RouteConfiguration]:
    """The route configurations built as messages, host by host, without any splicing."""
    shared = CommonMessages.of(TranslateOptions())
    return {
        name: route_pb2.RouteConfiguration(
            name=name,
            virtual_hosts=[
                virtual_host(host, shared)
                for host in sorted(hosts, key=lambda h: host_order(h.fqdn))
            ],
        )
        for name, hosts in (
            ("ingress_http", dag.virtual_hosts),
            ("ingress_https", https_hosts(dag.secure_virtual_hosts)),
        )
    }


def test_warm_translation_matches_a_cold_one_byte_for_byte() -> None:
    dag, objs = everything(), objects()
    translator = IncrementalTranslator()
    for current in (dag, dag, _changed(dag), DAG(), dag):
        warm = translator.translate(current, objs)
        cold = IncrementalTranslator().translate(current, objs)
        assert {t: list(by_name) for t, by_name in warm.items()} == {
            t: list(by_name) for t, by_name in cold.items()
        }
        assert warm == cold
        # The spliced bytes parse as the message built whole, and re-encode to the same bytes.
        for name, expected in _spliced_route_configurations(current).items():
            parsed = route_pb2.RouteConfiguration.FromString(warm[ROUTE_TYPE][name])
            assert parsed == expected
            assert expected.SerializeToString(deterministic=True) == warm[ROUTE_TYPE][name]
        decoded = translate(current, objects=objs).encode()
        assert decoded == {t: by_name for t, by_name in warm.items() if by_name or t in decoded}


def _changed(dag: DAG) -> DAG:
    hosts = list(dag.virtual_hosts)
    hosts[1] = replace(hosts[1], routes=hosts[1].routes[:2])
    secure = list(dag.secure_virtual_hosts)
    secure[0] = replace(secure[0], minimum_tls_version=TLSVersion.V1_2)
    return DAG(virtual_hosts=tuple(hosts), secure_virtual_hosts=tuple(secure[:2]))


def test_incremental_reuses_endpoint_encodings_of_unchanged_services() -> None:
    dag, objs = everything(), objects()
    translator = IncrementalTranslator()
    first = translator.translate(dag, objs)[ENDPOINT_TYPE]
    second = translator.translate(dag, objs)[ENDPOINT_TYPE]
    assert all(second[name] is first[name] for name in first)
    emptied = ObjectSet()
    third = translator.translate(dag, emptied)[ENDPOINT_TYPE]
    assert third["default/kuard/http"] != first["default/kuard/http"]


def _envoy_validate(envoy_binary: str, bootstrap: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(bootstrap))
    completed = subprocess.run(
        [envoy_binary, "--mode", "validate", "--config-path", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


def test_envoy_validates_static_bootstrap(envoy_binary: str, tmp_path: Path) -> None:
    dag, objs = everything(), objects()
    bootstrap = static_bootstrap(translate(dag, objects=objs), admin_port=0)
    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    assert clusters[KUARD.name]["type"] == "STATIC"
    assert "eds_cluster_config" not in clusters[KUARD.name]
    _envoy_validate(envoy_binary, bootstrap, tmp_path)


@pytest.mark.parametrize("mode", ["ads", "separate"])
def test_envoy_validates_dynamic_references(
    mode: XdsMode, envoy_binary: str, tmp_path: Path
) -> None:
    """The xDS-referencing resources (RDS, EDS, SDS sources) next to the matching bootstrap."""
    result = to_json(translate(everything(), TranslateOptions(xds_mode=mode)))
    bootstrap = render_bootstrap(mode=mode)
    bootstrap["static_resources"]["listeners"] = result["listeners"]
    bootstrap["static_resources"]["clusters"] += result["clusters"]
    _envoy_validate(envoy_binary, bootstrap, tmp_path)


_PRINT_WITH_THE_DEBUG_CLIENTS_TYPES = """
import json, sys
from google.protobuf import json_format
from controlplane.typeurls import MESSAGE_TYPES
from controlplane.xds import client
client._load_extensions()
for type_url, bodies in json.load(sys.stdin).items():
    for body in bodies:
        message = MESSAGE_TYPES[type_url].FromString(bytes.fromhex(body))
        json_format.MessageToDict(message)  # fails on an Any of an unknown type
"""


def test_the_debug_client_knows_every_type_the_translator_packs() -> None:
    """`controlplane xds` prints resources in a process that never imports the translator: every
    typed config the translator packs into an `Any` must be among its extension modules."""
    encoded = IncrementalTranslator().translate(everything(), objects())
    payload = {url: [body.hex() for body in bodies.values()] for url, bodies in encoded.items()}
    completed = subprocess.run(
        [sys.executable, "-c", _PRINT_WITH_THE_DEBUG_CLIENTS_TYPES],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_the_fast_host_order_is_host_order() -> None:
    """The translator sorts hosts by fqdn with a C-level key and moves `*` last: the same order
    as `host_order` for every name the DAG lets through (`[a-z0-9.-]`, an optional `*.`)."""
    from controlplane.envoy.incremental import _in_host_order

    names = ["b.com", "*", "*.a.com", "a.com", "a-b.com", "0.com", "*.b.com", "a.b.com", "z"]
    hosts = [VirtualHost(name) for name in names]
    assert [h.fqdn for h in _in_host_order(hosts)] == sorted(names, key=host_order)
    assert _in_host_order([]) == []
