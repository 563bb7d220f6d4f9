"""ClusterLoadAssignments of Service ports no route references, for the streams that ask for them.

The translator encodes the ClusterLoadAssignment of every EDS cluster the DAG uses. An xDS client
may also ask EDS by name for a Service port no route references (yet): an Envoy whose cluster
outlives the route that used it, or `controlplane xds` asking for any `namespace/service/port`.
Contour's EDS answered for every Service; answering with an empty assignment would tell such a
client the Service has no endpoints. So the publisher keeps, beside the translator's, the
assignments of the names that some stream's subscription holds (`SnapshotCache.held`) and that
stand for a Service port no cluster uses (`envoy.service_port_of`), and only those: nothing is
encoded for the thousands of Services nobody asks about, and `translate` (no streams) prints
exactly the referenced ones.

When they are made:
- when a stream first subscribes to such a name (`SnapshotCache` asks its resolver, the
  publisher, which publishes them at once through `SnapshotCache.update`);
- on every build, for every held name: a name that now resolves (its Service appeared) is added,
  one that no longer does (its Service went, or a route now references it: the translator owns
  it) or that nobody holds any more is dropped; an entry whose inputs are the very same objects
  keeps its encoding;
- on the EDS fast path, like the referenced ones: an endpoint change of the Service re-encodes
  them.

Endpoints come from the objects of the last build, except for Services whose endpoints changed
since then (`latest`, kept by the publisher from the fast path until the next build), so a name
resolved between builds is never served stale endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controlplane.addresses import NetworkSet
from controlplane.envoy import (
    EdsTopology,
    RefusedEndpoint,
    cluster_load_assignment,
    service_port_of,
)
from controlplane.model import Endpoints, EndpointSlice, NamespacedName, ObjectSet

__all__ = ["EndpointInputs", "OnDemandAssignments"]

EndpointInputs = tuple[tuple[EndpointSlice, ...], Endpoints | None]
"""A Service's EndpointSlices, and its core Endpoints."""


@dataclass(frozen=True, slots=True)
class _Entry:
    service: NamespacedName
    port_name: str
    inputs: tuple[object, ...]
    """The Service object and the endpoint objects it was encoded from (compared by identity)."""
    body: bytes
    refused: tuple[RefusedEndpoint, ...]


class OnDemandAssignments:
    """The on-demand ClusterLoadAssignments (see the module docstring), by EDS name."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._by_service: dict[NamespacedName, set[str]] = {}
        self._bodies: Mapping[str, bytes] = {}

    @property
    def bodies(self) -> Mapping[str, bytes]:
        """EDS name → encoded assignment; the same mapping while nothing changed."""
        return self._bodies

    def names_of(self, service: NamespacedName) -> list[tuple[str, str]]:
        """The (EDS name, port name) pairs held for `service`."""
        return [(name, self._entries[name].port_name) for name in self._by_service.get(service, ())]

    def service_of(self, name: str) -> NamespacedName:
        """The Service whose port `name` (held) stands for."""
        return self._entries[name].service

    def refused(self) -> dict[NamespacedName, set[RefusedEndpoint]]:
        """The endpoints left out of these assignments, by Service."""
        found: dict[NamespacedName, set[RefusedEndpoint]] = {}
        for entry in self._entries.values():
            if entry.refused:
                found.setdefault(entry.service, set()).update(entry.refused)
        return found

    def refresh(
        self,
        held: Iterable[str],
        objects: ObjectSet,
        topology: EdsTopology,
        networks: NetworkSet,
    ) -> Mapping[str, bytes]:
        """Keep exactly the `held` names that stand for an unreferenced Service port (after a
        build); returns `bodies`."""
        wanted = {name for name in held if name not in topology.by_eds_name}
        changed = False
        for name in list(self._entries):
            if name not in wanted:
                self._drop(name)
                changed = True
        for name in wanted:
            changed |= self._encode(name, objects, {}, networks)
        if changed:
            self._bodies = {name: self._entries[name].body for name in sorted(self._entries)}
        return self._bodies

    def add(
        self,
        names: Iterable[str],
        objects: ObjectSet,
        topology: EdsTopology,
        latest: Mapping[NamespacedName, EndpointInputs],
        networks: NetworkSet,
    ) -> dict[str, bytes]:
        """Resolve newly held `names` (between builds); the bodies of those that resolve."""
        added = {}
        for name in names:
            if name in topology.by_eds_name:
                continue
            if self._encode(name, objects, latest, networks):
                added[name] = self._entries[name].body
        if added:
            self._bodies = {name: self._entries[name].body for name in sorted(self._entries)}
        return added

    def reencoded(
        self,
        service: NamespacedName,
        inputs: EndpointInputs,
        encoded: Mapping[str, tuple[bytes, tuple[RefusedEndpoint, ...]]],
    ) -> None:
        """The fast path encoded these assignments of `service` again, from `inputs`: name →
        (body, endpoints left out)."""
        changed = False
        for name, (body, refused) in encoded.items():
            entry = self._entries.get(name)
            if entry is None or entry.service != service:
                continue
            self._entries[name] = _Entry(
                service, entry.port_name, (entry.inputs[0], *inputs), body, refused
            )
            changed = True
        if changed:
            self._bodies = {name: self._entries[name].body for name in sorted(self._entries)}

    def _encode(
        self,
        name: str,
        objects: ObjectSet,
        latest: Mapping[NamespacedName, EndpointInputs],
        networks: NetworkSet,
    ) -> bool:
        """Encode `name` unless its entry was made from the very same objects (a name that
        stands for no Service port is dropped); whether its entry changed."""
        found = service_port_of(objects, name)
        if found is None:
            if name not in self._entries:
                return False
            self._drop(name)
            return True
        service, port_name = found
        slices, endpoints = latest.get(service) or (
            objects.endpoint_slices.get(service, ()),
            objects.endpoints.get(service),
        )
        inputs = (objects.services[service], slices, endpoints)
        old = self._entries.get(name)
        if (
            old is not None
            and old.port_name == port_name
            and all(a is b for a, b in zip(old.inputs, inputs, strict=True))
        ):
            return False
        assignment = cluster_load_assignment(name, port_name, slices, endpoints, networks)
        entry = _Entry(
            service,
            port_name,
            inputs,
            assignment.message.SerializeToString(deterministic=True),
            assignment.refused,
        )
        self._entries[name] = entry
        self._by_service.setdefault(service, set()).add(name)
        return True

    def _drop(self, name: str) -> None:
        entry = self._entries.pop(name)
        names = self._by_service[entry.service]
        names.discard(name)
        if not names:
            del self._by_service[entry.service]
