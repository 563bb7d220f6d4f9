"""Claims of the route translation checked against a real Envoy (static bootstrap, no xDS).

- prefix rewrite by `regex_rewrite`: the upstream sees the rewritten path with the query string
  kept, never `//`, and Envoy itself adds `x-envoy-original-path`;
- websockets: neither the route timeout nor the connection idle timeout cuts a silent websocket;
  the HCM stream idle timeout would, which is why websocket routes carry their own idle timeout.

Timeouts are scaled down (fractions of a second) so the test runs in about two seconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiohttp
import pytest

from controlplane.dag.types import (
    DAG,
    Cluster,
    PathMatch,
    PathMatchKind,
    Route,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import (
    Timeouts,
    TranslateOptions,
    cluster_load_assignment,
    static_bootstrap,
    translate,
)
from controlplane.model import EndpointSlice
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyProcess, free_port

pytestmark = pytest.mark.e2e

KUARD = Cluster("default", "kuard", 80)
SILENCE_S = 1.2


def _dag() -> DAG:
    backend = (WeightedCluster(KUARD),)
    routes = (
        Route(PathMatch(PathMatchKind.PREFIX, "/ws"), backend, websocket=True, timeout_seconds=0.3),
        Route(PathMatch(PathMatchKind.PREFIX, "/api/"), backend, prefix_rewrite="/v1/"),
        Route(PathMatch(PathMatchKind.SEGMENT_PREFIX, "/app"), backend, prefix_rewrite="/"),
        Route(PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"), backend),
    )
    return DAG(virtual_hosts=(VirtualHost("kuard.local", routes),))


def _bootstrap(
    backend_port: int, http_port: int, websocket_idle: float | None
) -> dict[str, object]:
    timeouts = Timeouts(
        connection_idle_seconds=0.3, stream_idle_seconds=0.3, websocket_idle_seconds=websocket_idle
    )
    options = TranslateOptions(http_port=http_port, address="127.0.0.1", timeouts=timeouts)
    endpoint_slice = EndpointSlice.model_validate(
        {
            "metadata": {"name": "kuard", "namespace": "default"},
            "endpoints": [{"addresses": ["127.0.0.1"]}],
            "ports": [{"port": backend_port}],
        }
    )
    assignment = cluster_load_assignment(KUARD.eds_name, "", [endpoint_slice], None).message
    config = replace(translate(_dag(), options), endpoints={KUARD.eds_name: assignment})
    return static_bootstrap(config)


async def _silent_websocket_survives(session: aiohttp.ClientSession, port: int) -> bool:
    url = f"http://127.0.0.1:{port}/ws"
    async with session.ws_connect(url, headers={"Host": "kuard.local"}) as websocket:
        await websocket.send_str("hello")
        assert (await websocket.receive(timeout=2)).data == "hello"
        await asyncio.sleep(SILENCE_S)
        try:
            await websocket.send_str("again")
            message = await websocket.receive(timeout=2)
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            return False
        return message.type == aiohttp.WSMsgType.TEXT and message.data == "again"


async def test_rewrite_and_websocket_timeouts_in_envoy(envoy_binary: str) -> None:
    async with Backend("kuard") as backend:
        port, cut_port = free_port(), free_port()
        async with (
            EnvoyProcess(_bootstrap(backend.port, port, 10.0), binary=envoy_binary) as envoy,
            EnvoyProcess(_bootstrap(backend.port, cut_port, None), binary=envoy_binary) as cut,
            aiohttp.ClientSession() as session,
        ):
            await envoy.wait_live()
            await cut.wait_live()
            expected = {
                "/app": "/",
                "/app/": "/",
                "/app/x?q=1": "/x?q=1",
                "/api/users?z=2": "/v1/users?z=2",
            }
            for path, upstream_path in expected.items():
                url = f"http://127.0.0.1:{port}{path}"
                # A port in Host still matches the virtual host (strip_any_host_port).
                async with session.get(url, headers={"Host": f"kuard.local:{port}"}) as response:
                    body = await response.json()
                assert (body["path"], body["headers"]["x-envoy-original-path"]) == (
                    upstream_path,
                    path,
                )
            survived, was_cut = await asyncio.gather(
                _silent_websocket_survives(session, port),
                _silent_websocket_survives(session, cut_port),
            )
            assert survived, "websocket route idle timeout should override stream idle timeout"
            assert not was_cut, "without it, the HCM stream idle timeout cuts a silent websocket"
