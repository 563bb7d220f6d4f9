"""The per-stream xDS state machine: what to send, when, and in which order (ARCHITECTURE §5).

Pure: no I/O, no clock, no asyncio. The server feeds it requests (``on_request`` for
state-of-the-world, ``on_delta_request`` for incremental) and change notifications (``notify``),
and *pulls* responses with ``next_response(snapshot)`` whenever it is free to write. Because a
response is computed at pull time from the current snapshot, a stream never holds more than one
pending answer per type and a slow client simply skips intermediate versions.

Per type the machine keeps: the subscription, the last nonce and version sent, what the client
has been sent (``sent``: name → version), what it ACKed (``acked``) and what it answered, ACK or
NACK (``answered``). The rules:

- A request whose ``response_nonce`` is not the latest for its type is stale and changes
  nothing (SotW). Delta applies subscription changes whatever the nonce, but ACK/NACK only for
  the latest. An empty nonce is a (re)subscription and is always answered.
- A NACK (``error_detail``) is reported to the caller and recorded. ``sent`` already holds the
  rejected versions, so the same content is never sent again; a change of content is.
- Answer only when a subscribed resource changed or a name is newly subscribed. LDS and CDS are
  wildcard and in SotW always carry the full set; EDS, RDS and SDS send only changed resources
  (the xDS spec allows it, and Envoy applies each resource to its own watch), which keeps the EDS
  fast path O(changed names). Every requested EDS name is answered, with an empty
  ClusterLoadAssignment if the snapshot lacks it, so clusters never sit warming.
- Responses leave in ``PUSH_ORDER`` (CDS, EDS, SDS, LDS, RDS). Sending a new or changed Cluster
  re-sends the subscribed ClusterLoadAssignment it uses, as Envoy needs one to finish warming it;
  a repeated ACK of the latest EDS nonce is Envoy asking again, and is answered.

Make-before-break (ADS only, where one stream carries every type): LDS and RDS wait until the
client has ACKed a CDS holding every cluster of the snapshot and answered the EDS of each of
them. Clusters that left the snapshot stay in CDS (old and new together) until the client has
ACKed the LDS and RDS of the current snapshot; meanwhile their ClusterLoadAssignments are not
blanked.
This relies on Envoy sending the RDS subscriptions of new listeners before its LDS ACK, which it
does (RDS is paused while LDS is applied and resumed before the ACK is queued). If a CDS is
NACKed, routes wait for a CDS the client accepts: old routes keep working meanwhile.

Framings differ only in how a decision is written: a SotW wildcard type sends the full set with
a set-hash ``version_info``; everything else is a diff (changed resources, and in delta the
removed names, including subscribed names that never existed, except EDS, which gets empty
assignments because Envoy ignores EDS removals).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.xds.resources import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    PUSH_ORDER,
    ROUTE_TYPE,
    WILDCARD_TYPES,
)
from controlplane.xds.responses import delta_response, sotw_response
from controlplane.xds.snapshot import Resource, Snapshot, empty_load_assignment, set_hash

__all__ = ["Framing", "Nack", "Outgoing", "RequestResult", "StreamState"]

_ROUTING_TYPES = (LISTENER_TYPE, ROUTE_TYPE)


class Framing(enum.Enum):
    SOTW = "sotw"
    DELTA = "delta"


@dataclass(frozen=True, slots=True)
class Nack:
    """The client rejected the response it was sent with ``nonce`` (version ``version``)."""

    type_url: str
    version: str
    nonce: str
    message: str
    code: int


@dataclass(frozen=True, slots=True)
class RequestResult:
    """What a request did, for the caller to log, count and re-index."""

    type_url: str
    stale: bool = False
    ignored: bool = False
    nack: Nack | None = None
    interest_changed: bool = False


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One encoded response, ready to be written to the stream as it is."""

    type_url: str
    nonce: str
    version: str
    payload: bytes
    resources: tuple[str, ...]
    removed: tuple[str, ...] = ()


@dataclass(slots=True)
class _TypeState:
    type_url: str
    wildcard: bool
    requested: bool = False
    initial: bool = False
    subscribed: set[str] = field(default_factory=set)
    last_nonce: str = ""
    last_version: str = ""
    acked_nonce: str = ""
    last_batch: Mapping[str, str] = field(default_factory=dict)
    # SotW wildcard types replace ``sent`` wholesale with a mapping shared by every stream;
    # other types update it in place. ``acked`` and ``answered`` are never mutated.
    sent: Mapping[str, str] = field(default_factory=dict)
    sent_sig: str | None = None
    acked: Mapping[str, str] = field(default_factory=dict)
    acked_sig: str | None = None
    answered: Mapping[str, str] = field(default_factory=dict)
    nacked: dict[str, str] = field(default_factory=dict)
    dirty: bool = False
    dirty_names: set[str] | None = field(default_factory=set)  # None: look at everything
    forced: set[str] = field(default_factory=set)  # send even if unchanged (new subscription)
    refresh: set[str] = field(default_factory=set)  # send again unless that version was NACKed
    unresolved: set[str] = field(default_factory=set)  # delta: newly subscribed, not yet answered

    def mark(self, names: Iterable[str] | None) -> None:
        self.dirty = True
        if names is None:
            self.dirty_names = None
        elif self.dirty_names is not None:
            self.dirty_names.update(names)


class StreamState:
    """The state of one xDS stream, SotW or delta, over one or all resource types."""

    def __init__(
        self,
        framing: Framing,
        *,
        types: Collection[str] = PUSH_ORDER,
        make_before_break: bool = True,
        control_plane: str = "",
    ) -> None:
        self.framing = framing
        self.node: base_pb2.Node | None = None
        self._served = tuple(t for t in PUSH_ORDER if t in types)
        self._default_type = self._served[0] if len(self._served) == 1 else ""
        self._mbb = make_before_break and CLUSTER_TYPE in self._served
        self._control_plane = control_plane
        self._types: dict[str, _TypeState] = {}
        self._nonce = 0
        self._cluster_bodies: dict[str, Resource] = {}
        self._empty: dict[str, Resource] = {}

    # -- requests ---------------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self.node.id if self.node is not None else ""

    def interest(self, type_url: str) -> frozenset[str] | None:
        """The names this stream watches for ``type_url``; ``None`` means every name."""
        state = self._types.get(type_url)
        if state is None:
            return frozenset()
        return None if state.wildcard else frozenset(state.subscribed)

    def requested_types(self) -> tuple[str, ...]:
        return tuple(t for t, s in self._types.items() if s.requested)

    def on_request(self, request: discovery_pb2.DiscoveryRequest) -> RequestResult:
        """Apply a state-of-the-world ``DiscoveryRequest``."""
        self._take_node(request.node if request.HasField("node") else None)
        type_url = request.type_url or self._default_type
        if type_url not in self._served:
            return RequestResult(type_url, ignored=True)
        state = self._state(type_url)
        nonce = request.response_nonce
        if nonce and nonce != state.last_nonce:
            return RequestResult(type_url, stale=True)
        names = state.subscribed if state.wildcard else set(request.resource_names)
        nack = None
        if nonce and request.HasField("error_detail"):
            detail = request.error_detail
            nack = self._nack(state, detail.message, detail.code)
        elif nonce:
            # The same ACK twice: Envoy re-created a watch (an updated EDS cluster) and asks
            # again. Only EDS needs this; elsewhere it would churn for nothing.
            repeated = state.acked_nonce == nonce and names == state.subscribed
            if repeated and type_url == ENDPOINT_TYPE and state.subscribed:
                state.forced.update(state.subscribed)
                state.mark(state.subscribed)
            self._ack(state)
        changed = False
        if not state.wildcard:
            added, gone = names - state.subscribed, state.subscribed - names
            changed = bool(added or gone)
            state.subscribed = names
            self._forget(state, gone)
            if added:
                state.forced.update(added)
                state.mark(added)
        if not nonce:
            changed = changed or not state.requested
            state.requested = state.initial = True
            state.forced.update(state.subscribed)
            state.mark(None)
        return RequestResult(type_url, nack=nack, interest_changed=changed)

    def on_delta_request(self, request: discovery_pb2.DeltaDiscoveryRequest) -> RequestResult:
        """Apply an incremental ``DeltaDiscoveryRequest``."""
        self._take_node(request.node if request.HasField("node") else None)
        type_url = request.type_url or self._default_type
        if type_url not in self._served:
            return RequestResult(type_url, ignored=True)
        state = self._state(type_url)
        changed = False
        if not state.requested:
            state.requested = state.initial = changed = True
            state.sent = dict(request.initial_resource_versions)
            state.mark(None)
        if not state.wildcard:
            subscribe = set(request.resource_names_subscribe) - {"*"}
            unsubscribe = set(request.resource_names_unsubscribe)
            added = subscribe - state.subscribed
            gone = unsubscribe & state.subscribed
            state.subscribed = (state.subscribed | added) - unsubscribe
            self._forget(state, unsubscribe)
            state.unresolved -= unsubscribe
            if added:
                state.unresolved.update(added)
                state.mark(added)
            changed = changed or bool(added or gone)
        nonce = request.response_nonce
        if nonce and nonce != state.last_nonce:
            return RequestResult(type_url, stale=True, interest_changed=changed)
        nack = None
        if nonce and request.HasField("error_detail"):
            detail = request.error_detail
            nack = self._nack(state, detail.message, detail.code)
        elif nonce:
            self._ack(state)
        return RequestResult(type_url, nack=nack, interest_changed=changed)

    def notify(self, type_url: str, names: Iterable[str] | None) -> None:
        """The snapshot changed these names of ``type_url`` (``None``: anything may have)."""
        state = self._types.get(type_url)
        if state is not None and state.requested:
            state.mark(names)

    def _take_node(self, node: base_pb2.Node | None) -> None:
        if self.node is None and node is not None:
            self.node = node

    def _state(self, type_url: str) -> _TypeState:
        state = self._types.get(type_url)
        if state is None:
            state = _TypeState(type_url, wildcard=type_url in WILDCARD_TYPES)
            self._types[type_url] = state
        return state

    def _forget(self, state: _TypeState, names: Iterable[str]) -> None:
        """The client dropped these names: whatever it had of them is gone."""
        names = [n for n in names if n in state.sent]
        if names:
            sent = dict(state.sent)
            for name in names:
                del sent[name]
            state.sent = sent

    def _frozen_sent(self, state: _TypeState) -> Mapping[str, str]:
        shared = self.framing is Framing.SOTW and state.wildcard
        return state.sent if shared else dict(state.sent)

    def _ack(self, state: _TypeState) -> None:
        state.acked_nonce = state.last_nonce
        state.acked = self._frozen_sent(state)
        state.acked_sig = state.sent_sig
        state.answered = state.acked
        if state.type_url == CLUSTER_TYPE:
            self._prune_cluster_bodies()
        self._after_answer(state)

    def _nack(self, state: _TypeState, message: str, code: int) -> Nack:
        state.nacked.update(state.last_batch)
        state.answered = self._frozen_sent(state)
        self._after_answer(state)
        return Nack(
            type_url=state.type_url,
            version=state.last_version,
            nonce=state.last_nonce,
            message=str(message),
            code=int(code),
        )

    def _after_answer(self, state: _TypeState) -> None:
        if not self._mbb:
            return
        if state.type_url in (CLUSTER_TYPE, ENDPOINT_TYPE):
            for type_url in _ROUTING_TYPES:  # may open the gate
                if (routing := self._types.get(type_url)) is not None and routing.requested:
                    routing.dirty = True
        elif (clusters := self._types.get(CLUSTER_TYPE)) is not None and clusters.requested:
            clusters.mark(None)  # may let retained clusters go

    # -- responses --------------------------------------------------------------------------

    def next_response(self, snapshot: Snapshot) -> Outgoing | None:
        """The next response to write, in push order, or ``None`` when the client is current."""
        for type_url in self._served:
            state = self._types.get(type_url)
            if state is None or not state.dirty or not state.requested:
                continue
            if self._mbb and type_url in _ROUTING_TYPES and not self._clusters_ready(snapshot):
                continue  # stays dirty; an ACK of CDS or EDS wakes it
            if self.framing is Framing.SOTW and state.wildcard:
                out = self._full_set(state, snapshot)
            else:
                out = self._diff(state, snapshot)
            state.dirty, state.dirty_names, state.initial = False, set(), False
            state.forced.clear()
            state.refresh.clear()
            if out is not None:
                return out
        return None

    def _full_set(self, state: _TypeState, snapshot: Snapshot) -> Outgoing | None:
        current = snapshot.resources(state.type_url)
        kept = self._retained(snapshot) if state.type_url == CLUSTER_TYPE else {}
        bodies = {n: r for n, r in kept.items() if r is not None}
        fields = [snapshot.encoded_resources(state.type_url)]
        entries: Mapping[str, Resource] = current
        sent: Mapping[str, str] = snapshot.versions(state.type_url)
        sig = snapshot.version(state.type_url)
        if bodies:
            entries = {**current, **bodies}
            sent = {n: r.version for n, r in entries.items()}
            sig = set_hash(sent.items())
            fields.extend(r.any_field for r in bodies.values())
        if sig == state.sent_sig and not state.initial:
            return None
        previous = state.sent
        state.sent, state.sent_sig = sent, sig
        nonce = self._next_nonce(state, sig, state.sent)
        if state.type_url == CLUSTER_TYPE:
            self._clusters_sent(snapshot, entries, previous)
        payload = sotw_response(
            version_info=sig,
            resources=fields,
            type_url=state.type_url,
            nonce=nonce,
            control_plane=self._control_plane,
        )
        return Outgoing(state.type_url, nonce, sig, payload, tuple(entries))

    def _diff(self, state: _TypeState, snapshot: Snapshot) -> Outgoing | None:
        type_url = state.type_url
        current = snapshot.resources(type_url)
        kept = self._retained(snapshot) if type_url == CLUSTER_TYPE else {}
        if state.dirty_names is None:
            names = set(current) | set(state.sent) if state.wildcard else set(state.subscribed)
            names |= state.unresolved
        else:
            names = state.dirty_names | state.forced | state.refresh | state.unresolved
        hold = self._held_assignments(snapshot) if type_url == ENDPOINT_TYPE else frozenset()
        changed: dict[str, Resource] = {}
        removed: list[str] = []
        gone: list[str] = []
        for name in sorted(names):
            if not state.wildcard and name not in state.subscribed:
                continue
            resource = current.get(name)
            if resource is None and type_url == ENDPOINT_TYPE:
                if name in state.sent and name not in state.forced and name in hold:
                    continue  # a retained cluster still uses what the client has
                resource = self._empty_assignment(name)
            if resource is None:
                if name in kept:
                    continue
                if name in state.sent or name in state.unresolved:
                    gone.append(name)
                continue
            stale = state.sent.get(name) != resource.version
            refresh = name in state.refresh and state.nacked.get(name) != resource.version
            if stale or refresh or name in state.forced:
                changed[name] = resource
        state.unresolved.clear()
        self._forget(state, gone)
        delta = self.framing is Framing.DELTA
        if delta:
            removed = gone  # SotW cannot say "removed" for these types; the client keeps them
        if not changed and not (delta and (removed or state.initial)):
            return None
        previous = state.sent
        state.sent = {**state.sent, **{n: r.version for n, r in changed.items()}}
        version = snapshot.version(type_url)
        nonce = self._next_nonce(state, version, {n: r.version for n, r in changed.items()})
        if type_url == CLUSTER_TYPE:
            self._clusters_sent(snapshot, changed, previous)
        if delta:
            payload = delta_response(
                system_version_info=version,
                resources=changed.values(),
                removed=removed,
                type_url=type_url,
                nonce=nonce,
                control_plane=self._control_plane,
            )
        else:
            payload = sotw_response(
                version_info=version,
                resources=[r.any_field for r in changed.values()],
                type_url=type_url,
                nonce=nonce,
                control_plane=self._control_plane,
            )
        return Outgoing(type_url, nonce, version, payload, tuple(changed), tuple(removed))

    def _next_nonce(self, state: _TypeState, version: str, batch: Mapping[str, str]) -> str:
        self._nonce += 1
        state.last_nonce = str(self._nonce)
        state.last_version = version
        state.last_batch = batch
        return state.last_nonce

    def _empty_assignment(self, name: str) -> Resource:
        resource = self._empty.get(name)
        if resource is None:
            resource = self._empty[name] = empty_load_assignment(name)
        return resource

    # -- make-before-break ------------------------------------------------------------------

    def _clusters_ready(self, snapshot: Snapshot) -> bool:
        """Has the client accepted every cluster of the snapshot and answered their EDS?"""
        clusters = self._types.get(CLUSTER_TYPE)
        if clusters is None or not clusters.requested:
            return True
        if any(name not in clusters.acked for name in snapshot.resources(CLUSTER_TYPE)):
            return False
        wanted = snapshot.eds_wanted()
        if not wanted:
            return True
        endpoints = self._types.get(ENDPOINT_TYPE)
        answered: Mapping[str, str] = endpoints.answered if endpoints is not None else {}
        return all(name in answered for name in wanted)

    def _routes_converged(self, snapshot: Snapshot) -> bool:
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
                if resource is not None and routes.acked.get(name) != resource.version:
                    return False
        return True

    def _retained(self, snapshot: Snapshot) -> dict[str, Resource | None]:
        """Clusters the client may still route to although the snapshot dropped them."""
        clusters = self._types.get(CLUSTER_TYPE)
        if not self._mbb or clusters is None or self._routes_converged(snapshot):
            return {}
        current = snapshot.resources(CLUSTER_TYPE)
        names = (set(clusters.acked) | set(clusters.sent)) - set(current)
        return {name: self._cluster_bodies.get(name) for name in sorted(names)}

    def _held_assignments(self, snapshot: Snapshot) -> frozenset[str]:
        """EDS names not to blank: no current cluster wants them, but an old one may still.

        Applies without make-before-break too: with per-type services Envoy may still route to
        the old cluster until its new routes arrive on another stream.
        """
        endpoints = self._types.get(ENDPOINT_TYPE)
        if endpoints is None:
            return frozenset()
        return frozenset(endpoints.sent) - snapshot.eds_wanted()

    def _clusters_sent(
        self, snapshot: Snapshot, entries: Mapping[str, Resource], previous: Mapping[str, str]
    ) -> None:
        self._cluster_bodies.update(entries)
        self._prune_cluster_bodies()
        endpoints = self._types.get(ENDPOINT_TYPE)
        if endpoints is None:
            return
        eds_names = snapshot.eds_names()
        for name, resource in entries.items():
            eds_name = eds_names.get(name)
            if previous.get(name) == resource.version or eds_name is None:
                continue
            if eds_name in endpoints.subscribed:
                endpoints.refresh.add(eds_name)
                endpoints.mark((eds_name,))

    def _prune_cluster_bodies(self) -> None:
        clusters = self._types.get(CLUSTER_TYPE)
        if clusters is None:
            return
        live = clusters.acked.keys() | clusters.sent.keys()
        for name in [n for n in self._cluster_bodies if n not in live]:
            del self._cluster_bodies[name]
