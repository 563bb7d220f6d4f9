"""`controlplane xds` against a real `controlplane serve` (both as processes, as a user runs
them): YAML and JSON say the same, `--name` keeps only that resource, `--watch` prints each new
version after an edit of a manifest until Ctrl-C, and a controller that goes away ends the
watch with one line and exit code 1."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from waiting import eventually

from controlplane.testing.envoy import free_ports

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "controlplane")


class Controller:
    def __init__(self, manifests: Path) -> None:
        self.manifests = manifests
        xds, health = free_ports(2)
        self.xds_address, self.health_address = f"127.0.0.1:{xds}", f"127.0.0.1:{health}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *CLI, "serve", "--manifests", str(self.manifests),
            "--xds-address", self.xds_address, "--health-address", self.health_address,
            "--holdoff-delay", "0.02", "--log-level", "warning",
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

        async def ready() -> bool:
            assert self.process is not None and self.process.returncode is None
            try:
                async with aiohttp.ClientSession() as session:
                    url = f"http://{self.health_address}/readyz"
                    async with session.get(url) as response:
                        return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, within=20, message="controller ready", interval=0.05)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    manifests = tmp_path / "manifests"
    shutil.copytree(ROOT / "examples" / "ingressroute", manifests)
    running = Controller(manifests)
    await running.start()
    yield running
    await running.stop()


async def xds(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, "xds", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Documents:
    """The JSON documents a `--watch` prints one after another, read as they arrive."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream, self.buffer = stream, ""
        self.decoder = json.JSONDecoder()

    async def next(self, within: float = 15) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                text = self.buffer.lstrip()
                try:
                    document, end = self.decoder.raw_decode(text)
                except ValueError:
                    line = await self.stream.readline()
                    assert line, "the watch ended"
                    self.buffer += line.decode()
                    continue
                self.buffer = text[end:]
                assert isinstance(document, dict)
                return document


def prefixes(documents: dict[str, Any]) -> list[str]:
    (config,) = documents["rds"]
    return [
        route["match"].get("path_separated_prefix") or route["match"].get("prefix")
        for host in config["virtual_hosts"]
        for route in host["routes"]
    ]


async def test_yaml_json_and_name_say_the_same(controller: Controller) -> None:
    address = ("--xds-address", controller.xds_address)
    (code, as_json, err), (yaml_code, as_yaml, yaml_err) = await asyncio.gather(
        xds(*address), xds(*address, "-o", "yaml")
    )
    assert (code, yaml_code, err, yaml_err) == (0, 0, "", "")
    everything = json.loads(as_json)
    assert yaml.safe_load(as_yaml) == everything
    (secret,) = everything["sds"]
    assert secret["tls_certificate"]["private_key"] == {"inline_string": "[redacted]"}

    code, named, err = await xds(*address, "--name", "ingress_http", "-o", "yaml")
    assert (code, err) == (0, "")
    only = yaml.safe_load(named)
    assert {kind: [r["name"] for r in rs] for kind, rs in only.items()} == {
        "cds": [], "eds": [], "lds": ["ingress_http"], "rds": ["ingress_http"], "sds": [],
    }  # fmt: skip
    assert only["rds"] == [r for r in everything["rds"] if r["name"] == "ingress_http"]

    code, out, err = await xds(*address, "--name", "nosuch", "--type", "rds")
    assert (code, out) == (1, "")
    assert err == "controlplane xds: no resource named nosuch\n"


async def test_watch_prints_each_new_version_until_ctrl_c(controller: Controller) -> None:
    watch = await asyncio.create_subprocess_exec(
        *CLI, "xds", "--xds-address", controller.xds_address, "--watch",
        "--type", "rds", "--name", "ingress_http",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert watch.stdout is not None and watch.stderr is not None
        documents = Documents(watch.stdout)
        first = await documents.next()
        assert list(first) == ["rds"] and "/.well-known" in prefixes(first)

        platform = controller.manifests / "platform.yaml"
        platform.write_text(platform.read_text().replace("/.well-known", "/.well-known/acme"))
        second = await documents.next()
        assert "/.well-known/acme" in prefixes(second)
        assert "/.well-known" not in prefixes(second)

        watch.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(watch.wait(), 10) == 130
        assert await watch.stderr.read() == b""
        assert (await watch.stdout.read()).strip() == b""  # nothing half-written
    finally:
        if watch.returncode is None:
            watch.kill()
            await watch.wait()


async def test_a_watch_ends_with_one_line_when_the_controller_goes(
    controller: Controller,
) -> None:
    watch = await asyncio.create_subprocess_exec(
        *CLI, "xds", "--xds-address", controller.xds_address, "--watch", "--type", "lds",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert watch.stdout is not None and watch.stderr is not None
    await Documents(watch.stdout).next()
    await controller.stop()
    assert await asyncio.wait_for(watch.wait(), 15) == 1
    err = (await watch.stderr.read()).decode()
    assert err.startswith(f"controlplane xds: the controller at {controller.xds_address} ended")
    assert err.count("\n") == 1 and "Traceback" not in err
