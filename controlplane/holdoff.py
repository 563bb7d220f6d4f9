"""Debounce of rebuilds: act at once on a lone change, coalesce a burst, never wait too long.

Leading edge: the first poke after a quiet period (no rebuild running, none finished in the last
`delay` seconds, nothing pending) runs the action at once, so one `kubectl apply` is live in the
time a build takes, not a build plus the holdoff. Trailing edge: pokes that arrive while a
rebuild runs, or within `delay` after one, are a burst: it fires `delay` seconds after its last
poke, and at the latest `max_delay` seconds after its first, so a steady trickle cannot postpone
a rebuild forever. A burst of a thousand objects therefore costs at most one extra (small) build
at its start, and converges no later than before. Defaults: 100 ms and 500 ms.

The clock is the event loop's (`loop.time()`), so tests can drive it with a fake loop clock; the
callback runs on the loop, never concurrently with itself: pokes during a rebuild schedule the
next one after it finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Holdoff:
    def __init__(
        self,
        action: Callable[[], Awaitable[None]],
        *,
        delay: float = 0.1,
        max_delay: float = 0.5,
    ) -> None:
        self._action = action
        self._delay = delay
        self._max_delay = max_delay
        self._first_poke: float | None = None
        self._last_poke = 0.0
        self._leading = False
        """The pending poke came after a quiet period: act on it at once."""
        self._running = False
        self._last_finish = -float("inf")
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="holdoff")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def pending(self) -> bool:
        return self._first_poke is not None

    def poke(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._first_poke is None:
            self._first_poke = now
            quiet = not self._running and now - self._last_finish >= self._delay
            self._leading = quiet
        self._last_poke = now
        self._wakeup.set()

    def _deadline(self) -> float:
        assert self._first_poke is not None
        if self._leading:
            return self._first_poke
        return min(self._last_poke + self._delay, self._first_poke + self._max_delay)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            while self._first_poke is not None and loop.time() < self._deadline():
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self._deadline() - loop.time())
                except TimeoutError:
                    break
            self._wakeup.clear()
            self._first_poke = None
            self._running = True
            try:
                await self._action()
            except Exception:  # a failed rebuild must not stop future ones
                log.exception("holdoff.action_failed")
            finally:
                self._running = False
                self._last_finish = loop.time()
