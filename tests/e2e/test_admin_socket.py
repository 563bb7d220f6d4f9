"""Envoy's admin API is reachable over its unix socket only (issue 9 item 6, issue 11 item 4).

A real Envoy runs from the bootstrap `controlplane bootstrap --admin-address unix:PATH` writes,
configured by the controller. Then:

- the admin answers over the socket (mode 0600), and Envoy runs no TCP admin at all;
- the stats port answers `GET /ready` (200 once live), `/stats` and `/stats/prometheus`;
- everything else sent to the stats port, and anything sent to the public HTTP listener, never
  reaches the admin: `/config_dump`, `/quitquitquit`, `/clusters`, `/runtime_modify`,
  `/healthcheck/fail`, dot segments, doubled or escaped slashes, other methods. Requests go out
  byte for byte as written (a small raw HTTP/1.1 client: aiohttp would normalize the path
  before sending it), and Envoy is still live and healthy afterwards;
- the same holds with a loopback TCP admin (`--admin-address 127.0.0.1:PORT`, the demo's);
- the preStop drain in manifests/overlays/colocated/deployment.yaml (the split overlay's is the
  same), run as written against this Envoy's socket, fails its health check: `/ready` on the
  stats port turns 503.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from pipeline import Pipeline, endpoint_slice, ingress, service

from controlplane.cli import main
from controlplane.envoy import STATS_LISTENER
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyProcess, config_dump_section, free_ports

pytestmark = pytest.mark.e2e

DEPLOYMENT = (
    Path(__file__).resolve().parents[2] / "manifests" / "overlays" / "colocated" / "deployment.yaml"
)

# (method, request target): none of these may be answered by the admin through a listener.
HOSTILE = [
    ("GET", "/config_dump"),
    ("GET", "/clusters"),
    ("GET", "/certs"),
    ("GET", "/quitquitquit"),
    ("POST", "/quitquitquit"),
    ("POST", "/healthcheck/fail"),
    ("POST", "/runtime_modify?upstream.healthy_panic_threshold=0"),
    ("POST", "/logging?level=trace"),
    ("GET", "/stats/../config_dump"),
    ("GET", "/ready/../config_dump"),
    ("GET", "//config_dump"),
    ("GET", "/./config_dump"),
    ("GET", "/stats/%2e%2e/config_dump"),
    ("GET", "/%63onfig_dump"),
    ("GET", "/stats/recentlookups"),
    ("POST", "/stats/recentlookups/enable"),
    ("GET", "/ready/"),
    ("GET", "/READY"),
    ("POST", "/ready"),
    ("HEAD", "/stats/prometheus"),
    ("GET", "http://localhost/config_dump"),
]
# An escaped slash is refused outright by the stats listener (400), before any route lookup.
ESCAPED_SLASH = ("GET", "/stats%2F..%2Fconfig_dump")


async def raw_request(
    port: int, method: str, target: str, host: str = "localhost"
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request with `target` sent exactly as given; (status, headers, body).

    The body is read by its framing, not to the end of the stream: Envoy closes a connection
    after a local reply only when its delayed-close timeout (1 s) has passed.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = (
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *header_lines = head.decode("latin-1").strip().split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        body = b""
        if method == "HEAD":
            pass
        elif headers.get("transfer-encoding") == "chunked":
            while size := int((await reader.readline()).split(b";")[0], 16):
                body += await reader.readexactly(size)
                await reader.readline()
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        writer.close()
    return status, headers, body


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory: a socket path must fit in 107 bytes, pytest's tmp_path may not."""
    with tempfile.TemporaryDirectory(prefix="admin-", dir="/tmp") as name:
        yield Path(name)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend("app") as app:
        yield app


async def _envoy_from_the_cli(
    xds_address: str, admin_address: str, stats_port: int, workdir: Path, envoy_binary: str
) -> EnvoyProcess:
    config = workdir / "bootstrap.yaml"
    argv = ["bootstrap", str(config), "--xds-address", xds_address,
            "--admin-address", admin_address,
            "--stats-address", f"127.0.0.1:{stats_port}"]  # fmt: skip
    assert main(argv) == 0
    bootstrap = yaml.safe_load(config.read_text(encoding="utf-8"))
    # isolated=False: Envoy runs with exactly the addresses the command wrote.
    envoy = EnvoyProcess(bootstrap, binary=envoy_binary, workdir=workdir / "envoy", isolated=False)
    await envoy.start()
    return envoy


def _not_from_the_admin(answer: tuple[int, dict[str, str], bytes]) -> bool:
    """A 404 of Envoy's router: empty body (the admin's own 404 lists its commands)."""
    status, headers, body = answer
    return status == 404 and body == b"" and "x-backend-name" not in headers


def _socket_mode(path: Path) -> int:
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode), path
    return stat.S_IMODE(mode)


async def _eventually_routed(port: int, host: str, name: str) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while asyncio.get_running_loop().time() < deadline:
        _, headers, _ = await raw_request(port, "GET", "/", host)
        if headers.get("x-backend-name") == name:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{host} never reached {name}")


async def _run_the_manifests_drain(socket_path: Path) -> str:
    """The controller's preStop hook from the Deployment, aimed at this socket, without the wait."""
    manifest = yaml.safe_load_all(DEPLOYMENT.read_text(encoding="utf-8"))
    deployment = next(doc for doc in manifest if doc["kind"] == "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    [controller] = [c for c in containers if c["name"] == "controlplane"]
    command = controller["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    source = command[2]
    assert '"/admin/admin.sock"' in source and "time.sleep(30)" in source
    source = source.replace("/admin/admin.sock", str(socket_path))
    source = source.replace("time.sleep(30)", "time.sleep(0)")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", source, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    return output.decode()


@pytest.mark.parametrize("admin", ["socket", "tcp"])
async def test_only_ready_and_stats_of_the_admin_reach_the_network(
    admin: str, tmp_path: Path, socket_dir: Path, backend: Backend, envoy_binary: str
) -> None:
    stats_port, admin_port = free_ports(2)
    socket_path = socket_dir / "admin.sock"
    admin_address = f"unix:{socket_path}" if admin == "socket" else f"127.0.0.1:{admin_port}"
    (tmp_path / "manifests").mkdir()
    pipe = Pipeline(tmp_path / "manifests")
    pipe.write(
        "app.yaml",
        service("app", backend.port),
        endpoint_slice("app", backend.port),
        ingress("app", "app.test", [("/", "Prefix", "app")]),
    )
    await pipe.start_controller()
    try:
        envoy = await _envoy_from_the_cli(
            pipe.settings.xds_address, admin_address, stats_port, tmp_path, envoy_binary
        )
        try:
            await _check(envoy, admin, socket_path, stats_port, pipe.http_port)
        finally:
            await envoy.stop()
    finally:
        await pipe.stop_controller()


async def _check(
    envoy: EnvoyProcess, admin: str, socket_path: Path, stats_port: int, http_port: int
) -> None:
    await envoy.wait_live(timeout_s=20)
    # The admin answers where the bootstrap put it, and nowhere else.
    status, _ = await envoy.admin_get("/config_dump")
    assert status == 200
    status, body = await envoy.admin_get("/no_such_command")
    assert status == 404 and body  # the admin's own 404 lists its commands; a router's is empty
    running = config_dump_section(await envoy.config_dump(), "BootstrapConfigDump")["bootstrap"]
    if admin == "socket":
        assert envoy.admin_socket == socket_path
        assert envoy.admin_address == f"unix:{socket_path}"
        assert _socket_mode(socket_path) == 0o600  # only Envoy's own user may connect
        assert running["admin"]["address"] == {"pipe": {"path": str(socket_path), "mode": 384}}
    else:
        assert envoy.admin_socket is None
        assert envoy.admin_address.startswith("127.0.0.1:")
    listeners = json.loads((await envoy.admin_get("/listeners", {"format": "json"}))[1])
    names = sorted(item["name"] for item in listeners["listener_statuses"])
    assert names == ["ingress_http", STATS_LISTENER]  # the controller's and the stats listener

    # The stats port: /ready and the stats, from the admin.
    assert envoy.stats_url == f"http://127.0.0.1:{stats_port}"
    status, _, body = await raw_request(stats_port, "GET", "/ready")
    assert (status, body) == (200, b"LIVE\n")
    status, _, body = await raw_request(stats_port, "GET", "/stats/prometheus")
    assert status == 200 and b"# TYPE envoy_" in body
    status, _, body = await raw_request(stats_port, "GET", "/stats?format=json")
    assert status == 200 and "stats" in json.loads(body)
    status, _, body = await raw_request(stats_port, "GET", "/stats?filter=^server\\.state$")
    assert (status, body) == (200, b"server.state: 0\n")
    # ... and nothing else.
    for method, target in HOSTILE:
        answer = await raw_request(stats_port, method, target)
        assert _not_from_the_admin(answer), (method, target, answer)
    status, _, _ = await raw_request(stats_port, *ESCAPED_SLASH)
    assert status == 400
    stats = await envoy.stats()
    assert stats["http.stats.no_route"] == len(HOSTILE)

    # The public listener routes by host: to the backend, or to nothing; never to the admin.
    await _eventually_routed(http_port, "app.test", "app")
    for method, target in HOSTILE:
        answer = await raw_request(http_port, method, target, host="nothing.test")
        assert _not_from_the_admin(answer), (method, target, answer)
        status, headers, _ = await raw_request(http_port, method, target, host="app.test")
        assert headers.get("x-backend-name") == "app" or _not_from_the_admin(
            (status, headers, b"")
        ), (method, target, status)

    # None of it reached the admin: Envoy is still up, healthy, with its runtime untouched.
    assert envoy.returncode is None
    assert await envoy.state() == "LIVE"
    status, _, _ = await raw_request(stats_port, "GET", "/ready")
    assert status == 200
    runtime = json.loads((await envoy.admin_get("/runtime"))[1])
    assert "upstream.healthy_panic_threshold" not in runtime["entries"]

    if admin == "socket":
        # The Deployment's preStop drain, as written, fails the health check over the socket.
        output = await _run_the_manifests_drain(socket_path)
        assert output.strip() == "envoy drain: HTTP/1.1 200 OK"
        status, _, body = await raw_request(stats_port, "GET", "/ready")
        assert status == 503, body
