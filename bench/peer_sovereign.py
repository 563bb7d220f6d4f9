"""A peer in the same run (issue 13, item 5): sovereign beside us, the same routes, the same Envoy.

`sovereign` (PyPI) is the other Python Envoy control plane: Envoys poll it over REST (JSON), it
renders Python or Jinja templates from "sources" it re-reads every `sources_refresh_rate`
seconds (30 by default), and it has no Kubernetes. This bench installs it into its own virtualenv
under `bench/.peer/` (gitignored, never a dependency of ours; the peer rows are skipped with the
reason when PyPI cannot be reached) and runs both control planes, one after the other, as
separate processes, each serving 1,000 routes (host `appN.example.com` → its own cluster → one
local backend) to the same Envoy binary (`--concurrency 1`).

How each is fed and configured:

- *controlplane*: `controlplane serve --manifests DIR` (the file source), Envoy bootstrapped by
  `render_bootstrap` (one ADS stream). DIR holds 1,000 root IngressRoutes, each with its own
  Service and EndpointSlice. A new route is a new file (IngressRoute + Service + EndpointSlice,
  written then renamed into DIR), so it needs a new cluster before its route, as in
  `propagation`. Each new route comes 110 ms after the previous one answered (after a quiet
  period, as a user's change).
- *sovereign* (pinned `SOVEREIGN_VERSION`, its defaults: gunicorn with 2 * cores + 1 uvicorn
  workers, each polling the sources itself): one `file` source (a JSON list of 1,000 instances
  `{name, domain, port}`), Python templates (sovereign's recommended kind) for `clusters`
  (STATIC clusters with the endpoint inline: no EDS), `listeners` (one listener whose HTTP
  connection manager takes its routes over REST RDS) and `routes` (one RouteConfiguration with
  a virtual host per instance); node matching and access logs off. Envoy polls it over REST
  (`api_type: REST`, LDS, CDS and RDS). A new route is one more instance in the source file
  (written then renamed).

Refresh: sovereign has two, the source refresh (sovereign re-reading its sources) and Envoy's
`refresh_delay` (Envoy polling sovereign); a new route waits for one, then for Envoy's CDS poll
and its RDS poll. *Default*: sovereign's own defaults as its documentation gives them: sources
every 30 s, and the bootstrap of its examples (CDS every 5 s, LDS every 15 s; RDS, which the
example does not poll, every 5 s like CDS). Few samples (`DEFAULT_SAMPLES`): each takes ~20 s.
*100 ms*: both at 100 ms. `sources_refresh_rate` is an integer in sovereign's settings, so the
bench starts sovereign through a two-line launcher that sets its poller's rate to 0.1 s before
gunicorn forks the workers.

Rows (ours, theirs, ours/theirs):

- new route → first 200 (p50, p99), requested through Envoy every 2 ms;
- controller RSS with one Envoy (and PSS: sovereign's workers share pages with their master),
  summed over the controller's processes;
- controller CPU per second of wall time over `IDLE_S` seconds with 100 Envoy-like clients
  connected and nothing changing, and RSS then. Ours: 100 ADS streams (`bench/adsclient.py`:
  CDS + EDS + LDS + RDS, everything ACKed) from a helper process. Theirs: 100 clients in a
  helper process polling its REST discovery endpoints as an Envoy does at the default refresh
  (CDS and RDS every 5 s, LDS every 15 s, each client starting at a random phase, sending its
  last `version_info`, so an unchanged configuration is answered 304).

`python -m bench peer_sovereign`; writes bench/results/peer_sovereign.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.common import percentile, service
from bench.processes import Controller
from bench.sovereign_setup import (
    LAUNCHER,
    PEER_DIR,
    SOVEREIGN_VERSION,
    discovery_request,
    install_sovereign,
    instances,
    prepare_sovereign,
    seconds,
    sovereign_bootstrap,
    until_discovery,
)
from controlplane.envoy.bootstrap import render_bootstrap
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyProcess, free_port

ROUTES = 1_000
CLIENTS = 100
OUR_SAMPLES = 50
DEFAULT_SAMPLES = 5
FAST_SAMPLES = 50
IDLE_S = 20.0
QUIET_S = 0.11
POLL_S = 0.002

# sovereign's defaults (its settings and its example bootstrap), and the fast setting
DEFAULT_REFRESH = {"sources": 30.0, "cds": 5.0, "lds": 15.0, "rds": 5.0}
FAST_REFRESH = {"sources": 0.1, "cds": 0.1, "lds": 0.1, "rds": 0.1}


# --- the peer's installation -----------------------------------------------------------------


# --- processes: memory and CPU ---------------------------------------------------------------


# --- measuring propagation -------------------------------------------------------------------


async def first_ok(session: aiohttp.ClientSession, url: str, host: str, timeout_s: float) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            async with session.get(url, headers={"Host": host}) as response:
                await response.read()
                if response.status == 200:
                    return time.perf_counter()
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"{host} never answered 200 within {timeout_s} s")


async def propagation(
    http_port: int,
    count: int,
    add_route: Callable[[int], None],
    timeout_s: float,
) -> list[float]:
    """Add ``count`` routes one by one (a quiet period before each); ms to each first 200."""
    url = f"http://127.0.0.1:{http_port}/"
    latencies = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        await first_ok(session, url, f"app{ROUTES - 1}.example.com", 120)
        for index in range(count):
            await asyncio.sleep(QUIET_S)
            started = time.perf_counter()
            add_route(index)
            done = await first_ok(session, url, f"new{index}.example.com", timeout_s)
            latencies.append((done - started) * 1000)
    return latencies


def replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` at once (a rename), as a deployment tool would."""
    scratch = path.parent / f".{path.name}.tmp"
    scratch.write_text(text)
    scratch.replace(path)


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "samples": len(latencies),
    }


# --- ours ------------------------------------------------------------------------------------


def our_objects(name: str, host: str, port: int) -> list[dict[str, Any]]:
    return [
        service("default", name),
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-slice",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        },
        {
            "apiVersion": "contour.heptio.com/v1beta1",
            "kind": "IngressRoute",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "virtualhost": {"fqdn": host},
                "routes": [{"match": "/", "services": [{"name": name, "port": 80}]}],
            },
        },
    ]


def prepare_manifests(work: Path, backend_port: int) -> Path:
    """The manifests directory of our 1,000 routes."""
    manifests = work / "manifests"
    shutil.rmtree(manifests, ignore_errors=True)
    manifests.mkdir(parents=True)
    documents = [
        doc
        for index in range(ROUTES)
        for doc in our_objects(f"app{index}", f"app{index}.example.com", backend_port)
    ]
    (manifests / "routes.yaml").write_text(yaml.safe_dump_all(documents))
    return manifests


async def measure_ours(work: Path, backend_port: int) -> dict[str, Any]:
    manifests = prepare_manifests(work, backend_port)
    xds_port, health_port, http_port = free_port(), free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controlplane", "serve", "--manifests", str(manifests),
        "--xds-address", f"127.0.0.1:{xds_port}",
        "--health-address", f"127.0.0.1:{health_port}",
        "--envoy-http-port", str(http_port), "--envoy-https-port", str(free_port()),
        "--log-level", "warning", "--log-json",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    controller = Controller("controlplane", process)
    try:
        await until_ready(f"http://127.0.0.1:{health_port}/readyz", 120)

        def add_route(index: int) -> None:
            name = f"new{index}"
            docs = our_objects(name, f"{name}.example.com", backend_port)
            replace(manifests / f"{name}.yaml", yaml.safe_dump_all(docs))

        bootstrap = render_bootstrap(xds_address=f"127.0.0.1:{xds_port}")
        async with EnvoyProcess(bootstrap) as envoy:
            await envoy.wait_live(timeout_s=120)
            latencies = await propagation(http_port, OUR_SAMPLES, add_route, 10)
            rss, pss = controller.memory()
            async with ads_clients(f"127.0.0.1:{xds_port}", CLIENTS):
                cpu = await controller.idle_cpu(IDLE_S)
                rss_clients, pss_clients = controller.memory()
    finally:
        await controller.stop()
    return {
        "latency": summary(latencies),
        "rss": rss,
        "pss": pss,
        "cpu": cpu,
        "rss_clients": rss_clients,
        "pss_clients": pss_clients,
        "processes": 1,
    }


async def until_ready(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout_s} s")


@asynccontextmanager
async def ads_clients(target: str, count: int) -> Any:
    """``count`` Envoy-like ADS streams held by a helper process (bench.ads_streams client)."""
    helper = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ads_streams", "client", target, "peer",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert helper.stdin is not None and helper.stdout is not None
    try:
        helper.stdin.write(f"open {count} envoy\n".encode())
        await helper.stdin.drain()
        answer = await asyncio.wait_for(helper.stdout.readline(), 120)
        if not answer.startswith(b"opened"):
            raise RuntimeError(f"ADS client helper said {answer!r}")
        await asyncio.sleep(1.0)  # the last ACKs are in
        yield
    finally:
        if helper.returncode is None:
            helper.stdin.write(b"quit\n")
            with contextlib.suppress(OSError):
                await helper.stdin.drain()
            try:
                await asyncio.wait_for(helper.wait(), 30)
            except TimeoutError:
                helper.kill()
                await helper.wait()


# --- sovereign -------------------------------------------------------------------------------


@asynccontextmanager
async def run_sovereign(
    python: Path, work: Path, refresh: dict[str, float], http_port: int, backend_port: int
) -> Any:
    source = prepare_sovereign(work, backend_port, ROUTES)
    port = free_port()
    env = {
        **os.environ,
        "SOVEREIGN_CONFIG": f"file://{work / 'sovereign.yaml'}",
        "SOVEREIGN_HOST": "127.0.0.1",
        "SOVEREIGN_PORT": str(port),
        "BENCH_SOURCE_REFRESH_S": str(refresh["sources"]),
        "BENCH_RDS_REFRESH": seconds(refresh["rds"]),
        "BENCH_HTTP_PORT": str(http_port),
    }
    with (work / "sovereign.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(python), "-c", LAUNCHER, env=env, cwd=work,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    controller = Controller("sovereign", process)
    try:
        await until_discovery(port, 120)
        yield controller, port, source
    finally:
        await controller.stop()


async def measure_sovereign(python: Path, backend_port: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for label, refresh, samples in (
        ("default", DEFAULT_REFRESH, DEFAULT_SAMPLES),
        ("100 ms", FAST_REFRESH, FAST_SAMPLES),
    ):
        http_port = free_port()
        work = PEER_DIR / "run"
        async with run_sovereign(python, work, refresh, http_port, backend_port) as running:
            controller, port, source = running

            def add_route(index: int, source: Path = source) -> None:
                replace(source, json.dumps(instances(ROUTES, backend_port, new=index + 1)))

            async with EnvoyProcess(sovereign_bootstrap(port, refresh)) as envoy:
                await envoy.wait_live(timeout_s=120)
                timeout = 3 * sum(refresh.values()) + 10
                latencies = await propagation(http_port, samples, add_route, timeout)
                result[f"latency {label}"] = summary(latencies)
                if label != "default":
                    continue
                result["rss"], result["pss"] = controller.memory()
                result["processes"] = len(controller.pids)
                async with rest_clients(port, CLIENTS, refresh):
                    result["cpu"] = await controller.idle_cpu(IDLE_S)
                    result["rss_clients"], result["pss_clients"] = controller.memory()
    return result


@asynccontextmanager
async def rest_clients(port: int, count: int, refresh: dict[str, float]) -> Any:
    """``count`` Envoy-like REST pollers in a helper process; yields once all have polled."""
    helper = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.peer_sovereign", "rest-clients", str(port), str(count),
        json.dumps(refresh),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert helper.stdin is not None and helper.stdout is not None
    try:
        answer = await asyncio.wait_for(helper.stdout.readline(), 300)
        if not answer.startswith(b"polling"):
            raise RuntimeError(f"REST client helper said {answer!r}")
        yield
    finally:
        if helper.returncode is None:
            helper.stdin.write(b"quit\n")
            with contextlib.suppress(OSError):
                await helper.stdin.drain()
            try:
                await asyncio.wait_for(helper.wait(), 30)
            except TimeoutError:
                helper.kill()
                await helper.wait()


async def rest_clients_main(port: int, count: int, refresh: dict[str, float]) -> None:
    """The helper: ``count`` clients, each on its own keep-alive connection, polling CDS, LDS
    and RDS as an Envoy does; says ``polling`` once every client has its first answers."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    ready = asyncio.Event()
    first = {"left": count * 3}
    statuses: dict[int, int] = {}

    async def poll(session: aiohttp.ClientSession, kind: str, delay: float) -> None:
        url = f"http://127.0.0.1:{port}/v3/discovery:{kind}"
        version = "0"
        await asyncio.sleep(random.uniform(0, delay))
        counted = False
        while True:
            try:
                async with session.post(url, json=discovery_request(kind, version)) as response:
                    body = await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if response.status == 200:
                        version = json.loads(body)["version_info"]
            except aiohttp.ClientError:
                pass
            if not counted:
                counted = True
                first["left"] -= 1
                if first["left"] == 0:
                    ready.set()
            await asyncio.sleep(delay)

    sessions = [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(total=30)
        )
        for _ in range(count)
    ]
    tasks = [
        asyncio.create_task(poll(session, kind, refresh[key]))
        for session in sessions
        for kind, key in (("clusters", "cds"), ("listeners", "lds"), ("routes", "rds"))
    ]
    await ready.wait()
    sys.stdout.write("polling\n")
    sys.stdout.flush()
    await reader.readline()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for session in sessions:
        await session.close()


# --- the rows --------------------------------------------------------------------------------


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.3g}" if theirs else "-"


def side_by_side(ours: dict[str, Any], theirs: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(what: str, our: float, their: float | None, unit: str) -> None:
        rows.append(
            {
                "measure": what,
                "controlplane": f"{our:,.1f} {unit}",
                "sovereign": "-" if their is None else f"{their:,.1f} {unit}",
                "ours/theirs": "-" if their is None else ratio(our, their),
            }
        )

    def get(*keys: str) -> float | None:
        value: Any = theirs
        for key in keys:
            if value is None:
                return None
            value = value.get(key)
        return None if value is None else float(value)

    for label in ("default", "100 ms"):
        for stat in ("p50", "p99"):
            add(
                f"new route → first 200, {stat} (sovereign at its {label} refresh)",
                ours["latency"][stat],
                get(f"latency {label}", stat),
                "ms",
            )
    add("controller RSS, one Envoy (sum over processes)", ours["rss"], get("rss"), "MiB")
    add("controller PSS, one Envoy", ours["pss"], get("pss"), "MiB")
    add(
        f"controller CPU, {CLIENTS} Envoy-like clients, nothing changing",
        ours["cpu"] * 1000,
        None if get("cpu") is None else get("cpu") * 1000,  # type: ignore[operator]
        "ms/s",
    )
    add(f"controller RSS with {CLIENTS} clients", ours["rss_clients"], get("rss_clients"), "MiB")
    add(f"controller PSS with {CLIENTS} clients", ours["pss_clients"], get("pss_clients"), "MiB")
    add("controller processes", ours["processes"], get("processes"), "")
    return rows


async def measure() -> dict[str, Any]:
    async with Backend("app") as backend:
        peer = install_sovereign()
        theirs: dict[str, Any] | None = None
        skipped = ""
        if isinstance(peer, Path):
            theirs = await measure_sovereign(peer, backend.port)
        else:
            skipped = peer
        ours = await measure_ours(PEER_DIR / "ours", backend.port)
    return {
        "rows": side_by_side(ours, theirs),
        "ours": ours,
        "sovereign": theirs,
        "skipped": skipped,
        "sovereign_version": SOVEREIGN_VERSION,
        "routes": ROUTES,
    }


async def _main(argv: list[str]) -> None:
    if argv[:1] == ["rest-clients"]:
        await rest_clients_main(int(argv[1]), int(argv[2]), json.loads(argv[3]))
        return
    result = await measure()
    sys.stdout.write(repr(result) + "\n")


def main(argv: list[str]) -> None:
    asyncio.run(_main(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
