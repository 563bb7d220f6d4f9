"""Cluster mode: informers into the store, status writers and Events fed by every build, leader
election.

Every replica watches and serves xDS; only the leader writes status and posts Events. Without
`--leader-election` the writers write at once (a single replica). Each published build's report
goes to the status writers and to the `EventRecorder` (sources/events.py): IngressRoute statuses
(their changes become Events) and the problems of Ingresses (which have no status: an Event is
the only place `kubectl describe ingress` shows them besides the log). A problem that reports
a bug carries a traceback: its Event says only that; the log has the rest.

The runtime calls `start_kube_sources` when no `--manifests` directory is given and cancels the
tasks it returns, in order, on shutdown (the leader elector first, so the Lease is released
while the API client is still open).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import structlog

from controlplane.config import ServeSettings
from controlplane.dag import INTERNAL_ERROR, BuildOptions, Problem, ingresses_of_our_class
from controlplane.model import ObjectSet
from controlplane.publisher import PublishReport
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
from controlplane.store import Store

log = structlog.get_logger(__name__)

__all__ = ["BuildListener", "ingress_findings", "start_kube_sources"]

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

    def after_build(report: PublishReport, objects: ObjectSet) -> None:
        updates = [
            StatusUpdate(s.namespace, s.name, s.status)
            for s in report.statuses
            if s.kind == "IngressRoute"
        ]
        # Each pass over every status holds the loop for tens of milliseconds at 20,000
        # IngressRoutes: one per loop turn, so xDS streams and /healthz get turns between them.
        status.submit(updates)
        loop = asyncio.get_running_loop()
        loop.call_soon(events.observe_statuses, updates)
        loop.call_soon(events.observe_problems, INGRESSES, ingress_findings(report.problems))
        if ingress_status is not None:
            ingress_status.submit(ingresses_of_our_class(objects, build_options))

    build_listeners.append(after_build)

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
