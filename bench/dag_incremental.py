"""The incremental DAG build at scale: N Ingresses, or N IngressRoute roots (2 routes, one
delegated to a child IngressRoute), each with its own Service (3 endpoints).

For each kind, through the real runtime path (store → build → translate → snapshot → publish):
- the reference (plain full) build of the whole store, and the `DagBuilder`'s cold build;
- one object edited (an Ingress's host renamed; a route added to one root): the DAG build alone
  and the whole `Runtime.rebuild()` (median of 20), with the rebuild's phases (median each).
Run one size (and kind) per process:
`PYTHONPATH=. python -m bench.dag_incremental 10000 [Ingress|IngressRoute]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    endpoint_slice,
    ingress,
    ingressroute_delegate,
    ingressroute_root,
    service,
)
from controlplane.dag.builder import DagBuilder
from controlplane.dag.options import BuildOptions
from controlplane.dag.reference import reference_build
from controlplane.envoy.translate import TranslateOptions
from controlplane.logging import configure_logging
from controlplane.model import parse_object
from controlplane.runtime import Runtime
from controlplane.xds.cache import SnapshotCache

SAMPLES = 20


def populate(runtime: Runtime, count: int, kind: str) -> None:
    for index in range(count):
        namespace, name = f"ns{index % 100}", f"app{index}"
        raws = [service(namespace, name), endpoint_slice(namespace, name, index)]
        if kind == "Ingress":
            raws.append(ingress(namespace, name, f"{name}.example.com", name))
        else:
            raws.append(ingressroute_root(namespace, name, f"{name}.example.com", name))
            raws.append(ingressroute_delegate(namespace, name, name))
        for raw in raws:
            runtime.store.apply(parse_object(raw))


def edit(runtime: Runtime, kind: str, number: int) -> None:
    if kind == "Ingress":
        raw = ingress("ns7", "app7", f"app7-{number}.example.com", "app7")
    else:
        raw = ingressroute_root("ns7", "app7", "app7.example.com", "app7")
        raw["spec"]["routes"].append(
            {"match": f"/edit-{number}", "services": [{"name": "app7", "port": 80}]}
        )
    runtime.store.apply(parse_object(raw))


def ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


async def measure(count: int, kind: str) -> dict[str, Any]:
    runtime = Runtime(
        build_options=BuildOptions(), translate_options=TranslateOptions(), cache=SnapshotCache()
    )
    populate(runtime, count, kind)
    objects = runtime.store.object_set()
    full = ms(lambda: reference_build(objects, runtime.build_options))
    first = ms(lambda: DagBuilder().build(objects, runtime.build_options))
    await runtime.rebuild()

    rebuilds, phases = [], {"object_set": [], "dag build": [], "translate+snapshot": []}
    for number in range(SAMPLES):
        edit(runtime, kind, number)
        started = time.perf_counter()
        await runtime.rebuild()
        rebuilds.append((time.perf_counter() - started) * 1000)
    for number in range(SAMPLES, 2 * SAMPLES):
        edit(runtime, kind, number)
        clock = time.perf_counter()
        objects = runtime.store.object_set()
        phases["object_set"].append((time.perf_counter() - clock) * 1000)
        clock = time.perf_counter()
        dag = runtime.dag_builder.build(objects, runtime.build_options)
        phases["dag build"].append((time.perf_counter() - clock) * 1000)
        clock = time.perf_counter()
        runtime.publisher.publish(dag, objects)
        phases["translate+snapshot"].append((time.perf_counter() - clock) * 1000)
    return {
        "kind": kind,
        "objects": count,
        "reference build ms": round(full, 1),
        "cold build ms": round(first, 1),
        "one change: dag build ms (p50)": round(statistics.median(phases["dag build"]), 2),
        "one change: rebuild ms (p50)": round(statistics.median(rebuilds), 1),
        "one change: rebuild ms (max)": round(max(rebuilds), 1),
        **{
            f"phase {name} ms (p50)": round(statistics.median(values), 2)
            for name, values in phases.items()
        },
    }


async def main(count: int, kinds: list[str]) -> None:
    configure_logging("warning", json=True)
    for kind in kinds:
        row = await measure(count, kind)
        sys.stdout.write(repr(row) + "\n")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2:] or ["Ingress", "IngressRoute"]))
