"""Leader election on a Lease in the Kubernetes API test server, with the production timings
(lease 15 s, renew deadline 10 s, retry period 2 s) on looptime's fast-forwarded loop clock.

Every callback is stamped with the loop time, so expiry and step-down are asserted in loop
seconds from the timeline, and "nobody else took over meanwhile" is read from it too: no test
sleeps to see that nothing happens. The API server runs on the same loop over real sockets;
requests take no loop time, so the bounds below are exact, whatever the retry jitter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from kubernetes_asyncio import client
from waiting import eventually

from controlplane.sources.leader import LeaderElector, default_identity, micro_time
from controlplane.testing.apiserver import TestApiServer

pytestmark = pytest.mark.looptime

LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
JITTER = 1.2  # a retry period is stretched by up to 20%


class Election:
    """Candidates sharing one Lease, the timeline of their callbacks, and a check made each time
    one starts leading (the only moment two leaders can begin): never two at once."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.loop = asyncio.get_running_loop()
        self.candidates: list[Candidate] = []
        self.overlaps: list[str] = []
        self._changed = asyncio.Event()

    def now(self) -> float:
        return self.loop.time()

    def noted(self, candidate: Candidate, event: str) -> None:
        if event == "started" and sum(c.leading for c in self.candidates) > 1:
            self.overlaps.append(candidate.name)
        self._changed.set()

    async def until(self, condition: Callable[[], bool], within: float) -> float:
        """Wait (in loop seconds) until a callback makes `condition()` true; how long it took."""
        start = self.now()
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()
        return self.now() - start


class Candidate:
    def __init__(self, election: Election, name: str, **kwargs: object) -> None:
        self.election, self.name = election, name
        self.events: list[str] = []
        self.times: list[float] = []
        self.elector = LeaderElector(
            election.api,
            namespace="default",
            name="controlplane-leader",
            identity=name,
            lease_duration=LEASE,
            renew_deadline=RENEW,
            retry_period=RETRY,
            on_started_leading=lambda: self._note("started"),
            on_stopped_leading=lambda: self._note("stopped"),
            **kwargs,  # type: ignore[arg-type]
        )
        self.task: asyncio.Task[None] | None = None

    def _note(self, event: str) -> None:
        self.events.append(event)
        self.times.append(self.election.now())
        self.election.noted(self, event)

    @property
    def leading(self) -> bool:
        return self.elector.is_leader

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


@asynccontextmanager
async def candidates(
    api: client.ApiClient, *names: str, **kwargs: object
) -> AsyncIterator[tuple[Election, list[Candidate]]]:
    """Started candidates; the test fails if two ever led at once."""
    election = Election(api)
    election.candidates = [Candidate(election, name, **kwargs) for name in names]
    for candidate in election.candidates:
        candidate.start()
    try:
        yield election, election.candidates
    finally:
        for candidate in election.candidates:
            if candidate.task is not None and not candidate.task.done():
                await candidate.stop()
    assert election.overlaps == [], "two leaders at once"


def lease(server: TestApiServer) -> dict[str, object]:
    found = server.get_object("coordination.k8s.io/v1", "Lease", "controlplane-leader", "default")
    return dict(found["spec"])


def renewals(server: TestApiServer) -> int:
    return server.request_count(verb="update", resource="leases")


async def test_two_candidates_elect_exactly_one_leader_who_keeps_renewing(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with candidates(api, "a", "b") as (election, (a, b)):
        await election.until(lambda: a.leading or b.leading, within=RETRY)
        leader, other = (a, b) if a.leading else (b, a)
        await eventually(lambda: renewals(server) >= 4, within=5 * RETRY)  # past a lease's length
        assert leader.events == ["started"] and other.events == []
        spec = lease(server)
        assert spec["holderIdentity"] == leader.elector.identity
        assert spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0


async def test_a_crashed_leader_is_replaced_once_the_lease_expires(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with candidates(api, "a", "b", release_on_exit=False) as (election, (a, b)):
        await election.until(lambda: a.leading or b.leading, within=RETRY)
        leader, other = (a, b) if a.leading else (b, a)
        await eventually(lambda: renewals(server) >= 1, within=2 * RETRY)
        await leader.stop()  # a crash: nothing released
        assert lease(server)["holderIdentity"] == leader.elector.identity
        took = await election.until(lambda: other.leading, within=LEASE + 3 * RETRY)
        # Expiry counts from when `other` first saw the last renewal (made at most a retry period
        # before the crash, seen at most a jittered one after it) and is noticed at its next retry.
        assert LEASE - RETRY <= took <= LEASE + 2 * RETRY * JITTER
        assert lease(server)["holderIdentity"] == other.elector.identity
        assert lease(server)["leaseTransitions"] == 1


async def test_a_clean_shutdown_releases_the_lease_for_a_quick_takeover(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with candidates(api, "a", "b") as (election, (a, b)):
        await election.until(lambda: a.leading or b.leading, within=RETRY)
        leader, other = (a, b) if a.leading else (b, a)
        await leader.stop()
        assert leader.events == ["started", "stopped"]
        took = await election.until(lambda: other.leading, within=LEASE)
        assert took <= RETRY * JITTER  # the next retry, not the lease's expiry


async def test_a_leader_that_cannot_renew_steps_down_and_later_leads_again(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with candidates(api, "solo") as (election, (solo,)):
        await election.until(lambda: solo.leading, within=RETRY)
        away = RENEW + 3 * RETRY
        await server.refuse_connections(away)
        refused = election.now()
        await election.until(lambda: not solo.leading, within=RENEW + RETRY)
        # The last renewal was at most a retry period before the refusal; the step-down comes at
        # the attempt that finds the renew deadline passed.
        stepped_down = solo.times[1] - refused
        assert RENEW - RETRY <= stepped_down <= RENEW
        await election.until(lambda: solo.leading, within=away + RETRY * JITTER)
        assert solo.events == ["started", "stopped", "started"]
        assert refused + away <= solo.times[2] <= refused + away + RETRY * JITTER


async def test_a_lease_held_by_someone_else_is_respected_until_it_expires(
    api: client.ApiClient, server: TestApiServer
) -> None:
    now = micro_time(datetime.now(UTC))
    server.put_object(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "controlplane-leader", "namespace": "default"},
            "spec": {"holderIdentity": "elsewhere", "leaseDurationSeconds": 15, "renewTime": now},
        }
    )
    async with candidates(api, "a") as (election, (a,)):
        started = election.now()
        took = await election.until(lambda: a.leading, within=LEASE + 2 * RETRY)
        # First seen at the first attempt, at once; taken at the first retry after it expired.
        assert LEASE <= took <= LEASE + RETRY * JITTER
        assert a.events == ["started"] and a.times[0] - started == took
        assert lease(server)["leaseTransitions"] == 1


def test_timings_and_formats() -> None:
    assert micro_time(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    assert "_" in default_identity() and default_identity() != default_identity()
    with pytest.raises(ValueError):
        LeaderElector(None, namespace="n", name="l", lease_duration=1, renew_deadline=2)  # type: ignore[arg-type]
