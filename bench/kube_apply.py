"""`kubectl apply` → first successful request through a real Envoy (issues 4 and 13).

Runs the Kubernetes API test server, the controller (`serve --kubeconfig`, in this process), a
real Envoy and one local backend. 300 root IngressRoutes (each its own host, all to the Service
`app`) exist before the controller starts; measuring begins once their statuses are written.
Then `kubectl apply` a new IngressRoute and request its host through Envoy (every 2 ms) until
the first 200, 100 times *after a quiet period* (110 ms after the previous one answered, so the
holdoff's leading edge builds it at once: a user's change) and 100 times *back to back* (the next
kubectl starts as soon as the previous route answered: kubectl's own start-up, ~50 ms here, is
less than the holdoff's 100 ms, so each change counts as part of a burst and waits the trailing
delay). Also, 30 times: `kubectl apply` an EndpointSlice that moves a Service to a new backend
port, and request until the answer comes from that backend (Envoy has the endpoint).

The target is timed from `kubectl apply` *returned* (what a user, or a CI job, waits for after
the command): kubectl's own start-up (Go binary, discovery, GET, then the create) is reported
beside it ("launched"), not in it.

Where the time goes (`bench/stages.py`), relative to kubectl returning: the informer's
`store.apply` usually comes *before* kubectl exits (the watch event leaves the API server with
the create's response), then the holdoff, build, publish and the xDS exchange. The new route
uses the existing cluster, so only RDS goes out. Prints p50/p99 and writes
bench/results/kube_apply.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import structlog
import yaml

from bench.common import machine, percentile, print_table, write_results
from bench.stages import StageTrace, breakdown
from controlplane.config import ServeSettings
from controlplane.envoy.bootstrap import render_bootstrap
from controlplane.runtime import serve
from controlplane.testing.apiserver import TestApiServer
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
ROOTS, APPLIES, ENDPOINT_MOVES = 300, 100, 30
QUIET_S = 0.11
"""After the first 200 (so after the build), more than the holdoff's 100 ms: the next leads."""
API_VERSION = "contour.heptio.com/v1beta1"
Sample = tuple[float, float, dict[str, float]]
"""returned → done ms, launched → done ms, stages (ms since kubectl returned)."""


async def kubectl_apply(kubeconfig: Path, cache: Path, *docs: dict[str, Any]) -> None:
    kubectl = shutil.which("kubectl") or "kubectl"
    proc = await asyncio.create_subprocess_exec(
        kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache),
        "apply", "-f", "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate(yaml.safe_dump_all(list(docs)).encode())
    if proc.returncode:
        raise RuntimeError(err.decode())


def service(name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]},
    }


def endpoints(name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
    }


def route(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "virtualhost": {"fqdn": f"{name}.example.com"},
            "routes": [{"match": "/", "services": [{"name": "app", "port": 80}]}],
        },
    }


async def until_backend(
    session: aiohttp.ClientSession, port: int, host: str, backend: str
) -> float:
    """Request ``host`` through Envoy until ``backend`` answers 200; when that was."""
    while True:
        try:
            async with session.get(f"http://127.0.0.1:{port}/", headers={"Host": host}) as answer:
                if answer.status == 200 and answer.headers.get("x-backend-name") == backend:
                    return time.perf_counter()
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.002)


async def timed_apply(
    trace: StageTrace,
    kubeconfig: Path,
    cache: Path,
    doc: dict[str, Any],
    wait: Callable[[], Awaitable[float]],
) -> Sample:
    """(returned → done ms, launched → done ms, stages since kubectl returned)."""
    launched = trace.start()
    await kubectl_apply(kubeconfig, cache, doc)
    returned = time.perf_counter()
    done = await wait()
    stages = trace.sample(returned, done)
    stages["kubectl launched"] = (launched - returned) * 1000
    stages["kubectl returned"] = 0.0
    return (done - returned) * 1000, (done - launched) * 1000, stages


async def measure() -> dict[str, Any]:
    trace = StageTrace()
    trace.install()
    work = Path(tempfile.mkdtemp(prefix="bench-kube-"))
    api = TestApiServer(bookmark_interval=5.0)
    await api.start("127.0.0.1", 0)
    kubeconfig, cache = work / "kubeconfig", work / "cache"
    api.write_kubeconfig(kubeconfig)
    proc = await asyncio.create_subprocess_exec(
        shutil.which("kubectl") or "kubectl", "--kubeconfig", str(kubeconfig),
        "--cache-dir", str(cache), "apply", "-f", str(ROOT / "crds"),
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await proc.wait()
    http_port, xds_port = free_port(), free_port()
    settings = ServeSettings(
        kubeconfig=kubeconfig,
        refuse_local_endpoints=False,  # the backends run on 127.0.0.1
        xds_address=f"127.0.0.1:{xds_port}",
        health_address=f"127.0.0.1:{free_port()}",
        envoy_http_port=http_port,
        envoy_https_port=free_port(),
        leader_election=False,
        log_level="warning",
        log_json=True,
    )
    stop = asyncio.Event()
    async with Backend("first") as first, Backend("second") as second:
        await kubectl_apply(
            kubeconfig,
            cache,
            service("app", first.port),
            endpoints("app", first.port),
            *(route(f"root{index}") for index in range(ROOTS)),
        )
        controller = asyncio.create_task(serve(settings, stop=stop))
        async with (
            EnvoyProcess(render_bootstrap(xds_address=settings.xds_address)) as envoy,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
        ):
            await envoy.wait_live(timeout_s=30)
            await until_backend(session, http_port, f"root{ROOTS - 1}.example.com", "first")
            await statuses_written(api, ROOTS)
            applied: dict[str, list[Sample]] = {}
            for label, quiet in (("after a quiet period", True), ("back to back", False)):
                samples = applied[label] = []
                for index in range(APPLIES):
                    name = f"app{len(applied)}-{index}"
                    if quiet:
                        await asyncio.sleep(QUIET_S)
                    wait = partial(
                        until_backend, session, http_port, f"{name}.example.com", "first"
                    )
                    samples.append(await timed_apply(trace, kubeconfig, cache, route(name), wait))
            moved: list[Sample] = []
            for move in range(ENDPOINT_MOVES):
                target = second if move % 2 == 0 else first
                wait = partial(until_backend, session, http_port, "app1-0.example.com", target.name)
                moved.append(
                    await timed_apply(trace, kubeconfig, cache, endpoints("app", target.port), wait)
                )
        stop.set()
        await controller
    await api.stop()
    return {
        "rows": [
            *(
                row(f"new IngressRoute → first 200, {label} ({APPLIES}x)", samples)
                for label, samples in applied.items()
            ),
            row(f"EndpointSlice → Envoy routes to it ({ENDPOINT_MOVES}x)", moved),
        ],
        "breakdowns": {
            label: breakdown([stages for _, _, stages in samples])
            for label, samples in applied.items()
        },
        "roots": ROOTS,
    }


async def statuses_written(api: TestApiServer, count: int) -> None:
    """Wait until the status writer has caught up with the roots (it writes 50 a second), so
    that its writes and their watch echoes do not run beside the measurement."""
    while True:
        pending = [
            index
            for index in range(count)
            if "status"
            not in api.get_object(API_VERSION, "IngressRoute", f"root{index}", "default")
        ]
        if not pending:
            return
        await asyncio.sleep(0.1)


def row(what: str, samples: list[Sample]) -> dict[str, Any]:
    returned = [r for r, _, _ in samples]
    launched = [la for _, la, _ in samples]
    return {
        "kubectl apply": what,
        "returned → done ms (p50)": percentile(returned, 0.5),
        "returned → done ms (p99)": percentile(returned, 0.99),
        "returned → done ms (max)": max(returned),
        "launched → done ms (p50)": percentile(launched, 0.5),
        "launched → done ms (p99)": percentile(launched, 0.99),
    }


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = asyncio.run(measure())
    print_table(f"kubectl apply → Envoy — {machine()['cores']} cores", result["rows"])
    for label, rows in result["breakdowns"].items():
        print_table(f"where the time goes, {label} (ms since kubectl returned)", rows)
    write_results("kube_apply", result["rows"], breakdowns=result["breakdowns"])
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
