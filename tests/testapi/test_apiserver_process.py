"""The server in its own process, as end-to-end tests run it: `python -m
controlplane.testing.apiserver` writes the kubeconfig once it listens, and the `/_test/` hooks
work over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from testapi_support import Kubectl


@pytest.fixture
async def process_kubeconfig(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controlplane.testing.apiserver",
        "--listen", "127.0.0.1:0", "--kubeconfig", str(path), "--bookmark-interval", "0.2",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(500):
            if await asyncio.to_thread(path.exists):
                break
            await asyncio.sleep(0.01)
        yield path
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/readyz") as response:
            return await response.text() == "ok"
    except aiohttp.ClientConnectionError:
        return False


async def until_answers(
    http: aiohttp.ClientSession, url: str, wanted: bool, within: float = 5.0
) -> None:
    """Ask every 10 ms until the server answers (or refuses) as `wanted`: it runs in another
    process, on the real clock, so the test waits for the condition instead of timing it."""
    for _ in range(int(within / 0.01)):
        if await answers(http, url) is wanted:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server did not {'answer' if wanted else 'refuse'} in {within} s")


async def test_separate_process_with_http_hooks(process_kubeconfig: Path, tmp_path: Path) -> None:
    config = yaml.safe_load(await asyncio.to_thread(process_kubeconfig.read_text))
    url = config["clusters"][0]["cluster"]["server"]
    kubectl = Kubectl(process_kubeconfig, tmp_path / "cache")

    await kubectl("create", "namespace", "demo")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/_test/requests") as response:
            counts = (await response.json())["requests"]
        async with http.post(f"{url}/_test/compact") as response:
            compacted = (await response.json())["resourceVersion"]
        async with http.post(f"{url}/_test/drop-watches") as response:
            assert (await response.json()) == {"dropped": 0}
        async with http.get(f"{url}/api/v1/namespaces?watch=1&resourceVersion=1") as response:
            expired = await response.json()
        async with http.post(f"{url}/_test/refuse?seconds=0.3") as response:
            assert response.status == 202
        await until_answers(http, url, False)  # refusing, just after answering
        await until_answers(http, url, True)  # and back 0.3 s later

    creates = [c for c in counts if c["verb"] == "create" and c["resource"] == "namespaces"]
    assert [(c["method"], c["path"], c["count"]) for c in creates] == [
        ("POST", "/api/v1/namespaces", 1)
    ]
    assert int(compacted) >= 5
    assert expired["type"] == "ERROR" and expired["object"]["code"] == 410
    assert expired["object"]["reason"] == "Expired"
    assert os.environ.get("KUBECONFIG") != str(process_kubeconfig)
