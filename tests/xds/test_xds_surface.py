"""The metric names of controlplane.xds: dashboards depend on them, change them only on purpose."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from controlplane.metrics import xds_metrics


def test_metric_names() -> None:
    registry = CollectorRegistry()
    metrics = xds_metrics(registry)
    assert xds_metrics(registry) is metrics  # registering twice is harmless
    metrics.pushes.labels(type="cds").inc()
    metrics.nacks.labels(type="rds").inc()
    names = {sample.name for family in registry.collect() for sample in family.samples}
    assert {
        "controlplane_xds_streams",
        "controlplane_xds_pushes_total",
        "controlplane_xds_nacks_total",
    } <= names
