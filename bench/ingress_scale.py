"""Issue 2 benchmark: N Ingresses (1 host, 2 paths, 1 Service with 3 endpoints each).

Measures, through the real runtime path (store → build → translate → snapshot → cache publish):
- full build + encode of the initial snapshot,
- one Ingress changed → new snapshot published (median of 20),
- one EndpointSlice changed → its ClusterLoadAssignment re-encoded and published (median of 50),
- peak RSS of the process.
Run one size per process (`python -m bench.ingress_scale 10000`) so peak RSS is per size.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bench.common import endpoint_slice, ingress, median, peak_rss_mib, repeat_ms, service, timed
from controlplane.dag.options import BuildOptions
from controlplane.envoy.translate import TranslateOptions
from controlplane.model import parse_object
from controlplane.runtime import Runtime
from controlplane.xds.cache import SnapshotCache


def populate(runtime: Runtime, count: int) -> None:
    for index in range(count):
        namespace, name = f"ns{index % 100}", f"app{index}"
        for raw in (
            service(namespace, name),
            endpoint_slice(namespace, name, index),
            ingress(namespace, name, f"{name}.example.com", name),
        ):
            runtime.store.apply(parse_object(raw))


async def measure(count: int) -> dict[str, Any]:
    runtime = Runtime(
        build_options=BuildOptions(), translate_options=TranslateOptions(), cache=SnapshotCache()
    )
    times: dict[str, float] = {}
    populate(runtime, count)
    with timed(times, "full"):
        await runtime.rebuild()

    edits = iter(range(10**6))
    one_ingress: list[float] = []
    for edit in range(20):
        raw = ingress("ns7", "app7", f"app7-{edit}.example.com", "app7")
        runtime.store.apply(parse_object(raw))
        with timed(times, "one"):
            await runtime.rebuild()
        one_ingress.append(times["one"])

    runtime.source_synced_event().set()  # the fast path runs only after the initial load
    await asyncio.sleep(0.01)

    def change_endpoint() -> None:
        edit = next(edits)
        runtime.store.apply(parse_object(endpoint_slice("ns9", "app9", 9 + edit % 50)))

    one_endpoint = repeat_ms(change_endpoint, 50)
    return {
        "ingresses": count,
        "full build+encode ms": times["full"],
        "one Ingress change ms (p50)": median(one_ingress),
        "one endpoint change ms (p50)": median(one_endpoint),
        "peak RSS MiB": peak_rss_mib(),
    }


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    row = loop.run_until_complete(measure(int(sys.argv[1])))
    sys.stdout.write(repr(row) + "\n")
