"""Holdoff on the event loop's clock, fast-forwarded by looptime: a lone change is built at once
(leading edge), the rest of a burst becomes one rebuild the moment its quiet period ends, a steady
trickle still rebuilds every max_delay, and a rebuild never overlaps the next one. Times are loop
seconds since the test started, asserted exactly; the tests take no real time and never sleep on
the wall clock."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from controlplane.holdoff import Holdoff

pytestmark = pytest.mark.looptime


class Rebuilds:
    """The holdoff's action: records when each rebuild started and ended (loop seconds since the
    test began); a rebuild takes `duration` loop seconds, and raises with `fail`."""

    def __init__(self, duration: float = 0.0, *, fail: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.zero = self.loop.time()
        self.duration, self.fail = duration, fail
        self.started: list[float] = []
        self.ended: list[float] = []
        self.running = 0
        self.most_at_once = 0
        self._changed = asyncio.Condition()

    def now(self) -> float:
        return round(self.loop.time() - self.zero, 6)  # looptime counts in microseconds

    async def __call__(self) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.started.append(self.now())
        try:
            if self.duration:
                await asyncio.sleep(self.duration)
            if self.fail:
                raise RuntimeError("boom")
        finally:
            self.running -= 1
            self.ended.append(self.now())
            async with self._changed:
                self._changed.notify_all()

    async def wait(self, count: int) -> None:
        """Until `count` rebuilds have ended (failing after 10 s of loop time, which passes in an
        instant when nothing else is scheduled)."""
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: len(self.ended) >= count)


async def poke_every(holdoff: Holdoff, interval: float, count: int) -> None:
    for index in range(count):
        if index:
            await asyncio.sleep(interval)
        holdoff.poke()


async def test_a_change_after_a_quiet_period_is_built_at_once() -> None:
    rebuilds = Rebuilds()
    holdoff = Holdoff(rebuilds, delay=0.05, max_delay=1.0)
    holdoff.start()
    holdoff.poke()
    await rebuilds.wait(1)
    assert rebuilds.started == [0.0]
    await asyncio.sleep(0.2)  # quiet again
    holdoff.poke()
    await rebuilds.wait(2)
    assert rebuilds.started == [0.0, 0.2]
    await holdoff.stop()


async def test_the_rest_of_a_burst_becomes_one_rebuild_when_the_quiet_period_ends() -> None:
    rebuilds = Rebuilds()
    holdoff = Holdoff(rebuilds, delay=0.05, max_delay=1.0)
    holdoff.start()
    await poke_every(holdoff, 0.001, 20)  # the last poke at 0.019
    assert holdoff.pending
    await rebuilds.wait(2)
    # The first poke at once; the 19 others together, 0.05 after the last.
    assert rebuilds.started == [0.0, 0.069]
    assert not holdoff.pending  # nothing is due: no other rebuild can come without a poke
    await holdoff.stop()
    assert len(rebuilds.started) == 2


async def test_a_steady_trickle_still_rebuilds_every_max_delay() -> None:
    rebuilds = Rebuilds()
    holdoff = Holdoff(rebuilds, delay=0.05, max_delay=0.1)
    holdoff.start()
    await poke_every(holdoff, 0.03, 15)  # 0.00, 0.03, ... 0.42: never 0.05 of quiet
    await rebuilds.wait(5)
    # The first poke at once; after it, each burst is cut at 0.1 after its first poke, and the
    # next poke (0.02 after that rebuild: not quiet) starts the next burst; the last one ends
    # 0.05 after the last poke (0.42).
    assert rebuilds.started == [0.0, 0.13, 0.25, 0.37, 0.47]
    assert not holdoff.pending
    await holdoff.stop()


async def test_pokes_during_a_rebuild_bring_the_next_one_right_after_it() -> None:
    rebuilds = Rebuilds(duration=0.3)
    holdoff = Holdoff(rebuilds, delay=0.1, max_delay=0.5)
    holdoff.start()
    holdoff.poke()
    await asyncio.sleep(0.2)  # loop time: the first rebuild (0.0 to 0.3) is under way
    assert rebuilds.started == [0.0] and rebuilds.running == 1
    holdoff.poke()  # its quiet period ends at 0.3, as the first rebuild ends
    await rebuilds.wait(2)
    assert rebuilds.started == [0.0, 0.3] and rebuilds.ended == [0.3, 0.6]
    assert rebuilds.most_at_once == 1
    await holdoff.stop()


async def test_a_failing_rebuild_is_logged_and_later_pokes_still_rebuild() -> None:
    rebuilds = Rebuilds(fail=True)
    holdoff = Holdoff(rebuilds, delay=0.01, max_delay=0.02)
    holdoff.start()
    with capture_logs() as logs:
        holdoff.poke()
        await rebuilds.wait(1)
        holdoff.poke()  # right after a rebuild: not quiet, so after the delay
        await rebuilds.wait(2)
    await holdoff.stop()
    assert rebuilds.started == [0.0, 0.01]
    assert [e["event"] for e in logs] == ["holdoff.action_failed"] * 2
