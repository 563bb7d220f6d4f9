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
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec
from envoy.config.endpoint.v3 import endpoint_pb2

from controlplane.dag import DAG, Cluster
from controlplane.model import Endpoints, EndpointSlice, ObjectSet

NamespacedName = tuple[str, str]


def _address_key(target: tuple[str, int]) -> tuple[int, bytes, str, int]:
    # inet_pton (a pure C parser) instead of `ipaddress`, which costs ~8 µs per address.
    host, port = target
    for rank, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            return (rank, socket.inet_pton(family, host), host, port)
        except OSError:
            continue
    return (9, b"", host, port)


def ready_addresses(
    port_name: str, slices: Sequence[EndpointSlice], endpoints: Endpoints | None
) -> list[tuple[str, int]]:
    """(address, port) of every ready endpoint serving the Service port named `port_name`."""
    found: set[tuple[str, int]] = set()
    if slices:
        for endpoint_slice in slices:
            ports = [
                p.port
                for p in endpoint_slice.ports
                if (p.name or "") == port_name and p.port is not None
            ]
            if not ports:
                continue
            for endpoint in endpoint_slice.endpoints:
                if endpoint.is_ready:
                    found.update(
                        (address, port) for address in endpoint.addresses for port in ports
                    )
    elif endpoints is not None:
        for subset in endpoints.subsets:
            ports = [p.port for p in subset.ports if (p.name or "") == port_name]
            found.update((a.ip, port) for a in subset.addresses for port in ports)
    return sorted(found, key=_address_key)


def cluster_load_assignment(
    eds_name: str,
    port_name: str,
    slices: Sequence[EndpointSlice],
    endpoints: Endpoints | None,
) -> endpoint_pb2.ClusterLoadAssignment:
    """The load assignment for one EDS name: the ready endpoints of one Service port."""
    targets = ready_addresses(port_name, slices, endpoints)
    if not targets:
        return endpoint_pb2.ClusterLoadAssignment(cluster_name=eds_name)
    return endpoint_pb2.ClusterLoadAssignment(
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
            by_eds_name[cluster.eds_name] = (service, cluster.port_name)
            by_cluster[cluster.name] = cluster.eds_name
            by_service.setdefault(service, set()).add((cluster.eds_name, cluster.port_name))
        return cls(
            by_eds_name={name: by_eds_name[name] for name in sorted(by_eds_name)},
            by_cluster=by_cluster,
            by_service={key: tuple(sorted(pairs)) for key, pairs in by_service.items()},
        )


def load_assignments(
    dag: DAG, objects: ObjectSet, *, services: Iterable[NamespacedName] | None = None
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
            eds_name, port_name, slices.get(service, ()), objects.endpoints.get(service)
        )
    return result
