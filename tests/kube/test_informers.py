"""Informers against the Kubernetes API test server over HTTP: initial sync, the event flow,
resuming dropped watches without loss, re-listing after 410, start-up while the API server is
away, missing CRDs and namespace restrictions.

On looptime's fast-forwarded loop clock: retry backoff and the missing-CRD retry run with their
production timings and are asserted in loop seconds. Requests to the in-process server take no
loop time. Tests wait on the server's open watches, the store and the informer's
resourceVersion, never on a sleep.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from kube_support import ingress, ingress_route, install_crds, namespace, secret, service
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from waiting import eventually

from controlplane.metrics import informer_metrics
from controlplane.model import IngressRoute, Secret, Service
from controlplane.sources.kube import (
    INGRESS_ROUTES,
    SERVICES,
    Gone,
    Informer,
    InformerOptions,
    KubeSource,
    StoreSink,
    secret_namespaces,
)
from controlplane.sources.kubeclient import Backoff, make_api_client
from controlplane.store import Change, ChangeType, Store
from controlplane.testing.apiserver import TestApiServer

pytestmark = pytest.mark.looptime

FAST = InformerOptions(watch_timeout=30, backoff_initial=0.05, backoff_max=0.2, missing_retry=0.2)
PEM = base64.b64encode(b"-----BEGIN CERTIFICATE-----").decode()


class Recorder:
    def __init__(self, store: Store) -> None:
        self.changes: list[Change] = []
        store.subscribe(self.changes.append)

    def count(self, kind: ChangeType, name: str) -> int:
        return sum(1 for c in self.changes if c.type == kind and c.key.name == name)


async def watching(server: TestApiServer, count: int) -> None:
    """Wait until `count` watches are open on the server (registered, not only requested)."""
    await eventually(lambda: server.open_watches() >= count)


@asynccontextmanager
async def running(source: KubeSource, *, wait: bool = True) -> AsyncIterator[asyncio.Event]:
    synced = asyncio.Event()
    task = asyncio.create_task(source.run(synced))
    try:
        if wait:
            await asyncio.wait_for(synced.wait(), 5)
        yield synced
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_initial_list_fills_the_store_keeps_only_tls_data_and_sets_synced(
    api: client.ApiClient, server: TestApiServer
) -> None:
    install_crds(server)
    applied = service("web")
    applied["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        "keep": "me",
    }
    server.put_object(applied)
    server.put_object(secret("tls", **{"tls.crt": PEM, "tls.key": PEM, "password": "c2VjcmV0"}))
    server.put_object(secret("opaque", password="c2VjcmV0"))
    server.put_object(ingress_route("root", "a.example.com"))
    server.put_object(ingress("site"))
    store = Store()
    source = KubeSource(api, store, options=FAST)
    assert len(source.unsynced()) == 7

    async with running(source):
        assert source.unsynced() == []
        web = store.get("Service", "default", "web")
        assert isinstance(web, Service) and web.metadata.annotations == {"keep": "me"}
        tls = store.get("Secret", "default", "tls")
        assert isinstance(tls, Secret) and sorted(tls.data) == ["tls.crt", "tls.key"]
        assert store.get("Secret", "default", "opaque") is None  # no TLS material: not kept
        assert isinstance(store.get("IngressRoute", "default", "root"), IngressRoute)
        assert store.get("Ingress", "default", "site") is not None
        await eventually(lambda: server.request_count(verb="watch") == 7)


async def test_adds_updates_and_deletes_flow_to_the_store(
    api: client.ApiClient, server: TestApiServer
) -> None:
    install_crds(server)
    store = Store()
    recorder = Recorder(store)
    async with running(KubeSource(api, store, options=FAST)):
        core = client.CoreV1Api(api)
        await core.create_namespaced_service("default", service("web"))  # type: ignore[arg-type]  # a dict body is sent as it is
        await eventually(lambda: store.get("Service", "default", "web") is not None)
        await core.patch_namespaced_service("web", "default", {"spec": {"ports": [{"port": 81}]}})
        await eventually(lambda: recorder.count(ChangeType.MODIFIED, "web") == 1)
        await core.delete_namespaced_service("web", "default")
        await eventually(lambda: store.get("Service", "default", "web") is None)

        custom = client.CustomObjectsApi(api)
        await custom.create_namespaced_custom_object(
            "contour.heptio.com",
            "v1beta1",
            "default",
            "ingressroutes",
            ingress_route("root", "a.example.com"),
        )
        await eventually(lambda: store.get("IngressRoute", "default", "root") is not None)

    assert [(c.type, c.key.name) for c in recorder.changes] == [
        (ChangeType.ADDED, "web"),
        (ChangeType.MODIFIED, "web"),
        (ChangeType.DELETED, "web"),
        (ChangeType.ADDED, "root"),
    ]
    port = recorder.changes[1].new
    assert isinstance(port, Service) and 81 in [p.port for p in port.spec.ports]


async def test_a_secret_that_loses_its_tls_data_leaves_the_store(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    server.put_object(secret("tls", **{"tls.crt": PEM}))
    async with running(KubeSource(api, store, options=FAST)):
        assert store.get("Secret", "default", "tls") is not None
        server.put_object(secret("tls", other=PEM))
        await eventually(lambda: store.get("Secret", "default", "tls") is None)


@pytest.mark.parametrize("graceful", [False, True])
async def test_a_dropped_watch_resumes_from_its_version_without_loss_or_repeats(
    api: client.ApiClient, server: TestApiServer, graceful: bool
) -> None:
    store = Store()
    recorder = Recorder(store)
    install_crds(server)
    server.put_object(service("before"))
    source = KubeSource(api, store, options=FAST)
    (services,) = [i for i in source.informers if i.resource is SERVICES]
    async with running(source):
        lists = server.request_count(verb="list", resource="services")
        await watching(server, 7)
        assert server.drop_watches(graceful=graceful) == 7
        for name in ("during-1", "during-2"):
            server.put_object(service(name))
        server.delete_object("v1", "Service", "before", "default")
        await eventually(lambda: store.get("Service", "default", "during-2") is not None)
        server.put_object(service("after"))
        await eventually(lambda: store.get("Service", "default", "after") is not None)
        # Nothing more can arrive: one watch was resumed (no re-list, no second watch), it
        # delivers in order, and it has brought the informer up to the server's last revision.
        await eventually(lambda: services.resource_version == str(server.resource_version))

        assert server.request_count(verb="list", resource="services") == lists  # resumed
        assert server.request_count(verb="watch", resource="services") == 2
    added = Counter(c.key.name for c in recorder.changes if c.type == ChangeType.ADDED)
    assert added == {"before": 1, "during-1": 1, "during-2": 1, "after": 1}
    assert recorder.count(ChangeType.DELETED, "before") == 1
    assert len(recorder.changes) == 5


async def test_connections_refused_mid_watch_are_retried_and_nothing_is_lost(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    recorder = Recorder(store)
    async with running(KubeSource(api, store, options=FAST)):
        await watching(server, 5)  # no CRDs: IngressRoute and delegations are not watched
        await server.refuse_connections(0.4)
        for index in range(5):
            server.put_object(service(f"while-away-{index}"))
        await eventually(lambda: len(store.keys("Service")) == 5, within=5)
    assert sorted(c.key.name for c in recorder.changes) == [f"while-away-{i}" for i in range(5)]


async def test_410_relists_and_emits_deletes_for_objects_removed_meanwhile(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    recorder = Recorder(store)
    for name in ("keep", "doomed"):
        server.put_object(service(name))
    async with running(KubeSource(api, store, options=FAST)):
        await watching(server, 5)  # no CRDs: IngressRoute and delegations are not watched
        await server.refuse_connections(0.3)
        server.delete_object("v1", "Service", "doomed", "default")
        server.put_object(service("new"))
        server.compact()  # our resourceVersion is gone: the next watch answers 410
        await eventually(lambda: store.get("Service", "default", "doomed") is None)
        await eventually(lambda: store.get("Service", "default", "new") is not None)
        assert server.request_count(verb="list", resource="services") == 2
        # And after the re-list the informer watches again.
        server.put_object(service("later"))
        await eventually(lambda: store.get("Service", "default", "later") is not None)
    assert recorder.count(ChangeType.DELETED, "doomed") == 1
    assert recorder.count(ChangeType.ADDED, "keep") == 1  # unchanged by the re-list


async def test_start_while_the_api_server_refuses_connections_then_sync_with_backoff(
    api: client.ApiClient, server: TestApiServer
) -> None:
    server.put_object(service("web"))
    loop = asyncio.get_running_loop()
    await server.refuse_connections(5.0)
    refused = loop.time()
    store = Store()
    options = InformerOptions(rand=lambda: 0.0)  # the default backoff (0.2 s doubling), no jitter
    source = KubeSource(api, store, options=options, resources=[SERVICES])
    with capture_logs() as logs:
        async with running(source, wait=False) as synced:
            await asyncio.wait_for(synced.wait(), 30)
            took = loop.time() - refused
            assert store.get("Service", "default", "web") is not None
    # Lists at 0, 0.2, 0.6, 1.4 and 3.0 are refused; the server is back at 5; the next, at 6.2.
    delays = [e["delay"] for e in logs if e["event"] == "informer.retry"]
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert took == pytest.approx(6.2, abs=1e-3)


def test_backoff_doubles_up_to_its_cap_with_jitter_taken_off() -> None:
    backoff = Backoff(0.2, 10.0, rand=lambda: 0.0)
    assert [backoff.next() for _ in range(8)] == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    )
    backoff.reset()
    assert backoff.next() == pytest.approx(0.2)
    halved = Backoff(0.2, 10.0, rand=lambda: 1.0)  # jitter 0.5: at most half is taken off
    assert [halved.next() for _ in range(3)] == pytest.approx([0.1, 0.2, 0.4])


async def test_a_missing_crd_counts_as_synced_empty_and_is_found_later(
    api: client.ApiClient, server: TestApiServer
) -> None:
    store = Store()
    found = asyncio.Event()
    store.subscribe(lambda change: found.set())
    loop = asyncio.get_running_loop()
    options = InformerOptions()  # production timings: look for the CRD again every 60 s
    async with running(KubeSource(api, store, options=options, resources=[INGRESS_ROUTES])):
        synced = loop.time()
        assert store.keys("IngressRoute") == []
        install_crds(server)
        server.put_object(ingress_route("root", "a.example.com"))
        await asyncio.wait_for(found.wait(), 2 * options.missing_retry)
        took = loop.time() - synced
        assert store.get("IngressRoute", "default", "root") is not None
    assert took == pytest.approx(options.missing_retry, abs=1e-3)


async def test_watch_namespaces_and_root_namespaces_limit_what_is_read(
    api: client.ApiClient, server: TestApiServer
) -> None:
    install_crds(server)
    for ns in ("a", "b", "c"):
        server.put_object(namespace(ns))
        server.put_object(service("web", ns))
        server.put_object(secret("tls", ns, **{"tls.crt": PEM}))
    store = Store()
    source = KubeSource(
        api, store, watch_namespaces=["a", "b"], root_namespaces=["a", "c"], options=FAST
    )
    kinds = Counter(i.resource.kind for i in source.informers)
    assert kinds["Service"] == 2 and kinds["Secret"] == 1 and kinds["IngressClass"] == 1
    async with running(source):
        assert sorted(k.namespace for k in store.keys("Service")) == ["a", "b"]
        assert [k.namespace for k in store.keys("Secret")] == ["a"]
        server.put_object(service("late", "c"))
        server.put_object(service("late", "b"))
        await eventually(lambda: store.get("Service", "b", "late") is not None)
        assert store.get("Service", "c", "late") is None
    assert server.request_count(verb="watch", resource="services", namespace="c") == 0


def test_secret_namespaces() -> None:
    assert secret_namespaces([], []) == ()
    assert secret_namespaces(["a", "b"], []) == ("a", "b")
    assert secret_namespaces([], ["r"]) == ("r",)
    assert secret_namespaces(["a", "b"], ["b", "c"]) == ("b",)


async def test_disjoint_root_and_watch_namespaces_read_no_secrets(api: client.ApiClient) -> None:
    source = KubeSource(api, Store(), watch_namespaces=["a"], root_namespaces=["b"])
    assert "Secret" not in {i.resource.kind for i in source.informers}


async def test_a_malformed_update_removes_the_previous_version(api: client.ApiClient) -> None:
    store = Store()
    informer = Informer(api, SERVICES, StoreSink(store))
    informer.handle({"type": "ADDED", "object": service("web") | {"kind": "ignored"}})
    assert store.get("Service", "default", "web") is not None  # kind comes from the resource
    broken = service("web", spec={"ports": "not a list"})
    broken["metadata"]["resourceVersion"] = "42"
    with capture_logs() as logs:
        informer.handle({"type": "MODIFIED", "object": broken})
    assert store.get("Service", "default", "web") is None
    assert informer.resource_version == "42"
    assert logs[0]["event"] == "object.skipped" and "spec.ports" in logs[0]["reason"]


async def test_a_410_answer_to_the_watch_request_itself_relists(tmp_path: Path) -> None:
    """Some API servers answer an expired watch with HTTP 410 instead of an ERROR event."""
    calls: list[str] = []

    async def services(request: web.Request) -> web.Response:
        if request.query.get("watch") == "true":
            calls.append("watch")
            status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            return web.json_response(status, status=410)
        calls.append("list")
        items = [service(f"s{len(calls)}")]
        return web.json_response({"metadata": {"resourceVersion": "5"}, "items": items})

    app = web.Application()
    app.router.add_get("/api/v1/services", services)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    kubeconfig = tmp_path / "stub"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: s, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: s, user: {{token: t}}}}]
contexts: [{{name: s, context: {{cluster: s, user: s}}}}]
current-context: s
"""
    )
    api_client = await make_api_client(kubeconfig)
    store = Store()
    informer = Informer(api_client, SERVICES, StoreSink(store), options=FAST)
    task = asyncio.create_task(informer.run())
    try:
        await eventually(lambda: calls.count("list") >= 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await api_client.close()
        await runner.cleanup()
    assert calls[:4] == ["list", "watch", "list", "watch"]
    assert len(store.keys("Service")) == 1  # each re-list replaced the previous object


async def test_watch_events_and_relists_are_counted_by_kind(api: client.ApiClient) -> None:
    """controlplane_informer_*: what the watches delivered, by kind and type, and how fresh."""
    registry = CollectorRegistry()
    metrics = informer_metrics(registry)
    informer = Informer(api, SERVICES, StoreSink(Store()), metrics=metrics)
    informer.handle({"type": "ADDED", "object": service("web")})
    informer.handle({"type": "MODIFIED", "object": service("web")})
    informer.handle({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    informer.handle({"type": "SURPRISE", "object": {"metadata": {}}})  # bounded labels
    informer.handle({"type": "DELETED", "object": service("web")})

    def count(kind: str) -> float | None:
        labels = {"kind": "Service", "type": kind}
        return registry.get_sample_value("controlplane_informer_events_total", labels)

    assert [count(t) for t in ("ADDED", "MODIFIED", "BOOKMARK", "DELETED", "other")] == [1] * 5
    stamp = registry.get_sample_value(
        "controlplane_informer_last_event_timestamp_seconds", {"kind": "Service"}
    )
    assert stamp is not None and abs(stamp - time.time()) < 60
    with pytest.raises(Gone):
        informer.handle({"type": "ERROR", "object": {"code": 410, "message": "too old"}})
