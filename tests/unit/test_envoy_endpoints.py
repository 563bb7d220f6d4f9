"""EndpointSlices / Endpoints → ClusterLoadAssignments (the EDS fast path), and what is left out."""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

import pytest
from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec

from controlplane.addresses import NetworkSet, refused_networks
from controlplane.dag import BuildOptions, DagBuilder
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
from controlplane.envoy import TranslateOptions
from controlplane.envoy.endpoints import (
    RefusalReason,
    RefusedEndpoint,
    _lb_endpoint,
    cluster_load_assignment,
    encoded_load_assignment,
    load_assignments,
)
from controlplane.envoy.validation import violations
from controlplane.model import Endpoints, EndpointSlice, ModelError, ObjectSet, parse_object
from controlplane.publisher import Publisher
from controlplane.store import Store
from controlplane.typeurls import ENDPOINT_TYPE


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
    assignment = cluster_load_assignment("default/kuard", port_name, slices, endpoints).message
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
    assert not assignment.message.endpoints
    assert assignment.refused == ()


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


# -- what is left out ------------------------------------------------------------------------

CLUSTER = refused_networks(local=True)
"""What `serve` refuses in cluster mode by default."""
WIDENED = refused_networks(local=True, extra=[ip_network("10.96.0.0/12")])
FILE = NetworkSet()
"""What `serve --manifests` refuses by default: no network."""
GOOD = ("10.0.0.1", 8080)


def hostile_slice(
    addresses: list[str],
    *,
    port: int = 8080,
    address_type: str = "IPv4",
    name: str = "bad",
    ready: bool = True,
) -> EndpointSlice:
    return EndpointSlice.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kuard"},
            },
            "addressType": address_type,
            "endpoints": [{"addresses": addresses, "conditions": {"ready": ready}}],
            "ports": [{"name": "http", "port": port}],
        }
    )


def good_slice() -> EndpointSlice:
    return endpoint_slice("good", [(GOOD[0], True)], [("http", GOOD[1])])


def core(addresses: list[str], port: int) -> Endpoints:
    return Endpoints.model_validate(
        {
            "metadata": {"name": "kuard", "namespace": "default"},
            "subsets": [
                {
                    "addresses": [{"ip": ip} for ip in addresses],
                    "ports": [{"name": "http", "port": port}],
                }
            ],
        }
    )


Refused = tuple[str, int | None, RefusalReason]
"""(address, port, reason) of one RefusedEndpoint."""


def refusal_row(
    name: str,
    slices: list[EndpointSlice],
    expected: list[tuple[str, int]],
    refused: list[Refused],
    *,
    networks: NetworkSet = CLUSTER,
    endpoints: Endpoints | None = None,
) -> Any:
    return pytest.param(slices, endpoints, networks, expected, refused, id=name)


FQDN = RefusalReason.FQDN
NOT_IP = RefusalReason.NOT_AN_IP
PORT = RefusalReason.PORT_OUT_OF_RANGE
NETWORK = RefusalReason.REFUSED_NETWORK

REFUSAL_ROWS = [
    refusal_row(
        "fqdn-slice-contributes-nothing",
        [hostile_slice(["example.com", "10.0.0.7"], address_type="FQDN"), good_slice()],
        [GOOD],
        [("10.0.0.7", None, FQDN), ("example.com", None, FQDN)],
    ),
    refusal_row(
        "fqdn-slice-in-file-mode-too",
        [hostile_slice(["example.com"], address_type="FQDN"), good_slice()],
        [GOOD],
        [("example.com", None, FQDN)],
        networks=FILE,
    ),
    *(
        refusal_row(
            f"not-an-ip-{address!r}",
            [hostile_slice([address]), good_slice()],
            [GOOD],
            [(address, None, NOT_IP)],
            networks=FILE,
        )
        for address in [
            "example.com",
            "10.0.0.1 ",  # trailing space
            "01.2.3.4",  # leading zero: Envoy's inet_pton refuses it
            "127.1",
            "fe80::1%eth0",  # a zone
            "[::1]",
            "",
            "10.0.0.1:80",
        ]
    ),
    *(
        refusal_row(
            f"slice-port-{port}",
            [hostile_slice(["10.0.0.9"], port=port), good_slice()],
            [GOOD],
            [("*", port, PORT)],
            networks=FILE,
        )
        for port in (0, 70000, -1, 65536)
    ),
    refusal_row(
        "port-65535-is-fine", [hostile_slice(["10.0.0.9"], port=65535)], [("10.0.0.9", 65535)], []
    ),
    refusal_row("port-1-is-fine", [hostile_slice(["10.0.0.9"], port=1)], [("10.0.0.9", 1)], []),
    refusal_row(
        "core-endpoints-port-70000",
        [],
        [],
        [("*", 70000, PORT)],
        endpoints=core(["10.0.0.1"], 70000),
    ),
    refusal_row(
        "core-endpoints-not-an-ip-and-loopback",
        [],
        [GOOD],
        [("127.0.0.1", None, NETWORK), ("node-1", None, NOT_IP)],
        endpoints=core(["node-1", "127.0.0.1", GOOD[0]], GOOD[1]),
    ),
    *(
        refusal_row(
            f"cluster-refuses-{address}",
            [hostile_slice([address]), good_slice()],
            [GOOD],
            [(address, None, NETWORK)],
        )
        for address in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "0.1.2.3",
            "::",
        ]
    ),
    refusal_row(
        "cluster-allows-pod-ips",
        [hostile_slice(["10.244.1.5", "fd00::5", "::ffff:10.0.0.2"])],
        [("10.244.1.5", 8080), ("::ffff:10.0.0.2", 8080), ("fd00::5", 8080)],
        [],
    ),
    refusal_row(
        "widened-cidr",
        [hostile_slice(["10.96.0.10", "127.0.0.1"]), good_slice()],
        [GOOD],
        [("10.96.0.10", None, NETWORK), ("127.0.0.1", None, NETWORK)],
        networks=WIDENED,
    ),
    refusal_row(
        "file-mode-allows-loopback",
        [hostile_slice(["127.0.0.1", "::1", "169.254.169.254"])],
        [("127.0.0.1", 8080), ("169.254.169.254", 8080), ("::1", 8080)],
        [],
        networks=FILE,
    ),
    refusal_row(
        "file-mode-with-a-cidr-refuses-only-it",
        [hostile_slice(["127.0.0.1", "10.96.0.10"])],
        [("127.0.0.1", 8080)],
        [("10.96.0.10", None, NETWORK)],
        networks=NetworkSet.of([ip_network("10.96.0.0/12")]),
    ),
    refusal_row(
        "not-ready-endpoints-are-not-judged",
        [hostile_slice(["127.0.0.1", "junk"], ready=False), good_slice()],
        [GOOD],
        [],
    ),
    refusal_row(
        "ports-of-other-names-are-not-judged",
        [
            EndpointSlice.model_validate(
                {
                    "metadata": {
                        "name": "bad",
                        "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "kuard"},
                    },
                    "endpoints": [{"addresses": ["10.0.0.9"]}],
                    "ports": [{"name": "metrics", "port": 70000}, {"name": "http", "port": 8080}],
                }
            )
        ],
        [("10.0.0.9", 8080)],
        [],
    ),
    refusal_row(
        "every-address-refused-leaves-an-empty-assignment",
        [hostile_slice(["127.0.0.1", "example.com"])],
        [],
        [("127.0.0.1", None, NETWORK), ("example.com", None, NOT_IP)],
    ),
]


@pytest.mark.parametrize(("slices", "endpoints", "networks", "expected", "refused"), REFUSAL_ROWS)
def test_invalid_and_refused_endpoints_are_left_out(
    slices: list[EndpointSlice],
    endpoints: Endpoints | None,
    networks: NetworkSet,
    expected: list[tuple[str, int]],
    refused: list[Refused],
) -> None:
    result = cluster_load_assignment("default/kuard/http", "http", slices, endpoints, networks)
    sent = [
        (e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value)
        for locality in result.message.endpoints
        for e in locality.lb_endpoints
    ]
    assert sent == expected
    assert violations(result.message) == []
    assert sorted((r.address, r.port, r.reason) for r in result.refused) == sorted(
        refused, key=lambda r: (r[0], r[1] or 0, r[2])
    )
    source = "Endpoints/kuard" if endpoints is not None else "EndpointSlice/bad"
    for refusal in result.refused:
        assert (refusal.namespace, refusal.service, refusal.source) == ("default", "kuard", source)
        assert refusal.detail


def test_a_refusal_names_the_network_and_the_object() -> None:
    result = cluster_load_assignment(
        "default/kuard/http", "http", [hostile_slice(["::ffff:127.0.0.1"])], None, CLUSTER
    )
    assert result.refused == (
        RefusedEndpoint(
            "default",
            "kuard",
            "EndpointSlice/bad",
            "::ffff:127.0.0.1",
            None,
            NETWORK,
            "in 127.0.0.0/8, where no endpoint may be",
        ),
    )


def test_load_assignments_leave_out_the_same() -> None:
    cluster = Cluster("default", "kuard", 80, port_name="http")
    objects = ObjectSet(
        endpoint_slices={("default", "kuard"): (hostile_slice(["127.0.0.1"]), good_slice())}
    )
    assignments = load_assignments(_dag(cluster), objects, refused_networks=CLUSTER)
    lb_endpoints = assignments["default/kuard/http"].endpoints[0].lb_endpoints
    assert [e.endpoint.address.socket_address.address for e in lb_endpoints] == [GOOD[0]]


# --- an EDS name belongs to one Service port ------------------------------------------------
# Found by the hostile fuzz (tests/hostile): EDS names join namespace, Service and port name
# with "/" (`good/web/http`), and names from a file source may hold a "/" (the API server's
# never do), so another Service can publish its endpoints under the good Service's EDS name.


def _tenant(namespace: str, service: str, port_name: str, address: str) -> list[dict[str, Any]]:
    port: dict[str, Any] = {"port": 80, "targetPort": 8080}
    slice_port: dict[str, Any] = {"port": 8080}
    if port_name:
        port["name"] = slice_port["name"] = port_name
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": namespace},
            "spec": {"ports": [port]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "slice",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": service},
            },
            "addressType": "IPv4",
            "ports": [slice_port],
            "endpoints": [{"addresses": [address]}],
        },
        {
            "apiVersion": "contour.heptio.com/v1beta1",
            "kind": "IngressRoute",
            "metadata": {"name": "root", "namespace": namespace},
            "spec": {
                "virtualhost": {"fqdn": f"{address}.nip.io"},
                "routes": [{"match": "/", "services": [{"name": service, "port": 80}]}],
            },
        },
    ]


def _published_endpoints(manifests: list[dict[str, Any]]) -> dict[str, bytes]:
    objects = ObjectSet.from_objects(parse_object(m) for m in manifests)
    dag = DagBuilder().build(objects, BuildOptions())
    snapshot = Publisher(TranslateOptions()).translate(dag, objects)
    return {name: r.body for name, r in snapshot.resources(ENDPOINT_TYPE).items()}


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(("good/web", "http", ""), id="namespace good/web, Service http"),
        pytest.param(("good", "web/http", ""), id="Service web/http beside web"),
    ],
)
def test_another_services_endpoints_never_take_an_eds_name(other: tuple[str, str, str]) -> None:
    """EDS and cluster names join namespace, name and port with '/': a name holding one could
    take another Service's names. Names must be DNS-1123, as the API server requires; in files
    such an object is refused when it is read (and logged), and never reaches the DAG."""
    good = _tenant("good", "web", "http", "10.0.0.1")
    alone = _published_endpoints(good)
    hostile = _tenant(*other, "6.6.6.6")[:2]  # its Service and slice (a root would replace good's)
    hostile[1]["metadata"]["name"] = "hostile-slice"  # not the same object as good's slice
    with pytest.raises(ModelError, match="DNS-1123"):
        parse_object(hostile[0])
    store = Store()
    for raw in [*good, *hostile]:
        store.apply_raw(raw)
    objects = store.object_set()
    dag = DagBuilder().build(objects, BuildOptions())
    snapshot = Publisher(TranslateOptions()).translate(dag, objects)
    together = {n: r.body for n, r in snapshot.resources(ENDPOINT_TYPE).items()}
    assert together == alone


@pytest.mark.parametrize(("port_name", "slices", "endpoints", "expected"), ENDPOINT_ROWS)
def test_written_bytes_are_the_message_serialized(
    port_name: str,
    slices: list[EndpointSlice],
    endpoints: Endpoints | None,
    expected: list[tuple[str, int]],
) -> None:
    """The translator writes ClusterLoadAssignments as bytes directly: they must be the
    message's deterministic serialization, refusals included."""
    assignment = cluster_load_assignment("ns/web/http", port_name, slices, endpoints)
    body, refused = encoded_load_assignment("ns/web/http", port_name, slices, endpoints)
    assert body == assignment.message.SerializeToString(deterministic=True)
    assert refused == assignment.refused


@pytest.mark.parametrize("host", ["10.0.0.1", "2001:db8::1", "", "a" * 99, "a" * 100, "a" * 300])
@pytest.mark.parametrize("port", [0, 1, 127, 128, 65535])
def test_written_endpoint_bytes_of_any_length(host: str, port: int) -> None:
    """One endpoint as `LocalityLbEndpoints.lb_endpoints` bytes, short lengths or long."""
    socket_address = address_pb2.SocketAddress(address=host, port_value=port)
    endpoint = ec.LbEndpoint(
        endpoint=ec.Endpoint(address=address_pb2.Address(socket_address=socket_address))
    )
    expected = ec.LocalityLbEndpoints(lb_endpoints=[endpoint])
    assert _lb_endpoint(host, port) == expected.SerializeToString(deterministic=True)
