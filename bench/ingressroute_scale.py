"""IngressRoute scale: N roots (2 routes, one delegated) + N delegates + N Services (3 endpoints).

Everything runs through the real runtime path (store → build → translate → snapshot → cache) and,
for the wire figures, the real gRPC server on 127.0.0.1 with a real gRPC client in this process:

- store load: parsing the 3N+N raw objects into the store (what informers do; not a target);
- full build + encode: `Runtime.rebuild()` of the whole store, i.e. DAG, translation, encoding,
  snapshot, publish; peak RSS right after it (the process so far holds the store and the
  snapshot, as a controller does);
- the upb encode floor: the same resources (decoded from the snapshot, untimed) encoded again by
  upb, message by message (the best of 3): what no translation can beat; the row gives the full
  build's ratio to it;
- one IngressRoute edited (a route added to one root) → `rebuild()` published (median of 10);
- one EndpointSlice edited → the ClusterLoadAssignment received by a gRPC client subscribed to
  that EDS name: from before `store.apply` to the client's read (median and p99 of 50);
- Envoy reconnecting: an Envoy-like ADS client connects and asks for CDS and LDS, then EDS for
  every cluster and RDS for `ingress_http`, ACKing each; time from before the channel opens to
  the RDS response. The first connection after the build also pays the snapshot's lazily
  derived facts (the joined CDS, cluster → EDS names); later ones show a reconnect in steady
  state (median of 5). The client decodes clusters once, outside the later timings.

Run one size per process (`python -m bench.ingressroute_scale 10000`) so peak RSS is per size.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from google.protobuf import symbol_database

from bench.adsclient import EdsNames, EnvoyLikeStream
from bench.common import (
    endpoint_slice,
    ingressroute_delegate,
    ingressroute_root,
    peak_rss_mib,
    percentile,
    service,
    timed,
)
from controlplane.dag.options import BuildOptions
from controlplane.envoy.translate import TranslateOptions
from controlplane.logging import configure_logging
from controlplane.model import parse_object
from controlplane.runtime import Runtime
from controlplane.typeurls import ENDPOINT_TYPE, ROUTE_TYPE
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import XdsServer
from controlplane.xds.snapshot import Snapshot


def populate(runtime: Runtime, count: int) -> None:
    for index in range(count):
        namespace, name = f"ns{index % 100}", f"app{index}"
        for raw in (
            service(namespace, name),
            endpoint_slice(namespace, name, index),
            ingressroute_root(namespace, name, f"{name}.example.com", name),
            ingressroute_delegate(namespace, name, name),
        ):
            runtime.store.apply(parse_object(raw))


def edited_root(edit: int) -> Any:
    raw = ingressroute_root("ns7", "app7", "app7.example.com", "app7")
    raw["spec"]["routes"].append(
        {"match": f"/edit-{edit}", "services": [{"name": "app7", "port": 80}]}
    )
    return parse_object(raw)


def upb_floor(snapshot: Snapshot) -> float:
    """Seconds upb takes to encode the snapshot's resources again (the best of 3 runs)."""
    symbols = symbol_database.Default()
    messages = [
        symbols.GetSymbol(type_url.rpartition("/")[2]).FromString(resource.body)
        for type_url in sorted(snapshot.type_urls)
        for resource in snapshot.resources(type_url).values()
    ]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for message in messages:
            message.SerializeToString(deterministic=True)
        best = min(best, time.perf_counter() - started)
    return best


async def endpoint_on_the_wire(runtime: Runtime, target: str, samples: int) -> list[float]:
    assert runtime.last_build is not None
    clusters = runtime.last_build.dag.clusters()
    eds_name = next(c.eds_name for c in clusters if (c.namespace, c.service) == ("ns9", "app9"))
    received = asyncio.Event()
    probe = EnvoyLikeStream(
        target,
        "eds-probe",
        EdsNames(),
        eds_only=[eds_name],
        on_response=lambda type_url, _: received.set() if type_url == ENDPOINT_TYPE else None,
    )
    await probe.start()
    await asyncio.wait_for(probe.converged.wait(), 30)
    latencies = []
    for edit in range(samples):
        received.clear()
        started = time.monotonic()
        runtime.store.apply(parse_object(endpoint_slice("ns9", "app9", 9 + 1 + edit % 50)))
        await asyncio.wait_for(received.wait(), 10)
        arrival = probe.last(ENDPOINT_TYPE)
        assert arrival is not None
        latencies.append((arrival.at - started) * 1000)
    await probe.close()
    return latencies


async def reconnect(target: str, names: EdsNames, node: str) -> tuple[float, int]:
    started = time.monotonic()
    stream = EnvoyLikeStream(target, node, names)
    await stream.start()
    await asyncio.wait_for(stream.converged.wait(), 60)
    routes = stream.last(ROUTE_TYPE)
    assert routes is not None and stream.last(ENDPOINT_TYPE) is not None
    received = sum(a.resources for seen in stream.arrivals.values() for a in seen)
    await stream.close()
    return (routes.at - started) * 1000, received


async def measure(count: int) -> dict[str, Any]:
    configure_logging("warning", json=True)
    runtime = Runtime(
        build_options=BuildOptions(), translate_options=TranslateOptions(), cache=SnapshotCache()
    )
    times: dict[str, float] = {}
    with timed(times, "load"):
        populate(runtime, count)
    with timed(times, "full"):
        await runtime.rebuild()
    full_rss = peak_rss_mib()
    assert runtime.last_build is not None and runtime.cache.current is not None
    floor = upb_floor(runtime.cache.current)
    hosts = len(runtime.last_build.dag.virtual_hosts)
    assert hosts == count, f"expected {count} virtual hosts, built {hosts}"

    one_route: list[float] = []
    for edit in range(10):
        started = time.perf_counter()
        runtime.store.apply(edited_root(edit))
        await runtime.rebuild()
        one_route.append((time.perf_counter() - started) * 1000)

    server = XdsServer(runtime.cache)
    port = await server.start("127.0.0.1:0")
    target = f"127.0.0.1:{port}"
    runtime.source_synced_event().set()  # the EDS fast path runs only after the initial load
    await asyncio.sleep(0.05)
    eds = await endpoint_on_the_wire(runtime, target, 50)

    names = EdsNames()
    first, resources = await reconnect(target, names, "envoy-first")
    again = [(await reconnect(target, names, f"envoy-{n}"))[0] for n in range(5)]
    await server.stop(grace=None)
    return {
        "roots+delegates": f"{count}+{count}",
        "store load s": times["load"] / 1000,
        "full build+encode s": times["full"] / 1000,
        "upb encode floor s": floor,
        "full / floor": times["full"] / 1000 / floor,
        "peak RSS after build MiB": full_rss,
        "one IngressRoute edit ms (p50)": statistics.median(one_route),
        "one endpoint on wire ms (p50)": statistics.median(eds),
        "one endpoint on wire ms (p99)": percentile(eds, 0.99),
        "reconnect first ms": first,
        "reconnect ms (p50)": statistics.median(again),
        "resources sent": resources,
        "peak RSS MiB": peak_rss_mib(),
    }


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    row = loop.run_until_complete(measure(int(sys.argv[1])))
    sys.stdout.write(repr(row) + "\n")
