"""ADS state-of-the-world over a real gRPC stream on 127.0.0.1 (tier 2 of ARCHITECTURE §9)."""

from __future__ import annotations

from typing import Any

import structlog
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from xds_support import ack, assignment, cluster, listener, request, route, snapshot

from controlplane.metrics import XdsMetrics
from controlplane.xds import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SnapshotCache


def names(response: Any, message: Any) -> list[str]:
    return sorted(message.FromString(r.value).name for r in response.resources)


def cluster_names(response: Any) -> list[str]:
    return names(response, cluster_pb2.Cluster)


async def test_nothing_before_publish_then_full_wildcard_sets(
    cache: SnapshotCache, ads: Any
) -> None:
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    await client.send(request(LISTENER_TYPE))
    await client.nothing()
    cache.publish(
        snapshot(
            clusters=[cluster("a", eds=False), cluster("b", eds=False)],
            listeners=[listener("ingress_http")],
        )
    )
    cds = await client.recv()
    assert cds.type_url == CLUSTER_TYPE
    assert cluster_names(cds) == ["a", "b"]
    assert all(r.type_url == CLUSTER_TYPE for r in cds.resources)
    assert cds.version_info == cache.snapshot.version(CLUSTER_TYPE)
    assert cds.control_plane.identifier == "controlplane"
    await client.send(ack(cds))
    lds = await client.recv()
    assert lds.type_url == LISTENER_TYPE
    assert len(lds.resources) == 1
    assert lds.nonce != cds.nonce


async def test_ack_is_not_answered_and_identical_publish_sends_nothing(
    cache: SnapshotCache, ads: Any
) -> None:
    cache.publish(snapshot(clusters=[cluster("a", eds=False)]))
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    cds = await client.recv()
    await client.send(ack(cds))
    await client.nothing()
    cache.publish(snapshot(clusters=[cluster("a", eds=False)]))  # same content, new objects
    await client.nothing()
    cache.publish(snapshot(clusters=[cluster("a", eds=False), cluster("b", eds=False)]))
    assert cluster_names(await client.recv()) == ["a", "b"]


async def test_nack_is_logged_counted_and_not_resent(
    cache: SnapshotCache, ads: Any, metrics: XdsMetrics
) -> None:
    cache.publish(snapshot(clusters=[cluster("a", eds=False)]))
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    cds = await client.recv()
    with structlog.testing.capture_logs() as logs:
        await client.send(ack(cds, error="cluster a: invalid lb policy"))
        await client.nothing()
    nacks = [e for e in logs if e["event"] == "xds.nack"]
    assert len(nacks) == 1
    assert nacks[0]["error"] == "cluster a: invalid lb policy"
    assert nacks[0]["node_id"] == "envoy-1"
    assert nacks[0]["type"] == "cds"
    assert nacks[0]["version"] == cds.version_info
    assert metrics.nacks.labels(type="cds")._value.get() == 1
    record = cache.nacks()[-1]
    assert record.as_dict()["message"] == "cluster a: invalid lb policy"
    assert (record.node_id, record.type_url, record.version) == (
        "envoy-1",
        CLUSTER_TYPE,
        cds.version_info,
    )
    # Publishing the rejected content again sends nothing; new content is sent.
    cache.publish(snapshot(clusters=[cluster("a", eds=False)]))
    await client.nothing()
    cache.publish(snapshot(clusters=[cluster("a", eds=False), cluster("b", eds=False)]))
    fixed = await client.recv()
    assert cluster_names(fixed) == ["a", "b"]
    assert fixed.version_info != cds.version_info


async def test_stale_nonce_is_ignored(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(snapshot(clusters=[cluster("a", eds=False)]))
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    first = await client.recv()
    cache.publish(snapshot(clusters=[cluster("b", eds=False)]))
    second = await client.recv()
    # An ACK (or even a NACK) of the first response arrives late: it must not be answered.
    await client.send(ack(first, error="late"))
    await client.send(ack(first))
    await client.nothing()
    assert cache.nacks() == ()
    await client.send(ack(second))
    await client.nothing()


async def test_unknown_eds_name_gets_an_empty_assignment(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(snapshot(endpoints=[assignment("default/web/http", 80)]))
    client = ads()
    await client.send(request(ENDPOINT_TYPE, ["default/web/http", "default/gone/http"], node=True))
    eds = await client.recv()
    got = {
        cla.cluster_name: cla
        for cla in (endpoint_pb2.ClusterLoadAssignment.FromString(r.value) for r in eds.resources)
    }
    assert sorted(got) == ["default/gone/http", "default/web/http"]
    assert not got["default/gone/http"].endpoints
    assert (
        got["default/web/http"]
        .endpoints[0]
        .lb_endpoints[0]
        .endpoint.address.socket_address.port_value
        == 80
    )


async def test_rds_sends_only_the_requested_names(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(snapshot(routes=[route("ingress_http", "a"), route("ingress_https", "a")]))
    client = ads()
    await client.send(request(ROUTE_TYPE, ["ingress_http", "missing"], node=True))
    rds = await client.recv()
    assert names(rds, route_pb2.RouteConfiguration) == ["ingress_http"]
    await client.send(ack(rds, ["ingress_http", "missing"]))
    # A change to a route config nobody asked for wakes nobody.
    cache.publish(snapshot(routes=[route("ingress_http", "a"), route("ingress_https", "b")]))
    await client.nothing()
    # Once "missing" exists it is sent.
    cache.publish(
        snapshot(routes=[route("ingress_http", "a"), route("ingress_https", "b"), route("missing")])
    )
    assert names(await client.recv(), route_pb2.RouteConfiguration) == ["missing"]


async def test_push_order_after_a_change_touching_every_type(
    cache: SnapshotCache, ads: Any
) -> None:
    cache.publish(
        snapshot(
            clusters=[cluster("c1")],
            endpoints=[assignment("c1", 80)],
            listeners=[listener("ingress_http")],
            routes=[route("ingress_http", "c1")],
        )
    )
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    await client.send(ack(await client.recv()))
    await client.send(request(ENDPOINT_TYPE, ["c1"]))
    await client.send(ack(await client.recv(), ["c1"]))
    await client.send(request(LISTENER_TYPE))
    await client.send(ack(await client.recv()))
    await client.send(request(ROUTE_TYPE, ["ingress_http"]))
    await client.send(ack(await client.recv(), ["ingress_http"]))
    await client.nothing()

    cache.publish(
        snapshot(
            clusters=[cluster("c1"), cluster("c2", eds=False)],
            endpoints=[assignment("c1", 81)],
            listeners=[listener("ingress_http", 8081)],
            routes=[route("ingress_http", "c2")],
        )
    )
    seen = []
    for _ in range(4):
        response = await client.recv()
        seen.append(response.type_url)
        await client.send(
            ack(
                response,
                ["c1"]
                if response.type_url == ENDPOINT_TYPE
                else ["ingress_http"]
                if response.type_url == ROUTE_TYPE
                else [],
            )
        )
    assert seen == [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]
    await client.nothing()


async def test_changed_cluster_resends_its_assignment(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(snapshot(clusters=[cluster("c1")], endpoints=[assignment("c1", 80)]))
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    await client.send(ack(await client.recv()))
    await client.send(request(ENDPOINT_TYPE, ["c1"]))
    eds = await client.recv()
    await client.send(ack(eds, ["c1"]))
    changed = cluster_pb2.Cluster.FromString(cluster("c1").body)
    changed.connect_timeout.seconds = 3
    from controlplane.xds import Resource

    cache.publish(
        snapshot(
            clusters=[Resource.encode(CLUSTER_TYPE, "c1", changed, eds_name="c1")],
            endpoints=[assignment("c1", 80)],
        )
    )
    cds = await client.recv()
    assert cds.type_url == CLUSTER_TYPE
    again = await client.recv()
    assert again.type_url == ENDPOINT_TYPE
    assert [r.value for r in again.resources] == [r.value for r in eds.resources]
    await client.send(ack(cds))
    await client.send(ack(again, ["c1"]))
    await client.nothing()


async def test_eds_fast_path_wakes_only_subscribed_streams(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(
        snapshot(endpoints=[assignment("a", 80), assignment("b", 80), assignment("c", 80)])
    )
    ab, c = ads(), ads()
    await ab.send(request(ENDPOINT_TYPE, ["a", "b"], node=True))
    await c.send(request(ENDPOINT_TYPE, ["c"], node=True))
    await ab.send(ack(await ab.recv(), ["a", "b"]))
    await c.send(ack(await c.recv(), ["c"]))
    cache.update(ENDPOINT_TYPE, {"c": assignment("c", 81)})
    response = await c.recv()
    assert [
        endpoint_pb2.ClusterLoadAssignment.FromString(r.value).cluster_name
        for r in response.resources
    ] == ["c"]
    await ab.nothing()
    # Only the changed assignment travels, not the whole subscription.
    cache.update(ENDPOINT_TYPE, {"a": assignment("a", 82)})
    response = await ab.recv()
    assert len(response.resources) == 1
    await c.nothing()


async def test_node_is_taken_from_the_first_request(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(snapshot(clusters=[cluster("a", eds=False)]))
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    cds = await client.recv()
    with structlog.testing.capture_logs() as logs:
        await client.send(ack(cds, error="boom"))  # no node on this request
        await client.nothing()
    assert [e["node_id"] for e in logs if e["event"] == "xds.nack"] == ["envoy-1"]


class Verdicts:
    """A verdict listener that asks for the ACKs of one type."""

    def __init__(self, ack_types: frozenset[str]) -> None:
        self.ack_types = ack_types
        self.nacks: list[Any] = []
        self.acks: list[tuple[str, str, dict[str, str]]] = []

    def nacked(self, record: Any) -> None:
        self.nacks.append(record)

    def acked(self, node_id: str, type_url: str, resources: Any) -> None:
        self.acks.append((node_id, type_url, dict(resources)))


async def test_verdicts_name_what_the_response_carried_and_what_was_accepted(
    cache: SnapshotCache, ads: Any
) -> None:
    verdicts = Verdicts(frozenset({ROUTE_TYPE}))
    cache.listen(verdicts)
    first = snapshot(routes=[route("ingress_http", "a"), route("ingress_https", "a")])
    cache.publish(first)
    client = ads()
    await client.send(request(ROUTE_TYPE, ["ingress_http", "ingress_https"], node=True))
    rds = await client.recv()
    await client.send(ack(rds, ["ingress_http", "ingress_https"]))
    await client.nothing()
    assert verdicts.acks == [("envoy-1", ROUTE_TYPE, dict(first.versions(ROUTE_TYPE)))]

    second = snapshot(routes=[route("ingress_http", "b"), route("ingress_https", "a")])
    cache.publish(second)
    changed = await client.recv()
    assert names(changed, route_pb2.RouteConfiguration) == ["ingress_http"]
    await client.send(ack(changed, ["ingress_http", "ingress_https"], error="missing ): ("))
    await client.nothing()
    (record,) = verdicts.nacks
    assert record is cache.nacks()[-1]
    # Only what this response carried (a diff), and what this Envoy held before it.
    assert dict(record.resources) == {"ingress_http": second.versions(ROUTE_TYPE)["ingress_http"]}
    assert dict(record.accepted) == dict(first.versions(ROUTE_TYPE))
    assert record.as_dict()["resources"] == ["ingress_http"]
    assert len(verdicts.acks) == 1  # a NACK is no ACK

    # ACKs of types the listener did not ask for are not reported (the EDS hot path).
    cache.publish(
        snapshot(clusters=[cluster("a", eds=False)], routes=second.resources(ROUTE_TYPE).values())
    )
    await client.send(request(CLUSTER_TYPE))
    cds = await client.recv()
    await client.send(ack(cds))
    await client.nothing()
    assert len(verdicts.acks) == 1
