"""EndpointSlices / Endpoints → ClusterLoadAssignments (the EDS fast path)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.dag.types import (
    DAG,
    Cluster,
    LoadBalancerPolicy,
    PathMatch,
    PathMatchKind,
    Route,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy.endpoints import cluster_load_assignment, load_assignments
from controlplane.model import Endpoints, EndpointSlice, ObjectSet


def endpoint_slice(
    name: str, endpoints: list[tuple[str, bool | None]], ports: list[tuple[str | None, int]]
) -> EndpointSlice:
    raw: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kuard"},
        },
        "endpoints": [
            {"addresses": [address], "conditions": {} if ready is None else {"ready": ready}}
            for address, ready in endpoints
        ],
        "ports": [{"port": port} if n is None else {"name": n, "port": port} for n, port in ports],
    }
    return EndpointSlice.model_validate(raw)


def core_endpoints(ready: list[str], not_ready: list[str], port_name: str) -> Endpoints:
    return Endpoints.model_validate(
        {
            "metadata": {"name": "kuard", "namespace": "default"},
            "subsets": [
                {
                    "addresses": [{"ip": ip} for ip in ready],
                    "notReadyAddresses": [{"ip": ip} for ip in not_ready],
                    "ports": [{"name": port_name, "port": 8080}],
                }
            ],
        }
    )


def targets(
    port_name: str, slices: list[EndpointSlice], endpoints: Endpoints | None = None
) -> list[tuple[str, int]]:
    assignment = cluster_load_assignment("default/kuard", port_name, slices, endpoints)
    assert assignment.cluster_name == "default/kuard"
    return [
        (e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value)
        for locality in assignment.endpoints
        for e in locality.lb_endpoints
    ]


ENDPOINT_ROWS = [
    pytest.param(
        "",
        [endpoint_slice("a", [("10.0.0.2", True), ("10.0.0.1", None)], [(None, 8080)])],
        None,
        [("10.0.0.1", 8080), ("10.0.0.2", 8080)],
        id="unnamed-port-nil-ready-counts-as-ready",
    ),
    pytest.param(
        "",
        [endpoint_slice("a", [("10.0.0.1", True), ("10.0.0.2", False)], [("", 8080)])],
        None,
        [("10.0.0.1", 8080)],
        id="ready-only",
    ),
    pytest.param(
        "http",
        [endpoint_slice("a", [("10.0.0.1", True)], [("metrics", 9090), ("http", 8080)])],
        None,
        [("10.0.0.1", 8080)],
        id="port-by-name",
    ),
    pytest.param(
        "",
        [endpoint_slice("a", [("10.0.0.1", True)], [("http", 8080)])],
        None,
        [],
        id="unnamed-does-not-match-named",
    ),
    pytest.param(
        "http",
        [
            endpoint_slice("b", [("10.0.0.10", True), ("10.0.0.9", True)], [("http", 8080)]),
            endpoint_slice("a", [("10.0.0.9", True), ("fd00::1", True)], [("http", 8080)]),
        ],
        None,
        [("10.0.0.9", 8080), ("10.0.0.10", 8080), ("fd00::1", 8080)],
        id="merged-deduplicated-sorted",
    ),
    pytest.param("", [], None, [], id="empty"),
    pytest.param(
        "http",
        [],
        core_endpoints(["10.0.1.1"], ["10.0.1.2"], "http"),
        [("10.0.1.1", 8080)],
        id="core-endpoints-when-no-slices",
    ),
    pytest.param(
        "http",
        [endpoint_slice("a", [("10.0.0.1", True)], [("http", 8080)])],
        core_endpoints(["10.0.1.1"], [], "http"),
        [("10.0.0.1", 8080)],
        id="slices-win-over-core-endpoints",
    ),
]


@pytest.mark.parametrize(("port_name", "slices", "endpoints", "expected"), ENDPOINT_ROWS)
def test_cluster_load_assignment(
    port_name: str,
    slices: list[EndpointSlice],
    endpoints: Endpoints | None,
    expected: list[tuple[str, int]],
) -> None:
    assert targets(port_name, slices, endpoints) == expected


def test_empty_assignment_has_no_locality() -> None:
    assignment = cluster_load_assignment("default/kuard", "", [], None)
    assert not assignment.endpoints


def _dag(*clusters: Cluster) -> DAG:
    routes = tuple(
        Route(PathMatch(PathMatchKind.EXACT, f"/{index}"), (WeightedCluster(cluster),))
        for index, cluster in enumerate(clusters)
    )
    return DAG(virtual_hosts=(VirtualHost("kuard.local", routes),))


def test_load_assignments_cover_every_eds_cluster() -> None:
    http = Cluster("default", "kuard", 80, port_name="http")
    sticky = Cluster(
        "default", "kuard", 80, port_name="http", load_balancer=LoadBalancerPolicy.COOKIE
    )
    other = Cluster("other", "empty", 80)
    external = Cluster("default", "ext", 443, external_name="example.com")
    dag = _dag(http, sticky, other, external)
    objects = ObjectSet(
        endpoint_slices={
            ("default", "kuard"): (endpoint_slice("a", [("10.0.0.1", True)], [("http", 8080)]),)
        }
    )
    result = load_assignments(dag, objects)
    assert list(result) == ["default/kuard/http", "other/empty"]
    assert len(result["default/kuard/http"].endpoints[0].lb_endpoints) == 1
    assert not result["other/empty"].endpoints
    only = load_assignments(dag, objects, services=[("other", "empty")])
    assert list(only) == ["other/empty"]
