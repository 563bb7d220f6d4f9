"""Status writers against the Kubernetes API test server: one PATCH per real change, no rebuild
from our own writes, leader gating, rate limiting, retries, and Ingress load balancer status.

On looptime's fast-forwarded loop clock: rate limits and retry backoff are asserted in loop
seconds. "Nothing more was written" is read from the writer's `writes` counter and the server's
request counts after `drain()` (the writer is idle: nothing in flight, queued or waiting to be
retried), and "our own write came back without a change event" after the store has seen it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from kube_support import ingress, ingress_route, install_crds, service
from kubernetes_asyncio import client
from structlog.testing import capture_logs
from waiting import eventually

from controlplane.dag import BuildOptions, DagBuilder
from controlplane.kube_wiring import StatusListeners
from controlplane.model import Ingress, IngressRoute
from controlplane.model.contour import IngressRouteStatus
from controlplane.publisher import PublishReport
from controlplane.sources.events import EventRecorder
from controlplane.sources.kube import INGRESS_ROUTES, INGRESSES, InformerOptions, KubeSource
from controlplane.sources.kubeclient import MERGE_PATCH, request_json
from controlplane.sources.status import (
    IngressStatusWriter,
    PatchWriter,
    StatusUpdate,
    StatusWriter,
    TokenBucket,
    WriterOptions,
    parse_addresses,
    parse_service_ref,
)
from controlplane.store import Change, Store
from controlplane.testing.apiserver import TestApiServer

pytestmark = pytest.mark.looptime

FAST = InformerOptions(backoff_initial=0.05, backoff_max=0.2, missing_retry=0.2)
VALID = {"currentStatus": "valid", "description": "valid IngressRoute", "observedGeneration": 1}
ORPHANED = {
    "currentStatus": "orphaned",
    "description": "this IngressRoute is not part of a delegation chain from a root IngressRoute",
    "observedGeneration": 1,
}


@dataclass
class Harness:
    server: TestApiServer
    store: Store
    changes: list[Change]

    def patches(self, resource: str = "ingressroutes") -> int:
        return self.server.request_count(verb="patch", resource=resource, subresource="status")

    def stored_status(self, name: str) -> str | None:
        """currentStatus of IngressRoute `name` as the informer's store has it."""
        route = self.store.get("IngressRoute", "default", name)
        assert isinstance(route, IngressRoute)
        return route.status.current_status

    def stored_addresses(self, name: str) -> list[Any]:
        found = self.store.get("Ingress", "default", name)
        assert isinstance(found, Ingress)
        return list(found.status.load_balancer.ingress)

    def status(self, name: str) -> dict[str, Any]:
        obj = self.server.get_object("contour.heptio.com/v1beta1", "IngressRoute", name, "default")
        return dict(obj.get("status") or {})


@asynccontextmanager
async def running(*tasks: Any) -> AsyncIterator[None]:
    started = [asyncio.create_task(t) for t in tasks]
    try:
        yield
    finally:
        for task in started:
            task.cancel()
        for task in started:
            with pytest.raises(asyncio.CancelledError):
                await task


@asynccontextmanager
async def informed(
    api: client.ApiClient, server: TestApiServer, routes: int = 1
) -> AsyncIterator[Harness]:
    """IngressRoutes `r0`..`rN` and Ingress `site` in the API server, informed into a store."""
    install_crds(server)
    for index in range(routes):
        server.put_object(ingress_route(f"r{index}", f"r{index}.example.com"))
    server.put_object(ingress("site"))
    store = Store()
    changes: list[Change] = []
    source = KubeSource(api, store, options=FAST, resources=[INGRESS_ROUTES, INGRESSES])
    synced = asyncio.Event()
    async with running(source.run(synced)):
        await asyncio.wait_for(synced.wait(), 5)
        store.subscribe(changes.append)
        server.reset_request_counts()
        yield Harness(server, store, changes)


def update(name: str, status: dict[str, Any]) -> StatusUpdate:
    return StatusUpdate("default", name, IngressRouteStatus.model_validate(status))


async def drained(writer: PatchWriter, within: float = 30.0) -> None:
    """`writer.drain()`, failing after `within` seconds of loop time rather than hanging."""
    async with asyncio.timeout(within):
        await writer.drain()


async def settled(h: Harness, writer: PatchWriter, name: str) -> None:
    """Drained, and the informer's store has seen the object as the server has it now: the
    writer's next decision is then made on what it wrote, not on an older echo."""
    await drained(writer)

    def caught_up() -> bool:
        stored = h.store.get("IngressRoute", "default", name)
        served = h.server.get_object("contour.heptio.com/v1beta1", "IngressRoute", name, "default")
        return stored is not None and stored.metadata.resource_version == str(
            served["metadata"]["resourceVersion"]
        )

    await eventually(caught_up, message="the store has seen the last write")


async def test_status_is_written_once_per_real_change_and_causes_no_rebuild(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with informed(api, server) as h:
        writer = StatusWriter(api, store=h.store, leader=True)
        async with running(writer.run()):
            writer.submit([update("r0", VALID)])
            writer.submit([update("r0", VALID)])  # again before the first write is back
            await drained(writer)
            assert h.status("r0").get("currentStatus") == "valid"
            await eventually(lambda: h.stored_status("r0") == "valid")  # our write came back
            writer.submit([update("r0", VALID)])
            writer.submit([update("r0", dict(VALID))])
            await drained(writer)
            assert h.patches() == 1 and writer.writes == 1

            writer.submit([update("r0", ORPHANED)])
            await drained(writer)
            assert h.patches() == 2 and writer.writes == 2
            await eventually(lambda: h.stored_status("r0") == "orphaned")

    assert h.status("r0") == {**ORPHANED, "conditions": []}
    assert h.changes == []  # our own status writes come back as status-only updates


async def test_a_status_changed_by_someone_else_is_put_back(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with informed(api, server) as h:
        writer = StatusWriter(api, store=h.store, leader=True)
        async with running(writer.run()):
            writer.submit([update("r0", VALID)])
            await drained(writer)
            assert h.patches() == 1
            await request_json(
                api,
                "PATCH",
                "/apis/contour.heptio.com/v1beta1/namespaces/default/ingressroutes/r0/status",
                body={"status": {"currentStatus": "invalid"}},
                content_type=MERGE_PATCH,
            )
            await eventually(lambda: h.stored_status("r0") == "invalid")
            writer.submit([update("r0", VALID)])
            await drained(writer)
            assert h.status("r0").get("currentStatus") == "valid"
        assert h.patches() == 3 and writer.writes == 2  # ours, theirs, ours again


Statuses = dict[str, dict[str, Any]]
"""IngressRoute name → the status a build computed, as JSON."""


def fed_by_builds(h: Harness, writer: StatusWriter) -> Callable[[], Awaitable[Statuses]]:
    """`writer` wired to the store as cluster mode wires it (`kube_wiring.StatusListeners`);
    returns a function that builds the DAG of the store as it is now (warm, as the runtime
    does), calls the build listener with its report, lets it hand everything out and returns
    the statuses it computed. Events are not under test here (a follower's recorder posts
    nothing)."""
    recorder = EventRecorder(writer.api_client, store=h.store, instance="test")
    listeners = StatusListeners(h.store, writer, recorder, BuildOptions())
    builder = DagBuilder()

    async def build() -> Statuses:
        objects = h.store.object_set()
        dag = builder.build(objects, BuildOptions())
        listeners(PublishReport(dag, 0, 0.0, statuses=dag.statuses), objects)
        for _ in range(100):  # a loop turn per piece handed out
            if not listeners.pending():
                break
            await asyncio.sleep(0)
        assert listeners.pending() == 0
        return {s.name: s.status.model_dump(by_alias=True, mode="json") for s in dag.statuses}

    return build


async def test_a_status_someone_else_overwrites_is_put_back_without_a_rebuild(
    api: client.ApiClient, server: TestApiServer
) -> None:
    """Between builds nothing hands the writer that status: the store tells it of the
    status-only update (which triggers no rebuild), for that one object."""
    async with informed(api, server, routes=3) as h:
        writer = StatusWriter(api, store=h.store, leader=True)
        build = fed_by_builds(h, writer)
        async with running(writer.run()):
            await build()
            for name in ("r0", "r1", "r2"):
                await settled(h, writer, name)
            assert h.patches() == 3
            ours = h.status("r1")
            assert ours.get("currentStatus") == "invalid"  # its Service `s` is missing

            await request_json(
                api,
                "PATCH",
                "/apis/contour.heptio.com/v1beta1/namespaces/default/ingressroutes/r1/status",
                body={"status": {"currentStatus": "valid", "description": "all good, trust me"}},
                content_type=MERGE_PATCH,
            )
            await eventually(lambda: h.patches() == 5, message="theirs, then ours again")
            await settled(h, writer, "r1")
            assert h.status("r1") == ours and writer.writes == 4
        assert h.changes == []  # no Change: nothing asked for a rebuild, and none ran
        assert h.patches(resource="ingressroutes") == 5


async def test_a_new_leader_checks_every_status_once(
    api: client.ApiClient, server: TestApiServer
) -> None:
    """Builds hand the writer only what changed, so a follower's wishes pile up unchecked by
    builds; becoming leader checks each once: it writes exactly those the cluster lacks."""
    async with informed(api, server, routes=8) as h:
        writer = StatusWriter(api, store=h.store)
        build = fed_by_builds(h, writer)
        async with running(writer.run()):
            statuses = await build()
            await drained(writer)
            assert h.patches() == 0
            # The old leader wrote r0..r3 as we compute them, and never got to r4..r7.
            for name in ("r0", "r1", "r2", "r3"):
                await request_json(
                    api,
                    "PATCH",
                    f"/apis/contour.heptio.com/v1beta1/namespaces/default/ingressroutes/{name}"
                    "/status",
                    body={"status": statuses[name]},
                    content_type=MERGE_PATCH,
                )
            await eventually(lambda: h.stored_status("r3") == "invalid")
            await build()  # nothing changed: the listener hands the writer nothing
            await drained(writer)
            assert writer.writes == 0

            writer.set_leader(True)
            await drained(writer)
            assert writer.writes == 4 and writer.pending() == 0
            assert all(h.status(f"r{i}") == statuses[f"r{i}"] for i in range(8))
            await settled(h, writer, "r7")
            await build()
            await drained(writer)
        assert writer.writes == 4 and h.patches() == 8  # theirs (4), ours (4), nothing twice
        assert h.changes == []


async def test_conditions_are_compared_and_written(
    api: client.ApiClient, server: TestApiServer
) -> None:
    warning = {"type": "Warning", "status": "True", "reason": "Deprecated", "message": "m"}
    async with informed(api, server) as h:
        writer = StatusWriter(api, store=h.store, leader=True)
        async with running(writer.run()):
            writer.submit([update("r0", {**VALID, "conditions": [warning]})])
            await settled(h, writer, "r0")
            assert h.status("r0").get("conditions") == [warning]
            writer.submit([update("r0", VALID)])  # no conditions now: the list is cleared
            await settled(h, writer, "r0")
            assert h.status("r0").get("conditions") == []
            writer.submit([update("r0", {**VALID, "conditions": []})])  # the same status
            await drained(writer)
        assert h.patches() == 2 and writer.writes == 2


async def test_only_the_leader_writes_and_losing_leadership_stops_writes_at_once(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with informed(api, server, routes=40) as h:
        options = WriterOptions(rate=40, burst=1, concurrency=1)
        writer = StatusWriter(api, store=h.store, options=options)
        async with running(writer.run()):
            writer.submit([update(f"r{i}", VALID) for i in range(40)])
            await drained(writer)  # looked at them all, and waits: we do not lead
            assert h.patches() == 0 and writer.pending() == 40

            writer.set_leader(True)
            await eventually(lambda: writer.writes >= 5)
            writer.set_leader(False)  # the write in flight, if any, is cancelled at once
            written = writer.writes
            await drained(writer)
            assert writer.writes == written < 40 and writer.pending() == 40 - written
            assert h.patches() <= written + 1  # the cancelled one may have reached the server

            writer.set_leader(True)  # leading again: the rest is written, nothing twice
            await drained(writer)
            assert writer.pending() == 0 and writer.writes == 40
        assert all(h.status(f"r{i}").get("currentStatus") == "valid" for i in range(40))
        assert h.patches() <= 41  # at most the one cancelled mid-flight is repeated


class LosesTheLeadAsAWriteIsHandedOut(StatusWriter):
    """Loses leadership once, right after a write was handed to its task and before that task
    ran: the elector's callback can run there (its step may be next in the loop's queue)."""

    lost = False

    def comparable(self, body: Any) -> Any:
        if self.leader and self._inflight and not self.lost:
            self.lost = True
            self.set_leader(False)
        return super().comparable(body)


async def test_a_write_cancelled_before_it_started_is_kept_for_the_next_lead(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with informed(api, server, routes=2) as h:
        writer = LosesTheLeadAsAWriteIsHandedOut(api, store=h.store)
        async with running(writer.run()):
            writer.submit([update("r0", VALID), update("r1", VALID)])
            writer.set_leader(True)
            await drained(writer)
            assert writer.lost and writer.writes == 0 and writer.pending() == 2
            writer.set_leader(True)
            await drained(writer)
            assert writer.writes == 2 and writer.pending() == 0
        assert h.patches() == 2


async def test_writes_are_rate_limited(api: client.ApiClient, server: TestApiServer) -> None:
    async with informed(api, server, routes=60) as h:
        writer = StatusWriter(
            api, store=h.store, leader=True, options=WriterOptions(rate=50, burst=10)
        )
        async with running(writer.run()):
            loop = asyncio.get_running_loop()
            start = loop.time()
            writer.submit([update(f"r{i}", VALID) for i in range(60)])
            await drained(writer)
            elapsed = loop.time() - start
        assert h.patches() == writer.writes == 60
        # 10 at once, then one every 20 ms: the 60th starts 50 x 20 ms = 1 s (of loop time) in,
        # and requests to the in-process server take no loop time.
        assert elapsed == pytest.approx(1.0, abs=1e-3)


def test_token_bucket_on_a_fake_clock() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=50, burst=100, clock=lambda: now[0])
    waits = [bucket.reserve() for _ in range(10_000)]
    assert waits[:100] == [0.0] * 100
    assert waits[100] == pytest.approx(0.02)
    assert waits[-1] == pytest.approx((10_000 - 100) / 50)  # 198 s to drain 10,000 changes
    now[0] = 1000.0  # long idle: the bucket refills to its burst, no more
    assert [bucket.reserve() for _ in range(100)] == [0.0] * 100
    assert bucket.reserve() > 0


async def test_a_deleted_object_is_dropped_and_failures_are_retried(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with informed(api, server) as h:
        options = WriterOptions(rand=lambda: 0.0)  # the default backoff, 0.2 s doubling; no jitter
        writer = StatusWriter(api, leader=True, options=options)  # no store: the API answers
        async with running(writer.run()):
            writer.submit([update("gone", VALID)])
            await drained(writer)
            assert writer.writes == 0 and h.patches() == 1  # the 404, not retried

            loop = asyncio.get_running_loop()
            await server.refuse_connections(1.0)
            refused = loop.time()
            with capture_logs() as logs:
                writer.submit([update("r0", VALID)])
                await drained(writer)
            took = loop.time() - refused
            assert h.status("r0").get("currentStatus") == "valid" and writer.writes == 1
        # Tried at 0, 0.2, 0.6 (refused), then at 1.4 (loop seconds), after the server is back.
        retries = [e["delay"] for e in logs if e["event"] == "status.retry"]
        assert retries == [0.2, 0.4, 0.8]
        assert took == pytest.approx(1.4, abs=1e-3)


async def test_ingress_status_from_a_fixed_address(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with informed(api, server) as h:
        writer = IngressStatusWriter(
            api, address="10.0.0.1, lb.example.com", store=h.store, leader=True
        )
        async with running(writer.run()):
            writer.submit([("default", "site")])
            expected = [{"ip": "10.0.0.1"}, {"hostname": "lb.example.com"}]

            def written() -> Any:
                obj = server.get_object("networking.k8s.io/v1", "Ingress", "site", "default")
                return obj.get("status", {}).get("loadBalancer", {}).get("ingress")

            await drained(writer)
            assert written() == expected
            await eventually(lambda: h.stored_addresses("site") != [])  # our write came back
            writer.submit([("default", "site")])
            await drained(writer)
        assert h.patches("ingresses") == 1 and writer.writes == 1
        assert h.changes == []


async def test_ingress_status_follows_the_envoy_service(
    api: client.ApiClient, server: TestApiServer
) -> None:
    def envoy(hostname: str) -> dict[str, Any]:
        lb = {"loadBalancer": {"ingress": [{"hostname": hostname}]}}
        return service("envoy", type="LoadBalancer", status=lb)

    server.put_object(envoy("one.example.com"))
    async with informed(api, server) as h:
        writer = IngressStatusWriter(
            api,
            envoy_service=("default", "envoy"),
            store=h.store,
            leader=True,
            informer_options=FAST,
        )

        def written() -> Any:
            obj = server.get_object("networking.k8s.io/v1", "Ingress", "site", "default")
            return obj.get("status", {}).get("loadBalancer", {}).get("ingress")

        async with running(writer.run()):
            writer.submit([("default", "site")])
            await eventually(lambda: written() == [{"hostname": "one.example.com"}])
            server.put_object(envoy("two.example.com"))
            await eventually(lambda: written() == [{"hostname": "two.example.com"}])
        assert server.request_count(verb="watch", resource="services", namespace="default") >= 1


def test_address_and_service_parsing() -> None:
    assert parse_addresses("10.0.0.1,::1, a.example.com,") == (
        ("10.0.0.1", None),
        ("::1", None),
        (None, "a.example.com"),
    )
    assert parse_service_ref("projectcontour/envoy") == ("projectcontour", "envoy")
    with pytest.raises(ValueError):
        parse_service_ref("envoy")
    with pytest.raises(ValueError):
        IngressStatusWriter(None, address="1.2.3.4", envoy_service=("a", "b"))  # type: ignore[arg-type]
