"""Holdoff: bursts become one rebuild; a steady trickle cannot postpone it past max_delay."""

from __future__ import annotations

import asyncio

from controlplane.holdoff import Holdoff


async def run_holdoff(
    pokes_every: float, pokes: int, delay: float, max_delay: float
) -> list[float]:
    loop = asyncio.get_running_loop()
    fired: list[float] = []

    async def action() -> None:
        fired.append(loop.time())

    holdoff = Holdoff(action, delay=delay, max_delay=max_delay)
    holdoff.start()
    start = loop.time()
    for _ in range(pokes):
        holdoff.poke()
        await asyncio.sleep(pokes_every)
    await asyncio.sleep(delay * 3)
    await holdoff.stop()
    return [t - start for t in fired]


async def test_a_burst_becomes_one_rebuild_after_the_quiet_period() -> None:
    fired = await run_holdoff(pokes_every=0.001, pokes=20, delay=0.05, max_delay=1.0)
    assert len(fired) == 1
    assert fired[0] >= 0.05


async def test_a_steady_trickle_still_rebuilds_by_max_delay() -> None:
    fired = await run_holdoff(pokes_every=0.02, pokes=15, delay=0.05, max_delay=0.1)
    assert len(fired) >= 2
    assert fired[0] < 0.1 + 0.05


async def test_a_failing_action_does_not_stop_later_rebuilds() -> None:
    calls = 0

    async def action() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    holdoff = Holdoff(action, delay=0.01, max_delay=0.02)
    holdoff.start()
    holdoff.poke()
    await asyncio.sleep(0.05)
    holdoff.poke()
    await asyncio.sleep(0.05)
    await holdoff.stop()
    assert calls == 2
