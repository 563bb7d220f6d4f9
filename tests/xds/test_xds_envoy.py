"""A real Envoy against the xDS server in each mode (ADS, delta ADS, per-type services).

Checks what unit tests cannot: Envoy accepts our hand-assembled responses (no NACK), warms EDS
clusters, goes LIVE and routes a request; then a switch to a new cluster (make-before-break on
ADS) keeps serving and finally leaves only the new cluster active. With per-type services
("separate", Contour's way) each type has its own stream, so no order across types holds and
the switch may briefly answer 503; only the end state is checked there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format
from xds_support import assignment, route

from controlplane.envoy.bootstrap import XdsMode, render_bootstrap, resource_config_source
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyProcess, active_cluster_names, free_port
from controlplane.xds import (
    CLUSTER_TYPE,
    LISTENER_TYPE,
    Resource,
    ServerSettings,
    Snapshot,
    SnapshotCache,
    XdsServer,
)

pytestmark = pytest.mark.e2e


def config_source(mode: XdsMode) -> Any:
    return json_format.ParseDict(resource_config_source(mode), config_source_pb2.ConfigSource())


def eds_cluster(name: str, mode: XdsMode) -> Resource:
    msg = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    msg.connect_timeout.FromMilliseconds(250)
    msg.eds_cluster_config.service_name = name
    msg.eds_cluster_config.eds_config.CopyFrom(config_source(mode))
    return Resource.encode(CLUSTER_TYPE, name, msg, eds_name=name)


def http_listener(port: int, mode: XdsMode) -> Resource:
    manager = hcm_pb2.HttpConnectionManager(stat_prefix="ingress_http")
    manager.rds.route_config_name = "ingress_http"
    manager.rds.config_source.CopyFrom(config_source(mode))
    router = manager.http_filters.add(name="envoy.filters.http.router")
    router.typed_config.Pack(router_pb2.Router())
    msg = listener_pb2.Listener(
        name="ingress_http",
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
        ),
    )
    chain = msg.filter_chains.add()
    hcm = chain.filters.add(name="envoy.filters.network.http_connection_manager")
    hcm.typed_config.Pack(manager)
    return Resource.encode(LISTENER_TYPE, "ingress_http", msg)


def config(cluster: str, backend_port: int, listener_port: int, mode: XdsMode) -> Snapshot:
    return Snapshot.build(
        {
            CLUSTER_TYPE: [eds_cluster(cluster, mode)],
            assignment(cluster).type_url: [_endpoint(cluster, backend_port)],
            LISTENER_TYPE: [http_listener(listener_port, mode)],
            route("ingress_http").type_url: [route("ingress_http", cluster)],
        }
    )


def _endpoint(name: str, port: int) -> Resource:
    from envoy.config.endpoint.v3 import endpoint_pb2

    resource = assignment(name, port)
    cla = endpoint_pb2.ClusterLoadAssignment.FromString(resource.body)
    cla.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address = "127.0.0.1"
    return Resource.encode(resource.type_url, name, cla)


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


@pytest.mark.parametrize("mode", ["ads", "delta", "separate"])
async def test_envoy_follows_the_snapshots(envoy_binary: str, mode: XdsMode) -> None:
    cache = SnapshotCache()
    server = XdsServer(cache, ServerSettings(write_timeout_s=5.0))
    port = await server.start("127.0.0.1:0")
    listener_port = free_port()
    bootstrap = render_bootstrap(xds_address=f"127.0.0.1:{port}", mode=mode, node_id="e2e")
    try:
        async with (
            Backend("one") as one,
            EnvoyProcess(bootstrap, binary=envoy_binary) as envoy,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        ):
            # Envoy connects before there is anything to serve (its stream waits for a snapshot).
            for _ in range(1000):
                if cache.metrics.streams._value.get() > 0:
                    break
                await asyncio.sleep(0.01)
            assert cache.metrics.streams._value.get() > 0
            cache.publish(config("default/one/80", one.port, listener_port, mode))
            await envoy.wait_live(timeout_s=10)
            url = f"http://127.0.0.1:{listener_port}/"
            status, body = await get(session, url)
            assert status == 200 and '"one"' in body

            cache.publish(config("default/two/80", one.port, listener_port, mode))
            for _ in range(200):
                dump = await envoy.config_dump()
                if active_cluster_names(dump) == ["default/two/80"]:
                    break
                if mode != "separate":  # per-type streams have no cross-type order
                    assert (await get(session, url))[0] == 200  # no gap while switching
                await asyncio.sleep(0.02)
            assert active_cluster_names(await envoy.config_dump()) == ["default/two/80"]
            assert (await get(session, url))[0] == 200
            assert cache.nacks() == ()
    finally:
        await server.stop(grace=0)
