"""`controlplane serve` as a child process, for tests and benchmarks that kill and restart it.

Several controller replicas behind one Envoy are separate processes in production, so tests
that prove replicas publish the same bytes, or that an Envoy survives losing one, run them as
processes too: ``ControllerProcess(args)`` runs ``python -m controlplane serve ARGS``.

- **Started means ready.** ``start()`` returns once ``/readyz`` on ``--health-address`` answers
  200 (the initial load is built and published), or raises ``ControllerError`` with the tail of
  the process's log if it exits or takes too long.
- **``kill()`` is a crash** (SIGKILL: no GOAWAY, no drain), ``stop()`` a clean SIGTERM. Either
  way the process is reaped; ``start()`` may then run it again with the same arguments, ports
  included.
- **It dies with its parent** on Linux (``setpriv --pdeathsig KILL``), so an interrupted test run
  leaves no controller behind. Logs (JSON) go to a file the caller names.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

__all__ = ["ControllerError", "ControllerProcess"]

_POLL_S = 0.03


class ControllerError(RuntimeError):
    """The controller exited or did not become ready in time; the message has its log."""


def _flag(args: Sequence[str], name: str) -> str:
    for index, arg in enumerate(args):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name and index + 1 < len(args):
            return args[index + 1]
    raise ValueError(f"ControllerProcess needs {name} in its arguments")


class ControllerProcess:
    """One ``controlplane serve`` child process (see the module docstring)."""

    def __init__(
        self, args: Sequence[str], *, log_path: Path, startup_timeout_s: float = 20.0
    ) -> None:
        self.args = list(args)
        self.health_address = _flag(self.args, "--health-address")
        self.xds_address = _flag(self.args, "--xds-address")
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.starts = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("controller already running")
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *prefix, sys.executable, "-m", "controlplane", "serve", *self.args,
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.starts += 1
        try:
            await self._wait_ready(time.monotonic() + self.startup_timeout_s)
        except BaseException:
            await self.kill()
            raise

    async def _wait_ready(self, deadline: float) -> None:
        url = f"http://{self.health_address}/readyz"
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if not self.running:
                    raise ControllerError(f"controller exited during start-up\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise ControllerError(f"controller not ready in time\n{self.log_tail()}")
                await asyncio.sleep(_POLL_S)

    async def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would end it."""
        await self._end(kill=True)

    async def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``."""
        await self._end(kill=False, grace_s=grace_s)

    async def _end(self, *, kill: bool, grace_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill() if kill else process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
