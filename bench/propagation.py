"""New IngressRoute → first 200 through a real Envoy, with 1,000 IngressRoutes already served.

In this process: the controller (`Runtime` with the production holdoff of 100 ms / 500 ms, the
real gRPC server) and one HTTP backend; beside it a real Envoy (`--concurrency 1`) bootstrapped
against the controller. 1,000 roots (2 routes, one delegated) are loaded first; Services with
endpoints on the backend exist but are not routed to. Then new IngressRoutes are created one at
a time, each routing a new host to its own Service, so every one needs a new Cluster and
ClusterLoadAssignment before its route (make-before-break), as a new application does.
Latency: from before `store.apply` of the object to the first 200 answered for its host,
polled every 2 ms over one keep-alive connection.

Rows (one Envoy each, on the same controller):

- *ADS, after a quiet period*: the next object is created 110 ms after the previous one
  answered, so each change is the first after a quiet period and the holdoff's leading edge
  builds it at once (a user applying one change). The target row.
- *delta ADS, after a quiet period*: the same over incremental xDS (`bootstrap --xds-mode
  delta`): Envoy is sent the one new Cluster instead of the whole set.
- *ADS, back to back*: the next object is created as soon as the previous one answered (tens of
  ms after the previous build finished), which the holdoff treats as part of a burst: it waits
  its 100 ms trailing delay. The issue 5 figure was measured this way.

Each row also has where the time went (`bench/stages.py`): per stage, the p50/p99 of the time
since the previous stage.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.common import (
    ingressroute_delegate,
    ingressroute_root,
    ingressroute_simple,
    peak_rss_mib,
    percentile,
    print_table,
    service,
)
from bench.stages import StageTrace, breakdown
from controlplane.dag.options import BuildOptions
from controlplane.envoy.bootstrap import XdsMode, render_bootstrap
from controlplane.envoy.translate import TranslateOptions
from controlplane.logging import configure_logging
from controlplane.model import parse_object
from controlplane.runtime import Runtime
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyProcess, free_port
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import XdsServer

EXISTING = 1_000
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
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        async with session.get(url, headers={"Host": host}) as response:
            await response.read()
            if response.status == 200:
                return
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"{host} never answered 200")


@dataclass(frozen=True)
class Mode:
    label: str
    xds_mode: XdsMode
    quiet: bool
    count: int


MODES = (
    Mode("ADS, after a quiet period", "ads", quiet=True, count=200),
    Mode("delta ADS, after a quiet period", "delta", quiet=True, count=200),
    Mode("ADS, back to back", "ads", quiet=False, count=100),
)
QUIET_S = 0.11
"""More than the holdoff's 100 ms since the last build finished: the next change leads."""


async def measure() -> dict[str, Any]:
    configure_logging("warning", json=True)
    trace = StageTrace()
    trace.install()
    http_port = free_port()
    runtime = Runtime(
        build_options=BuildOptions(),
        translate_options=TranslateOptions(http_port=http_port, https_port=free_port()),
        cache=SnapshotCache(),
    )
    server = XdsServer(runtime.cache)
    xds_address = f"127.0.0.1:{await server.start('127.0.0.1:0')}"
    rows: list[dict[str, Any]] = []
    breakdowns: dict[str, list[dict[str, Any]]] = {}
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
        for mode_index, mode in enumerate(MODES):
            for index in range(mode.count):
                name = f"new{mode_index}-{index}"
                runtime.store.apply(parse_object(service("new", name)))
                runtime.store.apply(parse_object(local_slice("new", name, backend.port)))
        await runtime.start()
        runtime.source_synced_event().set()
        await asyncio.wait_for(runtime.ready.wait(), 60)
        for mode_index, mode in enumerate(MODES):
            row, samples = await measure_mode(
                runtime, trace, xds_address, http_port, mode_index, mode
            )
            rows.append(row)
            breakdowns[mode.label] = breakdown(samples)
        await runtime.stop()
    await server.stop(grace=None)
    return {
        "rows": rows,
        "breakdowns": breakdowns,
        "existing": EXISTING,
        "peak RSS MiB (controller+backend)": peak_rss_mib(),
    }


async def measure_mode(
    runtime: Runtime,
    trace: StageTrace,
    xds_address: str,
    http_port: int,
    mode_index: int,
    mode: Mode,
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    url = f"http://127.0.0.1:{http_port}/"
    async with (
        EnvoyProcess(render_bootstrap(xds_address=xds_address, mode=mode.xds_mode)) as envoy,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
    ):
        await envoy.wait_live(timeout_s=60)
        await first_ok(session, url, f"app{EXISTING - 1}.example.com", 60)
        nacks_before = len(runtime.cache.nacks())
        latencies: list[float] = []
        rebuilds: list[float] = []
        samples: list[dict[str, float]] = []
        for index in range(mode.count):
            name = f"new{mode_index}-{index}"
            obj = parse_object(ingressroute_simple("new", name, f"{name}.example.com", name))
            if mode.quiet:
                await asyncio.sleep(QUIET_S)
            started = trace.start()
            runtime.store.apply(obj)
            await first_ok(session, url, f"{name}.example.com", 10)
            done = time.perf_counter()
            latencies.append((done - started) * 1000)
            samples.append(trace.sample(started, done))
            assert runtime.last_build is not None
            rebuilds.append(runtime.last_build.duration_ms)
        nacks = len(runtime.cache.nacks()) - nacks_before
    row = {
        "changes": mode.label,
        "created": mode.count,
        "first 200 ms (p50)": statistics.median(latencies),
        "first 200 ms (p99)": percentile(latencies, 0.99),
        "first 200 ms (max)": max(latencies),
        "of which rebuild ms (p50)": statistics.median(rebuilds),
        "NACKs": nacks,
    }
    return row, samples


def main() -> None:
    loop = asyncio.new_event_loop()
    result = loop.run_until_complete(measure())
    print_table(f"New IngressRoute → first 200, {EXISTING:,} served", result["rows"])
    for label, rows in result["breakdowns"].items():
        print_table(f"where the time goes: {label}", rows)
    sys.stdout.write(repr(result) + "\n")


if __name__ == "__main__":
    main()
