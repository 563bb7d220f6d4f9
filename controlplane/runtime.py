"""Wiring and timing: sources → store → holdoff → DAG builder → publisher → xDS server.

This is the only module (with `cli.py`) that knows every layer, and it owns no logic of its own
beyond deciding *when* things happen:

- Every non-endpoint change pokes the holdoff; the holdoff runs `rebuild()` 100 ms after the last
  change and at most 500 ms after the first. A rebuild reads an immutable ObjectSet from the
  store, builds the DAG (`dag.DagBuilder`, warm) and hands it to the publisher, which
  translates, diffs and publishes; resources whose bytes did not change keep their version, so
  Envoy sees no push for them.
- Endpoint changes (EndpointSlice, Endpoints) take the publisher's fast path at once, without a
  rebuild.
- The loop never waits for a build. A rebuild takes the ObjectSet on the loop (a copy of the
  store's maps; the objects are frozen, so the store can change meanwhile), runs the DAG build
  and the translation in a build thread (`Publisher.prepare`: every value translated, each new
  resource framed, a first snapshot's set hashes computed), and publishes on the loop
  (`Publisher.publish` finds all that done: it applies the quarantine, diffs and hands the
  snapshot to the cache, whose grpc.aio streams belong to the loop). The GIL's switch
  interval (5 ms) lets the loop in while the thread works. Measured on 2 cores (bench
  `loop_lag`): the longest loop lag during a cold 10k+10k build went from the whole build
  (2.1-2.5 s) to ~15 ms, and during a rebuild of one 10,000-route IngressRoute from ~0.4 s to
  ~15-20 ms (the longest C call in the thread: upb copying 10,000 routes into one VirtualHost
  holds the GIL ~12 ms). The alternatives measured worse: slices cannot split one object (that
  IngressRoute alone compiles in 0.5 s), and a process must ship objects and results (pickling
  the 10k+10k ObjectSet takes 2.8 s; unpickling its DAG, on the loop, 2 s).
- Invariants of the build thread. Only the DagBuilder and the publisher's translator are
  touched there, one build at a time (`_one_build`; a build whose caller was cancelled runs
  on and is waited for before the next starts). Nothing on the loop translates meanwhile: a
  NACK verdict's republish is deferred to the build's publish, which applies the quarantine
  as it is then (republished at once if the build fails instead). The EDS fast path keeps
  running on the loop during a build, against the published cluster set (the topology of the
  last publish); the build is published with the endpoints as the store holds them *at
  publish time* (`Store.with_current_endpoints`; the DAG reads no endpoints). So an endpoint
  change during a build is pushed at once and never replaced by the older copy the build
  started from, and a new cluster set arrives with the current endpoints of its clusters.
- The collector: off during a build (nothing a build makes is cyclic garbage), and off during
  the initial load in `serve` (`pause_gc_until_first_build`); after each publish the heap is
  frozen *before* the collector is back on (see `_rebuild`).
- Readiness: `ready` is set only when every source has finished its initial load *and* the first
  snapshot built from it is published. The xDS cache itself holds Envoys' requests until that
  first snapshot, so an Envoy restarting never receives a half-empty configuration.
- After each publish, `build_listeners` get the DAG (the status writers in a cluster); problems
  of kinds without status are logged once each, when they first appear.
- NACK containment: the publisher hears the cache's verdicts and decides what to leave out
  (`publisher/quarantine.py`); when that changes, it calls back here and the runtime
  republishes on the next turn of the loop (never from inside the cache's dispatch), without
  a DAG build, and hands the new report to the build listeners, so the owner's status says it.
- Metrics (`metrics.py`): `controlplane_event_loop_lag_seconds` (a `LoopLag` timer every
  100 ms); each rebuild sets Contour's `contour_dagrebuild_*` and our build and
  publish durations; a rebuild that raises is counted (`controlplane_build_failures_total`) and
  left to the holdoff, which logs it and keeps going. The per-object gauges and the status page
  read `view()`: the last build's `web.ClusterView`, made when first asked for after a build
  and kept until the next, so the build path pays nothing for them.
- Where no backend may point (`refused_networks_from`): one NetworkSet, decided here from the
  source (a cluster refuses the local networks, the file source none) and the flags, and given
  to both the DAG (ExternalName targets) and the translator (endpoint addresses).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import structlog

from controlplane.addresses import NetworkSet, refused_networks
from controlplane.config import ServeSettings
from controlplane.dag import (
    DAG,
    INTERNAL_ERROR,
    BuildOptions,
    DagBuilder,
    Problem,
    ingresses_of_our_class,
)
from controlplane.envoy import TranslateOptions
from controlplane.health import start_health_server
from controlplane.holdoff import Holdoff
from controlplane.kube_wiring import BuildListener, start_kube_sources
from controlplane.logging import configure_logging
from controlplane.metrics import (
    BuildMetrics,
    LoopLag,
    LoopMetrics,
    ObjectCounts,
    PipelineMetrics,
    build_metrics,
    loop_metrics,
    object_metrics,
    pipeline_metrics,
    status_metrics,
)
from controlplane.model import ObjectSet
from controlplane.publisher import Prepared, Publisher, PublishReport
from controlplane.sources import FileSource, Leadership
from controlplane.store import Change, NamespacedName, Store
from controlplane.web import ClusterView
from controlplane.xds import SnapshotCache, TlsFiles, XdsServer

log = structlog.get_logger(__name__)

INITIAL_LOAD_GC_LIMIT = 120.0
"""Seconds the collector may stay off for the initial load (`pause_gc_until_first_build`)."""


@dataclass(frozen=True, slots=True)
class _Built:
    """What the build thread hands back to the loop."""

    dag: DAG
    prepared: Prepared
    build_seconds: float
    prepare_seconds: float


class Runtime:
    def __init__(
        self,
        *,
        build_options: BuildOptions,
        translate_options: TranslateOptions,
        cache: SnapshotCache,
        holdoff_delay: float = 0.1,
        holdoff_max_delay: float = 0.5,
        store: Store | None = None,
        metrics: PipelineMetrics | None = None,
        rebuild_metrics: BuildMetrics | None = None,
        lag_metrics: LoopMetrics | None = None,
    ) -> None:
        self.store = store or Store()
        self.cache = cache
        self.build_options = build_options
        self.dag_builder = DagBuilder()
        self.publisher = Publisher(
            translate_options, cache, metrics, on_change=self._quarantine_changed
        )
        self._objects: ObjectSet | None = None
        self._republish_pending = False
        self.holdoff = Holdoff(self.rebuild, delay=holdoff_delay, max_delay=holdoff_max_delay)
        self.build_listeners: list[BuildListener] = []
        self._problems: set[Problem] = set()
        self.metrics = metrics if metrics is not None else pipeline_metrics()
        self.build_metrics = rebuild_metrics if rebuild_metrics is not None else build_metrics()
        self._view: ClusterView | None = None
        self.leadership = Leadership(gauge=status_metrics().leader)  # whether we write status
        self._sources_pending = 0
        self._synced = asyncio.Event()
        self.ready = asyncio.Event()
        self.loop_lag = LoopLag(loop_metrics() if lag_metrics is None else lag_metrics)
        self._inflight: Future[_Built] | None = None
        """The build thread's work, until it is done (even if its caller was cancelled)."""
        self._one_build = asyncio.Lock()
        self._building = False
        self._republish_deferred = False
        self._gc_paused = False
        self._gc_limit: asyncio.TimerHandle | None = None
        self.store.subscribe(self._on_change)

    @property
    def synced(self) -> bool:
        """Every source finished its initial load (endpoint changes take the fast path now)."""
        return self._synced.is_set()

    @property
    def last_build(self) -> PublishReport | None:
        """What the last rebuild published (the DAG, versions, duration)."""
        return self.publisher.last

    # -- sources ---------------------------------------------------------------------------

    def pause_gc_until_first_build(self, limit: float = INITIAL_LOAD_GC_LIMIT) -> None:
        """No garbage collection during the initial load: until the first build is published
        (whose freeze moves everything loaded into the permanent generation), or `limit`
        seconds at most, or `stop()`.

        The initial load only adds long-lived objects (the store grows to every object of the
        cluster), and the collector's full passes over them grew with it: at 10k+10k they
        took 2.5 s of the start in all, the longest 0.6 s, on the loop."""
        if not gc.isenabled():
            return
        gc.disable()
        self._gc_paused = True
        self._gc_limit = asyncio.get_running_loop().call_later(limit, self._gc_limit_reached)

    def _gc_limit_reached(self) -> None:
        self._gc_limit = None
        if self._gc_paused and not self._building:
            log.warning("gc.resumed_before_first_build", limit_s=INITIAL_LOAD_GC_LIMIT)
            self._resume_gc()

    def _resume_gc(self) -> None:
        if self._gc_limit is not None:
            self._gc_limit.cancel()
            self._gc_limit = None
        self._gc_paused = False
        gc.enable()

    def source_synced_event(self) -> asyncio.Event:
        """An event a source sets when its initial load is complete; readiness waits for all."""
        event = asyncio.Event()
        self._sources_pending += 1

        async def wait() -> None:
            await event.wait()
            self._sources_pending -= 1
            if self._sources_pending == 0:
                self._synced.set()
                self.holdoff.poke()

        asyncio.get_running_loop().create_task(wait(), name="source-synced")
        return event

    def _on_change(self, change: Change) -> None:
        if not self._synced.is_set():
            return  # the first build after the initial load covers everything
        if change.is_endpoint_change:
            if change.service is not None:
                self.refresh_endpoints(change.service)
            return
        self.holdoff.poke()

    # -- the two paths ---------------------------------------------------------------------

    def refresh_endpoints(self, service: NamespacedName) -> None:
        """EDS fast path: publish this Service's ClusterLoadAssignments at once."""
        started = time.perf_counter()
        changed = self.publisher.publish_endpoints(
            service, self.store.slices_for(*service), self.store.endpoints_for(*service)
        )
        if changed:
            duration = time.perf_counter() - started
            self.build_metrics.publish_duration.labels(kind="endpoints").observe(duration)
        # one per EndpointSlice change: a busy cluster makes many
        log.debug("endpoints.published", service="/".join(service), clusters=changed)

    async def rebuild(self) -> None:
        """Build the DAG of the store as it is now and publish it (see the module docstring:
        the build and translation run in the build thread, the publish on the loop)."""
        async with self._one_build:
            if self._inflight is not None and not self._inflight.done():
                with contextlib.suppress(Exception):  # its caller was cancelled: let it end
                    await asyncio.wrap_future(self._inflight)
            await self._rebuild()

    def _in_build_thread(self, objects: ObjectSet) -> Future[_Built]:
        """Run `_build(objects)` in a thread of its own (a daemon: a build never holds up the
        interpreter's exit; a thread per build costs ~0.1 ms and none lingers afterwards)."""
        future: Future[_Built] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self._build(objects))
            except BaseException as error:  # handed to the awaiting rebuild, which re-raises
                future.set_exception(error)

        threading.Thread(target=run, name="build", daemon=True).start()
        self._inflight = future
        return future

    def _build(self, objects: ObjectSet) -> _Built:
        """The build thread's work: pure, on values the loop no longer changes."""
        started = time.perf_counter()
        dag = self.dag_builder.build(objects, self.build_options)
        built = time.perf_counter()
        prepared = self.publisher.prepare(dag, objects)
        return _Built(dag, prepared, built - started, time.perf_counter() - built)

    async def _rebuild(self) -> None:
        # A first build allocates millions of long-lived objects; with the collector running,
        # each allocation burst triggers passes over everything built so far (a third of a
        # 10,000-object build). Nothing a build makes is cyclic garbage, so collect afterwards.
        metrics = self.build_metrics
        collecting = gc.isenabled() or self._gc_paused
        gc.disable()
        self._building = True
        published = False
        try:
            started = time.perf_counter()
            endpoints_then = self.store.endpoint_generation
            objects = self.store.object_set()
            done = await asyncio.wrap_future(self._in_build_thread(objects))
            dag = done.dag
            publishing = time.perf_counter()
            # The build read a copy of the store; endpoints may have moved since (the fast
            # path published them meanwhile): publish them as they are now.
            if self.store.endpoint_generation != endpoints_then:
                objects = self.store.with_current_endpoints(objects)
            report = self.publisher.publish(dag, objects, done.prepared)
            published = True  # with the quarantine as it is now: every verdict so far applied
            finished = time.perf_counter()
        except Exception:
            metrics.build_failures.inc()  # the holdoff logs it and keeps rebuilding
            raise
        finally:
            self._building = False
            if published:
                # The configuration of a large cluster is millions of long-lived objects; a full
                # collection walks them all (0.25 s at 10,000 IngressRoutes) and stalls every
                # xDS stream meanwhile. Freezing after each build, before the collector is back
                # (the first allocation after would start that very collection), moves what is
                # live into the permanent generation, so the collector only looks at what is
                # new. Reference cycles among frozen objects that die later are not reclaimed;
                # the DAG and the snapshots are acyclic values.
                gc.freeze()
            if collecting:
                self._resume_gc()
            if self._republish_deferred:
                self._republish_deferred = False
                if not published:  # the build failed: the verdicts still need a republish
                    self._quarantine_changed()
        metrics.dagrebuilds.inc()
        metrics.dagrebuild_timestamp.set(time.time())
        metrics.build_duration.observe(done.build_seconds)
        metrics.publish_duration.labels(kind="build").observe(
            done.prepare_seconds + finished - publishing
        )
        metrics.onupdate_duration.observe(finished - started)
        log.info(
            "snapshot.published",
            sequence=report.sequence,
            virtual_hosts=len(dag.virtual_hosts),
            secure_virtual_hosts=len(dag.secure_virtual_hosts),
            statuses=len(report.statuses),
            rejected=len(report.rejections),
            quarantined=len(report.quarantined),
            duration_ms=report.duration_ms,
        )
        self._objects = objects
        if self._synced.is_set() and not self.ready.is_set():
            self.ready.set()  # published: the status writers' work below is not readiness
            log.info("controlplane.ready")
        self._after_publish(report, objects)

    def _after_publish(self, report: PublishReport, objects: ObjectSet) -> None:
        self._view = None  # made again from this report when first asked for
        # The status writers and Events come after the xDS writers this publish woke (their
        # wake-ups are already queued on the loop): Envoys first, bookkeeping second.
        asyncio.get_running_loop().call_soon(self._notify_listeners, report, objects)

    def _notify_listeners(self, report: PublishReport, objects: ObjectSet) -> None:
        self._log_new_problems(report.problems)
        for listener in self.build_listeners:
            try:
                listener(report, objects)
            except Exception:  # one listener's bug must not starve the others
                log.exception("build_listener.failed", listener=getattr(listener, "__name__", ""))

    # -- what operators see ----------------------------------------------------------------

    def view(self) -> ClusterView | None:
        """The last build as the status page and the per-object gauges show it (None before the
        first build); made once per build, when first asked for."""
        report, objects = self.publisher.last, self._objects
        if report is None or objects is None:
            return None
        if self._view is None:
            self._view = ClusterView(
                objects,
                report.statuses,
                report.problems,
                tuple(ingresses_of_our_class(objects, self.build_options)),
                report.sequence,
            )
        return self._view

    def object_counts(self) -> ObjectCounts | None:
        """What the per-object gauges say now (`metrics.ObjectMetrics.source`)."""
        view = self.view()
        return None if view is None else view.counts

    # -- NACK containment ------------------------------------------------------------------

    def _quarantine_changed(self) -> None:
        if self._republish_pending:
            return
        self._republish_pending = True
        asyncio.get_running_loop().call_soon(self._republish)

    def _republish(self) -> None:
        self._republish_pending = False
        if self._building:
            # The build thread is translating (nothing else may, meanwhile); the build's
            # publish applies the quarantine as it is then, this verdict included.
            self._republish_deferred = True
            return
        report = self.publisher.republish()
        if report is None or self._objects is None:
            return
        self.build_metrics.publish_duration.labels(kind="republish").observe(
            report.duration_ms / 1000
        )
        log.info(
            "snapshot.republished",
            sequence=report.sequence,
            quarantined=len(report.quarantined),
            bisecting=len(self.publisher.quarantine.bisecting()),
            duration_ms=report.duration_ms,
        )
        self._after_publish(report, self._objects)

    def _log_new_problems(self, problems: Sequence[Problem]) -> None:
        current = set(problems)
        for problem in sorted(current - self._problems, key=repr):
            if problem.field == INTERNAL_ERROR:
                self.metrics.internal_errors.labels(kind=problem.kind).inc()
                log.error(
                    "object.internal_error",
                    kind=problem.kind,
                    namespace=problem.namespace,
                    name=problem.name,
                    traceback=problem.reason,
                )
                continue
            log.warning(
                "object.problem",
                kind=problem.kind,
                namespace=problem.namespace,
                name=problem.name,
                field=problem.field,
                reason=problem.reason,
            )
        self._problems = current

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop_lag.start()
        self.holdoff.start()

    async def stop(self) -> None:
        await self.holdoff.stop()
        if self._gc_paused:
            self._resume_gc()
        self.loop_lag.stop()


async def cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel in order, each finishing before the next (leader election releases its Lease
    while the API client is still open)."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


# -- entry points (used by cli.py) ---------------------------------------------------------


def refused_networks_from(settings: ServeSettings) -> NetworkSet:
    """Where no endpoint (or ExternalName target) may point: the local networks in cluster mode
    (or as `--refuse-local-endpoints` says), plus `--refuse-endpoint-cidrs`. The file source
    refuses no network by default: its manifests are the operator's own (docs/security.md)."""
    local = settings.refuse_local_endpoints
    if local is None:
        local = settings.manifests is None
    return refused_networks(local=local, extra=settings.refuse_endpoint_cidrs)


def build_options_from(settings: ServeSettings) -> BuildOptions:
    return BuildOptions(
        ingress_class=settings.ingress_class,
        root_namespaces=frozenset(settings.root_namespaces),
        enable_external_name_services=settings.enable_external_name_services,
        refused_networks=refused_networks_from(settings),
    )


def translate_options_from(settings: ServeSettings) -> TranslateOptions:
    return TranslateOptions(
        http_port=settings.envoy_http_port,
        https_port=settings.envoy_https_port,
        xds_mode=settings.xds_mode,
        refused_endpoint_networks=refused_networks_from(settings),
    )


async def serve(settings: ServeSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the controller until `stop` is set (or SIGINT/SIGTERM)."""
    configure_logging(settings.log_level, json=settings.log_json)
    for notice in settings.config_notices():  # Contour keys we lack: named, never fatal
        log.warning("config.ignored", key=notice.key, reason=notice.message)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)

    cache = SnapshotCache()
    runtime = Runtime(
        build_options=build_options_from(settings),
        translate_options=translate_options_from(settings),
        cache=cache,
        holdoff_delay=settings.holdoff_delay,
        holdoff_max_delay=settings.holdoff_max_delay,
    )
    server = XdsServer(cache, tls=TlsFiles.of(settings.xds_ca, settings.xds_cert, settings.xds_key))
    objects = object_metrics()
    objects.source = runtime.object_counts
    status_metrics()  # listed (the leader gauge at 0) even where nothing writes status
    cache.metrics.connected_envoys.set_function(
        lambda: len({s.state.node_id for s in server.sessions if s.state.node_id})
    )
    xds_port = await server.start(settings.xds_address)
    health = await start_health_server(
        settings.health_address,
        runtime.ready,
        runtime.publisher,
        cache,
        view=runtime.view,
        sessions=lambda: tuple(server.sessions),
        leadership=runtime.leadership,
    )
    await runtime.start()
    log.info(
        "controlplane.started",
        xds_address=settings.xds_address,
        xds_port=xds_port,
        health_address=settings.health_address,
        refused_endpoint_networks=[
            str(n) for n in runtime.publisher.options.refused_endpoint_networks.networks
        ],
    )
    tasks: list[asyncio.Task[None]] = []
    runtime.pause_gc_until_first_build()
    try:
        tasks = await start_sources(settings, runtime, stop)
        await stop.wait()
    finally:
        log.info("controlplane.stopping")
        await cancel_all(tasks)
        await runtime.stop()
        await server.stop(grace=1.0)
        await health.cleanup()
        if objects.source == runtime.object_counts:  # another controller may have started since
            objects.source = _no_counts
        cache.metrics.connected_envoys.set_function(lambda: 0)


def _no_counts() -> ObjectCounts | None:
    return None


async def start_sources(
    settings: ServeSettings, runtime: Runtime, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    if settings.manifests is not None:
        files = FileSource(settings.manifests, runtime.store)
        synced = runtime.source_synced_event()
        return [asyncio.create_task(files.run(synced, stop=stop), name="files")]
    return await start_kube_sources(
        settings,
        runtime.store,
        runtime.source_synced_event(),
        runtime.build_listeners,
        runtime.build_options,
        runtime.leadership,
    )
