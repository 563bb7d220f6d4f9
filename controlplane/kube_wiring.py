"""Cluster mode: informers into the store, status writers and Events fed by every build, leader
election.

Every replica watches and serves xDS; only the leader writes status and posts Events. Without
`--leader-election` the writers write at once (a single replica). Each published build's report
goes to the status writers and to the `EventRecorder` (sources/events.py): IngressRoute statuses
(their changes become Events) and the problems of Ingresses (which have no status: an Event is
the only place `kubectl describe ingress` shows them besides the log). A problem that reports
a bug carries a traceback: its Event says only that; the log has the rest.

The listeners run on the event loop, so they are handed only what changed (`StatusListeners`,
`StatusFeed`): at 20,000 IngressRoutes a pass over every status held the loop for 20-25 ms per
listener after each build, whatever changed. After a build they get
- the statuses new or different since the last report, and the objects that no longer have one
  (`publisher.status_changes`: an identity pass, since the DAG keeps unchanged statuses);
- the IngressRoutes whose stored copy changed since the last build while their status did not
  (`recheck`): a re-created object holds no status yet, and has a new uid for the Events.
Between builds, an update that changes only an IngressRoute's `.status` (someone else wrote it;
the store emits no `Change` for it, so there is no rebuild) is told by the store's status
listener, and the status writer judges that one object's wish again: the status is put back.
A new leader re-checks every wish once (`PatchWriter.set_leader`), so it catches up with what
the previous leader left undone; the Event recorder observes as a follower too, so it does not
repeat what was told.

What a build hands out is cut into pieces of at most 1,000 statuses per listener, each run in a
loop turn of its own (`Turns`, one queue, so pieces reach each listener in build order): the
first build hands out every status (20,000 at 10k+10k, 20-80 ms per listener at once), and
`/readyz`, xDS streams and watch events get turns in between.

The runtime calls `start_kube_sources` when no `--manifests` directory is given and cancels the
tasks it returns, in order, on shutdown (the leader elector first, so the Lease is released
while the API client is still open).
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import structlog

from controlplane.config import ServeSettings
from controlplane.dag import (
    INTERNAL_ERROR,
    BuildOptions,
    ObjectStatus,
    Problem,
    ingresses_of_our_class,
)
from controlplane.model import IngressRoute, KubeObject, ObjectSet
from controlplane.publisher import PublishReport, status_changes
from controlplane.sources import (
    INGRESSES,
    EventRecorder,
    Finding,
    IngressStatusWriter,
    KubeSource,
    LeaderElector,
    Leadership,
    StatusUpdate,
    StatusWriter,
    lease_namespace,
    make_api_client,
    parse_service_ref,
    reporting_instance,
)
from controlplane.store import Change, Store

log = structlog.get_logger(__name__)

__all__ = [
    "BuildListener",
    "StatusFeed",
    "StatusHandout",
    "StatusListeners",
    "Turns",
    "ingress_findings",
    "start_kube_sources",
]

BuildListener = Callable[[PublishReport, ObjectSet], None]
"""Called after each published build (status writers): must not block."""


_INTERNAL_ERROR_NOTE = "internal error while building this object; the controller's log has details"


def ingress_findings(problems: Iterable[Problem]) -> dict[tuple[str, str], list[Finding]]:
    """The problems of Ingresses by (namespace, name), as the Event recorder takes them."""
    found: dict[tuple[str, str], list[Finding]] = {}
    for problem in problems:
        if problem.kind != INGRESSES.kind:
            continue
        reason = _INTERNAL_ERROR_NOTE if problem.field == INTERNAL_ERROR else problem.reason
        key = (problem.namespace, problem.name)
        found.setdefault(key, []).append(Finding(problem.field, reason))
    return found


Key = tuple[str, str]


HANDOUT_TURN = 1000
"""Statuses (or keys) handed to one listener in one loop turn: at 20,000 IngressRoutes the first
build's handout (every status) is 20 turns of a few milliseconds each, not one of 100 ms."""


@dataclass(frozen=True, slots=True)
class StatusHandout:
    """What the IngressRoute status listeners look at after one build (see the docstring):
    statuses new or changed, keys of those gone, keys of objects to judge again."""

    changed: tuple[ObjectStatus, ...] = ()
    removed: tuple[Key, ...] = ()
    recheck: tuple[Key, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed or self.recheck)


class StatusFeed:
    """Works out, after each build, which IngressRoute statuses the listeners must look at: the
    statuses that changed since the last build's report, those gone, and the objects whose
    stored copy changed meanwhile (`store.subscribe(feed.changed)`)."""

    def __init__(self) -> None:
        self._last: Sequence[ObjectStatus] = ()
        self._touched: dict[Key, None] = {}  # an ordered set: the order the store saw them

    def changed(self, change: Change) -> None:
        """A store listener: an IngressRoute added or changed is looked at after the next build."""
        if change.key.kind == IngressRoute.KIND and change.new is not None:
            self._touched[(change.key.namespace, change.key.name)] = None

    def next(self, statuses: Sequence[ObjectStatus]) -> StatusHandout:
        """What to hand the listeners for a report with `statuses` (then taken as seen)."""
        first = not self._last
        delta = status_changes(self._last, statuses)
        self._last = statuses
        touched, self._touched = self._touched, {}
        changed = tuple(s for s in delta.changed if s.kind == IngressRoute.KIND)
        removed = tuple((ns, name) for kind, ns, name in delta.removed if kind == IngressRoute.KIND)
        if first:
            return StatusHandout(changed, removed)  # every status is new: nothing to judge again
        for key in removed:
            touched.pop(key, None)
        for status in changed:
            touched.pop((status.namespace, status.name), None)
        return StatusHandout(changed, removed, tuple(touched))


Step = Callable[[], None]


class Turns:
    """Runs steps in the order given, one per event-loop turn, so that sockets (xDS streams,
    `/readyz`, watch events) are served between them. A step that raises is logged; the next
    one runs."""

    def __init__(self) -> None:
        self._steps: deque[Step] = deque()
        self._scheduled = False

    def add(self, step: Step) -> None:
        self._steps.append(step)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def pending(self) -> int:
        """Steps not run yet."""
        return len(self._steps)

    def _run(self) -> None:
        step = self._steps.popleft()
        try:
            step()
        except Exception:  # one listener's bug must not stop what is handed to the others
            log.exception("build_listener.failed", step=getattr(step, "__name__", repr(step)))
        finally:
            if self._steps:
                asyncio.get_running_loop().call_soon(self._run)
            else:
                self._scheduled = False


class _Piece:
    """Statuses handed out in one turn, made `StatusUpdate`s once, when first needed (in a
    listener's turn, not in the build listener's)."""

    def __init__(self, statuses: Sequence[ObjectStatus]) -> None:
        self._statuses = statuses
        self._updates: tuple[StatusUpdate, ...] | None = None

    def updates(self) -> tuple[StatusUpdate, ...]:
        if self._updates is None:
            statuses = self._statuses
            self._updates = tuple(StatusUpdate(s.namespace, s.name, s.status) for s in statuses)
        return self._updates

    def then(self, listener: Callable[[Sequence[StatusUpdate]], None]) -> Step:
        """A step that hands these statuses to `listener`."""

        def step() -> None:
            listener(self.updates())

        step.__name__ = getattr(listener, "__name__", "listener")
        return step


class StatusListeners:
    """The build listener of cluster mode (a `BuildListener`): subscribes the status writer and
    the Event recorder to `store` as the module docstring says, and after each published build
    hands them what changed, in pieces of at most `turn` statuses or keys per listener and loop
    turn, in order (a later build's pieces come after an earlier one's)."""

    def __init__(
        self,
        store: Store,
        status: StatusWriter,
        events: EventRecorder,
        build_options: BuildOptions,
        ingress_status: IngressStatusWriter | None = None,
        *,
        turn: int = HANDOUT_TURN,
    ) -> None:
        self.status, self.events, self.ingress_status = status, events, ingress_status
        self.build_options = build_options
        self.turn = turn
        self._feed = StatusFeed()
        self._turns = Turns()
        store.subscribe(self._feed.changed)
        store.subscribe_status(self._status_only)

    def pending(self) -> int:
        """Steps handed out and not run yet (0: the listeners have seen every build)."""
        return self._turns.pending()

    def __call__(self, report: PublishReport, objects: ObjectSet) -> None:
        handout = self._feed.next(report.statuses)
        if handout:
            self._hand_out(handout)
        findings = ingress_findings(report.problems)
        self._turns.add(functools.partial(self.events.observe_problems, INGRESSES, findings))
        if self.ingress_status is not None:
            self.ingress_status.submit(ingresses_of_our_class(objects, self.build_options))

    def _status_only(self, obj: KubeObject) -> None:
        """The store's status listener: someone changed this object's status, nothing else."""
        if isinstance(obj, IngressRoute):
            self.status.recheck(((obj.metadata.namespace, obj.metadata.name),))

    def _hand_out(self, handout: StatusHandout) -> None:
        status, events, turns, turn = self.status, self.events, self._turns, self.turn
        for at in range(0, len(handout.removed), turn):
            removed = handout.removed[at : at + turn]
            turns.add(functools.partial(status.submit, (), removed))
            turns.add(functools.partial(events.observe_statuses, (), removed))
        for at in range(0, len(handout.changed), turn):
            piece = _Piece(handout.changed[at : at + turn])
            turns.add(piece.then(status.submit))
            turns.add(piece.then(events.observe_statuses))
        for at in range(0, len(handout.recheck), turn):
            recheck = handout.recheck[at : at + turn]
            turns.add(functools.partial(status.recheck, recheck))
            turns.add(functools.partial(events.observe_statuses, (), (), recheck))


async def start_kube_sources(
    settings: ServeSettings,
    store: Store,
    synced: asyncio.Event,
    build_listeners: list[BuildListener],
    build_options: BuildOptions,
    leadership: Leadership | None = None,
) -> list[asyncio.Task[None]]:
    """Informers into `store` (setting `synced` after the initial list); status writers fed by
    every build (appended to `build_listeners`); leader election for them (its state kept in
    `leadership`)."""
    api = await make_api_client(settings.kubeconfig)
    leading_now = not settings.leader_election
    leadership = leadership if leadership is not None else Leadership()
    if leading_now:
        leadership.mode = "single"
        leadership.set_writes_status(True)
    source = KubeSource(
        api,
        store,
        watch_namespaces=settings.watch_namespaces,
        root_namespaces=settings.root_namespaces,
    )
    status = StatusWriter(api, store=store, leader=leading_now)
    events = EventRecorder(api, store=store, instance=reporting_instance(), leader=leading_now)
    writers: list[StatusWriter | IngressStatusWriter | EventRecorder] = [status, events]
    ingress_status: IngressStatusWriter | None = None
    if settings.ingress_status_address or settings.envoy_service:
        ingress_status = IngressStatusWriter(
            api,
            address=settings.ingress_status_address,
            envoy_service=(
                None
                if settings.ingress_status_address
                else parse_service_ref(settings.envoy_service or "")
            ),
            store=store,
            leader=leading_now,
        )
        writers.append(ingress_status)

    build_listeners.append(StatusListeners(store, status, events, build_options, ingress_status))

    def lead(leading: bool) -> Callable[[], None]:
        def toggle() -> None:
            log.info("leader.changed", leading=leading)
            for writer in writers:
                writer.set_leader(leading)

        return toggle

    tasks = [
        asyncio.create_task(source.run(synced), name="informers"),
        *(asyncio.create_task(writer.run(), name=type(writer).__name__) for writer in writers),
    ]
    if settings.leader_election:
        namespace, origin = settings.leader_election_namespace, "--leader-election-namespace"
        if namespace is None:
            namespace, origin = lease_namespace(settings.kubeconfig)
        elector = LeaderElector(
            api,
            namespace=namespace,
            namespace_origin=origin,
            leadership=leadership,
            name=settings.leader_election_name,
            lease_duration=settings.lease_duration,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
            on_started_leading=lead(True),
            on_stopped_leading=lead(False),
        )
        # First in the list: cancelled first on shutdown, so the Lease is released promptly.
        tasks.insert(0, asyncio.create_task(elector.run(), name="leader-election"))

    async def close_client() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await api.close()

    tasks.append(asyncio.create_task(close_client(), name="api-client"))
    return tasks
