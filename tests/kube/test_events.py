"""Kubernetes Events (sources/events.py) against the test API server: a problem is told once when
it appears, repeats become a series, many problems of one object are one Event within the API's
1 KiB, budgets per controller and per namespace drop (and count) what is over them, only the
leader posts, IngressRoute status changes are Events; and, through the whole controller, what
`kubectl describe ingress` and `kubectl describe ingressroute` show.

The recorder's tests run on looptime's fast-forwarded loop clock (token buckets and the series
window in loop seconds), with a store filled by hand (the recorder reads only uids and statuses
from it); "nothing more is posted" is read after `drain()`. The kubectl tests run on the real
clock: kubectl is a real process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from kube_support import install_crds
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from waiting import eventually

from controlplane.config import ServeSettings
from controlplane.metrics import event_metrics
from controlplane.model.contour import IngressRouteStatus
from controlplane.runtime import serve
from controlplane.sources import INGRESSES, EventRecorder, Finding, StatusUpdate
from controlplane.sources.events import (
    CONTROLLER,
    EventOptions,
    problem_reason,
    truncate_note,
)
from controlplane.store import Store
from controlplane.testing.apiserver import TestApiServer

KUBECTL = shutil.which("kubectl")
INSTANCE = "test-replica"
PATH = Finding("spec.rules[0].http.paths[0].path", '"nope" does not start with "/"; path ignored')
BACKEND = Finding(
    "spec.rules[0].http.paths[1].backend.service.name", "Service [missing:80] is invalid or missing"
)
SNIPPET = Finding(
    "metadata.annotations[nginx.ingress.kubernetes.io/configuration-snippet]",
    "is nginx configuration: refused, never applied",
)
VALID = {"currentStatus": "valid", "description": "valid IngressRoute"}
INVALID = {"currentStatus": "invalid", "description": "Service [s:80] is invalid or missing"}
ORPHANED = {
    "currentStatus": "orphaned",
    "description": "this IngressRoute is not part of a delegation chain from a root IngressRoute",
}


# -- helpers ---------------------------------------------------------------------------------


def ingress(store: Store, name: str, namespace: str = "default", uid: str = "") -> None:
    store.apply_raw(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": uid or f"uid-{namespace}-{name}",
                "resourceVersion": "7",
            },
            "spec": {"ingressClassName": "contour"},
        }
    )


def route(store: Store, name: str, status: dict[str, Any] | None = None, uid: str = "") -> None:
    raw: dict[str, Any] = {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default", "uid": uid or f"uid-{name}"},
        "spec": {"virtualhost": {"fqdn": f"{name}.example.com"}, "routes": []},
    }
    if status is not None:
        raw["status"] = status
    store.apply_raw(raw)


def update(name: str, status: dict[str, Any]) -> StatusUpdate:
    return StatusUpdate("default", name, IngressRouteStatus.model_validate(status))


def events(server: TestApiServer) -> list[dict[str, Any]]:
    """Every Event the server holds, as events.k8s.io/v1 serves them, oldest first."""
    v1 = server.registry.get("events.k8s.io", "v1", "events")
    assert v1 is not None
    found = server.store.list(v1, None, lambda _: True, lambda _: True)
    return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))


def reasons(server: TestApiServer) -> list[tuple[str, str, str]]:
    return [(e["regarding"]["name"], e["type"], e["reason"]) for e in events(server)]


def dropped(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value("controlplane_events_dropped_total", {"reason": reason})
    return value or 0.0


@contextlib.asynccontextmanager
async def recording(
    api: client.ApiClient,
    store: Store,
    *,
    leader: bool = True,
    options: EventOptions | None = None,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[EventRecorder]:
    recorder = EventRecorder(
        api,
        store=store,
        instance=INSTANCE,
        leader=leader,
        options=options,
        metrics=event_metrics(registry or CollectorRegistry()),
        now=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )
    task = asyncio.create_task(recorder.run())
    try:
        yield recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def drained(recorder: EventRecorder) -> None:
    async with asyncio.timeout(60):
        await recorder.drain()


def problems(**by_name: Iterable[Finding]) -> dict[tuple[str, str], list[Finding]]:
    return {("default", name): list(found) for name, found in by_name.items()}


# -- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "reason"),
    [
        (PATH, "InvalidPath"),
        (Finding("spec.rules[0].http.paths[0].pathType", "unknown"), "InvalidPath"),
        (BACKEND, "InvalidBackend"),
        (Finding("spec.defaultBackend", "names no service"), "InvalidBackend"),
        (SNIPPET, "IgnoredAnnotation"),
        (Finding("spec.tls[0].secretName", "is not set; these hosts get no HTTPS"), "InvalidTLS"),
        (Finding("spec.rules[1].host", '"a_b" is not a DNS name; rule ignored'), "InvalidHost"),
        (Finding("spec.rules[0].http.paths[2]", '"/" is already served by ...'), "Conflict"),
        (Finding("spec.rules[].host", 'host "a" belongs to IngressRoute x/y; ...'), "Conflict"),
        (Finding("spec.rules[0].http.paths[0]", "not served: Envoy would reject"), "Rejected"),
        (Finding("internal error", "internal error while building"), "InternalError"),
        (Finding("spec.something", "odd"), "Invalid"),
    ],
)
def test_each_problem_has_a_camel_case_reason(finding: Finding, reason: str) -> None:
    assert problem_reason(finding) == reason


def test_a_note_is_cut_to_1_kib_on_a_character_boundary() -> None:
    assert truncate_note("short") == "short"
    exact = "é" * 512  # 1024 bytes
    assert truncate_note(exact) == exact
    cut = truncate_note("é" * 600)
    assert len(cut.encode()) <= 1024 and cut.endswith("…") and cut.startswith("éé")
    assert "\ufffd" not in cut


# -- the recorder against the test API server ------------------------------------------------


@pytest.mark.looptime
async def test_a_problem_is_posted_once_when_it_appears_not_at_every_build(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    ingress(store, "site")
    async with recording(api, store) as recorder:
        for _ in range(3):  # three builds, the same problems
            recorder.observe_problems(INGRESSES, problems(site=[PATH, BACKEND]))
            await drained(recorder)
        assert reasons(server) == [
            ("site", "Warning", "InvalidBackend"),
            ("site", "Warning", "InvalidPath"),
        ]
        recorder.observe_problems(INGRESSES, problems(site=[PATH, BACKEND, SNIPPET]))
        await drained(recorder)
        assert reasons(server)[-1] == ("site", "Warning", "IgnoredAnnotation")
        assert recorder.created == 3 and recorder.patched == 0

    posted = events(server)[1]
    assert posted["note"] == f"{PATH.field}: {PATH.reason}"
    assert posted["action"] == "Translate"
    assert posted["reportingController"] == CONTROLLER
    assert posted["reportingInstance"] == INSTANCE
    assert posted["eventTime"] == "2026-01-01T00:00:00.000000Z"
    assert posted["regarding"] == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "namespace": "default",
        "name": "site",
        "uid": "uid-default-site",
        "resourceVersion": "7",
    }


@pytest.mark.looptime
async def test_a_problem_back_within_the_window_is_a_series_and_after_it_a_new_event(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    ingress(store, "site")
    async with recording(api, store) as recorder:
        for _ in range(3):  # appears, goes away, comes back: three times within the window
            recorder.observe_problems(INGRESSES, problems(site=[PATH]))
            await drained(recorder)
            recorder.observe_problems(INGRESSES, {})
            await asyncio.sleep(60)
        assert recorder.created == 1 and recorder.patched == 2
        [first] = events(server)
        assert first["series"] == {"count": 3, "lastObservedTime": "2026-01-01T00:00:00.000000Z"}

        await asyncio.sleep(EventOptions().series_window)
        recorder.observe_problems(INGRESSES, problems(site=[PATH]))
        await drained(recorder)
        assert recorder.created == 2 and recorder.patched == 2
        assert "series" not in events(server)[-1]

        # The Event is gone (expired, deleted): the next repeat is a new Event, not a patch.
        v1 = server.registry.get("events.k8s.io", "v1", "events")
        assert v1 is not None
        server.store.delete(v1, "default", events(server)[-1]["metadata"]["name"])
        recorder.observe_problems(INGRESSES, {})
        recorder.observe_problems(INGRESSES, problems(site=[PATH]))
        await drained(recorder)
        assert recorder.created == 3 and len(events(server)) == 2


@pytest.mark.looptime
async def test_a_recreated_object_is_told_again(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    ingress(store, "site", uid="first")
    async with recording(api, store) as recorder:
        recorder.observe_problems(INGRESSES, problems(site=[PATH]))
        await drained(recorder)
        ingress(store, "site", uid="second")  # deleted and created again between two builds
        recorder.observe_problems(INGRESSES, problems(site=[PATH]))
        await drained(recorder)
    assert [e["regarding"]["uid"] for e in events(server)] == ["first", "second"]


@pytest.mark.looptime
async def test_ten_thousand_broken_paths_of_one_ingress_are_one_event_within_1_kib(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    ingress(store, "huge")
    broken = [
        Finding(f"spec.rules[0].http.paths[{i}].path", f'"p{i}" does not start with "/"')
        for i in range(10_000)
    ]
    async with recording(api, store) as recorder:
        recorder.observe_problems(INGRESSES, problems(huge=broken))
        await drained(recorder)
    [event] = events(server)
    assert event["reason"] == "InvalidPath"
    assert event["note"].startswith("10000 problems: spec.rules[0].http.paths[0].path: ")
    assert len(event["note"].encode()) <= 1024 and event["note"].endswith("…")


@pytest.mark.looptime
async def test_a_noisy_namespace_spends_its_own_budget_and_drops_are_counted(
    api: client.ApiClient, server: TestApiServer
) -> None:
    server.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "noisy"}})
    store = Store()
    for index in range(300):
        ingress(store, f"i{index}", "noisy")
    ingress(store, "quiet")
    broken = {("noisy", f"i{index}"): [PATH] for index in range(300)}
    registry = CollectorRegistry()
    options = EventOptions(rate=5, burst=50, namespace_rate=0.2, namespace_burst=20)
    async with recording(api, store, options=options, registry=registry) as recorder:
        with capture_logs() as logs:
            recorder.observe_problems(INGRESSES, {**broken, ("default", "quiet"): [PATH]})
        await drained(recorder)
        namespaces = [e["metadata"]["namespace"] for e in events(server)]
        assert namespaces.count("noisy") == 20 and namespaces.count("default") == 1
        assert dropped(registry, "namespace_rate_limited") == 280
        assert dropped(registry, "rate_limited") == 0
        assert {"event": "events.dropped", "log_level": "warning",
                "namespace_rate_limited": 280} in logs  # fmt: skip  # one line, not 280

        # Dropped is dropped (the build after posts nothing for them); the budget refills.
        recorder.observe_problems(INGRESSES, {**broken, ("default", "quiet"): [PATH]})
        await drained(recorder)
        assert len(events(server)) == 21
        await asyncio.sleep(100)
        ingress(store, "late", "noisy")
        late = {("noisy", "late"): [PATH]}
        recorder.observe_problems(INGRESSES, {**broken, ("default", "quiet"): [PATH], **late})
        await drained(recorder)
        assert len(events(server)) == 22


@pytest.mark.looptime
async def test_the_controller_budget_holds_across_namespaces(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    names = [f"i{index}" for index in range(80)]
    for name in names:
        ingress(store, name)
    registry = CollectorRegistry()
    options = EventOptions(rate=5, burst=50, namespace_rate=100, namespace_burst=1000)
    async with recording(api, store, options=options, registry=registry) as recorder:
        recorder.observe_problems(INGRESSES, {("default", n): [PATH] for n in names})
        await drained(recorder)
    assert len(events(server)) == 50 and dropped(registry, "rate_limited") == 30


@pytest.mark.looptime
async def test_only_the_leader_posts_and_what_was_seen_is_not_repeated_on_leading(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    ingress(store, "site")
    async with recording(api, store, leader=False) as recorder:
        recorder.observe_problems(INGRESSES, problems(site=[PATH]))
        await drained(recorder)
        assert events(server) == [] and recorder.pending() == 0

        recorder.set_leader(True)
        await drained(recorder)
        assert events(server) == []  # the old leader told that one
        recorder.observe_problems(INGRESSES, problems(site=[PATH, BACKEND]))
        await drained(recorder)
        assert reasons(server) == [("site", "Warning", "InvalidBackend")]

        recorder.observe_problems(INGRESSES, problems(site=[PATH, BACKEND, SNIPPET]))
        recorder.set_leader(False)  # before the queued Event went out: it never does
        assert recorder.pending() <= 1  # at most the send already handed out, now cancelled
        await drained(recorder)
    assert len(events(server)) == 1


@pytest.mark.looptime
async def test_ingressroute_status_changes_are_events(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    route(store, "r0", VALID)  # its status is in the cluster already
    route(store, "r1")  # new: no status yet
    async with recording(api, store) as recorder:

        async def observe(*updates: StatusUpdate) -> None:
            recorder.observe_statuses(updates)
            await drained(recorder)

        await observe(update("r0", VALID), update("r1", VALID))
        assert reasons(server) == [("r1", "Normal", "Valid")]
        await observe(update("r0", INVALID), update("r1", VALID))
        await observe(update("r0", INVALID), update("r1", VALID))  # no change: no Event
        await observe(update("r0", ORPHANED), update("r1", VALID))
        await observe(update("r0", VALID), update("r1", VALID))
    assert reasons(server)[1:] == [
        ("r0", "Warning", "Invalid"),
        ("r0", "Warning", "Orphaned"),
        ("r0", "Normal", "Valid"),
    ]
    invalid = events(server)[1]
    assert invalid["note"] == INVALID["description"] and invalid["action"] == "Validate"
    assert invalid["regarding"]["kind"] == "IngressRoute"
    assert invalid["regarding"]["apiVersion"] == "contour.heptio.com/v1beta1"


@pytest.mark.looptime
async def test_statuses_are_judged_from_what_a_build_hands_over_not_from_every_status(
    api: client.ApiClient, server: TestApiServer
) -> None:
    """The recorder is handed what a build changed (`kube_wiring.StatusFeed`): statuses not
    handed over are remembered as they were, a re-created object whose status did not change
    comes as a recheck (a new uid: told again), a status no longer reported is forgotten."""
    store = Store()
    route(store, "r0")
    route(store, "r1")
    async with recording(api, store) as recorder:

        async def observe(*updates: StatusUpdate, **keys: Sequence[tuple[str, str]]) -> None:
            recorder.observe_statuses(updates, keys.get("removed", ()), keys.get("recheck", ()))
            await drained(recorder)

        await observe(update("r0", VALID), update("r1", INVALID))
        await observe()  # the next build changed no status
        await observe(update("r1", INVALID))  # handed again, unchanged: nothing to tell
        await observe(recheck=[("default", "r1")])  # its object changed, not its uid
        assert reasons(server) == [("r0", "Normal", "Valid"), ("r1", "Warning", "Invalid")]

        store.delete("IngressRoute", "default", "r0")
        route(store, "r0", uid="again")  # deleted and created again between two builds
        await observe(recheck=[("default", "r0")])
        assert reasons(server)[2:] == [("r0", "Normal", "Valid")]
        assert events(server)[2]["regarding"]["uid"] == "again"

        await observe(removed=[("default", "r1")])  # e.g. moved to another ingress class
        await observe(update("r1", INVALID))  # back: judged against the cluster's status
        [told] = [e for e in events(server) if e["regarding"]["name"] == "r1"]
        assert told["series"]["count"] == 2  # told again (within the window: a series)
    assert recorder.created == 3 and recorder.patched == 1


@pytest.mark.looptime
async def test_an_event_the_api_server_refuses_is_dropped_counted_and_logged(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    ingress(store, "site", "gone")  # no such namespace on the server: 404
    registry = CollectorRegistry()
    async with recording(api, store, registry=registry) as recorder:
        with capture_logs() as logs:
            recorder.observe_problems(INGRESSES, {("gone", "site"): [PATH]})
            await drained(recorder)
    assert recorder.created == 0 and dropped(registry, "failed") == 1
    [failed] = [entry for entry in logs if entry["event"] == "events.failed"]
    assert failed["namespace"] == "gone" and "404" in failed["error"]


@pytest.mark.looptime
async def test_a_transient_failure_is_retried(api: client.ApiClient, server: TestApiServer) -> None:
    store = Store()
    ingress(store, "site")
    registry = CollectorRegistry()
    options = EventOptions(backoff_initial=1.0, max_attempts=3)
    async with recording(api, store, options=options, registry=registry) as recorder:
        await server.refuse_connections(1.0)
        recorder.observe_problems(INGRESSES, problems(site=[PATH]))
        await drained(recorder)
    assert recorder.created == 1 and dropped(registry, "failed") == 0
    assert len(events(server)) == 1


# -- through the whole controller, and what kubectl shows ------------------------------------


async def kubectl(kubeconfig: Path, cache: Path, *args: str, stdin: str | None = None) -> str:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def manifests() -> Sequence[dict[str, Any]]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "site", "namespace": "default"},
            "spec": {
                "ingressClassName": "contour",
                "rules": [
                    {
                        "host": "site.example.com",
                        "http": {
                            "paths": [
                                {"path": "nope", "pathType": "Prefix", "backend": backend},
                                {"path": "/", "pathType": "Prefix", "backend": backend},
                            ]
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "contour.heptio.com/v1beta1",
            "kind": "IngressRoute",
            "metadata": {"name": "broken", "namespace": "default"},
            "spec": {
                "virtualhost": {"fqdn": "broken.example.com"},
                "routes": [{"match": "/", "services": [{"name": "missing", "port": 80}]}],
            },
        },
    ]


async def test_kubectl_describe_shows_why_an_ingress_and_an_ingressroute_are_not_served(
    server: TestApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    install_crds(server)
    cache = tmp_path / "kube-cache"
    await kubectl(kubeconfig, cache, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests()))
    settings = ServeSettings(
        kubeconfig=kubeconfig,
        leader_election=False,
        xds_address="127.0.0.1:0",
        health_address="127.0.0.1:0",
        log_json=True,
    )
    stop = asyncio.Event()
    configured = structlog.get_config()  # serve configures logging for the process
    controller = asyncio.create_task(serve(settings, stop=stop))
    try:
        await eventually(lambda: len(events(server)) >= 2, within=20, message="two Events")
        ingress_out = await kubectl(kubeconfig, cache, "describe", "ingress", "site")
        route_out = await kubectl(kubeconfig, cache, "describe", "ingressroute", "broken")
    finally:
        stop.set()
        await asyncio.wait_for(controller, 20)
        structlog.configure(**configured)

    shown = ingress_out.split("Events:", 1)[1]
    assert "Warning" in shown and "InvalidPath" in shown
    assert CONTROLLER in shown
    assert 'spec.rules[0].http.paths[0].path: "nope" does not start with "/"' in shown
    shown = route_out.split("Events:", 1)[1]
    assert "Warning" in shown and "Invalid" in shown
    assert "Service [missing:80] is invalid or missing" in shown
