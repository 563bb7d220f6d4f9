"""Issue 4 benchmark: `kubectl apply` → first successful request through a real Envoy.

Runs the Kubernetes API test server, the controller (`serve --kubeconfig`, in this process), a
real Envoy and one local backend. Then, 100 times: `kubectl apply` a new IngressRoute (timer
starts just before kubectl is launched) and request its host through Envoy until the first 200.
Also, 30 times: `kubectl apply` an EndpointSlice that moves a Service to a new backend port, and
request until the answer comes from that backend (Envoy has the endpoint).

Every figure includes kubectl's own start-up (~0.1 s of Go binary and discovery), because that is
what a user waits for. Prints p50/p99 and writes bench/results/kube_apply.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import structlog
import yaml

from bench.common import machine, percentile, print_table, write_results
from controlplane.config import ServeSettings
from controlplane.envoy.bootstrap import render_bootstrap
from controlplane.runtime import serve
from controlplane.testing.apiserver import TestApiServer
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
APPLIES, ENDPOINT_MOVES = 100, 30


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


def route(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": f"app{index}", "namespace": "default"},
        "spec": {
            "virtualhost": {"fqdn": f"app{index}.example.com"},
            "routes": [{"match": "/", "services": [{"name": "app", "port": 80}]}],
        },
    }


async def until_backend(
    session: aiohttp.ClientSession, port: int, host: str, backend: str, started: float
) -> float:
    while True:
        try:
            async with session.get(f"http://127.0.0.1:{port}/", headers={"Host": host}) as answer:
                if answer.status == 200 and answer.headers.get("x-backend-name") == backend:
                    return (time.perf_counter() - started) * 1000
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.002)


async def measure() -> list[dict[str, Any]]:
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
            kubeconfig, cache, service("app", first.port), endpoints("app", first.port)
        )
        controller = asyncio.create_task(serve(settings, stop=stop))
        async with (
            EnvoyProcess(render_bootstrap(xds_address=settings.xds_address)) as envoy,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
        ):
            await envoy.wait_live(timeout_s=30)
            apply_ms = []
            for index in range(APPLIES):
                started = time.perf_counter()
                await kubectl_apply(kubeconfig, cache, route(index))
                apply_ms.append(
                    await until_backend(
                        session, http_port, f"app{index}.example.com", "first", started
                    )
                )
            endpoint_ms = []
            for move in range(ENDPOINT_MOVES):
                target = second if move % 2 == 0 else first
                started = time.perf_counter()
                await kubectl_apply(kubeconfig, cache, endpoints("app", target.port))
                endpoint_ms.append(
                    await until_backend(
                        session, http_port, "app0.example.com", target.name, started
                    )
                )
        stop.set()
        await controller
    await api.stop()
    return [
        {
            "what": f"kubectl apply new IngressRoute → first 200 ({APPLIES}x)",
            "p50 ms": percentile(apply_ms, 0.5),
            "p99 ms": percentile(apply_ms, 0.99),
            "max ms": max(apply_ms),
        },
        {
            "what": f"kubectl apply EndpointSlice → Envoy routes to it ({ENDPOINT_MOVES}x)",
            "p50 ms": percentile(endpoint_ms, 0.5),
            "p99 ms": percentile(endpoint_ms, 0.99),
            "max ms": max(endpoint_ms),
        },
    ]


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rows = asyncio.run(measure())
    print_table(f"kubectl apply → Envoy (issue 4) — {machine()['cores']} cores", rows)
    write_results("kube_apply", rows)
    sys.stdout.write(json.dumps(rows) + "\n")


if __name__ == "__main__":
    main()
