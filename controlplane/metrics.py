"""Prometheus metric families, grouped by the part of the controller that updates them.

Metric names are public surface (dashboards depend on them): change them only deliberately.

Families are created per ``CollectorRegistry``: a component takes a metrics object in its
constructor, so tests hand each component a fresh registry and never collide, while the
runtime passes one registry (normally ``prometheus_client.REGISTRY``) to everything.
``xds_metrics(registry)`` (and ``publisher_metrics(registry)``) returns the same object for the
same registry, because prometheus-client refuses to register a name twice.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

__all__ = [
    "LeaderMetrics",
    "PipelineMetrics",
    "XdsMetrics",
    "leader_metrics",
    "pipeline_metrics",
    "xds_metrics",
]


@dataclass(frozen=True, slots=True)
class XdsMetrics:
    """Metrics of the xDS server and its snapshot cache."""

    streams: Gauge
    pushes: Counter
    nacks: Counter
    snapshots: Counter

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
class LeaderMetrics:
    """Whether this replica writes status (sources/leader.py `Leadership` sets it)."""

    leader: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> LeaderMetrics:
        return cls(
            leader=Gauge(
                "controlplane_leader",
                "1 while this replica writes status (it holds the leader Lease, or runs without "
                "leader election against a cluster), else 0.",
                registry=registry,
            ),
        )


M = TypeVar("M", XdsMetrics, PipelineMetrics, LeaderMetrics)

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


def pipeline_metrics(registry: CollectorRegistry | None = None) -> PipelineMetrics:
    """The pipeline metrics registered in ``registry`` (default: the process-wide registry)."""
    return _for_registry(PipelineMetrics, registry)


def leader_metrics(registry: CollectorRegistry | None = None) -> LeaderMetrics:
    """The leader gauge registered in ``registry`` (default: the process-wide registry)."""
    return _for_registry(LeaderMetrics, registry)
