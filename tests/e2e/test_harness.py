"""The test harness itself: a real Envoy from our bootstrap, sample backends, test certificates.

Everything later e2e tests stand on is checked here once: Envoy starts from the rendered bootstrap
and stops cleanly, a broken bootstrap fails fast with Envoy's own message, each xDS mode opens
the gRPC streams the server must serve (with our node id), and a Backend is reachable directly and
through Envoy (plain HTTP, websocket upgrade, upstream TLS verified against the generated CA).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.envoy.bootstrap import XdsMode, render_bootstrap
from controlplane.testing.backends import Backend
from controlplane.testing.certs import make_ca_and_leaf, self_signed, tls_secret, write_cert_key
from controlplane.testing.envoy import (
    EnvoyError,
    EnvoyProcess,
    config_dump_section,
    free_port,
    free_ports,
)

pytestmark = pytest.mark.e2e

_TYPE = "type.googleapis.com/"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


async def test_envoy_starts_from_bootstrap_and_stops(envoy_binary: str) -> None:
    # Nothing listens on the xDS port: Envoy still serves admin, waiting in PRE_INITIALIZING.
    bootstrap = render_bootstrap(xds_address=f"127.0.0.1:{free_port()}", node_id="harness")
    envoy = EnvoyProcess(bootstrap, binary=envoy_binary)
    async with envoy:
        # The bootstrap's admin socket, moved into this Envoy's own directory.
        assert envoy.admin_socket is not None and envoy.admin_socket.is_socket()
        assert envoy.admin_address == f"unix:{envoy.admin_socket}"
        assert envoy.stats_url.startswith("http://127.0.0.1:")
        assert await envoy.state() == "PRE_INITIALIZING"
        status, _ = await envoy.admin_get("/ready")
        assert status == 503
        dump = await envoy.config_dump()
        node = config_dump_section(dump, "BootstrapConfigDump")["bootstrap"]["node"]
        assert node["id"] == "harness"
        stats = await envoy.stats()
        assert stats["cluster.xds_cluster.upstream_cx_connect_fail"] >= 0
        assert (await envoy.text_stats())["listener_manager.lds.version_text"] == ""
        assert envoy.pid is not None
    assert await envoy.stop() is None  # already stopped: a no-op
    assert "caught ENVOY_SIGTERM" in envoy.log_tail()


@pytest.mark.parametrize("admin_address", ["unix:/tmp/envoy-admin.sock", "127.0.0.1:9001"])
async def test_side_by_side_envoys_keep_their_admin_and_stats_apart(
    admin_address: str, envoy_binary: str
) -> None:
    """Two Envoys from one bootstrap: each gets its own admin and stats port, and each stats
    listener forwards to its own admin (socket or TCP alike)."""
    bootstrap = render_bootstrap(admin_address=admin_address)
    del bootstrap["dynamic_resources"]  # nothing to wait for: LIVE at once
    async with (
        EnvoyProcess(bootstrap, binary=envoy_binary, startup_timeout_s=30) as one,
        EnvoyProcess(bootstrap, binary=envoy_binary, startup_timeout_s=30) as two,
        aiohttp.ClientSession() as session,
    ):
        assert len({one.admin_address, two.admin_address, admin_address}) == 3
        tcp = not admin_address.startswith("unix:")
        assert (one.admin_socket is None, two.admin_socket is None) == (tcp, tcp)
        assert one.stats_url != two.stats_url
        for envoy in (one, two):
            await envoy.wait_live()
        await two.admin_post("/healthcheck/fail")  # two's /ready turns 503, one's does not
        for envoy, expected in ((one, 200), (two, 503)):
            async with session.get(f"{envoy.stats_url}/ready") as response:
                assert response.status == expected
            async with session.get(f"{envoy.stats_url}/config_dump") as response:
                assert response.status == 404


async def test_broken_bootstrap_fails_fast_with_envoy_log(envoy_binary: str) -> None:
    bootstrap = render_bootstrap()
    bootstrap["static_resources"]["clusters"][0]["type"] = "NOT_A_TYPE"
    with pytest.raises(EnvoyError, match="NOT_A_TYPE"):
        async with EnvoyProcess(bootstrap, binary=envoy_binary):
            pass


async def test_backend_answers_with_name_path_host_and_headers() -> None:
    async with Backend("kuard") as backend, aiohttp.ClientSession() as session:
        url = f"{backend.url}/some/path?x=1"
        headers = {"Host": "example.com", "x-envoy-original-path": "/app/some/path"}
        async with session.get(url, headers=headers) as response:
            assert response.status == 200
            assert response.headers["x-backend-name"] == "kuard"
            body = await response.json()
    assert body["name"] == "kuard"
    assert body["path"] == "/some/path?x=1"
    assert body["host"] == "example.com"
    assert body["headers"]["x-envoy-original-path"] == "/app/some/path"
    assert body["tls"] is False
    assert [r.path for r in backend.received] == ["/some/path?x=1"]


async def test_backend_echoes_websocket_on_any_path() -> None:
    async with (
        Backend("ws") as backend,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{backend.url}/any/where") as ws,
    ):
        await ws.send_str("hello")
        assert await ws.receive_str() == "hello"
        await ws.send_bytes(b"\x00\x01")
        assert await ws.receive_bytes() == b"\x00\x01"
    assert backend.received[0].websocket


async def test_tls_backend_with_generated_certificate(tmp_path: Path) -> None:
    ca, leaf = make_ca_and_leaf(["backend.test", "127.0.0.1"])
    cert, key = write_cert_key(leaf, tmp_path)
    client_tls = ssl.create_default_context(cadata=ca.cert_pem.decode())
    async with (
        Backend("secure", tls_cert=cert, tls_key=key) as backend,
        aiohttp.ClientSession() as session,
    ):
        assert backend.url.startswith("https://127.0.0.1:")
        async with session.get(f"{backend.url}/", ssl=client_tls) as response:
            body = await response.json()
    assert (body["name"], body["tls"]) == ("secure", True)
    # A self-signed certificate is its own trust root.
    pair = self_signed(["only.test"])
    assert pair.certificate.subject == pair.certificate.issuer
    secret = tls_secret("web-tls", "default", leaf, ca=ca)
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}


def _static_proxy(listener_port: int, plain: Backend, secure: Backend, ca_pem: bytes) -> Any:
    """A bootstrap with no xDS at all: one listener, /tls → TLS backend, the rest → plain."""

    def cluster(name: str, port: int) -> dict[str, Any]:
        address = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
        return {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
            },
        }

    upstream_tls = cluster("secure", secure.port)
    upstream_tls["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": "backend.test",
            "common_tls_context": {
                "validation_context": {
                    "trusted_ca": {"inline_bytes": _b64(ca_pem)},
                    "match_typed_subject_alt_names": [
                        {"san_type": "DNS", "matcher": {"exact": "backend.test"}}
                    ],
                }
            },
        },
    }
    hcm = {
        "@type": _TYPE + _HCM,
        "stat_prefix": "ingress_http",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": _TYPE + "envoy.extensions.filters.http.router.v3.Router"},
            }
        ],
        "route_config": {
            "name": "ingress_http",
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {"match": {"prefix": "/tls"}, "route": {"cluster": "secure"}},
                        {"match": {"prefix": "/"}, "route": {"cluster": "plain"}},
                    ],
                }
            ],
        },
    }
    listener_address = {"socket_address": {"address": "127.0.0.1", "port_value": listener_port}}
    bootstrap = render_bootstrap()
    del bootstrap["dynamic_resources"]
    bootstrap["static_resources"] = {
        "listeners": [
            {
                "name": "ingress_http",
                "address": listener_address,
                "filter_chains": [
                    {
                        "filters": [
                            {
                                "name": "envoy.filters.network.http_connection_manager",
                                "typed_config": hcm,
                            }
                        ]
                    }
                ],
            }
        ],
        "clusters": [cluster("plain", plain.port), upstream_tls],
    }
    return bootstrap


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def test_backends_behind_envoy(envoy_binary: str, tmp_path: Path) -> None:
    ca, leaf = make_ca_and_leaf(["backend.test"])
    cert, key = write_cert_key(leaf, tmp_path)
    (listener_port,) = free_ports(1)
    async with (
        Backend("plain") as plain,
        Backend("secure", tls_cert=cert, tls_key=key) as secure,
    ):
        bootstrap = _static_proxy(listener_port, plain, secure, ca.cert_pem)
        async with (
            EnvoyProcess(bootstrap, binary=envoy_binary) as envoy,
            aiohttp.ClientSession() as session,
        ):
            await envoy.wait_live(timeout_s=10)
            base = f"http://127.0.0.1:{listener_port}"
            async with session.get(f"{base}/app?q=1", headers={"Host": "site.test"}) as response:
                body = await response.json()
            assert (body["name"], body["path"], body["host"]) == ("plain", "/app?q=1", "site.test")
            async with session.get(f"{base}/tls/x") as response:
                body = await response.json()
            assert (body["name"], body["tls"]) == ("secure", True)
            async with session.ws_connect(f"{base}/chat") as ws:
                await ws.send_str("through envoy")
                assert await ws.receive_str() == "through envoy"
            assert plain.received[-1].websocket


class _StreamRecorder:
    """A gRPC generic handler that accepts any streaming method and records the first request."""

    def __init__(self) -> None:
        self.first_requests: dict[str, bytes] = {}
        self.opened = asyncio.Event()
        self.expected: set[str] = set()

    def service(self, details: Any) -> Any:
        method = str(details.method)

        async def hold(requests: Any, context: Any) -> None:
            async for request in requests:
                if method in self.first_requests:
                    continue
                self.first_requests[method] = request
                if self.expected <= self.first_requests.keys():
                    self.opened.set()
                if method.endswith("/StreamClusters"):
                    # Envoy subscribes to LDS only once the first CDS answer has arrived.
                    await context.write(
                        discovery_pb2.DiscoveryResponse(
                            version_info="1", nonce="1", type_url=_CLUSTER_TYPE
                        ).SerializeToString()
                    )

        # No (de)serializers: the handler sees the raw bytes Envoy sent.
        return grpc.stream_stream_rpc_method_handler(hold)


_ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
_CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


@pytest.mark.parametrize(
    ("mode", "methods"),
    [
        ("ads", {_ADS + "StreamAggregatedResources"}),
        ("delta", {_ADS + "DeltaAggregatedResources"}),
        (
            "separate",
            {
                "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners",
                "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters",
            },
        ),
    ],
)
async def test_bootstrap_mode_opens_the_expected_xds_streams(
    envoy_binary: str, mode: XdsMode, methods: set[str]
) -> None:
    recorder = _StreamRecorder()
    recorder.expected = methods
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([recorder])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        bootstrap = render_bootstrap(xds_address=f"127.0.0.1:{port}", mode=mode, node_id="n-1")
        async with EnvoyProcess(bootstrap, binary=envoy_binary):
            await asyncio.wait_for(recorder.opened.wait(), 10)
    finally:
        await server.stop(grace=None)
    assert recorder.first_requests.keys() == methods
    request_type = (
        discovery_pb2.DeltaDiscoveryRequest if mode == "delta" else discovery_pb2.DiscoveryRequest
    )
    for raw in recorder.first_requests.values():
        assert request_type.FromString(raw).node.id == "n-1"
