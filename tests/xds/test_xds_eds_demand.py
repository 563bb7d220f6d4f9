"""EDS beyond the referenced clusters, over real gRPC streams (tier 2).

- Wildcard EDS (`*`, or a first request naming nothing; SotW and delta): every published
  assignment, then only what changes (the fast path stays O(changed)).
- Named EDS for a Service port no route references: the publisher, the cache's resolver,
  publishes its real assignment before the stream is answered, keeps it current on the EDS
  fast path and on builds while someone holds it, and drops it once nobody does.
"""

from __future__ import annotations

from typing import Any

from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from kube_manifests import service
from waiting import eventually
from xds_support import NODE, ack, assignment, request, snapshot

from controlplane.dag import build
from controlplane.envoy import TranslateOptions
from controlplane.model import EndpointSlice, ObjectSet, parse_object
from controlplane.publisher import Publisher
from controlplane.xds import ENDPOINT_TYPE, SnapshotCache, XdsServer
from controlplane.xds.client import fetch_config

JSON = dict[str, Any]


def cla_ports(response: Any) -> dict[str, list[int]]:
    """EDS name → the endpoint ports of each assignment a (SotW or delta) response carries."""
    found: dict[str, list[int]] = {}
    for resource in response.resources:
        value = resource.resource.value if hasattr(resource, "resource") else resource.value
        cla = endpoint_pb2.ClusterLoadAssignment.FromString(value)
        found[cla.cluster_name] = [
            lb.endpoint.address.socket_address.port_value
            for group in cla.endpoints
            for lb in group.lb_endpoints
        ]
    return found


# --- wildcard --------------------------------------------------------------------------------


async def test_a_wildcard_eds_request_gets_every_assignment_then_only_changes(
    cache: SnapshotCache, ads: Any
) -> None:
    cache.publish(snapshot(endpoints=[assignment("a", 80), assignment("b", 81)]))
    client = ads()
    await client.send(request(ENDPOINT_TYPE, ["*"], node=True))
    first = await client.recv()
    assert cla_ports(first) == {"a": [80], "b": [81]}
    await client.send(ack(first, ["*"]))
    await client.nothing()
    cache.update(ENDPOINT_TYPE, {"b": assignment("b", 82)})
    assert cla_ports(await client.recv()) == {"b": [82]}
    assert cache.watchers(ENDPOINT_TYPE, "c") == 1  # a wildcard watcher hears of every name


async def test_a_first_eds_request_naming_nothing_is_a_legacy_wildcard(
    cache: SnapshotCache, ads: Any
) -> None:
    cache.publish(snapshot(endpoints=[assignment("a", 80), assignment("b", 81)]))
    client = ads()
    await client.send(request(ENDPOINT_TYPE, node=True))
    first = await client.recv()
    assert cla_ports(first) == {"a": [80], "b": [81]}
    await client.send(ack(first))  # the ACK names nothing either: still the wildcard
    await client.nothing()
    cache.update(ENDPOINT_TYPE, {"c": assignment("c", 83)})
    assert cla_ports(await client.recv()) == {"c": [83]}


async def test_naming_resources_leaves_the_wildcard(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(snapshot(endpoints=[assignment("a", 80), assignment("b", 81)]))
    client = ads()
    await client.send(request(ENDPOINT_TYPE, ["*"], node=True))
    first = await client.recv()
    await client.send(ack(first, ["a"]))
    again = await client.recv()  # a new named subscription is answered, as always
    assert cla_ports(again) == {"a": [80]}
    await client.send(ack(again, ["a"]))
    cache.update(ENDPOINT_TYPE, {"b": assignment("b", 82)})
    await client.nothing()
    cache.update(ENDPOINT_TYPE, {"a": assignment("a", 84)})
    assert cla_ports(await client.recv()) == {"a": [84]}


async def test_a_wildcard_over_an_empty_table_is_answered(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(snapshot())
    client = ads()
    await client.send(request(ENDPOINT_TYPE, ["*"], node=True))
    assert cla_ports(await client.recv()) == {}


async def test_delta_wildcard_eds(cache: SnapshotCache, ads: Any) -> None:
    cache.publish(snapshot(endpoints=[assignment("a", 80), assignment("b", 81)]))
    client = ads("DeltaAggregatedResources")
    await client.send(
        discovery_pb2.DeltaDiscoveryRequest(
            type_url=ENDPOINT_TYPE, resource_names_subscribe=["*"], node=NODE
        )
    )
    first = await client.recv()
    assert cla_ports(first) == {"a": [80], "b": [81]}
    await client.send(
        discovery_pb2.DeltaDiscoveryRequest(type_url=ENDPOINT_TYPE, response_nonce=first.nonce)
    )
    await client.nothing()
    cache.update(ENDPOINT_TYPE, {"a": assignment("a", 85)})
    assert cla_ports(await client.recv()) == {"a": [85]}


# --- Services no route references -----------------------------------------------------------

ROUTED = {
    "apiVersion": "contour.heptio.com/v1beta1",
    "kind": "IngressRoute",
    "metadata": {"name": "www", "namespace": "default"},
    "spec": {
        "virtualhost": {"fqdn": "www.example.com"},
        "routes": [{"match": "/", "services": [{"name": "web", "port": 80}]}],
    },
}


def endpoint_slice(service_name: str, *addresses: str, port: int = 8080) -> JSON:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-abc",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": [address]} for address in addresses],
    }


def objects(*manifests: JSON) -> ObjectSet:
    return ObjectSet.from_objects(parse_object(raw) for raw in manifests)


WORLD = (
    service("web"),
    endpoint_slice("web", "10.0.0.1"),
    service("other"),
    endpoint_slice("other", "10.0.0.2", port=9090),
    ROUTED,
)


def publish(publisher: Publisher, world: ObjectSet) -> None:
    publisher.publish(build(world), world)


async def test_a_service_no_route_references_is_answered_with_its_endpoints(
    cache: SnapshotCache, ads: Any
) -> None:
    publisher = Publisher(TranslateOptions(), cache)
    world = objects(*WORLD)
    publish(publisher, world)
    assert set(cache.snapshot.resources(ENDPOINT_TYPE)) == {"default/web/http"}
    client = ads()
    names = ["default/other/http", "default/nothing/http"]
    await client.send(request(ENDPOINT_TYPE, names, node=True))
    first = await client.recv()
    # The real endpoints of the unreferenced Service; an empty assignment for no Service.
    assert cla_ports(first) == {"default/other/http": [9090], "default/nothing/http": []}
    await client.send(ack(first, names))
    await client.nothing()

    # The EDS fast path keeps it current, like a referenced one.
    moved = EndpointSlice.model_validate(endpoint_slice("other", "10.0.0.3", port=9191))
    assert publisher.publish_endpoints(("default", "other"), [moved], None) == 1
    assert cla_ports(await client.recv()) == {"default/other/http": [9191]}

    # A build keeps what a stream holds (from the newer objects), and takes in a Service that
    # appeared meanwhile.
    world = objects(
        *WORLD[:3],
        endpoint_slice("other", "10.0.0.3", port=9191),
        ROUTED,
        service("nothing"),
        endpoint_slice("nothing", "10.0.0.4", port=7070),
    )
    publish(publisher, world)
    assert cla_ports(await client.recv()) == {"default/nothing/http": [7070]}
    assert set(cache.snapshot.resources(ENDPOINT_TYPE)) == set(names) | {"default/web/http"}

    # Nobody holds them any more: the next build drops them.
    client.close()
    await eventually(lambda: not client.server.sessions, within=5.0, message="stream closed")
    publish(publisher, world)
    assert set(cache.snapshot.resources(ENDPOINT_TYPE)) == {"default/web/http"}


async def test_a_name_asked_before_the_first_build_is_resolved_by_it(
    cache: SnapshotCache, ads: Any
) -> None:
    publisher = Publisher(TranslateOptions(), cache)
    client = ads()
    await client.send(request(ENDPOINT_TYPE, ["default/other/http"], node=True))
    await eventually(lambda: bool(cache.held(ENDPOINT_TYPE)), within=5.0, message="subscribed")
    publish(publisher, objects(*WORLD))
    assert cla_ports(await client.recv()) == {"default/other/http": [9090]}


async def test_controlplane_xds_asks_for_unreferenced_and_wildcard_eds(
    cache: SnapshotCache, server: XdsServer
) -> None:
    publisher = Publisher(TranslateOptions(), cache)
    world = objects(*WORLD)
    publish(publisher, world)
    address = f"127.0.0.1:{server.port}"
    named = await fetch_config(address, eds=["default/other/http"], timeout_s=5.0)
    assert {cla["cluster_name"]: _ports(cla) for cla in named["eds"]} == {
        "default/other/http": [9090],
        "default/web/http": [8080],
    }
    await eventually(lambda: not server.sessions, within=5.0, message="stream closed")
    publish(publisher, world)  # nobody holds default/other/http any more
    everything = await fetch_config(address, eds=["*"], timeout_s=5.0)
    assert [cla["cluster_name"] for cla in everything["eds"]] == ["default/web/http"]


def _ports(cla: JSON) -> list[int]:
    return [
        lb["endpoint"]["address"]["socket_address"]["port_value"]
        for group in cla.get("endpoints", ())
        for lb in group["lb_endpoints"]
    ]


async def test_a_name_resolved_between_builds_gets_the_newest_endpoints(
    cache: SnapshotCache, ads: Any
) -> None:
    """The fast path saw the unreferenced Service's endpoints change after the last build: the
    name resolved afterwards is served those, not the build's."""
    publisher = Publisher(TranslateOptions(), cache)
    publish(publisher, objects(*WORLD))
    moved = EndpointSlice.model_validate(endpoint_slice("other", "10.0.0.3", port=9191))
    assert publisher.publish_endpoints(("default", "other"), [moved], None) == 0  # nobody asks
    client = ads()
    await client.send(request(ENDPOINT_TYPE, ["default/other/http"], node=True))
    assert cla_ports(await client.recv()) == {"default/other/http": [9191]}
