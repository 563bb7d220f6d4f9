"""Wiring: sources → store → holdoff → build → translate → snapshot → xDS server.

This is the only module (with `cli.py`) that knows every layer. It owns no logic of its own
beyond deciding *when* things happen:

- Every non-endpoint change pokes the holdoff; the holdoff runs `rebuild()` 100 ms after the last
  change and at most 500 ms after the first. A rebuild reads an immutable ObjectSet from the
  store, builds the DAG, translates it, and publishes a new snapshot; resources whose bytes did
  not change keep their version, so Envoy sees no push for them.
- Endpoint changes (EndpointSlice, Endpoints) take the fast path: only the
  ClusterLoadAssignments of the Service that changed are re-translated and published at once,
  without a rebuild. Which EDS names belong to which Service is remembered from the last DAG.
- Readiness: `/readyz` turns true only when every source has finished its initial load *and*
  the first snapshot built from it is published. The xDS cache itself holds Envoys' requests
  until that first snapshot, so an Envoy restarting never receives a half-empty configuration.
- Statuses go to `build_listeners` (the status writers in a cluster; nothing for files);
  problems of kinds without status are logged once each, when they first appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controlplane.config import ServeSettings
from controlplane.dag.builder import build
from controlplane.dag.classes import class_matches
from controlplane.dag.incremental import IncrementalBuilder
from controlplane.dag.options import BuildOptions
from controlplane.dag.types import DAG, ObjectStatus, Problem
from controlplane.envoy.endpoints import cluster_load_assignment, load_assignments
from controlplane.envoy.incremental import IncrementalTranslator
from controlplane.envoy.translate import TranslateOptions, to_json, translate
from controlplane.holdoff import Holdoff
from controlplane.logging import configure_logging
from controlplane.model import ObjectSet
from controlplane.model.parse import model_type_for
from controlplane.sources.files import FileSource, manifest_files, read_documents
from controlplane.sources.kube import KubeSource
from controlplane.sources.kubeclient import make_api_client
from controlplane.sources.leader import LeaderElector
from controlplane.sources.status import (
    IngressStatusWriter,
    StatusUpdate,
    StatusWriter,
    parse_service_ref,
)
from controlplane.store import Change, NamespacedName, Store
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.resources import ENDPOINT_TYPE
from controlplane.xds.server import XdsServer
from controlplane.xds.snapshot import Resource, Snapshot

log = structlog.get_logger(__name__)

BuildListener = Callable[[DAG, ObjectSet], None]
"""Called after each published build (status writers): must not block."""


@dataclass
class BuildReport:
    """What the last rebuild did, for logs, tests and the debug endpoint."""

    dag: DAG
    duration_ms: float
    versions: dict[str, str] = field(default_factory=dict)


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
    ) -> None:
        self.store = store or Store()
        self.cache = cache
        self.build_options = build_options
        self.dag_builder = IncrementalBuilder()
        self.translator = IncrementalTranslator(translate_options)
        self.holdoff = Holdoff(self.rebuild, delay=holdoff_delay, max_delay=holdoff_max_delay)
        self.build_listeners: list[BuildListener] = []
        self.last_build: BuildReport | None = None
        self._eds_by_service: dict[NamespacedName, tuple[tuple[str, str], ...]] = {}
        self._problems: set[Problem] = set()
        self._published: dict[str, dict[str, Resource]] = {}
        self._translated: dict[str, dict[str, bytes]] = {}
        self._sources_pending = 0
        self._synced = asyncio.Event()
        self.ready = asyncio.Event()
        self.store.subscribe(self._on_change)

    # -- sources ---------------------------------------------------------------------------

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
            service = change.service
            if service is not None:
                self.refresh_endpoints(service)
            return
        self.holdoff.poke()

    # -- the two paths ---------------------------------------------------------------------

    def refresh_endpoints(self, service: NamespacedName) -> None:
        """EDS fast path: re-translate and publish only this Service's ClusterLoadAssignments."""
        names = self._eds_by_service.get(service)
        if not names or self.cache.current is None:
            return
        started = time.perf_counter()
        slices = self.store.slices_for(*service)
        endpoints = self.store.endpoints_for(*service)
        changes: dict[str, Resource | None] = {}
        for eds_name, port_name in names:
            assignment = cluster_load_assignment(eds_name, port_name, slices, endpoints)
            changes[eds_name] = Resource.encode(ENDPOINT_TYPE, eds_name, assignment)
        self.cache.update(ENDPOINT_TYPE, changes)
        log.debug(  # one per EndpointSlice change: a busy cluster makes many
            "endpoints.published",
            service="/".join(service),
            clusters=len(changes),
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def rebuild(self) -> None:
        started = time.perf_counter()
        # A first build allocates millions of long-lived objects; with the collector running,
        # each allocation burst triggers passes over everything built so far (a third of a
        # 10,000-object build). Nothing a build makes is cyclic garbage, so collect afterwards.
        collecting = gc.isenabled()
        gc.disable()
        try:
            objects = self.store.object_set()
            dag = self.dag_builder.build(objects, self.build_options)
            snapshot = self.snapshot_for(dag, objects)
        finally:
            if collecting:
                gc.enable()
        self.cache.publish(snapshot)
        # The incremental builder hands back the same clusters tuple when no cluster changed.
        if self.last_build is None or dag.clusters() is not self.last_build.dag.clusters():
            self._remember_eds_names(dag)
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        self.last_build = BuildReport(
            dag, duration_ms, {t: snapshot.version(t) for t in sorted(snapshot.type_urls)}
        )
        log.info(
            "snapshot.published",
            virtual_hosts=len(dag.virtual_hosts),
            secure_virtual_hosts=len(dag.secure_virtual_hosts),
            statuses=len(dag.statuses),
            duration_ms=duration_ms,
        )
        self._log_new_problems(dag.problems)
        for listener in self.build_listeners:
            listener(dag, objects)
        if self._synced.is_set() and not self.ready.is_set():
            self.ready.set()
            log.info("controlplane.ready")

    def snapshot_for(self, dag: DAG, objects: ObjectSet) -> Snapshot:
        """Translate, then apply only the differences to the current snapshot.

        The translator hands back the same bytes object for every resource it did not
        re-translate, and the same mapping for a type in which nothing changed, so the diff is
        identity checks: a resource keeps its Resource (no re-hash, no re-framing), a type with
        no change keeps its table, and only changed names reach `Snapshot.with_changes`."""
        encoded = self.translator.translate(dag, objects)
        base = self.cache.current
        if base is None:
            self._published = {
                type_url: {
                    name: Resource.from_body(type_url, name, body) for name, body in bodies.items()
                }
                for type_url, bodies in encoded.items()
            }
            self._translated = encoded
            return Snapshot.build(self._published)
        snapshot = base
        for type_url, bodies in encoded.items():
            if bodies is self._translated.get(type_url):
                continue
            previous = self._published.get(type_url, {})
            changes: dict[str, Resource | None] = {
                name: Resource.from_body(type_url, name, body)
                for name, body in bodies.items()
                if (old := previous.get(name)) is None or old.body is not body
            }
            changes.update(dict.fromkeys(previous.keys() - bodies.keys()))
            table = dict(previous)
            for name, resource in changes.items():
                if resource is None:
                    del table[name]
                else:
                    table[name] = resource
            self._published[type_url] = table
            if changes:
                snapshot = snapshot.with_changes(type_url, changes)
        self._translated = encoded
        return snapshot

    def _remember_eds_names(self, dag: DAG) -> None:
        by_service: dict[NamespacedName, set[tuple[str, str]]] = {}
        for cluster in dag.clusters():
            if cluster.external_name is None:
                by_service.setdefault((cluster.namespace, cluster.service), set()).add(
                    (cluster.eds_name, cluster.port_name)
                )
        self._eds_by_service = {key: tuple(sorted(names)) for key, names in by_service.items()}

    def _log_new_problems(self, problems: Sequence[Problem]) -> None:
        current = set(problems)
        for problem in sorted(current - self._problems, key=repr):
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
        self.holdoff.start()

    async def stop(self) -> None:
        await self.holdoff.stop()


def status_row(status: ObjectStatus) -> dict[str, str]:
    """One object's status as `translate` and `/debug/status` print it (ARCHITECTURE §6)."""
    return {
        "kind": status.kind,
        "namespace": status.namespace,
        "name": status.name,
        "currentStatus": status.current_status.value,
        "description": status.description,
    }


def health_app(runtime: Runtime) -> web.Application:
    """`/healthz` (alive), `/readyz` (initial load built and published), `/metrics`, debug."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if runtime.ready.is_set():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: initial load or first build pending\n")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def nacks(_: web.Request) -> web.Response:
        return web.json_response([nack.as_dict() for nack in runtime.cache.nacks()])

    async def statuses(_: web.Request) -> web.Response:
        report = runtime.last_build
        rows = [] if report is None else report.dag.statuses
        return web.json_response([status_row(status) for status in rows])

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/debug/nacks", nacks)
    app.router.add_get("/debug/status", statuses)
    return app


async def start_health_server(runtime: Runtime, address: str) -> web.AppRunner:
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(health_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or "0.0.0.0", int(port))
    await site.start()
    return runner


async def cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel in order, each finishing before the next (leader election releases its Lease
    while the API client is still open)."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


# -- entry points (used by cli.py) ---------------------------------------------------------


def build_options_from(settings: ServeSettings) -> BuildOptions:
    return BuildOptions(
        ingress_class=settings.ingress_class,
        root_namespaces=frozenset(settings.root_namespaces),
        enable_external_name_services=settings.enable_external_name_services,
    )


async def serve(settings: ServeSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the controller until `stop` is set (or SIGINT/SIGTERM)."""
    configure_logging(settings.log_level, json=settings.log_json)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)

    cache = SnapshotCache()
    runtime = Runtime(
        build_options=build_options_from(settings),
        translate_options=TranslateOptions(
            http_port=settings.envoy_http_port,
            https_port=settings.envoy_https_port,
            xds_mode=settings.xds_mode,
        ),
        cache=cache,
        holdoff_delay=settings.holdoff_delay,
        holdoff_max_delay=settings.holdoff_max_delay,
    )
    server = XdsServer(cache)
    xds_port = await server.start(settings.xds_address)
    health = await start_health_server(runtime, settings.health_address)
    # The configuration of a large cluster is millions of long-lived objects; a full collection
    # walks them all (0.7 s at 10,000 IngressRoutes) and stalls every xDS stream meanwhile.
    # Freezing after each build moves what is live into the permanent generation, so the
    # collector only looks at what is new. Reference cycles among frozen objects that die later
    # are not reclaimed; the DAG and the snapshots are acyclic values, so there are hardly any.
    runtime.build_listeners.append(lambda dag, objects: gc.freeze())
    await runtime.start()
    log.info(
        "controlplane.started",
        xds_address=settings.xds_address,
        xds_port=xds_port,
        health_address=settings.health_address,
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks = await start_sources(settings, runtime, stop)
        await stop.wait()
    finally:
        log.info("controlplane.stopping")
        await cancel_all(tasks)
        await runtime.stop()
        await server.stop(grace=1.0)
        await health.cleanup()


async def start_sources(
    settings: ServeSettings, runtime: Runtime, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    if settings.manifests is not None:
        files = FileSource(settings.manifests, runtime.store)
        synced = runtime.source_synced_event()
        return [asyncio.create_task(files.run(synced, stop=stop), name="files")]
    return await start_kube_sources(settings, runtime)


def status_updates(statuses: Sequence[ObjectStatus]) -> list[StatusUpdate]:
    """The `.status` each IngressRoute should have, as the status writer sends it."""
    return [
        StatusUpdate(
            status.namespace,
            status.name,
            {
                "currentStatus": status.current_status.value,
                "description": status.description,
                "observedGeneration": status.observed_generation,
                "conditions": [
                    {
                        "type": c.type,
                        "status": c.status,
                        "reason": c.reason,
                        "message": c.message,
                    }
                    for c in status.conditions
                ],
            },
        )
        for status in statuses
        if status.kind == "IngressRoute"
    ]


def our_ingresses(objects: ObjectSet, options: BuildOptions) -> list[tuple[str, str]]:
    return sorted(
        key
        for key, ingress in objects.ingresses.items()
        if class_matches(
            ingress.metadata.annotations, ingress.spec.ingress_class_name, objects, options
        )
    )


async def start_kube_sources(settings: ServeSettings, runtime: Runtime) -> list[asyncio.Task[None]]:
    """Informers into the store; status writers fed by every build; leader election for them.

    Every replica watches and serves xDS; only the leader writes status. Without
    `--leader-election` the writers write at once (a single replica)."""
    api = await make_api_client(settings.kubeconfig)
    leading_now = not settings.leader_election
    source = KubeSource(
        api,
        runtime.store,
        watch_namespaces=settings.watch_namespaces,
        root_namespaces=settings.root_namespaces,
    )
    status = StatusWriter(api, store=runtime.store, leader=leading_now)
    writers: list[StatusWriter | IngressStatusWriter] = [status]
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
            store=runtime.store,
            leader=leading_now,
        )
        writers.append(ingress_status)

    def after_build(dag: DAG, objects: ObjectSet) -> None:
        status.submit(status_updates(dag.statuses))
        if ingress_status is not None:
            ingress_status.submit(our_ingresses(objects, runtime.build_options))

    runtime.build_listeners.append(after_build)

    def lead(leading: bool) -> Callable[[], None]:
        def toggle() -> None:
            log.info("leader.changed", leading=leading)
            for writer in writers:
                writer.set_leader(leading)

        return toggle

    tasks = [
        asyncio.create_task(source.run(runtime.source_synced_event()), name="informers"),
        *(asyncio.create_task(writer.run(), name="status-writer") for writer in writers),
    ]
    if settings.leader_election:
        elector = LeaderElector(
            api,
            namespace=settings.leader_election_namespace,
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


def translate_manifests(
    paths: Sequence[Path],
    *,
    ingress_class: str = "contour",
    root_namespaces: Sequence[str] = (),
    enable_external_name_services: bool = False,
    http_port: int = 8080,
    https_port: int = 8443,
) -> dict[str, Any]:
    """`controlplane translate`: manifests in, Envoy resources and statuses out (no I/O else)."""
    store = Store()
    for path in paths:
        for file in manifest_files(path) if path.is_dir() else [path]:
            for raw in read_documents(file):
                if model_type_for(str(raw.get("apiVersion", "")), str(raw.get("kind", ""))):
                    store.apply_raw(raw, source=str(file))
    objects = store.object_set()
    dag = build(
        objects,
        BuildOptions(
            ingress_class=ingress_class,
            root_namespaces=frozenset(root_namespaces),
            enable_external_name_services=enable_external_name_services,
        ),
    )
    options = TranslateOptions(http_port=http_port, https_port=https_port)
    result = to_json(translate(dag, options), load_assignments(dag, objects))
    result["status"] = [status_row(status) for status in dag.statuses]
    result["problems"] = [
        {
            "kind": p.kind,
            "namespace": p.namespace,
            "name": p.name,
            "field": p.field,
            "reason": p.reason,
        }
        for p in dag.problems
    ]
    return result
