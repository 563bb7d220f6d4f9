"""Phase-2 protocol surface over real gRPC on 127.0.0.1: per-type SotW services, delta ADS,
make-before-break on one ADS stream, stuck clients and connection age (tier 2)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
import structlog
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.cluster.v3 import cds_pb2_grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.endpoint.v3 import eds_pb2_grpc
from envoy.service.listener.v3 import lds_pb2_grpc
from envoy.service.route.v3 import rds_pb2_grpc
from envoy.service.secret.v3 import sds_pb2_grpc
from xds_support import NODE, Client, ack, assignment, cluster, listener, request, route, snapshot

from controlplane.metrics import XdsMetrics
from controlplane.xds import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SECRET_TYPE,
    Resource,
    ServerSettings,
    Snapshot,
    SnapshotCache,
    XdsServer,
)

SECRET = Resource.encode(SECRET_TYPE, "default/tls", secret_pb2.Secret(name="default/tls"))
FULL = Snapshot.build(
    {
        CLUSTER_TYPE: [cluster("c1", eds=False)],
        ENDPOINT_TYPE: [assignment("c1", 80)],
        LISTENER_TYPE: [listener("ingress_http")],
        ROUTE_TYPE: [route("ingress_http", "c1")],
        SECRET_TYPE: [SECRET],
    }
)


@pytest.mark.parametrize(
    ("stub", "method", "type_url", "names"),
    [
        (lds_pb2_grpc.ListenerDiscoveryServiceStub, "StreamListeners", LISTENER_TYPE, []),
        (rds_pb2_grpc.RouteDiscoveryServiceStub, "StreamRoutes", ROUTE_TYPE, ["ingress_http"]),
        (cds_pb2_grpc.ClusterDiscoveryServiceStub, "StreamClusters", CLUSTER_TYPE, []),
        (eds_pb2_grpc.EndpointDiscoveryServiceStub, "StreamEndpoints", ENDPOINT_TYPE, ["c1"]),
        (sds_pb2_grpc.SecretDiscoveryServiceStub, "StreamSecrets", SECRET_TYPE, ["default/tls"]),
    ],
)
async def test_per_type_sotw_services(
    cache: SnapshotCache,
    server: XdsServer,
    channel: Any,
    stub: Any,
    method: str,
    type_url: str,
    names: list[str],
) -> None:
    cache.publish(FULL)
    client = Client(getattr(stub(channel), method), server)
    try:
        # Per-type services may leave type_url empty: the service implies it.
        await client.send(discovery_pb2.DiscoveryRequest(node=NODE, resource_names=names))
        response = await client.recv()
        assert response.type_url == type_url
        assert [r.type_url for r in response.resources] == [type_url]
        await client.send(ack(response, names))
        # A per-type stream serves its own type only.
        await client.send(request(CLUSTER_TYPE if type_url != CLUSTER_TYPE else LISTENER_TYPE))
        await client.nothing()
    finally:
        client.close()


def delta_request(type_url: str, subscribe: list[str] | None = None, **kw: Any) -> Any:
    return discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url, resource_names_subscribe=subscribe or [], **kw
    )


async def test_delta_ads_reconnect_resends_only_what_changed(
    cache: SnapshotCache, ads: Any
) -> None:
    cache.publish(FULL)
    client = ads("DeltaAggregatedResources")
    await client.send(delta_request(CLUSTER_TYPE, node=NODE))
    first = await client.recv()
    assert [r.name for r in first.resources] == ["c1"]
    assert first.resources[0].version == FULL.resources(CLUSTER_TYPE)["c1"].version
    assert cluster_pb2.Cluster.FromString(first.resources[0].resource.value).name == "c1"
    await client.send(delta_request(CLUSTER_TYPE, response_nonce=first.nonce))
    await client.send(delta_request(ROUTE_TYPE, ["ingress_http", "nope"]))
    rds = await client.recv()
    assert [r.name for r in rds.resources] == ["ingress_http"]
    assert list(rds.removed_resources) == ["nope"]
    client.close()

    # The Envoy reconnects; meanwhile c2 appeared and c1 is unchanged.
    new = FULL.with_changes(CLUSTER_TYPE, {"c2": cluster("c2", eds=False)})
    cache.publish(new)
    again = ads("DeltaAggregatedResources")
    have = {"c1": first.resources[0].version, "old": "123"}
    await again.send(delta_request(CLUSTER_TYPE, node=NODE, initial_resource_versions=have))
    response = await again.recv()
    assert [r.name for r in response.resources] == ["c2"]
    assert list(response.removed_resources) == ["old"]
    await again.send(delta_request(CLUSTER_TYPE, response_nonce=response.nonce))
    await again.nothing()


async def test_delta_nack_is_recorded_and_not_resent(
    cache: SnapshotCache, ads: Any, metrics: XdsMetrics
) -> None:
    cache.publish(FULL)
    client = ads("DeltaAggregatedResources")
    await client.send(delta_request(LISTENER_TYPE, node=NODE))
    response = await client.recv()
    nack = delta_request(LISTENER_TYPE, response_nonce=response.nonce)
    nack.error_detail.message = "listener ingress_http: bad filter"
    with structlog.testing.capture_logs() as logs:
        await client.send(nack)
        await client.nothing()
    assert [e["error"] for e in logs if e["event"] == "xds.nack"] == [
        "listener ingress_http: bad filter"
    ]
    assert metrics.nacks.labels(type="lds")._value.get() == 1
    # In delta too the record names what the rejected response carried, with its versions.
    record = cache.nacks()[-1]
    assert dict(record.resources) == {r.name: r.version for r in response.resources}
    assert dict(record.accepted) == {}
    cache.publish(FULL)
    await client.nothing()


async def test_make_before_break_on_an_ads_stream(cache: SnapshotCache, ads: Any) -> None:
    g0 = snapshot(
        clusters=[cluster("A")],
        endpoints=[assignment("A", 80)],
        listeners=[listener("ingress_http")],
        routes=[route("ingress_http", "A")],
    )
    g1 = snapshot(
        clusters=[cluster("B")],
        endpoints=[assignment("B", 81)],
        listeners=[listener("ingress_http")],
        routes=[route("ingress_http", "B")],
    )
    cache.publish(g0)
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    await client.send(request(LISTENER_TYPE))
    cds = await client.recv()
    assert cds.type_url == CLUSTER_TYPE
    await client.nothing()  # no listeners before the clusters are accepted and warm
    await client.send(ack(cds))
    await client.send(request(ENDPOINT_TYPE, ["A"]))
    eds = await client.recv()
    await client.send(ack(eds, ["A"]))
    lds = await client.recv()
    assert lds.type_url == LISTENER_TYPE
    await client.send(request(ROUTE_TYPE, ["ingress_http"]))
    await client.send(ack(lds))
    rds = await client.recv()
    await client.send(ack(rds, ["ingress_http"]))
    await client.nothing()

    cache.publish(g1)
    cds = await client.recv()
    got = sorted(cluster_pb2.Cluster.FromString(r.value).name for r in cds.resources)
    assert got == ["A", "B"]
    await client.nothing()
    await client.send(request(ENDPOINT_TYPE, ["A", "B"], nonce=eds.nonce))
    await client.send(ack(cds))
    eds = await client.recv()
    assert eds.type_url == ENDPOINT_TYPE
    await client.send(ack(eds, ["A", "B"]))
    rds = await client.recv()
    assert rds.type_url == ROUTE_TYPE
    config = route_pb2.RouteConfiguration.FromString(rds.resources[0].value)
    assert config.virtual_hosts[0].routes[0].route.cluster == "B"
    await client.send(ack(rds, ["ingress_http"]))
    cds = await client.recv()
    assert [cluster_pb2.Cluster.FromString(r.value).name for r in cds.resources] == ["B"]


async def test_a_client_that_stops_reading_is_disconnected(cache: SnapshotCache) -> None:
    settings = ServerSettings(
        write_timeout_s=0.3, max_connection_age_ms=1000, max_connection_age_grace_ms=200
    )
    server = XdsServer(cache, settings)
    port = await server.start("127.0.0.1:0")
    # A tiny receive window on the client so a few large responses fill it.
    options = [("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0)]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options)
    try:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        with structlog.testing.capture_logs() as logs:
            await call.write(request(ROUTE_TYPE, ["big"], node=True))
            for i in range(40):
                big = route("big", *(f"ns/svc-{i}-{j}/80/abcdef0123" for j in range(20_000)))
                cache.publish(Snapshot.build({ROUTE_TYPE: [big]}))
                await asyncio.sleep(0.05)
                if any(e["event"] == "xds.stream.write_timeout" for e in logs):
                    break
            assert any(e["event"] == "xds.stream.write_timeout" for e in logs)
        assert cache.metrics.streams._value.get() == 0  # given up at once
        # The connection closes at its maximum age (1 s, then 0.2 s of grace): reading yields
        # what was buffered, then the end of the call instead of waiting forever.
        with pytest.raises(grpc.aio.AioRpcError) as error:
            while await asyncio.wait_for(call.read(), 2) is not grpc.aio.EOF:
                pass
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()
        await server.stop(grace=0)


async def test_max_connection_age_closes_streams(cache: SnapshotCache) -> None:
    settings = ServerSettings(max_connection_age_ms=200, max_connection_age_grace_ms=100)
    server = XdsServer(cache, settings)
    port = await server.start("127.0.0.1:0")
    cache.publish(FULL)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
            await call.write(request(CLUSTER_TYPE, node=True))
            assert (await call.read()).type_url == CLUSTER_TYPE
            code = await asyncio.wait_for(call.code(), 3)
            assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(grace=0)


async def test_settings_become_grpc_options() -> None:
    options = dict(ServerSettings(max_connection_age_ms=1000).grpc_options())
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
    assert options["grpc.max_connection_age_ms"] == 1000
    no_age = ServerSettings(max_connection_age_ms=None).grpc_options()
    assert "grpc.max_connection_age_ms" not in dict(no_age)


async def test_streams_gauge_and_pushes_counter(
    cache: SnapshotCache, ads: Any, metrics: XdsMetrics
) -> None:
    cache.publish(FULL)
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    await client.recv()
    assert metrics.streams._value.get() == 1
    assert metrics.pushes.labels(type="cds")._value.get() == 1
    client.close()
    for _ in range(50):
        if metrics.streams._value.get() == 0:
            break
        await asyncio.sleep(0.01)
    assert metrics.streams._value.get() == 0
