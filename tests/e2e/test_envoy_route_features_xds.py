"""Issue 10's translation over xDS (ADS) to a real Envoy: what a static bootstrap cannot show.

The publisher streams DAG values (no Kubernetes objects) through the xDS server:

- an aggregate cluster whose primary is an EDS cluster with an empty ClusterLoadAssignment goes
  to its fallback; once the primary's Service gets an endpoint (a new EDS answer only), it goes
  to the primary: the aggregate itself never subscribes to EDS;
- the first route that arms the HTTP filters (CORS, source ranges, rate limit, body limit)
  changes the route configuration only: Envoy never modifies (drains) the listener, and the new
  route works at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest

from controlplane.dag.types import (
    DAG,
    Cluster,
    CorsPolicy,
    PathMatch,
    PathMatchKind,
    RateLimit,
    Route,
    SourceRanges,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import TranslateOptions
from controlplane.envoy.bootstrap import render_bootstrap
from controlplane.model import EndpointSlice, ObjectSet
from controlplane.publisher import Publisher
from controlplane.testing.backends import NAME_HEADER, Backend
from controlplane.testing.envoy import EnvoyProcess, free_port
from controlplane.xds import ServerSettings, SnapshotCache, XdsServer

pytestmark = pytest.mark.e2e

HOST = "xds.local"
PRIMARY = Cluster("default", "primary", 80)
FALLBACK = Cluster("default", "fallback", 80)
WITH_FALLBACK = replace(PRIMARY, fallback=FALLBACK)


def _routes(*extra: Route) -> DAG:
    routes = (
        *extra,
        Route(PathMatch(PathMatchKind.PREFIX, "/"), (WeightedCluster(WITH_FALLBACK),)),
    )
    return DAG(virtual_hosts=(VirtualHost(HOST, routes),))


ARMED = Route(
    PathMatch(PathMatchKind.PREFIX, "/armed"),
    (WeightedCluster(FALLBACK),),
    cors=CorsPolicy(),
    source_ranges=SourceRanges(allow=("127.0.0.0/8",)),
    rate_limit=RateLimit(requests=100, period_seconds=1, burst=100),
    max_request_bytes=10,
)


def _objects(ports: dict[str, int]) -> ObjectSet:
    slices = {
        ("default", name): (
            EndpointSlice.model_validate(
                {
                    "metadata": {
                        "name": name,
                        "namespace": "default",
                        "labels": {"kubernetes.io/service-name": name},
                    },
                    "endpoints": [{"addresses": ["127.0.0.1"]}],
                    "ports": [{"port": port}],
                }
            ),
        )
        for name, port in ports.items()
    }
    return ObjectSet(endpoint_slices=slices)


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(250):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def test_aggregate_fallback_and_no_listener_drain_over_xds(envoy_binary: str) -> None:
    cache = SnapshotCache()
    server = XdsServer(cache, ServerSettings(write_timeout_s=5.0))
    xds_port = await server.start("127.0.0.1:0")
    http_port = free_port()
    publisher = Publisher(TranslateOptions(http_port=http_port, address="127.0.0.1"), cache)
    bootstrap = render_bootstrap(xds_address=f"127.0.0.1:{xds_port}", node_id="features")
    try:
        async with (
            Backend("primary") as primary,
            Backend("fallback") as fallback,
            EnvoyProcess(bootstrap, binary=envoy_binary) as envoy,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        ):

            async def lands(path: str, backend: str) -> bool:
                url = f"http://127.0.0.1:{http_port}{path}"
                async with session.get(url, headers={"Host": HOST}) as response:
                    await response.read()
                    return response.headers.get(NAME_HEADER) == backend

            publisher.publish(_routes(), _objects({"fallback": fallback.port}))
            await envoy.wait_live(timeout_s=10)
            await _eventually(lambda: lands("/", "fallback"), "the fallback serves")
            stats = await envoy.stats()
            listeners = (
                stats["listener_manager.listener_added"],
                stats["listener_manager.listener_modified"],
            )

            both = {"fallback": fallback.port, "primary": primary.port}
            publisher.publish(_routes(ARMED), _objects(both))
            await _eventually(lambda: lands("/", "primary"), "the primary serves again")
            preflight = {"Origin": "https://a.test", "Access-Control-Request-Method": "PUT"}

            async def preflight_answered() -> bool:
                url = f"http://127.0.0.1:{http_port}/armed"
                headers = {"Host": HOST, **preflight}
                async with session.options(url, headers=headers) as response:
                    return (
                        response.headers.get("access-control-allow-origin") == "https://a.test"
                        and NAME_HEADER not in response.headers
                    )

            await _eventually(preflight_answered, "the new route answers CORS preflights")
            url = f"http://127.0.0.1:{http_port}/armed"
            async with session.post(url, data=b"x" * 11, headers={"Host": HOST}) as response:
                assert response.status == 413
            assert await lands("/armed", "fallback")
            stats = await envoy.stats()
            assert (
                stats["listener_manager.listener_added"],
                stats["listener_manager.listener_modified"],
            ) == listeners, "arming the filters for a route must not touch the listener"
    finally:
        await server.stop()
