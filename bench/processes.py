"""Processes measured from outside: a process tree's CPU time and memory (RSS, PSS) read from
`/proc`, and `Controller`, a control plane running as a child process (used by
`bench/peer_sovereign.py` for both control planes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) summed over ``pids``, MiB."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key == "Rss":
                    rss += int(value.split()[0])
                elif key == "Pss":
                    pss += int(value.split()[0])
        except OSError:
            continue
    return rss / 1024, pss / 1024


@dataclass
class Controller:
    """One control plane under test, run as its own process tree."""

    name: str
    process: asyncio.subprocess.Process

    @property
    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def memory(self) -> tuple[float, float]:
        return memory_mib(self.pids)

    async def idle_cpu(self, seconds: float) -> float:
        """CPU seconds per wall second of the whole tree, over ``seconds``."""
        pids = self.pids
        before, started = cpu_seconds(pids), time.monotonic()
        await asyncio.sleep(seconds)
        return (cpu_seconds(pids) - before) / (time.monotonic() - started)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                for pid in self.pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, 9)
                await self.process.wait()
