"""Prometheus metric families, grouped by the part of the controller that updates them.

Metric names are public surface (dashboards depend on them, and `manifests/grafana/` ships one
whose every query a test checks against a running controller's `/metrics`): change them only
deliberately. Contour's names keep Contour's meaning, so its dashboards and alerts carry over:
`contour_ingressroute_total`, `_root_total`, `_orphaned_total` (by namespace),
`_valid_total` and `_invalid_total` (by namespace and vhost), `contour_dagrebuild_timestamp`,
`contour_dagrebuild_total` and `contour_cachehandler_onupdate_duration_seconds` (a summary of
whole rebuilds: DAG build plus publish).

Families are created per ``CollectorRegistry``: a component takes a metrics object in its
constructor, so tests hand each component a fresh registry and never collide, while the
runtime passes one registry (normally ``prometheus_client.REGISTRY``) to everything.
``xds_metrics(registry)`` (and every other ``*_metrics(registry)``) returns the same object for
the same registry, because prometheus-client refuses to register a name twice.

`controlplane_event_loop_lag_seconds` says how late the event loop ran a timer due at a known
time (`LoopLag`, every 100 ms): whatever holds the loop (a build used to, for seconds at 10,000
objects) delays every xDS stream and `/healthz` by as much.

Per-object gauges (the IngressRoute counts, invalid objects by reason) are not updated by the
build: counting every object on every rebuild would make the cost of a one-object change grow
with the cluster. They are computed when Prometheus scrapes, from an `ObjectCounts` the runtime
provides (`ObjectMetrics.source`, cached per build), so a scrape costs one pass over the last
build at most. Label values are bounded: namespaces and vhosts are names Kubernetes and the DAG
validated, and reasons are short classes, never a user's text.
"""

from __future__ import annotations

import asyncio
import platform
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
)
from prometheus_client.core import GaugeMetricFamily, Metric

__all__ = [
    "BuildMetrics",
    "EventMetrics",
    "InformerMetrics",
    "LoopLag",
    "LoopMetrics",
    "ObjectCounts",
    "ObjectMetrics",
    "PipelineMetrics",
    "StatusMetrics",
    "XdsMetrics",
    "build_metrics",
    "event_metrics",
    "informer_metrics",
    "loop_metrics",
    "object_metrics",
    "pipeline_metrics",
    "status_metrics",
    "xds_metrics",
]

ENVOY_API = "v3"
"""The xDS API version served (the `envoy_api` label of `controlplane_build_info`)."""

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Seconds: a one-object rebuild takes milliseconds, a cold 10,000-object build seconds."""


@dataclass(frozen=True, slots=True)
class XdsMetrics:
    """Metrics of the xDS server and its snapshot cache."""

    streams: Gauge
    pushes: Counter
    nacks: Counter
    snapshots: Counter
    connected_envoys: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> XdsMetrics:
        return cls(
            streams=Gauge(
                "controlplane_xds_streams",
                "Open xDS streams.",
                registry=registry,
            ),
            pushes=Counter(
                "controlplane_xds_pushes_total",
                "xDS responses written, by resource type (cds, eds, sds, lds, rds).",
                ["type"],
                registry=registry,
            ),
            nacks=Counter(
                "controlplane_xds_nacks_total",
                "xDS responses rejected by Envoy (NACKs), by resource type.",
                ["type"],
                registry=registry,
            ),
            snapshots=Counter(
                "controlplane_xds_snapshots_total",
                "Snapshots published to the xDS cache, by kind (full, endpoints).",
                ["kind"],
                registry=registry,
            ),
            connected_envoys=Gauge(
                "controlplane_xds_connected_envoys",
                "Envoys connected now: distinct node ids among the open xDS streams (an Envoy "
                "using one stream per type counts once).",
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class PipelineMetrics:
    """Metrics of the build → translate → publish pipeline: what it had to leave out."""

    internal_errors: Counter
    rejected: Counter
    endpoints_refused: Counter
    quarantined: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> PipelineMetrics:
        return cls(
            internal_errors=Counter(
                "controlplane_internal_errors_total",
                "Objects left out because building them hit a bug, by kind (the log has the "
                "traceback).",
                ["kind"],
                registry=registry,
            ),
            rejected=Counter(
                "controlplane_rejected_values_total",
                "Values left out before publishing because Envoy would reject them, by resource "
                "type (cds, eds, sds, lds, rds).",
                ["type"],
                registry=registry,
            ),
            endpoints_refused=Counter(
                "controlplane_endpoints_refused_total",
                "Endpoints left out of every ClusterLoadAssignment, counted once each time one "
                "is newly refused, by reason (fqdn_address_type, not_an_ip_address, "
                "port_out_of_range, refused_network).",
                ["reason"],
                registry=registry,
            ),
            quarantined=Counter(
                "controlplane_quarantined_total",
                "Resources, virtual hosts or filter chains left out after an Envoy rejected them "
                "(NACK), counted when each is newly left out, by resource type.",
                ["type"],
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class EventMetrics:
    """Metrics of the Kubernetes Events the leader posts (controlplane/sources/events.py)."""

    dropped: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> EventMetrics:
        return cls(
            dropped=Counter(
                "controlplane_events_dropped_total",
                "Kubernetes Events not posted, by reason (rate_limited: over the controller's "
                "budget, namespace_rate_limited: over one namespace's budget, queue_full, "
                "failed: the API server refused them or could not be reached).",
                ["reason"],
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class BuildMetrics:
    """When and how fast the controller rebuilds and publishes, Contour's names first."""

    dagrebuild_timestamp: Gauge
    dagrebuilds: Counter
    onupdate_duration: Summary
    build_duration: Histogram
    publish_duration: Histogram
    build_failures: Counter
    build_info: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BuildMetrics:
        metrics = cls(
            dagrebuild_timestamp=Gauge(
                "contour_dagrebuild_timestamp",
                "Timestamp of the last DAG rebuild (seconds since the epoch).",
                registry=registry,
            ),
            dagrebuilds=Counter(
                "contour_dagrebuild_total",
                "Total number of times the DAG has been rebuilt since startup.",
                registry=registry,
            ),
            onupdate_duration=Summary(
                "contour_cachehandler_onupdate_duration_seconds",
                "Duration of a whole rebuild: DAG build, translation and publishing to the xDS "
                "cache.",
                registry=registry,
            ),
            build_duration=Histogram(
                "controlplane_build_duration_seconds",
                "Duration of DAG builds (objects → DAG and statuses).",
                buckets=DURATION_BUCKETS,
                registry=registry,
            ),
            publish_duration=Histogram(
                "controlplane_publish_duration_seconds",
                "Duration of publishes, by kind: build (translate, diff and publish a DAG), "
                "republish (after a NACK verdict, no build), endpoints (the EDS fast path).",
                ["kind"],
                buckets=DURATION_BUCKETS,
                registry=registry,
            ),
            build_failures=Counter(
                "controlplane_build_failures_total",
                "Rebuilds that raised (a bug: nothing was published; the log has the "
                "traceback, and the next change retries).",
                registry=registry,
            ),
            build_info=Gauge(
                "controlplane_build_info",
                "Always 1; the labels say which controller this is: its version, the Python "
                "running it and the xDS API it serves.",
                ["version", "python", "envoy_api"],
                registry=registry,
            ),
        )
        metrics.build_info.labels(
            version=_version(), python=platform.python_version(), envoy_api=ENVOY_API
        ).set(1)
        for kind in ("build", "republish", "endpoints"):
            metrics.publish_duration.labels(kind=kind)  # present (at 0) before the first one
        return metrics


LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
"""Seconds: an idle loop wakes within a millisecond; 50 ms is the target under a 10k build."""


@dataclass(frozen=True, slots=True)
class LoopMetrics:
    """How late the event loop runs what is due: every xDS stream and `/healthz` wait that long."""

    lag: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> LoopMetrics:
        return cls(
            lag=Histogram(
                "controlplane_event_loop_lag_seconds",
                "How late the event loop woke a timer due at a known time (sampled every "
                "100 ms): a stall of the loop (a long build, a collection) delays every xDS "
                "stream and /healthz by as much.",
                buckets=LAG_BUCKETS,
                registry=registry,
            ),
        )


class LoopLag:
    """A timer that re-arms itself every `interval` and observes how late each wake-up was.

    Lag is measured against the loop's own clock (`loop.time()`, monotonic): due at `t`, run at
    `t + lag`. A stall longer than `interval` shows up whole in the first wake-up after it; a
    shorter one shows up when a wake-up falls due inside it, so `max_lag` over many stalls
    approaches the longest of them. The cost is one callback per interval (no task, no sleep).
    `max_lag` is the largest lag seen since `reset()` (for benchmarks and tests)."""

    def __init__(self, metrics: LoopMetrics | None = None, *, interval: float = 0.1) -> None:
        self.metrics = metrics
        self.interval = interval
        self.max_lag = 0.0
        self.samples = 0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._due = loop.time() + self.interval
            self._handle = loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def reset(self) -> None:
        self.max_lag = 0.0
        self.samples = 0

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        lag = max(0.0, now - self._due)  # asyncio may run a timer up to its clock resolution early
        self.samples += 1
        self.max_lag = max(self.max_lag, lag)
        if self.metrics is not None:
            self.metrics.lag.observe(lag)
        self._due = now + self.interval
        self._handle = loop.call_at(self._due, self._tick)


@dataclass(frozen=True, slots=True)
class StatusMetrics:
    """The status writers: what they wrote, what conflicted, and whether this replica writes."""

    writes: Counter
    conflicts: Counter
    leader: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> StatusMetrics:
        return cls(
            writes=Counter(
                "controlplane_status_writes_total",
                "Status patches the API server accepted, by kind (IngressRoute, Ingress).",
                ["kind"],
                registry=registry,
            ),
            conflicts=Counter(
                "controlplane_status_conflicts_total",
                "Status patches answered 409 Conflict (retried with backoff), by kind.",
                ["kind"],
                registry=registry,
            ),
            leader=Gauge(
                "controlplane_leader",
                "1 while this replica writes status (it holds the leader Lease, or runs without "
                "leader election in a cluster); 0 otherwise (a follower, or --manifests).",
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class ObjectCounts:
    """What the per-object gauges say, counted from one build (see the module docstring)."""

    total: Mapping[str, int] = field(default_factory=dict)
    """IngressRoutes of our class by namespace, whatever their status."""
    roots: Mapping[str, int] = field(default_factory=dict)
    """Root IngressRoutes (with a virtualhost) by namespace."""
    orphaned: Mapping[str, int] = field(default_factory=dict)
    valid: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """By (namespace, vhost): the fqdn of the root that serves it, "" if none does."""
    invalid: Mapping[tuple[str, str], int] = field(default_factory=dict)
    invalid_by_reason: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """By (kind, reason class): invalid IngressRoutes, and other objects with problems."""


class ObjectMetrics:
    """The per-object gauges, computed at scrape time from `source()` (None: no build yet)."""

    def __init__(self) -> None:
        self.source: Callable[[], ObjectCounts | None] = lambda: None

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ObjectMetrics:
        metrics = cls()
        registry.register(metrics)
        return metrics

    def describe(self) -> list[Metric]:
        return list(self._families(ObjectCounts()))

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self.source() or ObjectCounts())

    def _families(self, counts: ObjectCounts) -> Iterator[Metric]:
        by_namespace = ["namespace"]
        by_vhost = ["namespace", "vhost"]
        yield _gauge(
            "contour_ingressroute_total",
            "Total number of IngressRoutes that exist regardless of status.",
            by_namespace,
            {(ns,): n for ns, n in counts.total.items()},
        )
        yield _gauge(
            "contour_ingressroute_root_total",
            "Total number of root IngressRoutes. Note there will only be a single root "
            "IngressRoute per vhost.",
            by_namespace,
            {(ns,): n for ns, n in counts.roots.items()},
        )
        yield _gauge(
            "contour_ingressroute_orphaned_total",
            "Total number of orphaned IngressRoutes which have no root delegating to them.",
            by_namespace,
            {(ns,): n for ns, n in counts.orphaned.items()},
        )
        yield _gauge(
            "contour_ingressroute_valid_total",
            "Total number of valid IngressRoutes.",
            by_vhost,
            counts.valid,
        )
        yield _gauge(
            "contour_ingressroute_invalid_total",
            "Total number of invalid IngressRoutes.",
            by_vhost,
            counts.invalid,
        )
        yield _gauge(
            "controlplane_objects_invalid",
            "Objects not (wholly) served now, by kind and reason class: invalid IngressRoutes, "
            "and Ingresses, Services and Secrets with problems (each object once per class).",
            ["kind", "reason"],
            counts.invalid_by_reason,
        )


K = TypeVar("K", bound=tuple[str, ...])


def _gauge(
    name: str, documentation: str, labels: list[str], values: Mapping[K, int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family


def _version() -> str:
    try:
        return metadata.version("controlplane")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


@dataclass(frozen=True, slots=True)
class InformerMetrics:
    """The informers (controlplane/sources/kube.py): what the watches deliver, and how fresh."""

    events: Counter
    relists: Counter
    last_event: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> InformerMetrics:
        return cls(
            events=Counter(
                "controlplane_informer_events_total",
                "Watch events applied to the store, by kind and type (ADDED, MODIFIED, DELETED, "
                "BOOKMARK).",
                ["kind", "type"],
                registry=registry,
            ),
            relists=Counter(
                "controlplane_informer_relists_total",
                "Full lists after the first one, by kind (410 Gone: the watch fell behind the "
                "API server's history).",
                ["kind"],
                registry=registry,
            ),
            last_event=Gauge(
                "controlplane_informer_last_event_timestamp_seconds",
                "When the last list or watch event (bookmarks included) of a kind arrived: "
                "time() minus this is how stale the informer may be (bookmarks come about "
                "once a minute on a quiet watch).",
                ["kind"],
                registry=registry,
            ),
        )


M = TypeVar(
    "M",
    XdsMetrics,
    PipelineMetrics,
    BuildMetrics,
    StatusMetrics,
    ObjectMetrics,
    EventMetrics,
    InformerMetrics,
    LoopMetrics,
)

# Caches keyed by registry, not shared state: they only prevent double registration.
_CREATED: weakref.WeakKeyDictionary[CollectorRegistry, dict[type[Any], Any]] = (
    weakref.WeakKeyDictionary()
)


def _for_registry(family: type[M], registry: CollectorRegistry | None) -> M:
    """The metrics `family` registered in `registry` (default: the process-wide one), created
    once per registry (prometheus-client refuses to register a name twice)."""
    registry = REGISTRY if registry is None else registry
    created = _CREATED.setdefault(registry, {})
    metrics = created.get(family)
    if metrics is None:
        metrics = created[family] = family.create(registry)
    result: M = metrics
    return result


def xds_metrics(registry: CollectorRegistry | None = None) -> XdsMetrics:
    """The xDS metrics registered in ``registry`` (default: the process-wide registry)."""
    return _for_registry(XdsMetrics, registry)


def event_metrics(registry: CollectorRegistry | None = None) -> EventMetrics:
    """The Event metrics registered in ``registry`` (default: the process-wide registry)."""
    return _for_registry(EventMetrics, registry)


def pipeline_metrics(registry: CollectorRegistry | None = None) -> PipelineMetrics:
    """The pipeline metrics registered in ``registry`` (default: the process-wide registry)."""
    return _for_registry(PipelineMetrics, registry)


def build_metrics(registry: CollectorRegistry | None = None) -> BuildMetrics:
    """The rebuild metrics registered in ``registry`` (default: the process-wide registry)."""
    return _for_registry(BuildMetrics, registry)


def informer_metrics(registry: CollectorRegistry | None = None) -> InformerMetrics:
    """The informers' metrics in ``registry`` (default: the process-wide registry)."""
    return _for_registry(InformerMetrics, registry)


def loop_metrics(registry: CollectorRegistry | None = None) -> LoopMetrics:
    """The event loop's lag histogram in ``registry`` (default: the process-wide registry)."""
    return _for_registry(LoopMetrics, registry)


def status_metrics(registry: CollectorRegistry | None = None) -> StatusMetrics:
    """The status writers' metrics in ``registry`` (default: the process-wide registry)."""
    return _for_registry(StatusMetrics, registry)


def object_metrics(registry: CollectorRegistry | None = None) -> ObjectMetrics:
    """The per-object gauges in ``registry`` (default: the process-wide registry); set
    `source` to feed them."""
    return _for_registry(ObjectMetrics, registry)
