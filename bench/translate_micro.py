"""Micro-benchmark of the translator alone: N virtual hosts (2 routes each) and N clusters.

Times, on a synthetic DAG (no DAG build): `translate` (protobuf construction), serializing every
resource (`EnvoyConfig.encode`), the N ClusterLoadAssignments (3 endpoints each), and the
`IncrementalTranslator` without endpoints, cold (first build) and warm (one virtual host and its
cluster changed). The target of issue 2 is the whole path (DAG build +
translate + serialize) for 10,000 hosts and 10,000 clusters within 3 s on 2 cores.

    python -m bench.translate_micro [N]
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

from bench.common import endpoint_slice, print_table, write_results
from controlplane.dag.types import (
    DAG,
    Cluster,
    PathMatch,
    PathMatchKind,
    Route,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import IncrementalTranslator, TranslateOptions, translate
from controlplane.model import EndpointSlice, ObjectSet


def synthetic_dag(count: int) -> DAG:
    hosts = []
    for index in range(count):
        cluster = Cluster(f"ns{index % 100}", f"app{index}", 80, port_name="http")
        backend = (WeightedCluster(cluster),)
        hosts.append(
            VirtualHost(
                f"app{index}.example.com",
                (
                    Route(PathMatch(PathMatchKind.SEGMENT_PREFIX, "/api"), backend),
                    Route(PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"), backend),
                ),
            )
        )
    return DAG(virtual_hosts=tuple(sorted(hosts, key=lambda host: host.fqdn)))


def synthetic_objects(count: int) -> ObjectSet:
    """One EndpointSlice with 3 ready endpoints per Service of `synthetic_dag`."""
    return ObjectSet(
        endpoint_slices={
            (f"ns{index % 100}", f"app{index}"): (
                EndpointSlice.model_validate(
                    endpoint_slice(f"ns{index % 100}", f"app{index}", index)
                ),
            )
            for index in range(count)
        }
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def measure(count: int) -> dict[str, Any]:
    dag = synthetic_dag(count)
    options = TranslateOptions()
    objects = synthetic_objects(count)
    translator = IncrementalTranslator(options)
    started = time.perf_counter()
    encoded = translator.translate(dag)
    cold_ms = _ms(started)
    size = sum(len(body) for by_name in encoded.values() for body in by_name.values())
    started = time.perf_counter()
    IncrementalTranslator(options).translate(dag, objects)
    with_endpoints_ms = _ms(started)
    started = time.perf_counter()
    config = translate(dag, options)
    decoded_ms = _ms(started)
    changed = list(dag.virtual_hosts)
    cluster = Cluster("ns7", "app7", 81, port_name="http")
    changed[7] = replace(
        changed[7],
        routes=(Route(PathMatch(PathMatchKind.PREFIX, "/"), (WeightedCluster(cluster),)),),
    )
    started = time.perf_counter()
    translator.translate(DAG(virtual_hosts=tuple(changed)))
    warm_ms = _ms(started)
    return {
        "virtual hosts": count,
        "clusters": len(config.clusters),
        "cold translate ms": cold_ms,
        "cold translate with endpoints ms": with_endpoints_ms,
        "cold translate decoded ms": decoded_ms,
        "1 change ms": warm_ms,
        "bytes": size,
    }


def main() -> None:
    counts = [int(arg) for arg in sys.argv[1:]] or [1_000, 10_000]
    rows = [measure(count) for count in counts]
    print_table("Translate micro-benchmark (synthetic DAG → Envoy protos → bytes)", rows)
    write_results("translate_micro", rows)


if __name__ == "__main__":
    main()
