"""Envoy streams held by one controller over mutual TLS, a reconnect storm, and a push (issue 11).

The measured process is the controller: a `Runtime` holding 1,000 root IngressRoutes (one route
each, to its own Service with 3 endpoints: 1,000 routes, 1,000 clusters) behind the real gRPC
server on 127.0.0.1 serving mTLS with `controlplane certgen`'s certificates (ECDSA P-256,
TLS 1.3), and, for comparison, the same cache behind a plaintext server. Clients live in two
helper processes (`python -m bench.mtls_streams client TARGET NAME CERTS`). Each stream is an
Envoy: its own channel *and its own TCP connection and TLS session* (gRPC's local subchannel
pool), the client certificate of `certgen`, CDS + LDS, then EDS for all 1,000 clusters and RDS
`ingress_http`, every response ACKed (`bench.adsclient`).

1. **Streams held**: 1,000, then 2,000, then 5,000 streams opened in batches of 250 per helper.
   Per step: the controller's resident memory (`VmRSS` after `gc.collect()`) and per stream
   (RSS - RSS before any stream) / N.
2. **Push**: at each step, one IngressRoute edited and `rebuild()` run at once (the holdoff is
   left out), timed from before `store.apply` to the moment the last stream *received* the new
   RouteConfiguration (median of 3).
3. **Reconnect storm**: every stream closed, then 1,000 Envoys connect at once (500 per helper,
   all started before any is waited on), as after a controller restart: from the command to the
   last of them fully configured (routes received). The controller's CPU time during the storm
   (`getrusage`) gives the cost per Envoy, the helpers' (`/proc/PID/stat`) what the stand-ins
   cost. Three storms per transport with the same helpers (the median is the row; the first also
   pays the helpers' own warm-up), plaintext then mTLS; the difference is the handshakes (ECDHE +
   ECDSA verify of the client's chain, per connection). *Pinned* (the target row): every thread
   of the controller on CPU 0, every thread of the helpers on CPU 1, so that the stand-ins, which
   spend as much CPU as the controller, do not take it from the controller as 1,000 Envoys on
   their own machines would not; the controller then has one core, not two. *Shared*: no pinning,
   everything on both cores.

Clients talk to the controller over stdin/stdout lines: `open N MODE BATCH` → `opened N`,
`mark` → `marked`, `collect` → `collected COUNT LAST_ARRIVAL RESPONSES`, `close` → `closed`,
`quit`.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ads_streams import ROUTES, populate, rss_mib
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
from bench.common import ingressroute_simple, peak_rss_mib
from controlplane import certgen
from controlplane.dag.options import BuildOptions
from controlplane.envoy.translate import TranslateOptions
from controlplane.logging import configure_logging
from controlplane.model import parse_object
from controlplane.runtime import Runtime
from controlplane.xds import TlsFiles
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import XdsServer

CLIENTS = 2
STEPS = (1_000, 2_000, 5_000)
STORM = 1_000
STORMS = 3


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def files(directory: Path, side: str) -> TlsFiles:
    leaf = directory / side
    return TlsFiles(directory / "ca.crt", leaf / "tls.crt", leaf / "tls.key")


async def spawn_client(target: str, name: str, certs: Path | None) -> HelperProcess:
    """One helper process holding streams."""
    return await HelperProcess.spawn(
        "bench.mtls_streams", "client", target, name, str(certs or "-"),
        ask_timeout_s=600, quit_timeout_s=120,
    )  # fmt: skip


async def push(runtime: Runtime, clients: list[HelperProcess], edit: int, expected: int) -> float:
    """One route change → the last of ``expected`` streams received it, ms."""
    await asyncio.gather(*(c.ask("mark") for c in clients))
    raw = ingressroute_simple("ns7", "app7", "app7.example.com", "app7")
    raw["spec"]["routes"].append(
        {"match": f"/edit-{edit}", "services": [{"name": "app7", "port": 80}]}
    )
    changed = time.monotonic()
    runtime.store.apply(parse_object(raw))
    await runtime.rebuild()
    answers = await asyncio.gather(*(c.ask("collect") for c in clients))
    count = sum(int(a[1]) for a in answers)
    assert count == expected, f"only {count} of {expected} streams got the route change"
    return (max(float(a[2]) for a in answers) - changed) * 1000


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` (gRPC's included) onto ``cpus``."""
    for thread in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(thread.name), cpus)


def helper_cpu_s(clients: list[HelperProcess]) -> float:
    """User + system CPU seconds of the helper processes so far."""
    ticks = 0
    for client in clients:
        stat = Path(f"/proc/{client.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(stat[11]) + int(stat[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def storm(clients: list[HelperProcess]) -> tuple[float, float, float]:
    """``STORM`` Envoys at once: (s to all configured, controller and helpers' CPU ms/Envoy)."""
    cpu, helpers, started = cpu_s(), helper_cpu_s(clients), time.monotonic()
    per_client = STORM // len(clients)
    await asyncio.gather(*(c.ask(f"open {per_client} envoy {per_client}") for c in clients))
    elapsed = time.monotonic() - started
    cost = (cpu_s() - cpu) * 1000 / STORM
    helper_cost = (helper_cpu_s(clients) - helpers) * 1000 / STORM
    await asyncio.gather(*(c.ask("close") for c in clients))
    return elapsed, cost, helper_cost


async def storms(
    row: dict[str, Any], target: str, certs: Path | None, label: str, *, pinned: bool
) -> None:
    """``STORMS`` storms with one pair of helpers; the median and the worst go into ``row``."""
    clients = [await spawn_client(target, f"{label}{n}", certs) for n in range(CLIENTS)]
    await asyncio.sleep(0.5)
    everything = set(range(os.cpu_count() or 1))
    if pinned:
        pin(os.getpid(), {0})
        for client in clients:
            pin(client.process.pid, {1})
    runs = [await storm(clients) for _ in range(STORMS)]
    pin(os.getpid(), everything)
    for client in clients:
        await client.quit()
    transport, cores = "mTLS" if certs else "plaintext", "pinned" if pinned else "shared"
    way = f"{STORM} {transport} Envoys at once, {cores}"
    seconds = [r[0] for r in runs]
    row[f"{way}: all configured s (median of {STORMS})"] = statistics.median(seconds)
    row[f"{way}: all configured s (worst)"] = max(seconds)
    row[f"{way}: controller CPU ms/Envoy"] = statistics.median(r[1] for r in runs)
    row[f"{way}: helpers CPU ms/Envoy"] = statistics.median(r[2] for r in runs)


async def measure() -> dict[str, Any]:
    configure_logging("warning", json=True)
    certs = Path(tempfile.mkdtemp(prefix="bench-certs-"))
    certgen.write_directory(certs)
    runtime = Runtime(
        build_options=BuildOptions(), translate_options=TranslateOptions(), cache=SnapshotCache()
    )
    populate(runtime, ROUTES)
    await runtime.rebuild()
    server = XdsServer(runtime.cache, tls=files(certs, "controlplane"))
    plain = XdsServer(runtime.cache)
    target = f"127.0.0.1:{await server.start('127.0.0.1:0')}"
    plain_target = f"127.0.0.1:{await plain.start('127.0.0.1:0')}"
    clients = [await spawn_client(target, f"c{n}", certs) for n in range(CLIENTS)]
    await asyncio.sleep(0.5)  # let the helpers import
    baseline = rss_mib()
    row: dict[str, Any] = {"routes": ROUTES, "controller RSS before streams MiB": baseline}
    opened = 0
    edit = 0
    for step in STEPS:
        started = time.monotonic()
        per_client = (step - opened) // CLIENTS
        await asyncio.gather(*(c.ask(f"open {per_client} envoy 250") for c in clients))
        opened = step
        row[f"{step} mTLS streams: open s"] = time.monotonic() - started
        await asyncio.sleep(1.0)  # let write buffers of the last batch drain
        rss = rss_mib()
        row[f"{step} mTLS streams: RSS MiB"] = rss
        row[f"{step} mTLS streams: KiB/stream"] = (rss - baseline) * 1024 / step
        pushes = []
        for _ in range(3):
            edit += 1
            pushes.append(await push(runtime, clients, edit, step))
        row[f"{step} mTLS streams: route change → last stream ms (p50 of 3)"] = statistics.median(
            pushes
        )
    await asyncio.gather(*(c.ask("close") for c in clients))
    for client in clients:
        await client.quit()

    can_pin = (os.cpu_count() or 1) >= 2
    for pinned in (True, False) if can_pin else (False,):
        await storms(row, plain_target, None, "p", pinned=pinned)
        await storms(row, target, certs, "t", pinned=pinned)
    await server.stop(grace=None)
    await plain.stop(grace=None)
    row["peak RSS MiB"] = peak_rss_mib()
    return row


async def client_main(target: str, name: str, certs: str) -> None:
    """The helper: hold streams and report when they received a route change."""
    tls = files(Path(certs), "envoy") if certs != "-" else None
    names = EdsNames()
    streams: list[EnvoyLikeStream] = []
    marks: dict[int, int] = {}

    async for line in stdin_commands():
        command = line[0]
        if command == "open":
            count, batch = int(line[1]), int(line[3])
            streams += await open_streams(
                target,
                count,
                batch=batch,
                prefix=f"{name}-{len(streams)}",
                eds_names=names,
                tls=tls,
                timeout_s=600,
                cds_lds_only=line[2] != "envoy",
            )
            say("opened", count)
        elif command == "mark":
            marks = route_marks(streams)
            say("marked")
        elif command == "collect":
            fresh, last = await routes_since(streams, marks, 60)
            say("collected", len(fresh), repr(last))
        elif command == "close":
            for stream in streams:
                await stream.close()
            streams = []
            say("closed")
        elif command == "quit":
            break
    for stream in streams:
        await stream.close()


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    if sys.argv[1:2] == ["client"]:
        loop.run_until_complete(client_main(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        if sys.argv[1:]:
            STEPS = tuple(int(n) for n in sys.argv[1].split(","))  # a quick run: 200,400
        result = loop.run_until_complete(measure())
        sys.stdout.write(repr(result) + "\n")
