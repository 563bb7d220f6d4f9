"""New IngressRoute → first 200 through a real Envoy, with 1,000 IngressRoutes already served.

In this process: the controller (`Runtime` with the production holdoff of 100 ms / 500 ms, the
real gRPC server) and one HTTP backend; beside it a real Envoy (`--concurrency 1`) bootstrapped
against the controller over ADS. 1,000 roots (2 routes, one delegated) are loaded first; 200
Services with endpoints on the backend exist but are not routed to. Then 200 IngressRoutes are
created one at a time, each routing a new host to its own Service, so every one needs a new
Cluster and ClusterLoadAssignment before its route (make-before-break), as a new application
does. Latency: from before `store.apply` of the object to the first 200 answered for its host,
polled every 2 ms over one keep-alive connection. The next object is created once the previous
one answered.

The figure includes the holdoff's deliberate 100 ms debounce, as the published figures of other
control planes include theirs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

import aiohttp

from bench.common import (
    ingressroute_delegate,
    ingressroute_root,
    ingressroute_simple,
    peak_rss_mib,
    percentile,
    service,
)
from controlplane.dag.options import BuildOptions
from controlplane.envoy.bootstrap import render_bootstrap
from controlplane.envoy.translate import TranslateOptions
from controlplane.logging import configure_logging
from controlplane.model import parse_object
from controlplane.runtime import Runtime
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyProcess, free_port
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import XdsServer

EXISTING = 1_000
NEW = 200
POLL_S = 0.002


def local_slice(namespace: str, name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-slice",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
    }


async def first_ok(session: aiohttp.ClientSession, url: str, host: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with session.get(url, headers={"Host": host}) as response:
            await response.read()
            if response.status == 200:
                return
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"{host} never answered 200")


async def measure() -> dict[str, Any]:
    configure_logging("warning", json=True)
    http_port = free_port()
    runtime = Runtime(
        build_options=BuildOptions(),
        translate_options=TranslateOptions(http_port=http_port, https_port=free_port()),
        cache=SnapshotCache(),
    )
    server = XdsServer(runtime.cache)
    xds_address = f"127.0.0.1:{await server.start('127.0.0.1:0')}"
    async with Backend("app") as backend:
        for index in range(EXISTING):
            namespace, name = f"ns{index % 100}", f"app{index}"
            for raw in (
                service(namespace, name),
                local_slice(namespace, name, backend.port),
                ingressroute_root(namespace, name, f"{name}.example.com", name),
                ingressroute_delegate(namespace, name, name),
            ):
                runtime.store.apply(parse_object(raw))
        for index in range(NEW):
            runtime.store.apply(parse_object(service("new", f"new{index}")))
            runtime.store.apply(parse_object(local_slice("new", f"new{index}", backend.port)))
        await runtime.start()
        runtime.source_synced_event().set()
        await asyncio.wait_for(runtime.ready.wait(), 60)

        url = f"http://127.0.0.1:{http_port}/"
        async with (
            EnvoyProcess(render_bootstrap(xds_address=xds_address)) as envoy,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        ):
            await envoy.wait_live(timeout_s=60)
            await first_ok(session, url, f"app{EXISTING - 1}.example.com", 60)
            latencies, rebuilds = [], []
            for index in range(NEW):
                raw = ingressroute_simple(
                    "new", f"new{index}", f"new{index}.example.com", f"new{index}"
                )
                obj = parse_object(raw)
                started = time.monotonic()
                runtime.store.apply(obj)
                await first_ok(session, url, f"new{index}.example.com", 10)
                latencies.append((time.monotonic() - started) * 1000)
                assert runtime.last_build is not None
                rebuilds.append(runtime.last_build.duration_ms)
            nacks = len(runtime.cache.nacks())
        await runtime.stop()
    await server.stop(grace=None)
    return {
        "existing": EXISTING,
        "created": NEW,
        "first 200 ms (p50)": statistics.median(latencies),
        "first 200 ms (p99)": percentile(latencies, 0.99),
        "first 200 ms (max)": max(latencies),
        "of which rebuild ms (p50)": statistics.median(rebuilds),
        "holdoff ms": 100.0,
        "NACKs": nacks,
        "peak RSS MiB (controller+backend)": peak_rss_mib(),
    }


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    row = loop.run_until_complete(measure())
    sys.stdout.write(repr(row) + "\n")
