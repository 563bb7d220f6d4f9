"""`controlplane demo` as `make demo` runs it: what it prints can be pasted, "live" means Envoy
took every listener, a taken port fails clearly, and the log files are plain text.

Each test runs in its own directory (the demo writes `.demo/` into the working directory) with
a one-service examples directory whose backend listens on a free port, and passes free ports
for everything, so it never meets another demo.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from pipeline import endpoint_slice, service

from controlplane.demo import DemoError, DemoPorts, demo_bootstrap, run_demo
from controlplane.testing.envoy import free_ports

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).absolute().parent


def ingress_route(name: str, fqdn: str) -> dict[str, Any]:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "virtualhost": {"fqdn": fqdn},
            "routes": [{"match": "/", "services": [{"name": name, "port": 80}]}],
        },
    }


def examples(directory: Path, backend_port: int) -> Path:
    directory.mkdir()
    documents = [
        service("web", backend_port),
        endpoint_slice("web", backend_port),
        ingress_route("web", "web.local"),
    ]
    (directory / "web.yaml").write_text(yaml.safe_dump_all(documents))
    return directory


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(here)


async def read_until(stream: asyncio.StreamReader, marker: str, within: float = 60) -> list[str]:
    lines: list[str] = []
    async with asyncio.timeout(within):
        while not lines or marker not in lines[-1]:
            line = await stream.readline()
            assert line, "the demo ended early:\n" + "".join(lines)
            lines.append(line.decode())
    return [line.rstrip("\n") for line in lines]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
async def test_the_demo_prints_what_can_be_pasted_and_means_it(tmp_path: Path) -> None:
    backend, http, https, xds, health = free_ports(5)
    web = examples(tmp_path / "examples", backend)
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controlplane", "demo", "--examples", "examples",
        "--http-port", str(http), "--https-port", str(https),
        "--xds-port", str(xds), "--health-port", str(health),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert demo.stdout is not None and demo.stderr is not None
        lines = await read_until(demo.stdout, "Ctrl-C stops everything.")
        demo_dir = tmp_path / ".demo"
        assert lines[0] == f"backend default/web          on 127.0.0.1:{backend}"
        assert lines[1] == f"API test server up; applied {ROOT / 'crds'}/ and {web}/ with kubectl"
        assert lines[2] == (
            f"controller ready: xDS 127.0.0.1:{xds}, status page http://127.0.0.1:{health}/, "
            f"log {demo_dir / 'controlplane.log'}"
        )
        assert lines[3].startswith(
            f"envoy live: accepted ingress_http (HTTP :{http}, HTTPS :{https}); admin 127.0.0.1:"
        )
        assert lines[3].endswith(f", log {demo_dir / 'envoy' / 'envoy.log'}")
        export = f"  export KUBECONFIG={demo_dir / 'kubeconfig'}"
        assert export in lines
        assert f"  curl -H 'Host: kuard.local' http://127.0.0.1:{http}/" in lines
        assert any(line.startswith(f"  http://127.0.0.1:{health}/ ") for line in lines)
        assert (
            f"  {BIN / 'controlplane'} translate -f {web}   # what the controller builds" in lines
        )
        assert f"  (or `source {BIN / 'activate'}` to put controlplane on PATH)" in lines

        # What it says is live is: a request through Envoy, kubectl with the printed KUBECONFIG.
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{http}/", headers={"Host": "web.local"}) as response,
        ):
            assert response.status == 200
            assert response.headers["x-backend-name"] == "default/web"
        kubectl = await asyncio.create_subprocess_exec(
            "kubectl", "get", "ingressroute", "web", "-o", "jsonpath={.status.currentStatus}",
            env={**os.environ, "KUBECONFIG": export.split("=", 1)[1]},
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert (await kubectl.communicate())[0] == b"valid"

        demo.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(demo.wait(), 30) == 0
        assert (await demo.stdout.read()).decode().strip() == "stopping..."
        assert b"Traceback" not in await demo.stderr.read()
        for log in (*demo_dir.glob("*.log"), demo_dir / "envoy" / "envoy.log"):
            assert "\x1b[" not in log.read_text(), f"{log} has colour codes"
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()


async def test_a_listener_envoy_refuses_is_a_failure_not_live(in_tmp: Path) -> None:
    """A port taken after the demo checked it (here: never checked): Envoy NACKs the listener
    but still turns LIVE; the demo reads Envoy's listeners and fails, quoting Envoy."""
    backend, https, xds, health, admin, stats = free_ports(6)
    web = examples(in_tmp / "examples", backend)
    said: list[str] = []
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        http = taken.getsockname()[1]
        ports = DemoPorts(http=http, https=https, xds=xds, health=health, admin=admin, stats=stats)
        (in_tmp / ".demo").mkdir()
        with pytest.raises(DemoError) as refused:
            await run_demo(
                web, said.append, workdir=in_tmp / ".demo", files=True, ports=ports,
                bootstrap=demo_bootstrap(ports),
            )  # fmt: skip
    assert str(refused.value).startswith(
        f"envoy refused a listener (ingress_http: cannot bind '0.0.0.0:{http}': Address already "
        f"in use); log {in_tmp / '.demo' / 'envoy' / 'envoy.log'}"
    )
    assert not any(line.startswith("envoy live") for line in said)
    assert said[-1].startswith("controller ready")
