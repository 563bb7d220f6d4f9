"""The split deployment on one machine: controllers (processes) → mTLS → a real Envoy → backends.

- Certificates live in kubelet-style Secret volumes (`controlplane.testing.mtls`), so rotating
  them is the `..data` symlink swap a Secret update makes in a pod.
- `controller(...)` is `controlplane serve --manifests DIR --xds-ca ... ` as a child process
  (`controlplane.testing.controller`): it can be killed (SIGKILL) and started again on its ports.
- `mtls_envoy(...)` writes the bootstrap `controlplane bootstrap` would (every controller
  address, mTLS with file-based SDS pointing into the Envoy volume) and starts Envoy with it.
- `Traffic` loops GETs through Envoy over keep-alive connections and tallies every answer.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from pipeline import endpoint_slice, ingress, service

from controlplane.envoy import XdsClientTls, render_bootstrap, sds_resources, write_bootstrap
from controlplane.testing.backends import Backend
from controlplane.testing.controller import ControllerProcess
from controlplane.testing.envoy import EnvoyProcess, free_ports
from controlplane.testing.mtls import SecretVolume


def write_manifest(directory: Path, name: str, *documents: dict[str, Any]) -> None:
    """Atomically: the file source must never read a half-written file."""
    temporary = directory / f".{name}.tmp"
    temporary.write_text(yaml.safe_dump_all(list(documents)), encoding="utf-8")
    temporary.replace(directory / name)


def backend_manifests(directory: Path, backend: Backend) -> None:
    write_manifest(
        directory,
        f"{backend.name}.yaml",
        service(backend.name, backend.port),
        endpoint_slice(backend.name, backend.port),
    )


def route_host(directory: Path, host: str, backend: str) -> None:
    name = host.split(".")[0]
    write_manifest(
        directory, f"ingress-{name}.yaml", ingress(name, host, [("/", "Prefix", backend)])
    )


def controller(
    manifests: Path,
    volume: SecretVolume,
    workdir: Path,
    *,
    http_port: int,
    https_port: int | None = None,
    label: str = "a",
) -> ControllerProcess:
    xds_port, health_port, spare_port = free_ports(3)
    https_port = https_port or spare_port
    args = [
        "--manifests", str(manifests),
        "--xds-address", f"127.0.0.1:{xds_port}",
        "--health-address", f"127.0.0.1:{health_port}",
        "--envoy-http-port", str(http_port),
        "--envoy-https-port", str(https_port),
        "--xds-ca", str(volume.path("ca.crt")),
        "--xds-cert", str(volume.path("tls.crt")),
        "--xds-key", str(volume.path("tls.key")),
        "--holdoff-delay", "0.02",
        "--holdoff-max-delay", "0.1",
        "--log-json",
        "--log-level", "info",
    ]  # fmt: skip
    return ControllerProcess(args, log_path=workdir / f"controller-{label}.log")


async def mtls_envoy(
    xds_addresses: Sequence[str], volume: SecretVolume | None, workdir: Path
) -> EnvoyProcess:
    """An Envoy of the split deployment, started (not yet necessarily LIVE). ``volume=None``:
    a plaintext bootstrap, as the colocated deployment writes."""
    tls = None
    if volume is not None:
        tls = XdsClientTls(
            ca=str(volume.path("ca.crt")),
            cert=str(volume.path("tls.crt")),
            key=str(volume.path("tls.key")),
            resources_dir=str(workdir / "sds"),
        )
    bootstrap = render_bootstrap(xds_address=list(xds_addresses), xds_tls=tls)
    write_bootstrap(workdir / "bootstrap.yaml", bootstrap, sds_resources(tls))
    envoy = EnvoyProcess(bootstrap, workdir=workdir / "envoy")
    await envoy.start()
    return envoy


async def client_certificate_serials(envoy: EnvoyProcess) -> set[int]:
    """Serial numbers of the client certificates Envoy holds for xds_cluster (``/certs``)."""
    status, body = await envoy.admin_get("/certs")
    assert status == 200, body
    serials = set()
    for context in json.loads(body).get("certificates", []):
        for cert in context.get("cert_chain", []):
            if {"dns": "envoy"} in cert.get("subject_alt_names", []):
                serials.add(int(cert["serial_number"], 16))
    return serials


XDS_STATS = {
    "connections": "cluster.xds_cluster.upstream_cx_total",
    "handshakes": "cluster.xds_cluster.ssl.handshake",
    "tls_errors": "cluster.xds_cluster.ssl.connection_error",
    "connected": "control_plane.connected_state",
    "listeners_modified": "listener_manager.listener_modified",
    "listeners_removed": "listener_manager.listener_removed",
    "listeners_draining": "listener_manager.total_listeners_draining",
    "clusters_modified": "cluster_manager.cluster_modified",
    "clusters_removed": "cluster_manager.cluster_removed",
}


async def xds_stats(envoy: EnvoyProcess) -> dict[str, int]:
    """The counters that tell whether Envoy reconnected, handshook or changed anything."""
    stats = await envoy.stats()
    return {short: stats.get(name, 0) for short, name in XDS_STATS.items()}


async def xds_streams(replica: ControllerProcess) -> int:
    """How many xDS streams the replica holds open (its ``controlplane_xds_streams`` gauge)."""
    url = f"http://{replica.health_address}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("controlplane_xds_streams "):
            return int(float(line.split()[1]))
    raise AssertionError("no controlplane_xds_streams in /metrics")


async def routed(envoy_port: int, host: str, backend: str, timeout_s: float = 10) -> None:
    """Wait until a request for ``host`` through Envoy lands on ``backend``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: object = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while asyncio.get_running_loop().time() < deadline:
            try:
                url = f"http://127.0.0.1:{envoy_port}/"
                async with session.get(url, headers={"Host": host}) as response:
                    last = (response.status, response.headers.get("x-backend-name"))
                    if last == (200, backend):
                        return
            except aiohttp.ClientError as error:
                last = error
            await asyncio.sleep(0.02)
    raise AssertionError(f"{host} never reached {backend}; last: {last!r}")


class Traffic:
    """Clients looping GETs to ``hosts`` through Envoy; every answer is tallied."""

    def __init__(self, http_port: int, hosts: Sequence[str], clients: int = 3) -> None:
        self.url = f"http://127.0.0.1:{http_port}/"
        self.hosts = list(hosts)
        self.clients = clients
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _client(self, offset: int) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            turn = offset
            while not self._stop.is_set():
                host = self.hosts[turn % len(self.hosts)]
                turn += 1
                try:
                    async with session.get(self.url, headers={"Host": host}) as response:
                        await response.read()
                        self.statuses[response.status] += 1
                        if response.status != 200:
                            self.failures.append(f"{host}: HTTP {response.status}")
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    self.failures.append(f"{host}: {error!r}")
                await asyncio.sleep(0.002)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())
