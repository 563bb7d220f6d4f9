"""Kubernetes Events: why an Ingress or IngressRoute is not served as written, where users look.

Ingress has no status conditions, so `kubectl describe ingress` (its Events) is where users look
for why an annotation or a path is ignored; an IngressRoute's status says what is wrong now, and
its Events keep when that changed. The runtime feeds `EventRecorder` after every published build
(`kube_wiring.py`), from the same report the status writers get:

- `observe_problems(INGRESSES, {key: findings})`: the Ingresses' problems (field and reason),
  the whole set each time. A problem becomes an Event when it *appears* on an object: a problem
  that stays across builds is told once, not once per build. New problems of one object found by
  one build are grouped by Event reason, one Event per reason (`IgnoredAnnotation`,
  `InvalidPath`, ...: `problem_reason`), so one Ingress with 10,000 broken paths posts one
  `InvalidPath` Event, whose note counts them and lists as many as fit in the API's 1 KiB.
- `observe_statuses(updates, removed, recheck)`: the IngressRoute statuses a build changed, the
  objects it no longer has a status for, and the objects whose stored copy changed while their
  status did not (never all 20,000 of them: a pass over every status holds the event loop for
  tens of milliseconds; `kube_wiring.py` works out what to hand over). A change of
  `currentStatus` or description becomes an Event (`Valid`, Normal; `Invalid`, `Orphaned`,
  Warning; the note is the description). The first time an object is seen (or seen with a new
  uid: re-created), the change is judged against the status the cluster holds (written by us
  or an earlier leader), so a restart posts nothing for routes whose status is unchanged.

What the recorder has seen is remembered per object (keyed with its uid: a re-created object
starts afresh) and forgotten with the object, so memory is bounded by the objects that exist.

**Repeats become a series.** When the same Event (same object, reason and note) happens again
within `series_window` (6 minutes, client-go's window) of its last occurrence (the problem went
away and came back: a flapping conflict), the recorder does not post a new Event but PATCHes
the existing one's `series` (`count` + 1, `lastObservedTime`), which `kubectl describe` shows as
`(x3 over 2m)`. After the window, or when that Event is gone (404), a new Event is posted.

**Only the leader posts.** Followers observe too (so a new leader does not repeat what the old
one posted), but queue nothing; losing the lead drops the queue and cancels the request in
flight. Events are reports, not state: nothing is replayed when leading again.

**Never flood the API server.** Every Event (create or series patch) takes a token from the
controller's bucket (`rate`/s, `burst`) and from its namespace's bucket (`namespace_rate`/s,
`namespace_burst`), so one tenant with thousands of broken objects spends its own budget and
leaves the others theirs. Without a token the Event is dropped at once, never queued, and
counted in `controlplane_events_dropped_total{reason}`; the queue is bounded too. A send that
fails transiently (429, 5xx, transport) is retried `max_attempts` times with backoff, then
dropped and counted (`failed`). Time is the event loop's clock (tests run on looptime);
`eventTime` comes from `now`, the wall clock.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import secrets
import socket
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes_asyncio import client

from controlplane.metrics import EventMetrics, event_metrics
from controlplane.model import IngressRoute
from controlplane.sources.kube import INGRESS_ROUTES, Resource
from controlplane.sources.kubeclient import (
    MERGE_PATCH,
    Backoff,
    KubeApiError,
    is_transient,
    loop_time,
    request_json,
    resource_path,
)
from controlplane.sources.status import StatusUpdate
from controlplane.store import Store

log = structlog.get_logger(__name__)

__all__ = [
    "CONTROLLER",
    "EventOptions",
    "EventRecorder",
    "EventSpec",
    "Finding",
    "problem_reason",
    "reporting_instance",
    "truncate_note",
]

CONTROLLER = "contour.heptio.com/controlplane"
"""`reportingController` of every Event we post (the `From` column of `kubectl describe`)."""
NOTE_LIMIT = 1024
"""Bytes of `note` the API server accepts."""
EVENTS_GROUP, EVENTS_VERSION = "events.k8s.io", "v1"
_NAME_ROOM = 253 - 17  # an Event's name is the object's name, a dot and 16 hex digits

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of one object, as the DAG reports it: the field at fault and why."""

    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Regarding:
    """The object an Event is about (`regarding`); uid and resourceVersion as the store has it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    resource_version: str

    def body(self) -> dict[str, str]:
        body = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "resourceVersion": self.resource_version,
        }
        return {k: v for k, v in body.items() if v}


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One Event to post: about what, Normal or Warning, a CamelCase reason and the note."""

    regarding: Regarding
    type: str
    reason: str
    note: str
    action: str

    @property
    def series_key(self) -> tuple[str, ...]:
        """What makes two Events the same Event (a series)."""
        r = self.regarding
        return (r.kind, r.namespace, r.name, r.uid, self.type, self.reason, self.note)


@dataclass(frozen=True)
class EventOptions:
    rate: float = 5.0
    """Events per second for the whole controller (token bucket refill)."""
    burst: int = 50
    namespace_rate: float = 0.2
    """Events per second for one namespace: a tenant spends its own budget."""
    namespace_burst: int = 20
    max_queue: int = 1000
    series_window: float = 360.0
    """Seconds: the same Event again within this is a series patch, not a new Event."""
    max_attempts: int = 3
    request_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 5.0
    rand: Callable[[], float] = random.random


def reporting_instance() -> str:
    """`reportingInstance`: this replica (the pod name, or the host name)."""
    return os.environ.get("POD_NAME") or socket.gethostname() or "controlplane"


def truncate_note(text: str, limit: int = NOTE_LIMIT) -> str:
    """`text` cut to `limit` bytes of UTF-8 (never inside a character), marked with `…`."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    ellipsis = "…"
    kept = raw[: limit - len(ellipsis.encode())].decode("utf-8", "ignore")
    return kept + ellipsis


_INDEX = re.compile(r"\[[^\]]*\]")


def problem_reason(finding: Finding) -> str:
    """The Event reason for a problem, one CamelCase word a user can filter on."""
    field, reason = finding.field, finding.reason
    if field == "internal error":
        return "InternalError"
    if field.startswith("metadata.annotations"):
        return "IgnoredAnnotation"
    if "already served" in reason or "belongs to" in reason:
        return "Conflict"
    if reason.startswith("not served:"):
        return "Rejected"
    if field == "apiVersion/kind":
        return "UnsupportedVersion"
    last = _INDEX.sub("", field).rsplit(".", 1)[-1]
    if field.startswith("spec.tls"):
        return "InvalidTLS"
    if ".backend" in field or field.startswith("spec.defaultBackend"):
        return "InvalidBackend"
    if last in ("path", "pathType"):
        return "InvalidPath"
    if last == "host":
        return "InvalidHost"
    return "Invalid"


def _note(findings: Sequence[Finding]) -> str:
    told = [f"{f.field}: {f.reason}" for f in findings]
    text = told[0] if len(told) == 1 else f"{len(told)} problems: " + "; ".join(told)
    return truncate_note(text)


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Bucket:
    """A token bucket that answers at once: a token now, or no (the Event is dropped)."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._updated = float(burst), now

    def level(self, now: float) -> float:
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        return self._tokens

    def take(self) -> None:
        self._tokens -= 1.0


@dataclass(slots=True)
class _Posted:
    """An Event we posted, for series: its name and how often it happened."""

    namespace: str
    name: str
    count: int
    last: float


class EventRecorder:
    """Turns problems and status changes into Events; see the module docstring."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        store: Store,
        instance: str,
        controller: str = CONTROLLER,
        options: EventOptions | None = None,
        metrics: EventMetrics | None = None,
        leader: bool = False,
        clock: Callable[[], float] = loop_time,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api_client = api_client
        self.store = store
        self.instance, self.controller = instance, controller
        self.options = options or EventOptions()
        self.metrics = metrics if metrics is not None else event_metrics()
        self._leader = leader
        self._clock, self._now = clock, now
        self.created = 0
        self.patched = 0
        self._problems: dict[str, dict[Key, tuple[str, frozenset[Finding]]]] = {}
        self._statuses: dict[Key, tuple[str, str | None, str | None]] = {}
        self._bucket: _Bucket | None = None
        self._namespace_buckets: dict[str, _Bucket] = {}
        self._queue: deque[EventSpec] = deque()
        self._posted: OrderedDict[tuple[str, ...], _Posted] = OrderedDict()
        self._sending: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._parked = False

    # -- observing -------------------------------------------------------------------------

    def observe_problems(
        self, resource: Resource, problems: Mapping[Key, Iterable[Finding]]
    ) -> None:
        """The problems of every object of `resource`'s kind (the whole set, each build)."""
        seen = self._problems.setdefault(resource.kind, {})
        now: dict[Key, tuple[str, frozenset[Finding]]] = {}
        specs: list[EventSpec] = []
        for key in sorted(problems):
            regarding = self._regarding(resource, key)
            if regarding is None:
                continue  # not in the cluster (yet): nothing to attach an Event to
            current = frozenset(problems[key])
            before = seen.get(key)
            known = before[1] if before is not None and before[0] == regarding.uid else frozenset()
            now[key] = (regarding.uid, current)
            grouped: dict[str, list[Finding]] = {}
            for finding in sorted(current - known, key=lambda f: (f.field, f.reason)):
                grouped.setdefault(problem_reason(finding), []).append(finding)
            specs += [
                EventSpec(regarding, "Warning", reason, _note(findings), "Translate")
                for reason, findings in sorted(grouped.items())
            ]
        self._problems[resource.kind] = now
        self._submit(specs)

    def observe_statuses(
        self,
        updates: Sequence[StatusUpdate],
        removed: Iterable[Key] = (),
        recheck: Iterable[Key] = (),
    ) -> None:
        """The IngressRoute statuses a build changed (`updates`), the objects it no longer has
        a status for (`removed`: forgotten), and objects to judge again with the status last
        seen (`recheck`: their stored copy changed, e.g. re-created with a new uid). The cost
        is that of what is handed over, whatever the number of IngressRoutes."""
        for key in removed:
            self._statuses.pop(key, None)
        specs: list[EventSpec] = []
        for update in updates:
            wanted = (update.status.current_status, update.status.description)
            self._judge_status((update.namespace, update.name), wanted, specs)
        for key in recheck:
            before = self._statuses.get(key)
            if before is not None:
                self._judge_status(key, before[1:], specs)
        specs.sort(key=lambda spec: (spec.regarding.namespace, spec.regarding.name))
        self._submit(specs)

    def _judge_status(
        self, key: Key, wanted: tuple[str | None, str | None], specs: list[EventSpec]
    ) -> None:
        """Remember `wanted` as the status of `key`; an Event into `specs` if it is a change."""
        stored = self.store.get(INGRESS_ROUTES.kind, *key)
        if stored is None:
            self._statuses.pop(key, None)  # not in the cluster: nothing to attach an Event to
            return
        uid = stored.metadata.uid
        before = self._statuses.get(key)
        if before is not None and before[0] == uid:
            if before[1:] == wanted:
                return
            baseline = before[1:]
        elif isinstance(stored, IngressRoute):
            baseline = (stored.status.current_status, stored.status.description)
        else:
            baseline = (None, None)
        self._statuses[key] = (uid, *wanted)
        if wanted == baseline:
            return
        regarding = self._regarding(INGRESS_ROUTES, key)
        assert regarding is not None  # the store has it: looked up just above
        current = wanted[0] or "invalid"
        specs.append(
            EventSpec(
                regarding,
                "Normal" if current == "valid" else "Warning",
                current.capitalize(),
                truncate_note(wanted[1] or current),
                "Validate",
            )
        )

    def _regarding(self, resource: Resource, key: Key) -> Regarding | None:
        obj = self.store.get(resource.kind, *key)
        if obj is None:
            return None
        meta = obj.metadata
        return Regarding(resource.api_version, resource.kind, *key, meta.uid, meta.resource_version)

    # -- budget ----------------------------------------------------------------------------

    def _submit(self, specs: Sequence[EventSpec]) -> None:
        if not self._leader or not specs:
            return
        dropped: dict[str, int] = {}
        for spec in specs:
            reason = self._admit(spec)
            if reason is None:
                self._queue.append(spec)
            else:
                dropped[reason] = dropped.get(reason, 0) + 1
                self.metrics.dropped.labels(reason=reason).inc()
        if dropped:
            log.warning("events.dropped", **dropped)
        self._wake.set()
        self._progress.set()

    def _admit(self, spec: EventSpec) -> str | None:
        """None if `spec` may be posted (its tokens are taken), else why it is dropped."""
        now = self._clock()
        options = self.options
        if self._bucket is None:
            self._bucket = _Bucket(options.rate, options.burst, now)
        namespace = spec.regarding.namespace
        bucket = self._namespace_buckets.get(namespace)
        if bucket is None:
            self._prune_buckets(now)
            bucket = _Bucket(options.namespace_rate, options.namespace_burst, now)
            self._namespace_buckets[namespace] = bucket
        if len(self._queue) >= options.max_queue:
            return "queue_full"
        if bucket.level(now) < 1.0:
            return "namespace_rate_limited"
        if self._bucket.level(now) < 1.0:
            return "rate_limited"
        bucket.take()
        self._bucket.take()
        return None

    def _prune_buckets(self, now: float) -> None:
        """Forget namespaces whose bucket has refilled: a new one would be just as full."""
        full = [ns for ns, b in self._namespace_buckets.items() if b.level(now) >= b.burst]
        for namespace in full:
            del self._namespace_buckets[namespace]

    # -- leadership and progress -----------------------------------------------------------

    @property
    def leader(self) -> bool:
        return self._leader

    def set_leader(self, leader: bool) -> None:
        """Post (True) or stop posting (False: the queue is dropped, the send in flight
        cancelled). Observing goes on either way."""
        if leader == self._leader:
            return
        self._leader = leader
        if not leader:
            self._queue.clear()
            if self._sending is not None:
                self._sending.cancel()
        self._wake.set()
        self._progress.set()

    def pending(self) -> int:
        return len(self._queue) + (self._sending is not None)

    def idle(self) -> bool:
        """`run` waits for work and has none: nothing queued, nothing in flight."""
        return self._parked and not self._wake.is_set() and self.pending() == 0

    async def drain(self) -> None:
        """Wait until `idle()`; `run()` must be running to get there."""
        while not self.idle():
            self._progress.clear()
            await self._progress.wait()

    # -- posting ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Post queued Events while leader, until cancelled."""
        try:
            while True:
                self._parked = True
                self._progress.set()
                await self._wake.wait()
                self._parked = False
                self._wake.clear()
                while self._leader and self._queue:
                    self._sending = asyncio.create_task(self._deliver(self._queue.popleft()))
                    try:
                        await asyncio.wait([self._sending])
                    finally:
                        self._sending.cancel()
                        self._sending = None
        finally:
            self._parked = False

    async def _deliver(self, spec: EventSpec) -> None:
        backoff = Backoff(
            self.options.backoff_initial, self.options.backoff_max, rand=self.options.rand
        )
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                await self._post(spec)
                return
            except Exception as error:  # transport failures too: events are best effort
                retry = is_transient(error) and attempt < self.options.max_attempts
                if not retry:
                    self.metrics.dropped.labels(reason="failed").inc()
                    log.warning(
                        "events.failed",
                        kind=spec.regarding.kind,
                        namespace=spec.regarding.namespace,
                        name=spec.regarding.name,
                        reason=spec.reason,
                        error=f"{type(error).__name__}: {error}",
                    )
                    return
                await asyncio.sleep(backoff.next())

    async def _post(self, spec: EventSpec) -> None:
        now = self._clock()
        self._forget_old(now)
        key = spec.series_key
        posted = self._posted.get(key)
        if posted is not None:
            try:
                await self._patch_series(posted)
                posted.last = now
                self._posted.move_to_end(key)
                self.patched += 1
                return
            except KubeApiError as error:
                if error.status != 404:
                    raise
                del self._posted[key]  # expired or deleted: post a new one
        name = await self._create(spec)
        self._posted[key] = _Posted(spec.regarding.namespace, name, 1, now)
        self.created += 1

    def _forget_old(self, now: float) -> None:
        window = self.options.series_window
        while self._posted:
            key, oldest = next(iter(self._posted.items()))
            if now - oldest.last < window:
                return
            del self._posted[key]

    async def _create(self, spec: EventSpec) -> str:
        r = spec.regarding
        name = f"{r.name[:_NAME_ROOM]}.{secrets.token_hex(8)}"
        body: dict[str, Any] = {
            "apiVersion": f"{EVENTS_GROUP}/{EVENTS_VERSION}",
            "kind": "Event",
            "metadata": {"name": name, "namespace": r.namespace},
            "eventTime": _micro_time(self._now()),
            "reportingController": self.controller,
            "reportingInstance": self.instance,
            "action": spec.action,
            "reason": spec.reason,
            "type": spec.type,
            "note": spec.note,
            "regarding": r.body(),
        }
        path = resource_path(EVENTS_GROUP, EVENTS_VERSION, "events", namespace=r.namespace)
        await request_json(
            self.api_client,
            "POST",
            path,
            body=body,
            request_timeout=self.options.request_timeout,
        )
        log.debug("events.created", namespace=r.namespace, name=name, reason=spec.reason)
        return name

    async def _patch_series(self, posted: _Posted) -> None:
        series = {"count": posted.count + 1, "lastObservedTime": _micro_time(self._now())}
        path = resource_path(
            EVENTS_GROUP, EVENTS_VERSION, "events", namespace=posted.namespace, name=posted.name
        )
        await request_json(
            self.api_client,
            "PATCH",
            path,
            body={"series": series},
            content_type=MERGE_PATCH,
            request_timeout=self.options.request_timeout,
        )
        posted.count += 1
