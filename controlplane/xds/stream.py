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
  rejected versions, so the same content is never sent again; a change of content is. A
  rejected diff (every framing but SotW LDS/CDS, which always send the full set) is content as
  a whole: once one of its resources changes or goes (the quarantine left the culprit out), the
  others are sent again with it, since the client may have applied none of them. The
  report names what the rejected response carried and what the client had accepted before
  (both shared maps, no copies), and an ACK reports what it accepted: the publisher's
  quarantine works out from these which resource (or which part of one) Envoy refused.
- Answer only when a subscribed resource changed or a name is newly subscribed. LDS and CDS are
  wildcard and in SotW always carry the full set; EDS, RDS and SDS send only changed resources
  (the xDS spec allows it, and Envoy applies each resource to its own watch), which keeps the EDS
  fast path O(changed names). Every requested EDS name is answered, with an empty
  ClusterLoadAssignment if the snapshot lacks it, so clusters never sit warming.
- Responses leave in ``PUSH_ORDER`` (CDS, EDS, SDS, LDS, RDS). Sending a new or changed Cluster
  re-sends the subscribed ClusterLoadAssignment it uses, as Envoy needs one to finish warming it;
  a repeated ACK of the latest EDS nonce is Envoy asking again, and is answered.

Wildcard EDS. LDS and CDS are always wildcard. EDS is wildcard for a stream that asks for it as
the xDS protocol says: a request naming ``*``, or (legacy) a first request that names nothing; it
stays so until a request names resources without ``*`` (SotW) or unsubscribes ``*`` (delta).
Such a stream gets every ClusterLoadAssignment the snapshot holds (the Service ports routes
reference, and those some stream asked for by name, see ``cache.py``), as diffs: only changed
assignments are sent (what the EDS fast path changed), never the full set again, and an
assignment that leaves the snapshot is not blanked (Envoy ignores EDS removals). RDS and SDS
stay named-only: Envoy never asks them for everything.

Make-before-break (ADS only, where one stream carries every type): LDS and RDS wait until the
client has ACKed a CDS holding every cluster of the snapshot and answered the EDS of each of
them. Clusters that left the snapshot stay in CDS (old and new together) until the client has
ACKed the LDS and RDS of the current snapshot; meanwhile their ClusterLoadAssignments are not
blanked.
This relies on Envoy sending the RDS subscriptions of new listeners before its LDS ACK, which it
does (RDS is paused while LDS is applied and resumed before the ACK is queued). If a CDS is
NACKed, routes wait for a CDS the client accepts: old routes keep working meanwhile. Clusters
kept for the client are the ones it accepted: a cluster it rejected is not kept.
The bookkeeping of this gate and of the kept clusters is `stream_make_before_break.py`.

Round trips: nothing here waits on a clock. A new route to a new Service costs exactly what the
gates above require: CDS on the publish, the new ClusterLoadAssignment on Envoy's EDS request
naming it (in the same writer pass as the CDS for a wildcard EDS subscriber), RDS on the ACKs of
both; each pulled by the writer that the request allowing it woke
(`tests/xds/test_xds_round_trips.py`; `bench/stages.py` times it against a real Envoy).

Memory (the point of :mod:`controlplane.xds.sharing`): a stream's subscription is the interned
frozenset every stream with the same names shares (the cache indexes watchers by it), and
``sent``/``acked``/``answered`` are immutable :class:`~controlplane.xds.sharing.Versions`: a
snapshot's shared versions map plus the few names where this client differs. An ACK stores a
reference; a request repeating the subscription keeps the one already held. Bodies of clusters
kept for make-before-break are looked up in the snapshot they were sent from; only the ones the
current snapshot lacks are held per stream.

Framings differ only in how a decision is written: a SotW wildcard type sends the full set with
a set-hash ``version_info``; everything else is a diff (changed resources, and in delta the
removed names, including subscribed names that never existed, except EDS, which gets empty
assignments because Envoy ignores EDS removals).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from itertools import chain
from types import MappingProxyType
from typing import Final

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    PUSH_ORDER,
    WILDCARD_TYPES,
)
from controlplane.xds.responses import delta_response, sotw_response
from controlplane.xds.sharing import NO_NAMES, Subscriptions, Versions, union
from controlplane.xds.snapshot import Resource, Snapshot
from controlplane.xds.stream_make_before_break import ROUTING_TYPES, MakeBeforeBreak
from controlplane.xds.stream_results import Framing, Nack, Outgoing, RequestResult
from controlplane.xds.stream_type_state import TypeState
from controlplane.xds.stream_whole_answer import whole_answer

__all__ = ["Framing", "Nack", "Outgoing", "RequestResult", "StreamState"]

_WILDCARD_CAPABLE = frozenset({ENDPOINT_TYPE})
"""Named types a stream may also subscribe to whole (see the module docstring)."""
_WILDCARD = "*"
# From this many names on, a request's names are found by their encoding (``Subscriptions``):
# encoding them in C and one lookup cost a fifth of making a thousand strings and a set.
_LOOKUP_FROM: Final = 32
_NOT_NAMES: Final = tuple(
    f.name for f in discovery_pb2.DiscoveryRequest.DESCRIPTOR.fields if f.name != "resource_names"
)
# The type URL constants themselves, so a stream keys its state by them rather than by the
# fresh string each request carries.
_TYPE_URLS: Final[Mapping[str, str]] = MappingProxyType({t: t for t in PUSH_ORDER})


class StreamState:
    """The state of one xDS stream, SotW or delta, over one or all resource types."""

    def __init__(
        self,
        framing: Framing,
        *,
        types: Collection[str] = PUSH_ORDER,
        make_before_break: bool = True,
        control_plane: str = "",
        subscriptions: Subscriptions | None = None,
    ) -> None:
        self.framing = framing
        self.node: base_pb2.Node | None = None
        self._served = tuple(t for t in PUSH_ORDER if t in types)
        self._default_type = self._served[0] if len(self._served) == 1 else ""
        self._types: dict[str, TypeState] = {}
        self._mbb = MakeBeforeBreak(
            self._types, enabled=make_before_break and CLUSTER_TYPE in self._served
        )
        self._control_plane = control_plane
        # Shared with every stream of the server (the cache's); a private one for tests.
        self._subscriptions = subscriptions if subscriptions is not None else Subscriptions()
        self._nonce = 0

    # -- requests ---------------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self.node.id if self.node is not None else ""

    def interest(self, type_url: str) -> frozenset[str] | None:
        """The names this stream watches for ``type_url``; ``None`` means every name.

        The frozenset is the interned one: equal subscriptions of other streams are this object.
        """
        state = self._types.get(type_url)
        if state is None:
            return NO_NAMES
        return None if state.wildcard else state.subscribed

    def acked_versions(self) -> dict[str, str]:
        """Type → the version the client last ACKed (for debug pages; ACKed types only)."""
        return {t: s.acked_version for t, s in self._types.items() if s.acked_nonce}

    def requested_types(self) -> tuple[str, ...]:
        return tuple(t for t, s in self._types.items() if s.requested)

    def close(self) -> None:
        """Give the shared subscriptions back; the stream is over."""
        for state in self._types.values():
            self._subscriptions.release(state.subscribed)
            state.subscribed = NO_NAMES

    def on_request(self, request: discovery_pb2.DiscoveryRequest) -> RequestResult:
        """Apply a state-of-the-world ``DiscoveryRequest``."""
        self._take_node(request)
        requested_type = request.type_url or self._default_type
        type_url = _TYPE_URLS.get(requested_type)
        if type_url is None or type_url not in self._served:
            return RequestResult(requested_type, ignored=True)
        state = self._state(type_url)
        nonce = request.response_nonce
        if nonce and nonce != state.last_nonce:
            return RequestResult(type_url, stale=True)
        switched = False
        asked = self._asked(request)
        if type_url in _WILDCARD_CAPABLE:
            wildcard = _WILDCARD in asked or (not state.requested and not asked)
            if state.requested and not asked and state.wildcard:
                wildcard = True  # an ACK of a wildcard subscription names nothing
            switched = self._set_wildcard(state, wildcard)
        names = state.subscribed
        if not state.wildcard and asked is not names and asked != names:
            names = asked  # otherwise the stream keeps the interned set it holds
        nack = None
        acked = None
        if nonce and request.HasField("error_detail"):
            detail = request.error_detail
            nack = self._nack(state, detail.message, detail.code)
        elif nonce:
            acked = state.last_batch
            # The same ACK twice: Envoy re-created a watch (an updated EDS cluster) and asks
            # again. Only EDS needs this; elsewhere it would churn for nothing.
            repeated = state.acked_nonce == nonce and names is state.subscribed
            if repeated and type_url == ENDPOINT_TYPE and state.subscribed:
                state.forced = union(state.forced, state.subscribed)
                state.mark(state.subscribed)
            self._ack(state)
        changed = switched
        if names is not state.subscribed:
            added = self._subscribe(state, names)
            changed = True
            if added:
                state.forced = union(state.forced, added)
                state.mark(added)
        if not nonce:
            changed = changed or not state.requested
            state.requested = state.initial = True
            state.forced = union(state.forced, state.subscribed)
            state.mark(None)
        return RequestResult(type_url, nack=nack, interest_changed=changed, acked=acked)

    def _asked(self, request: discovery_pb2.DiscoveryRequest) -> frozenset[str]:
        """The names ``request`` asks for; a long list is looked up by its encoding."""
        names = request.resource_names
        if len(names) < _LOOKUP_FROM:
            return frozenset(names)
        # A copy through bytes, never MergeFrom into a kept message: upb would fuse the two
        # messages' arenas for good, and every request would stay alive with it.
        copy = discovery_pb2.DiscoveryRequest.FromString(request.SerializeToString())
        for other in _NOT_NAMES:
            copy.ClearField(other)
        return self._subscriptions.by_encoding(copy.SerializeToString(), lambda: names)

    def on_delta_request(self, request: discovery_pb2.DeltaDiscoveryRequest) -> RequestResult:
        """Apply an incremental ``DeltaDiscoveryRequest``."""
        self._take_node(request)
        requested_type = request.type_url or self._default_type
        type_url = _TYPE_URLS.get(requested_type)
        if type_url is None or type_url not in self._served:
            return RequestResult(requested_type, ignored=True)
        state = self._state(type_url)
        changed = False
        if type_url in _WILDCARD_CAPABLE:
            subscribing = request.resource_names_subscribe
            wildcard = state.wildcard
            if _WILDCARD in subscribing or (not state.requested and not subscribing):
                wildcard = True
            if _WILDCARD in request.resource_names_unsubscribe:
                wildcard = False
            changed = self._set_wildcard(state, wildcard)
        if not state.requested:
            state.requested = state.initial = changed = True
            state.sent = Versions(
                scope=None if state.wildcard else state.subscribed,
                overlay=dict(request.initial_resource_versions),
            )
            state.mark(None)
        if not state.wildcard:
            subscribe = frozenset(request.resource_names_subscribe) - {"*"}
            unsubscribe = frozenset(request.resource_names_unsubscribe) - {"*"}
            added = subscribe - state.subscribed
            gone = unsubscribe & state.subscribed
            names = (state.subscribed | added) - unsubscribe
            if names != state.subscribed:
                self._subscribe(state, names)
            state.sent = state.sent.forgetting(unsubscribe)
            if state.unresolved:
                state.unresolved = state.unresolved - unsubscribe
            if added:
                state.unresolved = union(state.unresolved, added)
                state.mark(added)
            changed = changed or bool(added or gone)
        nonce = request.response_nonce
        if nonce and nonce != state.last_nonce:
            return RequestResult(type_url, stale=True, interest_changed=changed)
        nack = None
        acked = None
        if nonce and request.HasField("error_detail"):
            detail = request.error_detail
            nack = self._nack(state, detail.message, detail.code)
        elif nonce:
            acked = state.last_batch
            self._ack(state)
        return RequestResult(type_url, nack=nack, interest_changed=changed, acked=acked)

    def notify(self, type_url: str, names: Iterable[str] | None) -> None:
        """The snapshot changed these names of ``type_url`` (``None``: anything may have)."""
        state = self._types.get(type_url)
        if state is not None and state.requested:
            state.mark(names)

    def _take_node(
        self, request: discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest
    ) -> None:
        if self.node is not None or not request.HasField("node"):
            return
        # Only what identifies the client: Envoy's full Node (extensions, features, metadata)
        # runs to tens of KB, and holding any part of a request keeps all of it alive. Built
        # from Python strings, never CopyFrom/MergeFrom: upb would fuse this message's arena
        # with the request's for good, and keep the whole request alive after all.
        node = request.node
        self.node = base_pb2.Node(id=node.id, cluster=node.cluster)
        if node.HasField("locality"):
            place = node.locality
            self.node.locality.region = place.region
            self.node.locality.zone = place.zone
            self.node.locality.sub_zone = place.sub_zone

    def _state(self, type_url: str) -> TypeState:
        state = self._types.get(type_url)
        if state is None:
            state = TypeState(type_url, wildcard=type_url in WILDCARD_TYPES)
            self._types[type_url] = state
        return state

    def _set_wildcard(self, state: TypeState, wildcard: bool) -> bool:
        """Make a wildcard-capable type's subscription wildcard or named; changed?

        Either way the client keeps what it holds: entering the wildcard, every held version
        stays (unscoped) and the rest of the snapshot is sent; leaving it, the named
        subscription that follows scopes what is held."""
        if state.wildcard == wildcard:
            return False
        state.wildcard = wildcard
        scope = None if wildcard else NO_NAMES
        state.sent = Versions(scope=scope, overlay=dict(state.sent.items()))
        state.acked = Versions(scope=scope, overlay=dict(state.acked.items()))
        state.answered = Versions(scope=scope, overlay=dict(state.answered.items()))
        if wildcard:
            self._subscriptions.release(state.subscribed)
            state.subscribed = NO_NAMES
            state.unresolved = NO_NAMES
        state.mark(None)
        return True

    def _subscribe(self, state: TypeState, names: frozenset[str]) -> frozenset[str]:
        """Replace the subscription with ``names``; the client has nothing of names it dropped.

        Returns the names added.
        """
        old = state.subscribed
        new = self._subscriptions.acquire(names)
        state.subscribed = new
        self._subscriptions.release(old)
        state.sent = state.sent.within(new)
        return new - old if old else new

    def _ack(self, state: TypeState) -> None:
        state.acked_nonce = state.last_nonce
        state.acked_version = state.last_version
        state.acked = state.answered = state.sent
        state.acked_sig = state.sent_sig
        if state.type_url == CLUSTER_TYPE:
            self._mbb.prune_cluster_bodies()
        self._mbb.after_answer(state)

    def _nack(self, state: TypeState, message: str, code: int) -> Nack:
        rejected, accepted = state.last_batch, state.acked
        state.nacked = {**state.nacked, **rejected}
        if self.framing is Framing.SOTW and state.full_sets:
            # The next full set goes out only when it differs (`sent_sig`), but meanwhile the
            # client holds what it accepted: a rejected cluster is not one that make-before-
            # break keeps for it.
            state.sent = accepted
        else:
            pending = state.rejected
            state.rejected = rejected if pending is None else {**pending, **rejected}
        state.answered = state.sent
        self._mbb.after_answer(state)
        return Nack(
            type_url=state.type_url,
            version=state.last_version,
            nonce=state.last_nonce,
            message=str(message),
            code=int(code),
            resources=rejected,
            accepted=accepted,
        )

    # -- responses --------------------------------------------------------------------------

    def next_response(self, snapshot: Snapshot) -> Outgoing | None:
        """The next response to write, in push order, or ``None`` when the client is current."""
        for type_url in self._served:
            state = self._types.get(type_url)
            if state is None or not state.dirty or not state.requested:
                continue
            if (
                self._mbb.enabled
                and type_url in ROUTING_TYPES
                and not self._mbb.clusters_ready(snapshot)
            ):
                continue  # stays dirty; an ACK of CDS or EDS wakes it
            if self.framing is Framing.SOTW and state.full_sets:
                out = self._full_set(state, snapshot)
            else:
                out = self._diff(state, snapshot)
            state.dirty, state.dirty_names, state.initial = False, NO_NAMES, False
            state.forced = state.refresh = NO_NAMES
            if out is not None:
                return out
        return None

    def _full_set(self, state: TypeState, snapshot: Snapshot) -> Outgoing | None:
        type_url = state.type_url
        current = snapshot.resources(type_url)
        kept = self._mbb.retained(snapshot) if type_url == CLUSTER_TYPE else {}
        bodies = {n: r for n, r in kept.items() if r is not None}
        if bodies:
            extra = {n: r.version for n, r in bodies.items()}
            sig = snapshot.version_with(type_url, extra)
        else:
            extra, sig = {}, snapshot.version(type_url)
        if sig == state.sent_sig and not state.initial:
            return None
        previous = state.sent
        state.sent = Versions(snapshot.versions(type_url), None, extra)
        state.sent_sig = sig
        nonce = self._next_nonce(state, sig, state.sent)
        if type_url == CLUSTER_TYPE:
            self._mbb.clusters_sent(snapshot, chain(current.items(), bodies.items()), previous)
        fields = [snapshot.encoded_resources(type_url)]
        fields.extend(r.any_field for r in bodies.values())
        payload = sotw_response(
            version_info=sig,
            resources=fields,
            type_url=type_url,
            nonce=nonce,
            control_plane=self._control_plane,
        )
        return Outgoing(type_url, nonce, sig, payload, (*current, *bodies))

    def _diff(self, state: TypeState, snapshot: Snapshot) -> Outgoing | None:
        type_url = state.type_url
        if self._holds_nothing_of_whole(state):
            return self._whole(state, snapshot)
        current = snapshot.resources(type_url)
        kept = self._mbb.retained(snapshot) if type_url == CLUSTER_TYPE else {}
        if state.dirty_names is None:
            names = set(current) | set(state.sent) if state.wildcard else set(state.subscribed)
            names |= state.unresolved
        else:
            names = set(state.dirty_names)
            names.update(state.forced, state.refresh, state.unresolved)
        if state.rejected is not None and self._rejected_changed(state, current):
            names.update(self._resend_rejected(state))
        sent = state.sent
        wanted = snapshot.eds_wanted() if type_url == ENDPOINT_TYPE else NO_NAMES
        changed: dict[str, Resource] = {}
        removed: list[str] = []
        gone: list[str] = []
        for name in sorted(names):
            if not state.wildcard and name not in state.subscribed:
                continue
            resource = current.get(name)
            held = sent.version(name)
            if resource is None and type_url == ENDPOINT_TYPE:
                if held is not None and name not in state.forced and name not in wanted:
                    continue  # a retained cluster still uses what the client has
                resource = snapshot.empty_assignment(name)
            if resource is None:
                if name in kept:
                    continue
                if held is not None or name in state.unresolved:
                    gone.append(name)
                continue
            stale = held != resource.version
            refresh = name in state.refresh and state.nacked.get(name) != resource.version
            if stale or refresh or name in state.forced:
                changed[name] = resource
        state.unresolved = NO_NAMES
        if gone:
            state.sent = state.sent.forgetting(gone)
        delta = self.framing is Framing.DELTA
        if delta:
            removed = gone  # SotW cannot say "removed" for these types; the client keeps them
        # A first answer goes out even when empty to a delta client, and to a wildcard one
        # (EDS over SotW, whose snapshot may hold no assignment yet): it learns there is none.
        if (
            not changed
            and not (delta and removed)
            and not (state.initial and (delta or state.wildcard))
        ):
            return None
        previous = state.sent
        sent = previous.updated({n: r.version for n, r in changed.items()})
        if state.dirty_names is None or sent.wants_rebase():
            sent = sent.rebased(snapshot.versions(type_url))
        state.sent = sent
        version = snapshot.version(type_url)
        batch: frozenset[str]
        if not state.wildcard and len(changed) == len(state.subscribed):
            batch = state.subscribed  # everything: share the subscription, not a copy of it
        else:
            batch = frozenset(changed)
        nonce = self._next_nonce(state, version, Versions(sent, batch))
        if type_url == CLUSTER_TYPE:
            self._mbb.clusters_sent(snapshot, changed.items(), previous)
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

    def _holds_nothing_of_whole(self, state: TypeState) -> bool:
        """Is this a named SotW subscription, all dirty, of which the client holds nothing?

        Then ``_diff`` would send every subscribed resource, and ``stream_whole_answer`` has
        that answer already computed for every stream with the same subscription.
        """
        sent = state.sent
        return (
            state.dirty_names is None
            and self.framing is Framing.SOTW
            and not state.wildcard
            and state.type_url != CLUSTER_TYPE
            and state.rejected is None
            and not state.unresolved
            and bool(state.subscribed)
            and not sent.base
            and not sent.overlay
        )

    def _whole(self, state: TypeState, snapshot: Snapshot) -> Outgoing | None:
        type_url = state.type_url
        answer = whole_answer(snapshot, type_url, state.subscribed)
        state.unresolved = NO_NAMES
        if not answer.names:
            return None
        state.sent = answer.sent
        version = snapshot.version(type_url)
        batch = state.subscribed if answer.complete else frozenset(answer.names)
        nonce = self._next_nonce(state, version, Versions(answer.sent, batch))
        payload = sotw_response(
            version_info=version,
            resources=(answer.fields,),
            type_url=type_url,
            nonce=nonce,
            control_plane=self._control_plane,
        )
        return Outgoing(type_url, nonce, version, payload, answer.names, ())

    def _rejected_changed(self, state: TypeState, current: Mapping[str, Resource]) -> bool:
        """Has anything of the rejected diff changed (a new version, or gone)?"""
        rejected = state.rejected
        assert rejected is not None
        dirty = state.dirty_names
        names = rejected if dirty is None else [n for n in dirty if n in rejected]
        for name in names:
            resource = current.get(name)
            if resource is None or resource.version != rejected[name]:
                return True
        return False

    def _resend_rejected(self, state: TypeState) -> list[str]:
        """The client holds what it accepted before, not the rejected diff (Envoy applies none
        of a response it refuses in decoding, and we cannot tell which parts it applied): once
        that diff changed, its other resources are sent again with the change. Until then they
        are not, so an unchanged rejected response is never sent twice."""
        rejected, accepted = state.rejected, state.acked
        assert rejected is not None
        state.rejected = None
        reverted = {
            name: accepted.version(name)
            for name in rejected
            if accepted.version(name) != rejected[name] and name in state.sent
        }
        state.sent = state.sent.updated(reverted)
        return list(reverted)

    def _next_nonce(self, state: TypeState, version: str, batch: Mapping[str, str]) -> str:
        self._nonce += 1
        state.last_nonce = str(self._nonce)
        state.last_version = version
        state.last_batch = batch
        return state.last_nonce
