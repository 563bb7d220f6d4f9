"""Leader election on a Lease in the Kubernetes API test server, with short timings
(lease 1 s, renew deadline 0.6 s, retry period 0.2 s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from kube_support import eventually
from kubernetes_asyncio import client

from controlplane.sources.leader import LeaderElector, default_identity, micro_time
from controlplane.testing.apiserver import TestApiServer

LEASE, RENEW, RETRY = 1.0, 0.6, 0.2


class Candidate:
    def __init__(self, api: client.ApiClient, name: str, **kwargs: object) -> None:
        self.events: list[str] = []
        self.elector = LeaderElector(
            api,
            namespace="default",
            name="controlplane-leader",
            identity=name,
            lease_duration=LEASE,
            renew_deadline=RENEW,
            retry_period=RETRY,
            on_started_leading=lambda: self.events.append("started"),
            on_stopped_leading=lambda: self.events.append("stopped"),
            **kwargs,  # type: ignore[arg-type]
        )
        self.task: asyncio.Task[None] | None = None

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
) -> AsyncIterator[list[Candidate]]:
    """Started candidates, plus a monitor failing the test if two ever lead at once."""
    found = [Candidate(api, name, **kwargs) for name in names]
    for candidate in found:
        candidate.start()
    overlaps: list[float] = []

    async def monitor() -> None:
        while True:
            if sum(c.leading for c in found) > 1:
                overlaps.append(time.monotonic())
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(monitor())
    try:
        yield found
    finally:
        watcher.cancel()
        for candidate in found:
            if candidate.task is not None and not candidate.task.done():
                await candidate.stop()
    assert overlaps == [], "two leaders at once"


def lease(server: TestApiServer) -> dict[str, object]:
    found = server.get_object("coordination.k8s.io/v1", "Lease", "controlplane-leader", "default")
    return dict(found["spec"])


async def test_two_candidates_elect_exactly_one_leader(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with candidates(api, "a", "b") as (a, b):
        await eventually(lambda: a.leading or b.leading)
        await asyncio.sleep(LEASE * 2)  # several renewals: the leader keeps it, nobody flips
        leader, other = (a, b) if a.leading else (b, a)
        assert leader.events == ["started"] and other.events == []
        spec = lease(server)
        assert spec["holderIdentity"] == leader.elector.identity
        assert spec["leaseDurationSeconds"] == 1 and spec["leaseTransitions"] == 0


async def test_a_crashed_leader_is_replaced_within_one_lease_duration(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with candidates(api, "a", "b", release_on_exit=False) as (a, b):
        await eventually(lambda: a.leading or b.leading)
        leader, other = (a, b) if a.leading else (b, a)
        await asyncio.sleep(RETRY * 2)
        await leader.stop()  # a crash: nothing released
        crashed = time.monotonic()
        assert lease(server)["holderIdentity"] == leader.elector.identity
        # Expiry is counted from when `other` last saw the lease change (at most a jittered
        # retry period after the last renewal), and noticed at its next retry.
        bound = LEASE + 2 * RETRY * 1.2
        took = await eventually(lambda: other.leading, within=bound + 0.1)
        assert took > LEASE - 2 * RETRY  # it did wait for the lease to expire
        assert time.monotonic() - crashed <= bound + 0.1
        assert lease(server)["holderIdentity"] == other.elector.identity
        assert lease(server)["leaseTransitions"] == 1


async def test_a_clean_shutdown_releases_the_lease_for_a_quick_takeover(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with candidates(api, "a", "b") as (a, b):
        await eventually(lambda: a.leading or b.leading)
        leader, other = (a, b) if a.leading else (b, a)
        await leader.stop()
        assert leader.events == ["started", "stopped"]
        took = await eventually(lambda: other.leading, within=LEASE)
        assert took < LEASE / 2  # the next retry, not the lease's expiry


async def test_a_leader_that_cannot_renew_steps_down_and_later_leads_again(
    api: client.ApiClient, server: TestApiServer
) -> None:
    async with candidates(api, "solo") as (solo,):
        await eventually(lambda: solo.leading)
        await server.refuse_connections(RENEW + 0.8)
        refused = time.monotonic()
        await eventually(lambda: not solo.leading, within=RENEW + RETRY + 0.3)
        stepped_down = time.monotonic() - refused
        assert RENEW - RETRY - 0.1 <= stepped_down <= RENEW + RETRY + 0.2
        assert solo.events == ["started", "stopped"]
        await eventually(lambda: solo.leading, within=3)
        assert solo.events == ["started", "stopped", "started"]


async def test_a_lease_held_by_someone_else_is_respected_until_it_expires(
    api: client.ApiClient, server: TestApiServer
) -> None:
    now = micro_time(datetime.now(UTC))
    server.put_object(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "controlplane-leader", "namespace": "default"},
            "spec": {"holderIdentity": "elsewhere", "leaseDurationSeconds": 1, "renewTime": now},
        }
    )
    async with candidates(api, "a") as (a,):
        await asyncio.sleep(LEASE * 0.7)
        assert not a.leading
        took = await eventually(lambda: a.leading, within=LEASE + RETRY * 2)
        assert took > 0
        assert lease(server)["leaseTransitions"] == 1


def test_timings_and_formats() -> None:
    assert micro_time(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    assert "_" in default_identity() and default_identity() != default_identity()
    with pytest.raises(ValueError):
        LeaderElector(None, namespace="n", name="l", lease_duration=1, renew_deadline=2)  # type: ignore[arg-type]
