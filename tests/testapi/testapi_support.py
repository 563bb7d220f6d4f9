"""Helpers shared by the test API server tests: a hand-moved clock and the real kubectl."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
KUBECTL_FOUND = Path(KUBECTL).exists()


class FakeClock:
    """The server's clock, moved by hand so AGE columns are deterministic."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Kubectl:
    """Runs the real kubectl as a subprocess without blocking the loop the server runs on.
    Each test has its own discovery cache directory, so no test sees another's CRDs."""

    kubeconfig: Path
    cache_dir: Path

    async def run(self, *args: str, check: bool = True) -> Result:
        if not KUBECTL_FOUND:
            pytest.skip("kubectl is not installed")
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache_dir}",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        result = Result(proc.returncode or 0, out.decode(), err.decode())
        if check and result.code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.code}): {result.err}")
        return result

    async def __call__(self, *args: str) -> str:
        return (await self.run(*args)).out
