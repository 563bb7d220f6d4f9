"""ADS streams held by one controller process, and one route change pushed to all of them.

The measured process is the controller: a `Runtime` holding 1,000 root IngressRoutes (one route
each, to its own Service with 3 endpoints: 1,000 routes, 1,000 clusters) behind the real gRPC
server on 127.0.0.1. The clients live in two helper processes (`python -m bench.ads_streams
client TARGET`), so the controller's memory is measured alone. Each client stream behaves like
an Envoy (see `bench.adsclient`): its own channel and TCP connection, CDS + LDS, then EDS for all
1,000 clusters and RDS `ingress_http`, every response ACKed. Streams are opened in batches of 250
per client process.

Per step (1,000 then 2,000 streams):
- resident memory of the controller (`VmRSS`), and per stream: (RSS - RSS before any stream) / N;
- one route change: one IngressRoute edited, `rebuild()` run at once (the 100 ms holdoff is a
  deliberate debounce and left out), timed from before `store.apply` to the moment the last
  stream *received* the new RouteConfiguration (client clocks are CLOCK_MONOTONIC, shared by the
  processes). The clients share the 2 cores with the controller while they parse and ACK.

`python -m bench.ads_streams cds-lds` runs the same with streams that only ask for CDS and LDS
and ACK them (no EDS, so with make-before-break they never receive listeners; the stream is held
with clusters only) and no route change: the stream's own cost without per-name subscriptions.

Clients talk to the controller over stdin/stdout lines: `open N MODE` → `opened N`, `mark` →
`marked`, `collect` → `collected COUNT LAST_ARRIVAL`, `quit`.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.adsclient import (
    EdsNames,
    EnvoyLikeStream,
    HelperProcess,
    open_streams,
    route_marks,
    routes_since,
    say,
    stdin_commands,
)
from bench.common import endpoint_slice, ingressroute_simple, peak_rss_mib, service
from controlplane.dag.options import BuildOptions
from controlplane.envoy.translate import TranslateOptions
from controlplane.logging import configure_logging
from controlplane.model import parse_object
from controlplane.runtime import Runtime
from controlplane.typeurls import ROUTE_TYPE
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import XdsServer

ROUTES = 1_000
CLIENTS = 2
STEPS = (1_000, 2_000)


def rss_mib() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def populate(runtime: Runtime, count: int) -> None:
    for index in range(count):
        namespace, name = f"ns{index % 100}", f"app{index}"
        for raw in (
            service(namespace, name),
            endpoint_slice(namespace, name, index),
            ingressroute_simple(namespace, name, f"{name}.example.com", name),
        ):
            runtime.store.apply(parse_object(raw))


async def spawn_client(target: str, name: str) -> HelperProcess:
    """One helper process holding streams."""
    return await HelperProcess.spawn(
        "bench.ads_streams", "client", target, name, ask_timeout_s=180, quit_timeout_s=60
    )


async def measure(mode: str) -> dict[str, Any]:
    configure_logging("warning", json=True)
    runtime = Runtime(
        build_options=BuildOptions(), translate_options=TranslateOptions(), cache=SnapshotCache()
    )
    populate(runtime, ROUTES)
    await runtime.rebuild()
    server = XdsServer(runtime.cache)
    target = f"127.0.0.1:{await server.start('127.0.0.1:0')}"
    clients = [await spawn_client(target, f"c{n}") for n in range(CLIENTS)]
    await asyncio.sleep(0.5)  # let the helpers import
    baseline = rss_mib()
    row: dict[str, Any] = {
        "streams subscribe": "CDS+EDS+LDS+RDS" if mode == "envoy" else "CDS+LDS",
        "routes": ROUTES,
        "controller RSS before streams MiB": baseline,
    }
    opened = 0
    edit = 0
    for step in STEPS:
        started = time.monotonic()
        per_client = (step - opened) // CLIENTS
        await asyncio.gather(*(c.ask(f"open {per_client} {mode}") for c in clients))
        opened = step
        open_s = time.monotonic() - started
        await asyncio.sleep(1.0)  # let write buffers of the last batch drain
        rss = rss_mib()
        row[f"{step} streams: open s"] = open_s
        row[f"{step} streams: RSS MiB"] = rss
        row[f"{step} streams: KiB/stream"] = (rss - baseline) * 1024 / step
        if mode != "envoy":
            continue
        pushes = []
        responses = 0
        for _ in range(3):
            await asyncio.gather(*(c.ask("mark") for c in clients))
            edit += 1
            raw = ingressroute_simple("ns7", "app7", "app7.example.com", "app7")
            raw["spec"]["routes"].append(
                {"match": f"/edit-{edit}", "services": [{"name": "app7", "port": 80}]}
            )
            changed = time.monotonic()
            runtime.store.apply(parse_object(raw))
            await runtime.rebuild()
            built = time.monotonic()
            answers = await asyncio.gather(*(c.ask("collect") for c in clients))
            count = sum(int(a[1]) for a in answers)
            assert count == step, f"only {count} of {step} streams got the route change"
            last = max(float(a[2]) for a in answers)
            responses += sum(int(a[3]) for a in answers)
            pushes.append(((last - changed) * 1000, (built - changed) * 1000))
        row[f"{step} streams: route change → last stream ms (p50 of 3)"] = statistics.median(
            p[0] for p in pushes
        )
        row[f"{step} streams: of which rebuild ms"] = statistics.median(p[1] for p in pushes)
        row[f"{step} streams: RDS responses per stream per change"] = responses / (3 * step)
    for client in clients:
        await client.quit()
    await server.stop(grace=None)
    row["peak RSS MiB"] = peak_rss_mib()
    return row


async def client_main(target: str, name: str) -> None:
    """The helper: hold streams and report when they received a route change."""
    names = EdsNames()
    streams: list[EnvoyLikeStream] = []
    marks: dict[int, int] = {}

    async for line in stdin_commands():
        command = line[0]
        if command == "open":
            count = int(line[1])
            streams += await open_streams(
                target,
                count,
                prefix=f"{name}-{len(streams)}",
                eds_names=names,
                cds_lds_only=line[2] != "envoy",
            )
            say("opened", count)
        elif command == "mark":
            marks = route_marks(streams)
            say("marked")
        elif command == "collect":
            fresh, last = await routes_since(streams, marks, 30)
            await asyncio.sleep(0.2)  # count responses that follow the first one, if any
            total = sum(len(s.arrivals.get(ROUTE_TYPE, ())) - marks[id(s)] for s in streams)
            say("collected", len(fresh), repr(last), total)
        elif command == "quit":
            break
    for stream in streams:
        await stream.close()


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    if sys.argv[1:2] == ["client"]:
        loop.run_until_complete(client_main(sys.argv[2], sys.argv[3]))
    else:
        result = loop.run_until_complete(measure(sys.argv[1] if sys.argv[1:] else "envoy"))
        sys.stdout.write(repr(result) + "\n")
