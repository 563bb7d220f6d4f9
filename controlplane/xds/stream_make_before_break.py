"""Make-before-break for one ADS stream: the routing gate and the clusters kept for the client.

The rules are in `stream.py`'s docstring ("Make-before-break"); this module is their
bookkeeping, so the stream's state machine reads as the protocol and this as the gate:

- ``clusters_ready``: LDS and RDS go out only once the client has ACKed a CDS holding every
  cluster of the snapshot and answered the EDS of each of them.
- ``retained``: clusters the snapshot dropped stay in CDS until the client has ACKed the LDS
  and RDS of the current snapshot (``routes_converged``); only ones it accepted are kept.
- The bodies of kept clusters are looked up in the snapshot table they were sent from (shared,
  no copy); only those the current snapshot lacks are held here, and dropped once the client
  holds them no longer (``prune_cluster_bodies``).

It shares the stream's per-type states (the same dict, read and marked here, never replaced)
and, like the stream, is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from controlplane.typeurls import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from controlplane.xds.sharing import Versions, union
from controlplane.xds.snapshot import Resource, Snapshot, set_hash
from controlplane.xds.stream_type_state import TypeState

__all__ = ["ROUTING_TYPES", "MakeBeforeBreak"]

ROUTING_TYPES = (LISTENER_TYPE, ROUTE_TYPE)
"""The types that wait for the clusters they route to."""
_NO_RESOURCES: Final[Mapping[str, Resource]] = MappingProxyType({})


class MakeBeforeBreak:
    """The make-before-break gate and kept clusters of one stream; ``enabled`` only for ADS
    streams that serve CDS (elsewhere nothing waits and nothing is kept)."""

    __slots__ = ("_cluster_extras", "_cluster_source", "_types", "enabled")

    def __init__(self, types: Mapping[str, TypeState], *, enabled: bool) -> None:
        self.enabled = enabled
        self._types = types  # the stream's own dict: states it adds later are seen here
        # Where the bodies of the clusters the client holds are: the snapshot table they were
        # sent from (shared), and the few retained ones it lacks.
        self._cluster_source: Mapping[str, Resource] = _NO_RESOURCES
        self._cluster_extras: Mapping[str, Resource] = _NO_RESOURCES

    def after_answer(self, state: TypeState) -> None:
        """The client answered (ACK or NACK) ``state``'s latest response: wake what that may
        unblock (the routing gate; retained clusters that may go)."""
        if not self.enabled:
            return
        if state.type_url in (CLUSTER_TYPE, ENDPOINT_TYPE):
            for type_url in ROUTING_TYPES:  # may open the gate
                if (routing := self._types.get(type_url)) is not None and routing.requested:
                    routing.dirty = True
        elif (clusters := self._types.get(CLUSTER_TYPE)) is not None and clusters.requested:
            clusters.mark(None)  # may let retained clusters go

    def clusters_ready(self, snapshot: Snapshot) -> bool:
        """Has the client accepted every cluster of the snapshot and answered their EDS?"""
        clusters = self._types.get(CLUSTER_TYPE)
        if clusters is None or not clusters.requested:
            return True
        if not clusters.acked.covers(snapshot.versions(CLUSTER_TYPE)):
            return False
        wanted = snapshot.eds_wanted()
        if not wanted:
            return True
        endpoints = self._types.get(ENDPOINT_TYPE)
        return endpoints is not None and endpoints.answered.covers(wanted)

    def routes_converged(self, snapshot: Snapshot) -> bool:
        """Has the client ACKed the listeners and routes of this snapshot?"""
        listeners = self._types.get(LISTENER_TYPE)
        if listeners is not None and listeners.requested:
            acked = listeners.acked_sig or set_hash(listeners.acked.items())
            if acked != snapshot.version(LISTENER_TYPE):
                return False
        routes = self._types.get(ROUTE_TYPE)
        if routes is not None and routes.requested:
            if routes.last_nonce and routes.acked_nonce != routes.last_nonce:
                return False
            current = snapshot.resources(ROUTE_TYPE)
            for name in routes.subscribed:
                resource = current.get(name)
                if resource is not None and routes.acked.version(name) != resource.version:
                    return False
        return True

    def held_clusters_outside(self, snapshot: Snapshot) -> set[str]:
        """Clusters the client has been sent or ACKed that the snapshot lacks."""
        clusters = self._types.get(CLUSTER_TYPE)
        if clusters is None:
            return set()
        reference = snapshot.versions(CLUSTER_TYPE)
        names = set(clusters.acked.outside(reference))
        if clusters.sent is not clusters.acked:
            names.update(clusters.sent.outside(reference))
        return names

    def retained(self, snapshot: Snapshot) -> dict[str, Resource | None]:
        """Clusters the client may still route to although the snapshot dropped them."""
        clusters = self._types.get(CLUSTER_TYPE)
        if not self.enabled or clusters is None or self.routes_converged(snapshot):
            return {}
        names = self.held_clusters_outside(snapshot)
        return {name: self.cluster_body(name) for name in sorted(names)}

    def cluster_body(self, name: str) -> Resource | None:
        """The body of a cluster the client holds, wherever it is kept."""
        body = self._cluster_extras.get(name)
        return body if body is not None else self._cluster_source.get(name)

    def clusters_sent(
        self,
        snapshot: Snapshot,
        entries: Iterable[tuple[str, Resource]],
        previous: Versions,
    ) -> None:
        """Clusters went out: refresh the assignments changed ones use, and note where the
        bodies of what the client now holds are."""
        endpoints = self._types.get(ENDPOINT_TYPE)
        if endpoints is not None:
            eds_names = snapshot.eds_names()
            had = previous.getter()
            for name, resource in entries:
                eds_name = eds_names.get(name)
                if eds_name is None or had.get(name) == resource.version:
                    continue
                if endpoints.wildcard or eds_name in endpoints.subscribed:
                    endpoints.refresh = union(endpoints.refresh, (eds_name,))
                    endpoints.mark((eds_name,))
        # Bodies of what the client holds: this snapshot's clusters, and those it lacks (kept
        # from where they were found before).
        extras = {
            name: body
            for name in self.held_clusters_outside(snapshot)
            if (body := self.cluster_body(name)) is not None
        }
        self._cluster_source = snapshot.resources(CLUSTER_TYPE)
        self._cluster_extras = extras or _NO_RESOURCES

    def prune_cluster_bodies(self) -> None:
        """Drop the kept bodies of clusters the client neither holds nor was sent (on a CDS
        ACK)."""
        clusters = self._types.get(CLUSTER_TYPE)
        if clusters is None or not self._cluster_extras:
            return
        live = {
            name: body
            for name, body in self._cluster_extras.items()
            if name in clusters.acked or name in clusters.sent
        }
        self._cluster_extras = live or _NO_RESOURCES
