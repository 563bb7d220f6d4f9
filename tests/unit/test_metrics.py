"""The metrics operators graph and alert on: Contour's names with Contour's meaning, and ours.

Read back the way Prometheus reads them (the text exposition of a registry, parsed), from fresh
registries so tests never see each other's counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ingressroute_support import delegate, ingressroute, route, service, to
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from web_support import HOSTILE, view_of

from controlplane.dag import BuildOptions
from controlplane.envoy import TranslateOptions
from controlplane.metrics import (
    build_metrics,
    object_metrics,
    pipeline_metrics,
    status_metrics,
    xds_metrics,
)
from controlplane.model import IngressRouteStatus
from controlplane.runtime import Runtime
from controlplane.sources import StatusUpdate, StatusWriter
from controlplane.sources import status as status_module
from controlplane.sources.kubeclient import KubeApiError
from controlplane.sources.status import WriterOptions
from controlplane.xds import SnapshotCache

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(registry: CollectorRegistry, *prefixes: str) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(prefixes) and not s.name.endswith("_created")
    }


WEB = service("web")
CLUSTER = [
    ingressroute(
        "www",
        "platform",
        fqdn="www.example.com",
        routes=[
            route("/", to("web")),
            route("/blog", delegate=delegate("blog", "blog")),
            route("/bad", delegate=delegate("bad", "blog")),
        ],
    ),
    service("web", "platform"),
    ingressroute("blog", "blog", routes=[route("/blog", to("web"))]),
    service("web", "blog"),
    ingressroute("bad", "blog", routes=[route("/bad", to("missing"))]),
    ingressroute("lost", "blog", routes=[route("/", to("web"))]),
    ingressroute("evil", "team", fqdn=HOSTILE, routes=[route("/", to("web"))]),
]


def test_ingressroute_gauges_keep_contours_names_labels_and_meaning() -> None:
    registry = CollectorRegistry()
    view = view_of(CLUSTER)
    object_metrics(registry).source = lambda: view.counts
    assert samples(registry, "contour_ingressroute", "controlplane_objects") == {
        ("contour_ingressroute_total", (("namespace", "blog"),)): 3,
        ("contour_ingressroute_total", (("namespace", "platform"),)): 1,
        ("contour_ingressroute_total", (("namespace", "team"),)): 1,
        ("contour_ingressroute_root_total", (("namespace", "platform"),)): 1,
        ("contour_ingressroute_root_total", (("namespace", "team"),)): 1,
        ("contour_ingressroute_orphaned_total", (("namespace", "blog"),)): 1,
        (
            "contour_ingressroute_valid_total",
            (("namespace", "blog"), ("vhost", "www.example.com")),
        ): 1,
        (
            "contour_ingressroute_valid_total",
            (("namespace", "platform"), ("vhost", "www.example.com")),
        ): 1,
        (
            "contour_ingressroute_invalid_total",
            (("namespace", "blog"), ("vhost", "www.example.com")),
        ): 1,
        # an fqdn that is not a hostname is never a label value
        ("contour_ingressroute_invalid_total", (("namespace", "team"), ("vhost", ""))): 1,
        (
            "controlplane_objects_invalid",
            (("kind", "IngressRoute"), ("reason", "fqdn_invalid")),
        ): 1,
        (
            "controlplane_objects_invalid",
            (("kind", "IngressRoute"), ("reason", "service_missing")),
        ): 1,
    }


def test_the_gauges_are_listed_before_the_first_build_and_follow_the_last_one() -> None:
    registry = CollectorRegistry()
    metrics = object_metrics(registry)
    text = generate_latest(registry).decode()
    assert "# TYPE contour_ingressroute_valid_total gauge" in text
    assert samples(registry, "contour_") == {}
    view = view_of(CLUSTER[:2])
    metrics.source = lambda: view.counts
    assert samples(registry, "contour_ingressroute_total") == {
        ("contour_ingressroute_total", (("namespace", "platform"),)): 1
    }
    metrics.source = lambda: view_of([]).counts  # gone objects leave no stale series
    assert samples(registry, "contour_ingressroute_total") == {}


def test_each_family_is_registered_once_per_registry() -> None:
    registry = CollectorRegistry()
    for family in (build_metrics, object_metrics, status_metrics, xds_metrics, pipeline_metrics):
        assert family(registry) is family(registry)
    build_info = samples(registry, "controlplane_build_info")
    ((name, labels),) = build_info
    assert dict(labels).keys() == {"version", "python", "envoy_api"}
    assert dict(labels)["envoy_api"] == "v3" and build_info[(name, labels)] == 1


def runtime_with(registry: CollectorRegistry) -> Runtime:
    return Runtime(
        build_options=BuildOptions(),
        translate_options=TranslateOptions(),
        cache=SnapshotCache(metrics=xds_metrics(registry)),
        metrics=pipeline_metrics(registry),
        rebuild_metrics=build_metrics(registry),
    )


async def test_each_rebuild_is_counted_timed_and_stamped() -> None:
    registry = CollectorRegistry()
    runtime = runtime_with(registry)
    for raw in CLUSTER:
        runtime.store.apply_raw(raw)
    await runtime.rebuild()
    await runtime.rebuild()
    found = samples(registry, "contour_dagrebuild", "contour_cachehandler", "controlplane_build")
    assert found[("contour_dagrebuild_total", ())] == 2
    assert found[("contour_dagrebuild_timestamp", ())] > 1.7e9
    assert found[("contour_cachehandler_onupdate_duration_seconds_count", ())] == 2
    assert found[("controlplane_build_duration_seconds_count", ())] == 2
    assert found[("controlplane_build_failures_total", ())] == 0
    published = samples(registry, "controlplane_publish_duration_seconds_count")
    assert published[("controlplane_publish_duration_seconds_count", (("kind", "build"),))] == 2
    view = runtime.view()
    assert view is not None and view is runtime.view()  # made once per build
    assert runtime.object_counts() == view.counts
    await runtime.rebuild()
    assert runtime.view() is not view


async def test_a_rebuild_that_raises_is_counted_and_publishes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = CollectorRegistry()
    runtime = runtime_with(registry)

    def broken(*_: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(runtime.dag_builder, "build", broken)
    with pytest.raises(RuntimeError):
        await runtime.rebuild()
    found = samples(registry, "contour_dagrebuild_total", "controlplane_build_failures")
    assert found == {
        ("contour_dagrebuild_total", ()): 0,
        ("controlplane_build_failures_total", ()): 1,
    }
    assert runtime.view() is None


async def test_status_writes_conflicts_and_leadership_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: list[BaseException | None] = [KubeApiError(409, "Conflict"), None]

    async def patch(*_: Any, **__: Any) -> dict[str, Any]:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return {}

    monkeypatch.setattr(status_module, "request_json", patch)
    registry = CollectorRegistry()
    metrics = status_metrics(registry)
    options = WriterOptions(backoff_initial=0.001, rand=lambda: 0.0)
    writer = StatusWriter(object(), leader=False, options=options, metrics=metrics)  # type: ignore[arg-type]
    assert samples(registry, "controlplane_leader") == {("controlplane_leader", ()): 0}
    writer.set_leader(True)
    task = asyncio.create_task(writer.run())
    try:
        writer.submit([StatusUpdate("default", "r", IngressRouteStatus(current_status="valid"))])
        async with asyncio.timeout(5):
            await writer.drain()
    finally:
        task.cancel()
    assert samples(registry, "controlplane_status", "controlplane_leader") == {
        ("controlplane_status_writes_total", (("kind", "IngressRoute"),)): 1,
        ("controlplane_status_conflicts_total", (("kind", "IngressRoute"),)): 1,
        ("controlplane_leader", ()): 1,
    }
    writer.set_leader(False)
    assert samples(registry, "controlplane_leader") == {("controlplane_leader", ()): 0}
