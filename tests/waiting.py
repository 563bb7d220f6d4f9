"""Waiting for a condition, the one way every tier does it.

`await eventually(condition)` returns as soon as `condition()` (sync or async) holds, looking
again every `interval` seconds of loop time, and fails after `within`. Under looptime the loop's
clock is fast-forwarded, so both bound loop time only; on the real clock they are real seconds.
Tests wait on conditions like this (or on a counter such as `Publisher.sequence`), never on a
sleep of a guessed length.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    within: float = 5.0,
    message: str = "condition",
    interval: float = 0.01,
) -> float:
    """Wait until `condition()` holds; returns how long it took (loop seconds)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return loop.time() - start
        if loop.time() - start > within:
            raise AssertionError(f"{message} not met within {within} s")
        await asyncio.sleep(interval)
