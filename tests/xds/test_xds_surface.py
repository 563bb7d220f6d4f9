"""The public surface of controlplane.xds and its metric names: change them only on purpose."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

import controlplane.xds
from controlplane.metrics import xds_metrics


def test_public_names() -> None:
    assert sorted(controlplane.xds.__all__) == [
        "CLUSTER_TYPE",
        "ENDPOINT_TYPE",
        "LISTENER_TYPE",
        "NackRecord",
        "PUSH_ORDER",
        "ROUTE_TYPE",
        "Resource",
        "SECRET_TYPE",
        "ServerSettings",
        "Snapshot",
        "SnapshotCache",
        "WILDCARD_TYPES",
        "XdsServer",
    ]


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
