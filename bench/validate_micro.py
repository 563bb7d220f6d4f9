"""Micro-benchmark of `controlplane.envoy.validation.violations` on what the translator makes.

Resources come from the project's translator fed generated DAG values (no DAG build), as in
translate_micro:

- `ingress_http` RouteConfiguration of N virtual hosts (2 routes each, `synthetic_dag`), and
  the N Clusters of the same translation;
- `ingress_https` Listener of M TLS filter chains (one secure host each, its own SDS secret,
  all chains sharing one HttpConnectionManager, as the translator makes them).

Each figure is the best of several runs (the machine may be shared), next to the best time of
the translation that made the resource. "first call" includes compiling the checkers of every
message type reached (once per process). For the listener, "distinct payloads" clears the cache
of checked Any payloads first, so every chain's DownstreamTlsContext is decoded and checked; the
shared HttpConnectionManager is decoded once either way. "one virtual host" is the cost of
checking one translated VirtualHost on its own: what a publisher that re-checks only what
changed pays per changed host.

    python -m bench.validate_micro [N virtual hosts] [M filter chains]
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import print_table, write_results
from bench.translate_micro import synthetic_dag
from controlplane.dag.types import (
    DAG,
    Cluster,
    PathMatch,
    PathMatchKind,
    Route,
    SecureVirtualHost,
    TLSSecret,
    WeightedCluster,
)
from controlplane.envoy import translate, validation
from controlplane.envoy.validation import violations
from controlplane.testing.certs import self_signed

RUNS = 7


def best_ms(
    action: Callable[[], object], runs: int = RUNS, before: Callable[[], None] | None = None
) -> float:
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        gc.collect()
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return min(samples)


def secure_dag(count: int) -> DAG:
    """`count` TLS-terminating hosts, each with its own Secret (one key pair shared, for speed)."""
    pair = self_signed(["bench.local"])
    hosts = []
    for index in range(count):
        namespace = f"ns{index % 100}"
        cluster = Cluster(namespace, f"app{index}", 80, port_name="http")
        hosts.append(
            SecureVirtualHost(
                f"app{index}.example.com",
                (Route(PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"), (WeightedCluster(cluster),)),),
                secret=TLSSecret(namespace, f"tls{index}", pair.cert_pem, pair.key_pem),
            )
        )
    return DAG(secure_virtual_hosts=tuple(sorted(hosts, key=lambda host: host.fqdn)))


def _first_call_ms(action: Callable[[], list[Any]]) -> tuple[float, int]:
    started = time.perf_counter()
    found = action()
    return (time.perf_counter() - started) * 1000, len(found)


def measure_routes(count: int) -> dict[str, Any]:
    dag = synthetic_dag(count)
    translate_ms = best_ms(lambda: translate(dag), runs=3)
    config = translate(dag)
    routes = config.routes["ingress_http"]
    first_ms, found = _first_call_ms(lambda: violations(routes))
    validate_ms = best_ms(lambda: violations(routes))
    clusters = list(config.clusters.values())
    clusters_ms = best_ms(lambda: [violations(cluster) for cluster in clusters])
    hosts = list(routes.virtual_hosts)[:1000]
    started = time.perf_counter()
    for host in hosts:
        violations(host)
    per_host_us = (time.perf_counter() - started) * 1_000_000 / len(hosts)
    return {
        "resource": f"RouteConfiguration, {count:,} virtual hosts",
        "translate ms": translate_ms,
        "validate first call ms": first_ms,
        "validate ms": validate_ms,
        "validate / translate": round(validate_ms / translate_ms, 2),
        "one virtual host µs": per_host_us,
        "its Clusters": len(clusters),
        "validate every Cluster ms": clusters_ms,
        "violations": found,
    }


def measure_listener(count: int) -> dict[str, Any]:
    dag = secure_dag(count)
    translate_ms = best_ms(lambda: translate(dag), runs=3)
    listener = translate(dag).listeners["ingress_https"]
    first_ms, found = _first_call_ms(lambda: violations(listener))
    distinct_ms = best_ms(
        lambda: violations(listener), before=validation._cached_payload_problems.cache_clear
    )
    warm_ms = best_ms(lambda: violations(listener))
    return {
        "resource": f"Listener, {count:,} TLS filter chains",
        "translate ms": translate_ms,
        "validate first call ms": first_ms,
        "validate ms": distinct_ms,
        "validate / translate": round(distinct_ms / translate_ms, 2),
        "validate, payloads seen before ms": warm_ms,
        "violations": found,
    }


def main() -> None:
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    chains = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    rows = [measure_routes(1_000), measure_routes(hosts), measure_listener(chains)]
    assert all(row["violations"] == 0 for row in rows), "the translation of generated DAGs is valid"
    print_table("Validation micro-benchmark (translator output → violations())", rows)
    write_results(
        "validate_micro",
        rows,
        targets={"validate / translate": 0.5},
        runs=f"best of {RUNS}",
    )
    print(rows)


if __name__ == "__main__":
    main()
