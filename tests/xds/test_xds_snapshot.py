"""Snapshot, Resource and response assembly: encode once, version by content (tier 1)."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2
from xds_support import assignment, cluster, listener, route

from controlplane.protowire import varint
from controlplane.xds import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    Resource,
    Snapshot,
)
from controlplane.xds.responses import delta_response, sotw_response
from controlplane.xds.snapshot import empty_load_assignment, set_hash


def test_resource_is_encoded_deterministically_and_versioned_by_content() -> None:
    a, b = cluster("x"), cluster("x")
    assert a.body == b.body and a.version == b.version
    assert len(a.version) == 16
    assert cluster("y").version != a.version
    assert cluster_pb2.Cluster.FromString(a.body).name == "x"
    assert Resource.from_body(CLUSTER_TYPE, "x", a.body, eds_name="x") == a


def test_any_field_is_a_resources_element() -> None:
    r = route("ingress_http", "c")
    parsed = discovery_pb2.DiscoveryResponse.FromString(r.any_field)
    assert list(parsed.resources) == [any_pb2.Any(type_url=ROUTE_TYPE, value=r.body)]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_383, 16_384, 2**32, 2**63])
def test_varint(value: int) -> None:
    from google.protobuf.internal import encoder

    expected = bytearray()
    encoder._VarintEncoder()(expected.extend, value, False)  # type: ignore[attr-defined]
    assert varint(value) == bytes(expected)


def test_assembled_response_equals_a_normally_built_message() -> None:
    big = route("ingress_http", *(f"ns/svc-{i}/80/abc" for i in range(2000)))  # > 16 KiB
    resources = [listener("ingress_http"), listener("ingress_https", 8443)]
    payload = sotw_response(
        version_info="v7",
        resources=[r.any_field for r in resources],
        type_url=LISTENER_TYPE,
        nonce="12",
        control_plane="cp-1",
    )
    expected = discovery_pb2.DiscoveryResponse(
        version_info="v7",
        resources=[any_pb2.Any(type_url=LISTENER_TYPE, value=r.body) for r in resources],
        type_url=LISTENER_TYPE,
        nonce="12",
    )
    expected.control_plane.identifier = "cp-1"
    assert discovery_pb2.DiscoveryResponse.FromString(payload) == expected

    payload = sotw_response(
        version_info="", resources=[big.any_field], type_url=ROUTE_TYPE, nonce="1"
    )
    parsed = discovery_pb2.DiscoveryResponse.FromString(payload)
    assert parsed.resources[0].value == big.body and not parsed.HasField("control_plane")


def test_assembled_delta_response_equals_a_normally_built_message() -> None:
    resources = [assignment("a", 80), empty_load_assignment("b")]
    payload = delta_response(
        system_version_info="v1",
        resources=resources,
        removed=["gone", "never"],
        type_url=ENDPOINT_TYPE,
        nonce="3",
    )
    expected = discovery_pb2.DeltaDiscoveryResponse(
        system_version_info="v1",
        resources=[
            discovery_pb2.Resource(
                name=r.name,
                version=r.version,
                resource=any_pb2.Any(type_url=ENDPOINT_TYPE, value=r.body),
            )
            for r in resources
        ],
        removed_resources=["gone", "never"],
        type_url=ENDPOINT_TYPE,
        nonce="3",
    )
    assert discovery_pb2.DeltaDiscoveryResponse.FromString(payload) == expected


def test_snapshot_versions_are_stable_and_order_independent() -> None:
    one = Snapshot.build({CLUSTER_TYPE: [cluster("a"), cluster("b")]})
    two = Snapshot.build({CLUSTER_TYPE: {"b": cluster("b"), "a": cluster("a")}})
    assert one.version(CLUSTER_TYPE) == two.version(CLUSTER_TYPE)
    assert one.version(CLUSTER_TYPE) == set_hash(
        (r.name, r.version) for r in (cluster("a"), cluster("b"))
    )
    assert one.version(ROUTE_TYPE) == Snapshot.build({}).version(ROUTE_TYPE)
    assert Snapshot.build({CLUSTER_TYPE: [cluster("a")]}).version(CLUSTER_TYPE) != one.version(
        CLUSTER_TYPE
    )
    assert one.resources(LISTENER_TYPE) == {}


def test_with_changes_is_copy_on_write_and_matches_a_full_build() -> None:
    base = Snapshot.build(
        {CLUSTER_TYPE: [cluster("c")], ENDPOINT_TYPE: [assignment("a", 80), assignment("b", 80)]}
    )
    changed = base.with_changes(
        ENDPOINT_TYPE, {"a": assignment("a", 81), "b": None, "n": assignment("n", 1)}
    )
    rebuilt = Snapshot.build(
        {CLUSTER_TYPE: [cluster("c")], ENDPOINT_TYPE: [assignment("a", 81), assignment("n", 1)]}
    )
    assert changed.version(ENDPOINT_TYPE) == rebuilt.version(ENDPOINT_TYPE)
    assert sorted(changed.resources(ENDPOINT_TYPE)) == ["a", "n"]
    assert sorted(base.resources(ENDPOINT_TYPE)) == ["a", "b"]  # untouched
    assert changed.resources(CLUSTER_TYPE) is base.resources(CLUSTER_TYPE)  # shared, not rehashed
    assert changed.changed_names(base, ENDPOINT_TYPE) == {"a", "b", "n"}
    assert changed.changed_names(base, CLUSTER_TYPE) == frozenset()


def test_snapshot_rejects_misfiled_and_duplicate_resources() -> None:
    with pytest.raises(ValueError, match="filed under"):
        Snapshot.build({ROUTE_TYPE: [cluster("a")]})
    with pytest.raises(ValueError, match="duplicate"):
        Snapshot.build({CLUSTER_TYPE: [cluster("a"), cluster("a")]})
    with pytest.raises(ValueError, match="stored under"):
        Snapshot.build({}).with_changes(CLUSTER_TYPE, {"b": cluster("a")})


def test_eds_names_of_clusters() -> None:
    snap = Snapshot.build(
        {
            CLUSTER_TYPE: [
                cluster("ns/web/80/h", service="ns/web/http"),
                cluster("static", eds=False),
            ]
        }
    )
    assert dict(snap.eds_names()) == {"ns/web/80/h": "ns/web/http"}
    assert snap.eds_wanted() == {"ns/web/http"}


def test_build_from_encoded_bodies() -> None:
    a = cluster("a", eds=False)
    snap = Snapshot.build({CLUSTER_TYPE: {"a": a.body}})
    assert snap.resources(CLUSTER_TYPE)["a"] == a
    assert snap.version(CLUSTER_TYPE) == Snapshot.build({CLUSTER_TYPE: [a]}).version(CLUSTER_TYPE)
