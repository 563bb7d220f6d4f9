"""Issue 13, item 4: the event loop never stalls while a big build runs.

Two builds, each measured with a `LoopLag` timer due every millisecond on the controller's loop
(the longest lag it saw is how long every xDS stream and `/healthz` waited at worst):

- *full*: 10,000 roots (2 routes, one delegated) + 10,000 delegates + 10,000 Services with 3
  endpoints (the `ingressroute_scale` shape): the first `Runtime.rebuild()`, cold;
- *big route*: one root IngressRoute with 10,000 routes over 100 Services (3 endpoints each),
  built once; then a route is added to it and `rebuild()` run (5 times: the median duration and
  the longest lag of all). 50 ms into each of these rebuilds, one EndpointSlice changes: a gRPC
  client subscribed to its EDS name times the push from then (the EDS fast path keeps answering).

Each runs two ways, each in its own process: `thread` is `Runtime.rebuild()` as it is (the build
and translation in the build thread, the publish on the loop); `loop` is what `rebuild()` did
before issue 13, the same builder and publisher called on the loop in one go, for comparison.

`python -m bench.loop_lag full thread` prints one row (a dict) as its last line.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from typing import Any

from bench.adsclient import EdsNames, EnvoyLikeStream
from bench.common import endpoint_slice, service
from bench.ingressroute_scale import populate
from controlplane.dag.options import BuildOptions
from controlplane.envoy.translate import TranslateOptions
from controlplane.logging import configure_logging
from controlplane.metrics import LoopLag
from controlplane.model import parse_object
from controlplane.runtime import Runtime
from controlplane.typeurls import ENDPOINT_TYPE
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import XdsServer

ROUTES, SERVICES, EDITS = 10_000, 100, 5


def big_route(routes: int, extra: int = 0) -> dict[str, Any]:
    """One root IngressRoute with `routes` (+ `extra`) prefix routes over SERVICES Services."""
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {
            "name": "big",
            "namespace": "big",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "virtualhost": {"fqdn": "big.example.com"},
            "routes": [
                {"match": f"/r{n}", "services": [{"name": f"s{n % SERVICES}", "port": 80}]}
                for n in range(routes + extra)
            ],
        },
    }


def runtime_of() -> Runtime:
    return Runtime(
        build_options=BuildOptions(), translate_options=TranslateOptions(), cache=SnapshotCache()
    )


async def rebuild(runtime: Runtime, way: str) -> None:
    if way == "thread":
        await runtime.rebuild()
        return
    # Before issue 13: build, translate and publish on the loop, in one call, the collector
    # off meanwhile and the heap frozen after (the collector back first, as it was then).
    gc.disable()
    try:
        objects = runtime.store.object_set()
        dag = runtime.dag_builder.build(objects, runtime.build_options)
        runtime.publisher.publish(dag, objects)
    finally:
        gc.enable()
    runtime.build_metrics.dagrebuilds.inc()
    gc.freeze()
    await asyncio.sleep(0)


async def timed_rebuild(runtime: Runtime, way: str, lag: LoopLag) -> float:
    await asyncio.sleep(0.01)  # the lag timer is due again
    lag.reset()
    started = time.perf_counter()
    await rebuild(runtime, way)
    await asyncio.sleep(0.005)  # a stall ending with the build shows in the next wake-up
    return time.perf_counter() - started


async def full(way: str) -> dict[str, Any]:
    runtime = runtime_of()
    populate(runtime, 10_000)
    lag = LoopLag(interval=0.001)
    lag.start()
    seconds = await timed_rebuild(runtime, way, lag)
    lag.stop()
    return {
        "build": "cold 10k+10k build",
        "way": way,
        "build s": seconds,
        "max loop lag ms": lag.max_lag * 1000,
        "endpoint push during build ms (max)": "",
    }


async def route(way: str) -> dict[str, Any]:
    configure_logging("warning", json=True)
    runtime = runtime_of()
    for index in range(SERVICES):
        runtime.store.apply(parse_object(service("big", f"s{index}")))
        runtime.store.apply(parse_object(endpoint_slice("big", f"s{index}", index)))
    runtime.store.apply(parse_object(big_route(ROUTES)))
    await runtime.rebuild()
    server = XdsServer(runtime.cache)
    port = await server.start("127.0.0.1:0")
    runtime.source_synced_event().set()  # the EDS fast path runs only after the initial load
    await asyncio.sleep(0.05)
    assert runtime.last_build is not None
    eds_name = next(c.eds_name for c in runtime.last_build.dag.clusters() if c.service == "s7")
    received = asyncio.Event()
    probe = EnvoyLikeStream(
        f"127.0.0.1:{port}",
        "eds-probe",
        EdsNames(),
        eds_only=[eds_name],
        on_response=lambda type_url, _: received.set() if type_url == ENDPOINT_TYPE else None,
    )
    await probe.start()
    await asyncio.wait_for(probe.converged.wait(), 30)
    lag = LoopLag(interval=0.001)
    lag.start()
    durations, lags, pushes = [], [], []
    for edit in range(EDITS):
        runtime.store.apply(parse_object(big_route(ROUTES, extra=edit + 1)))
        received.clear()
        task = asyncio.create_task(timed_rebuild(runtime, way, lag))
        # An EndpointSlice event arriving 50 ms into the build: timed from then (with the
        # build on the loop, the event is read only once the build is over).
        moved = time.monotonic() + 0.05
        await asyncio.sleep(0.05)
        runtime.store.apply(parse_object(endpoint_slice("big", "s7", 1000 + edit)))
        await asyncio.wait_for(received.wait(), 30)
        arrival = probe.last(ENDPOINT_TYPE)
        assert arrival is not None
        pushes.append((arrival.at - moved) * 1000)
        durations.append(await task)
        lags.append(lag.max_lag)
    lag.stop()
    await probe.close()
    await server.stop(grace=None)
    return {
        "build": f"{ROUTES:,}-route IngressRoute rebuilt",
        "way": way,
        "build s": statistics.median(durations),
        "max loop lag ms": max(lags) * 1000,
        "endpoint push during build ms (max)": max(pushes),
    }


async def measure(scenario: str, way: str) -> dict[str, Any]:
    configure_logging("warning", json=True)
    if scenario == "full":
        return await full(way)
    return await route(way)


if __name__ == "__main__":
    row = asyncio.run(measure(sys.argv[1], sys.argv[2]))
    sys.stdout.write(repr(row) + "\n")
