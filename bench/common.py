"""Shared helpers of the benchmarks: synthetic clusters of objects, timing, results files."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

TARGETS: dict[str, float] = {
    # issue 13 (2 cores): a new IngressRoute + Service among 1,000, each change after a quiet
    # period (the holdoff's leading edge), store.apply → first 200 through Envoy
    "propagation p50 ms": 60,
    "propagation p99 ms": 200,
    # issue 13: `kubectl apply` returned → first 200, 300 roots served
    "kube_apply p50 ms": 40,
    "kube_apply p99 ms": 150,
}
"""Goals of the benchmarks whose targets table (`python -m bench`) reads them from here."""

CREATED = "2026-01-01T00:00:00Z"
"""What the API server sets on every object (manifest files have none; see Store._stamped)."""


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(into: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    into[key] = (time.perf_counter() - started) * 1000


def median(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2]


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def repeat_ms(action: Callable[[], object], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def write_results(name: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "rows": rows, **extra}, indent=2) + "\n")
    return path


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    lines = [title, "  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(_cell(r.get(c)).ljust(widths[c]) for c in columns) for r in rows]
    os.write(1, ("\n".join(lines) + "\n\n").encode())


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def service(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def endpoint_slice(namespace: str, name: str, index: int, endpoints: int = 3) -> dict[str, Any]:
    base = 10 << 24 | (index * 4)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-slice",
            "namespace": namespace,
            "creationTimestamp": CREATED,
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {"addresses": [_ip(base + offset)], "conditions": {"ready": True}}
            for offset in range(endpoints)
        ],
    }


def _ip(value: int) -> str:
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


def ingress(namespace: str, name: str, host: str, service_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": path,
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": service_name, "port": {"number": 80}}
                                },
                            }
                            for path in ("/", "/api")
                        ]
                    },
                }
            ]
        },
    }


def ingressroute_root(namespace: str, name: str, host: str, service_name: str) -> dict[str, Any]:
    """A root IngressRoute: `/` to the Service, `/blog` delegated to `<name>-blog`."""
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {
            "virtualhost": {"fqdn": host},
            "routes": [
                {"match": "/", "services": [{"name": service_name, "port": 80}]},
                {"match": "/blog", "delegate": {"name": f"{name}-blog", "namespace": namespace}},
            ],
        },
    }


def ingressroute_delegate(
    namespace: str, name: str, service_name: str, match: str = "/blog"
) -> dict[str, Any]:
    """The delegated IngressRoute of `ingressroute_root` (named `<root>-blog`)."""
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": f"{name}-blog", "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {"routes": [{"match": match, "services": [{"name": service_name, "port": 80}]}]},
    }


def ingressroute_simple(namespace: str, name: str, host: str, service_name: str) -> dict[str, Any]:
    """A root IngressRoute with one route (`/`) and no delegation."""
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {
            "virtualhost": {"fqdn": host},
            "routes": [{"match": "/", "services": [{"name": service_name, "port": 80}]}],
        },
    }
