"""The Grafana dashboard we ship names only metrics a running controller serves.

A controller is started (the file source on `examples/`, in-process, as `serve` runs), its
`/metrics` read and parsed: every family it lists, with the sample names Prometheus derives
from it (`_total` of a counter, `_bucket`/`_sum`/`_count` of a histogram), is a name a query
may use. Then every PromQL expression of the dashboard (panel targets and template variables)
is reduced to the metric names it selects, and each must be among them. A renamed metric, or a
typo in a query, fails here instead of as an empty panel.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from waiting import eventually

from controlplane.config import ServeSettings
from controlplane.runtime import serve
from controlplane.testing.envoy import free_port

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "manifests" / "grafana" / "controlplane-dashboard.json"

CONTOUR = {
    "contour_ingressroute_total",
    "contour_ingressroute_root_total",
    "contour_ingressroute_valid_total",
    "contour_ingressroute_invalid_total",
    "contour_ingressroute_orphaned_total",
    "contour_dagrebuild_timestamp",
    "contour_dagrebuild_total",
    "contour_cachehandler_onupdate_duration_seconds_sum",
}
OURS = {
    "controlplane_build_duration_seconds_bucket",
    "controlplane_publish_duration_seconds_bucket",
    "controlplane_build_failures_total",
    "controlplane_objects_invalid",
    "controlplane_status_writes_total",
    "controlplane_status_conflicts_total",
    "controlplane_leader",
    "controlplane_xds_nacks_total",
    "controlplane_xds_connected_envoys",
    "controlplane_build_info",
}

KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels dropped)."""
    label_values = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*\w+\s*\)\s*", expr)
    if label_values:
        return {label_values.group(1)}
    text = _VARIABLE.sub(" ", _STRING.sub(" ", expr))
    text = _GROUPING.sub(" ", _RANGE.sub(" ", _MATCHERS.sub(" ", text)))
    found = set()
    for match in _IDENT.finditer(text):
        name = match.group(0)
        if name.endswith("(") or name.rstrip().lower() in KEYWORDS:
            continue
        found.add(name)
    return found


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum(contour_ingressroute_total{namespace=~"$namespace"})',
            {"contour_ingressroute_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le, kind) (rate(x_bucket[$__rate_interval])))",
            {"x_bucket"},
        ),
        ("time() - max(a_timestamp) / on(instance) group_left b", {"a_timestamp", "b"}),
        ("label_values(contour_ingressroute_total, namespace)", {"contour_ingressroute_total"}),
        ('a{le="0.5", kind!~"x|y"} offset 5m and bool c', {"a", "c"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def expressions(node: Any) -> Iterator[str]:
    """Every `expr` of a panel target and every query of a template variable, recursively."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str) and value:
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def served(text: str) -> set[str]:
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture
async def metrics_text() -> AsyncIterator[str]:
    health = f"127.0.0.1:{free_port()}"
    settings = ServeSettings(
        manifests=ROOT / "examples" / "ingressroute",
        xds_address=f"127.0.0.1:{free_port()}",
        health_address=health,
        holdoff_delay=0.01,
        holdoff_max_delay=0.05,
        log_level="warning",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            if task.done():
                task.result()
            try:
                async with session.get(f"http://{health}/readyz") as answer:
                    return answer.status == 200
            except aiohttp.ClientError:
                return False

        try:
            await eventually(ready, within=15, message="the controller is ready")
            async with session.get(f"http://{health}/metrics") as answer:
                yield await answer.text()
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def test_every_dashboard_query_names_a_metric_the_controller_serves(
    metrics_text: str,
) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = list(expressions(dashboard))
    assert len(exprs) > 20
    used = {name for expr in exprs for name in metric_names(expr)}
    available = served(metrics_text)
    missing = {expr: sorted(metric_names(expr) - available) for expr in exprs}
    assert {expr: names for expr, names in missing.items() if names} == {}
    assert used >= CONTOUR | OURS, "the dashboard should show these"
    assert "contour_ingressroute_valid_total{" in metrics_text  # the examples are counted


def test_every_panel_queries_the_dashboards_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and panel["description"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
