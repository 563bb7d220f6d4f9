"""Service endpoints → Envoy `ClusterLoadAssignment`s (the EDS fast path).

Endpoints skip the DAG: when an EndpointSlice changes, the publisher re-translates only the load
assignments of that Service and publishes them at once. The DAG supplies only the EDS topology
(`EdsTopology`): which EDS names exist, which Service port each serves, and which Envoy cluster
subscribes to which. It is computed once per set of clusters, by the translator, and read from
there by everyone who needs it (the fast path, the snapshot's make-before-break ordering).

Rules:
- Only READY endpoints are sent (`conditions.ready` absent counts as ready, as the API says).
- A slice port is chosen by the Service port's *name* (unnamed ↔ `""` or absent), never by
  number: the slice carries the target (container) port, which is what Envoy must dial.
- Core `Endpoints` (`subsets[].addresses`, never `notReadyAddresses`) are read only when the
  Service has no EndpointSlices at all.
- Addresses are de-duplicated and sorted (IPv4 before IPv6, numerically), so the bytes depend
  only on the set of ready endpoints, not on slice order.
- An EDS name with no ready endpoints still gets a (empty) ClusterLoadAssignment, so a cluster
  never sits warming in Envoy.

EDS names are `namespace/service/portname` (or `namespace/service` for an unnamed port), so a
name stands for one Service port whether or not a cluster uses it: `service_port_of` reads it
back, which is how the publisher answers a stream asking for a Service no route references yet.

Nothing Envoy would reject reaches a ClusterLoadAssignment, and nothing that leads back into the
pod does either. Each ready endpoint is checked, and left out with a `RefusedEndpoint` (which
Service, which object, which address, why) when:
- its slice has `addressType: FQDN` (Envoy's EDS takes IP addresses only);
- its address is not an IP literal Envoy parses (`addresses.ip_literal`);
- its port (slice or core Endpoints) is outside 1..65535 (then every address at that port);
- its address is in one of `TranslateOptions.refused_endpoint_networks` (cluster mode: loopback,
  0.0.0.0/8, link-local, and what `--refuse-endpoint-cidrs` adds).
Every other endpoint of the Service is served as usual. The decision is a value: this layer never
logs; the publisher reports each refusal once (log line and metric). Only endpoints that would
have been sent are checked: not-ready endpoints, and slice ports no Service port names, are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import product

from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec
from envoy.config.endpoint.v3 import endpoint_pb2

from controlplane.addresses import NetworkSet, ip_literal
from controlplane.dag import DAG, Cluster
from controlplane.model import Endpoints, EndpointSlice, ObjectSet
from controlplane.protowire import field_bytes, field_str, varint

NamespacedName = tuple[str, str]
Target = tuple[str, int]
"""(address, port) of one endpoint, as Envoy dials it."""

NO_NETWORKS = NetworkSet()
MAX_PORT = 65535


class RefusalReason(StrEnum):
    """Why an endpoint was left out (the `reason` label of the refusal metric)."""

    FQDN = "fqdn_address_type"
    NOT_AN_IP = "not_an_ip_address"
    PORT_OUT_OF_RANGE = "port_out_of_range"
    REFUSED_NETWORK = "refused_network"


@dataclass(frozen=True, slots=True)
class RefusedEndpoint:
    """An endpoint left out of every ClusterLoadAssignment of its Service, and why."""

    namespace: str
    service: str
    source: str
    """The object it came from: `EndpointSlice/<name>` or `Endpoints/<name>`."""
    address: str
    """The address as written; `*` when a port is refused (every address at it is left out)."""
    port: int | None
    """The port refused, or None when the address is refused at every port."""
    reason: RefusalReason
    detail: str
    """One sentence for the log: what is wrong with it."""


@dataclass(frozen=True, slots=True)
class LoadAssignment:
    """A ClusterLoadAssignment and the endpoints left out of it."""

    message: endpoint_pb2.ClusterLoadAssignment
    refused: tuple[RefusedEndpoint, ...] = ()


Where = tuple[str, str, str]
"""(namespace, service, source object) of the endpoints being checked."""


class _Checker:
    """Checks the endpoints of one Service port, judging each distinct address once."""

    __slots__ = ("bad", "keys", "match", "refused")

    def __init__(self, networks: NetworkSet) -> None:
        self.match = networks.match if networks else None
        self.keys: dict[str, tuple[int, bytes]] = {}
        """Usable address → its sort key (IPv4 before IPv6, then numerically)."""
        self.bad: dict[str, tuple[RefusalReason, str]] = {}
        self.refused: dict[RefusedEndpoint, None] = {}

    def refuse(
        self, where: Where, address: str, port: int | None, reason: RefusalReason, detail: str
    ) -> None:
        namespace, service, source = where
        refusal = RefusedEndpoint(namespace, service, source, address, port, reason, detail)
        self.refused[refusal] = None

    def ports(self, where: Where, ports: Iterable[int]) -> list[int]:
        """The ports Envoy can dial; the others are refused."""
        usable = []
        for port in ports:
            if 1 <= port <= MAX_PORT:
                usable.append(port)
            else:
                detail = f"port {port} is outside 1-{MAX_PORT}"
                self.refuse(where, "*", port, RefusalReason.PORT_OUT_OF_RANGE, detail)
        return usable

    def addresses(self, where: Where, addresses: set[str]) -> set[str]:
        """`addresses` (a set the caller owns, changed in place) without the refused ones."""
        unknown = addresses.difference(self.keys)
        if not unknown:
            return addresses
        bad = self.bad
        for address in unknown:
            if address not in bad and self._usable(address):
                continue
            addresses.discard(address)
        for address in sorted(unknown.difference(addresses)):
            self.refuse(where, address, None, *bad[address])
        return addresses

    def _usable(self, address: str) -> bool:
        packed = ip_literal(address)
        if packed is None:
            detail = "not an IP address (Envoy dials IP addresses only)"
            self.bad[address] = (RefusalReason.NOT_AN_IP, detail)
            return False
        if self.match is not None and (network := self.match(packed)) is not None:
            detail = f"in {network}, where no endpoint may be"
            self.bad[address] = (RefusalReason.REFUSED_NETWORK, detail)
            return False
        self.keys[address] = (4 if len(packed) == 4 else 6, packed)
        return True


def ready_endpoints(
    port_name: str,
    slices: Sequence[EndpointSlice],
    endpoints: Endpoints | None,
    refused_networks: NetworkSet = NO_NETWORKS,
) -> tuple[list[Target], tuple[RefusedEndpoint, ...]]:
    """Every usable ready endpoint of the Service port named `port_name`, sorted, and those
    left out (see the module docstring)."""
    check = _Checker(refused_networks)
    found: set[Target] = set()
    if slices:
        for endpoint_slice in slices:
            named = [
                p.port
                for p in endpoint_slice.ports
                if (p.name or "") == port_name and p.port is not None
            ]
            if not named:
                continue
            where = (
                endpoint_slice.namespace,
                endpoint_slice.service_name or "",
                f"EndpointSlice/{endpoint_slice.name}",
            )
            ports = check.ports(where, named)
            ready = {a for e in endpoint_slice.endpoints if e.is_ready for a in e.addresses}
            if not ports or not ready:
                continue
            if endpoint_slice.address_type == "FQDN":
                detail = "the slice has addressType FQDN (Envoy dials IP addresses only)"
                for address in sorted(ready):
                    check.refuse(where, address, None, RefusalReason.FQDN, detail)
                continue
            found.update(product(check.addresses(where, ready), ports))
    elif endpoints is not None:
        where = (endpoints.namespace, endpoints.name, f"Endpoints/{endpoints.name}")
        for subset in endpoints.subsets:
            named = [p.port for p in subset.ports if (p.name or "") == port_name]
            ports = check.ports(where, named) if named else []
            ready = {a.ip for a in subset.addresses}
            if ports and ready:
                found.update(product(check.addresses(where, ready), ports))
    keys = check.keys
    targets = sorted(found, key=lambda target: (keys[target[0]], target))
    return targets, tuple(check.refused)


def cluster_load_assignment(
    eds_name: str,
    port_name: str,
    slices: Sequence[EndpointSlice],
    endpoints: Endpoints | None,
    refused_networks: NetworkSet = NO_NETWORKS,
) -> LoadAssignment:
    """The load assignment for one EDS name: the usable ready endpoints of one Service port."""
    targets, refused = ready_endpoints(port_name, slices, endpoints, refused_networks)
    if not targets:
        return LoadAssignment(endpoint_pb2.ClusterLoadAssignment(cluster_name=eds_name), refused)
    message = endpoint_pb2.ClusterLoadAssignment(
        cluster_name=eds_name,
        endpoints=[
            ec.LocalityLbEndpoints(
                lb_endpoints=[
                    ec.LbEndpoint(
                        endpoint=ec.Endpoint(
                            address=address_pb2.Address(
                                socket_address=address_pb2.SocketAddress(
                                    address=host, port_value=port
                                )
                            )
                        )
                    )
                    for host, port in targets
                ]
            )
        ],
    )
    return LoadAssignment(message, refused)


def encoded_load_assignment(
    eds_name: str,
    port_name: str,
    slices: Sequence[EndpointSlice],
    endpoints: Endpoints | None,
    refused_networks: NetworkSet = NO_NETWORKS,
) -> tuple[bytes, tuple[RefusedEndpoint, ...]]:
    """`cluster_load_assignment(...)`'s message serialized (deterministic), and its refusals.

    The bytes are written directly rather than through a message: a 10,000-Service build
    spends more in making 5 nested messages per endpoint than in everything else about its
    endpoints. Fields go in field-number order, which is what upb's deterministic serialization
    writes (tests/unit/test_envoy_endpoints.py compares the two)."""
    targets, refused = ready_endpoints(port_name, slices, endpoints, refused_networks)
    name = field_str(_CLA_CLUSTER_NAME, eds_name)
    if not targets:
        return name, refused
    lb_endpoints = b"".join([_lb_endpoint(host, port) for host, port in targets])
    return name + field_bytes(_CLA_ENDPOINTS, lb_endpoints), refused


_CLA_CLUSTER_NAME = 1  # ClusterLoadAssignment.cluster_name
_CLA_ENDPOINTS = 2  # ClusterLoadAssignment.endpoints (LocalityLbEndpoints)
_LOCALITY_LB_ENDPOINTS = 2  # LocalityLbEndpoints.lb_endpoints (LbEndpoint)
_NESTED = 1  # LbEndpoint.endpoint, Endpoint.address, Address.socket_address: all field 1
_SOCKET_ADDRESS = 2  # SocketAddress.address
_PORT_VALUE_TAG = bytes((3 << 3,))  # SocketAddress.port_value: field 3, varint (in a oneof,
# so written even when 0, as the message path does)


def _lb_endpoint(host: str, port: int) -> bytes:
    if 0 < len(host) < 100 and host.isascii():  # an IP address: each length fits one byte
        address_bytes = host.encode()
        socket_address = b"%c%c%s%s%s" % (
            _SOCKET_ADDRESS << 3 | 2,
            len(address_bytes),
            address_bytes,
            _PORT_VALUE_TAG,
            varint(port),
        )
        size = len(socket_address)  # < 110: the 4 enclosing lengths fit one byte each too
        return b"%c%c%c%c%c%c%c%c%s" % (
            _LOCALITY_LB_ENDPOINTS << 3 | 2,
            size + 6,
            _NESTED << 3 | 2,
            size + 4,
            _NESTED << 3 | 2,
            size + 2,
            _NESTED << 3 | 2,
            size,
            socket_address,
        )
    socket_address = field_str(_SOCKET_ADDRESS, host) + _PORT_VALUE_TAG + varint(port)
    address = field_bytes(_NESTED, socket_address)
    endpoint = field_bytes(_NESTED, address)
    return field_bytes(_LOCALITY_LB_ENDPOINTS, field_bytes(_NESTED, endpoint))


@dataclass(frozen=True)
class EdsTopology:
    """Which EDS names a set of clusters uses, seen from each side."""

    by_eds_name: Mapping[str, tuple[NamespacedName, str]] = field(default_factory=dict)
    """EDS name → ((namespace, service), port name), in name order."""
    by_cluster: Mapping[str, str] = field(default_factory=dict)
    """Envoy cluster name → the EDS name it subscribes to (EDS clusters only)."""
    by_service: Mapping[NamespacedName, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    """(namespace, service) → its (EDS name, port name) pairs, sorted."""

    @classmethod
    def of(cls, clusters: Iterable[Cluster]) -> EdsTopology:
        by_eds_name: dict[str, tuple[NamespacedName, str]] = {}
        by_cluster: dict[str, str] = {}
        by_service: dict[NamespacedName, set[tuple[str, str]]] = {}
        for cluster in clusters:
            if cluster.external_name is not None:
                continue
            service = (cluster.namespace, cluster.service)
            eds_name = cluster.eds_name  # a property that formats: once
            by_eds_name[eds_name] = (service, cluster.port_name)
            by_cluster[cluster.name] = eds_name
            by_service.setdefault(service, set()).add((eds_name, cluster.port_name))
        return cls(
            by_eds_name={name: by_eds_name[name] for name in sorted(by_eds_name)},
            by_cluster=by_cluster,
            by_service={
                key: tuple(pairs) if len(pairs) == 1 else tuple(sorted(pairs))
                for key, pairs in by_service.items()
            },
        )


def service_port_of(objects: ObjectSet, eds_name: str) -> tuple[NamespacedName, str] | None:
    """The (namespace, service) and port name `eds_name` stands for, if that Service exists,
    is not an ExternalName (Envoy resolves those itself: no EDS) and has a port of that name."""
    parts = eds_name.split("/")
    if len(parts) == 2:
        namespace, name, port_name = parts[0], parts[1], ""
    elif len(parts) == 3 and parts[2]:
        namespace, name, port_name = parts
    else:
        return None
    service = objects.services.get((namespace, name))
    if service is None or service.is_external_name:
        return None
    if not any((port.name or "") == port_name for port in service.spec.ports):
        return None
    return (namespace, name), port_name


def load_assignments(
    dag: DAG,
    objects: ObjectSet,
    *,
    services: Iterable[NamespacedName] | None = None,
    refused_networks: NetworkSet = NO_NETWORKS,
) -> dict[str, endpoint_pb2.ClusterLoadAssignment]:
    """A load assignment for every EDS cluster of `dag`, by EDS name, in name order.

    `services` restricts the work to the EDS names of those (namespace, service) pairs: the fast
    path when only some Services' endpoints changed.
    """
    wanted = None if services is None else set(services)
    slices: Mapping[NamespacedName, tuple[EndpointSlice, ...]] = objects.endpoint_slices
    result: dict[str, endpoint_pb2.ClusterLoadAssignment] = {}
    for eds_name, (service, port_name) in EdsTopology.of(dag.clusters()).by_eds_name.items():
        if wanted is not None and service not in wanted:
            continue
        result[eds_name] = cluster_load_assignment(
            eds_name,
            port_name,
            slices.get(service, ()),
            objects.endpoints.get(service),
            refused_networks,
        ).message
    return result
