"""The snapshot cache: the current configuration, who watches which part of it, and NACKs.

The runtime hands it whole snapshots (``publish``, after a debounced rebuild) and endpoint
changes (``update``, the EDS fast path of ARCHITECTURE §4.4). The cache never builds anything
and never writes to a stream: it swaps its snapshot and tells each interested watcher which
names of which type changed. A watcher (one per stream) pulls responses itself later.

Who is woken:

- a wildcard watcher of a type (LDS, CDS) only if that type's version changed;
- a watcher of named resources (EDS, RDS, SDS) only if one of its names changed. Watchers are
  grouped by subscription, the interned frozenset of ``subscriptions`` (which the cache owns and
  every stream shares): subscription → watchers, and name → subscriptions. Two thousand Envoys
  asking for the same 1,000 EDS names make one group of 1,000 index entries, not two million;
  an endpoint change costs O(subscriptions holding that name + watchers woken), and every
  watcher of a group is told the same frozenset of names.

Readiness: ``ready`` is false until the first ``publish``. Streams that arrive earlier wait on
``wait_ready`` rather than serve an empty configuration, which Envoy would apply.

NACKs are kept in a bounded list (newest last) for the debug endpoint, logged as ``xds.nack``
with Envoy's message and counted in ``controlplane_xds_nacks_total{type}``, because Envoy itself
keeps serving the old configuration and shows no error for it (ARCHITECTURE §8).

Names nobody published: a stream subscribing to a name the snapshot lacks (an Envoy, or
``controlplane xds``, asking EDS for a Service no route references yet) makes the cache ask its
:class:`Resolver` (the publisher) for it, once, when the name is first held by any
subscription: the resolver publishes what it finds through ``update`` before the stream's answer
is computed, and otherwise the stream is answered as usual (an empty ClusterLoadAssignment).
``held`` lists the names some subscription holds, so the resolver can keep what it resolved
while, and only while, someone watches it.

Verdicts go on to whoever contains NACKs (the publisher's quarantine, wired by the runtime): a
:class:`VerdictListener` hears every NACK record, and the ACKs of the types it names in
``ack_types`` only: ACKs are the hot path (every EDS update of every stream), and only a
bisection in progress needs to hear them. A record holds what the rejected response carried
and what that Envoy had accepted before, as the stream's shared maps (nothing is copied).

All methods must be called from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from controlplane.metrics import XdsMetrics, xds_metrics
from controlplane.typeurls import PUSH_ORDER, TYPE_NAMES
from controlplane.xds.sharing import Subscriptions
from controlplane.xds.snapshot import Resource, Snapshot
from controlplane.xds.stream import Nack

__all__ = ["NackRecord", "Resolver", "SnapshotCache", "VerdictListener", "Watcher"]

_SHOWN_RESOURCES = 20  # names of the rejected response the debug endpoint lists

_log = structlog.get_logger(__name__)


class Watcher(Protocol):
    def notify(self, type_url: str, names: frozenset[str]) -> None:
        """These names of ``type_url`` changed in the cache's snapshot."""


@dataclass(frozen=True, slots=True, eq=False)
class NackRecord:
    """One rejected response, as the debug endpoint shows it."""

    node_id: str
    type_url: str
    version: str
    message: str
    code: int
    time: float
    resources: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Name → version of every resource the rejected response carried."""
    accepted: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Name → version of what this Envoy had accepted of the type before."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the debug endpoint."""
        names = sorted(self.resources)
        return {
            "node_id": self.node_id,
            "type_url": self.type_url,
            "version": self.version,
            "message": self.message,
            "code": self.code,
            "time": self.time,
            "resources": names[:_SHOWN_RESOURCES],
            "resource_count": len(names),
        }


class VerdictListener(Protocol):
    """Hears what Envoys said about the responses they were sent."""

    @property
    def ack_types(self) -> frozenset[str]:
        """The types whose ACKs to report (read on every ACK: keep it a cheap attribute)."""

    def nacked(self, record: NackRecord) -> None:
        """An Envoy rejected a response."""

    def acked(self, node_id: str, type_url: str, resources: Mapping[str, str]) -> None:
        """An Envoy accepted a response carrying ``resources`` (name → version)."""


class Resolver(Protocol):
    """Publishes, if it can, resources streams ask for that no snapshot holds."""

    def resolve(self, type_url: str, names: frozenset[str]) -> None:
        """Some subscription now holds ``names`` of ``type_url``, which the snapshot lacks;
        publish those that can be found (``update``) before returning, or nothing."""


class SnapshotCache:
    """Holds the current :class:`Snapshot` and wakes the streams a change concerns."""

    def __init__(
        self,
        *,
        metrics: XdsMetrics | None = None,
        nack_history: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Default: the process-wide registry (what /metrics serves). ``xds_metrics`` returns one
        # object per registry, so any number of caches may share it.
        self.metrics = metrics if metrics is not None else xds_metrics()
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._ready = asyncio.Event()
        self._nacks: deque[NackRecord] = deque(maxlen=nack_history)
        self.subscriptions = Subscriptions()
        self._wildcard: dict[str, set[Watcher]] = {}
        # type → subscription → watchers, and type → name → subscriptions that hold it
        self._groups: dict[str, dict[frozenset[str], set[Watcher]]] = {}
        self._holding: dict[str, dict[str, set[frozenset[str]]]] = {}
        self._interest: dict[Watcher, dict[str, frozenset[str] | None]] = {}
        self._listeners: list[VerdictListener] = []
        self._resolvers: list[Resolver] = []

    # -- the configuration ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    @property
    def current(self) -> Snapshot | None:
        """The current snapshot, or ``None`` before the first publish."""
        return self._snapshot

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot; only valid once ``ready``."""
        if self._snapshot is None:
            raise RuntimeError("no snapshot has been published yet")
        return self._snapshot

    async def wait_ready(self) -> Snapshot:
        await self._ready.wait()
        return self.snapshot

    def publish(self, snapshot: Snapshot) -> None:
        """Replace the whole configuration (the result of a full rebuild)."""
        old, self._snapshot = self._snapshot, snapshot
        self.metrics.snapshots.labels(kind="full").inc()
        if old is None:
            self._ready.set()
            _log.info("xds.ready", **_counts(snapshot))
            for type_url in _in_push_order(snapshot.type_urls):
                self._wake(type_url, frozenset(snapshot.resources(type_url)))
            return
        # Waking in push order lets per-type streams (which no cross-type order binds) at least
        # start with clusters.
        for type_url in _in_push_order(snapshot.type_urls | old.type_urls):
            changed = snapshot.changed_names(old, type_url)
            if changed:
                self._wake(type_url, changed)
        _log.debug("xds.published", **_counts(snapshot))

    def update(self, type_url: str, changes: Mapping[str, Resource | None]) -> None:
        """Replace or remove (``None``) some resources of one type: the EDS fast path."""
        if self._snapshot is None:
            raise RuntimeError("update before the first publish")
        old = self._snapshot
        self._snapshot = old.with_changes(type_url, changes)
        self.metrics.snapshots.labels(kind="endpoints").inc()
        changed = self._snapshot.changed_names(old, type_url)
        if changed:
            self._wake(type_url, changed)

    def _wake(self, type_url: str, changed: frozenset[str]) -> None:
        for watcher in list(self._wildcard.get(type_url, ())):
            watcher.notify(type_url, changed)
        holding = self._holding.get(type_url)
        if not holding:
            return
        hits: dict[frozenset[str], list[str]] = {}
        for name in changed:
            for subscription in holding.get(name, ()):
                hits.setdefault(subscription, []).append(name)
        groups = self._groups[type_url]
        for subscription, names in hits.items():
            shared = changed if len(names) == len(changed) else frozenset(names)
            for watcher in list(groups.get(subscription, ())):
                watcher.notify(type_url, shared)

    # -- watches ----------------------------------------------------------------------------

    def set_interest(self, watcher: Watcher, type_url: str, names: frozenset[str] | None) -> None:
        """Watch ``names`` of ``type_url`` (``None``: every name) instead of what was watched."""
        interest = self._interest.setdefault(watcher, {})
        self._drop(watcher, type_url, interest.get(type_url, frozenset()))
        interest[type_url] = names
        if names is None:
            self._wildcard.setdefault(type_url, set()).add(watcher)
            return
        if not names:
            return
        groups = self._groups.setdefault(type_url, {})
        group = groups.get(names)
        fresh: list[str] = []
        if group is None:
            group = groups[names] = set()
            holding = self._holding.setdefault(type_url, {})
            for name in names:
                held = holding.get(name)
                if held is None:
                    held = holding[name] = set()
                    fresh.append(name)
                held.add(names)
        group.add(watcher)
        if fresh and self._resolvers and self._snapshot is not None:
            present = self._snapshot.resources(type_url)
            missing = frozenset(name for name in fresh if name not in present)
            if missing:
                for resolver in self._resolvers:
                    resolver.resolve(type_url, missing)

    def held(self, type_url: str) -> Collection[str]:
        """The names of ``type_url`` some named subscription holds (a live view)."""
        return self._holding.get(type_url, {}).keys()

    def resolve_with(self, resolver: Resolver) -> None:
        """Ask ``resolver`` for names streams subscribe to that the snapshot lacks."""
        self._resolvers.append(resolver)

    def unwatch(self, watcher: Watcher) -> None:
        for type_url, names in self._interest.pop(watcher, {}).items():
            self._drop(watcher, type_url, names)

    def _drop(self, watcher: Watcher, type_url: str, names: frozenset[str] | None) -> None:
        if names is None:
            self._wildcard.get(type_url, set()).discard(watcher)
            return
        groups = self._groups.get(type_url, {})
        group = groups.get(names)
        if group is None:
            return
        group.discard(watcher)
        if group:
            return
        del groups[names]
        holding = self._holding.get(type_url, {})
        for name in names:
            subscriptions = holding.get(name)
            if subscriptions is not None:
                subscriptions.discard(names)
                if not subscriptions:
                    del holding[name]

    def watchers(self, type_url: str, name: str) -> int:
        """How many watchers are woken when ``name`` of ``type_url`` changes (for tests)."""
        groups = self._groups.get(type_url, {})
        named = sum(len(groups[s]) for s in self._holding.get(type_url, {}).get(name, ()))
        return named + len(self._wildcard.get(type_url, ()))

    # -- NACKs ------------------------------------------------------------------------------

    def record_nack(self, node_id: str, nack: Nack, log: Any = None) -> NackRecord:
        """Remember, log and count a NACK; ``log`` is the stream's bound logger."""
        record = NackRecord(
            node_id=node_id,
            type_url=nack.type_url,
            version=nack.version,
            message=nack.message,
            code=nack.code,
            time=self._clock(),
            resources=nack.resources,
            accepted=nack.accepted,
        )
        self._nacks.append(record)
        type_name = TYPE_NAMES.get(nack.type_url, nack.type_url)
        self.metrics.nacks.labels(type=type_name).inc()
        (log if log is not None else _log).warning(
            "xds.nack",
            node_id=node_id,
            type=type_name,
            version=nack.version,
            nonce=nack.nonce,
            code=nack.code,
            error=nack.message,
        )
        for listener in self._listeners:
            listener.nacked(record)
        return record

    def record_ack(self, node_id: str, type_url: str, resources: Mapping[str, str]) -> None:
        """An Envoy accepted a response: tell the listeners that asked for this type's ACKs."""
        for listener in self._listeners:
            if type_url in listener.ack_types:
                listener.acked(node_id, type_url, resources)

    def listen(self, listener: VerdictListener) -> None:
        """Report every NACK (and the ACKs of ``listener.ack_types``) to ``listener``."""
        self._listeners.append(listener)

    def nacks(self) -> tuple[NackRecord, ...]:
        """The most recent NACKs, oldest first."""
        return tuple(self._nacks)


def _counts(snapshot: Snapshot) -> dict[str, int]:
    return {TYPE_NAMES.get(t, t): len(snapshot.resources(t)) for t in sorted(snapshot.type_urls)}


def _in_push_order(type_urls: frozenset[str]) -> list[str]:
    rank = {t: i for i, t in enumerate(PUSH_ORDER)}
    return sorted(type_urls, key=lambda t: (rank.get(t, len(rank)), t))
