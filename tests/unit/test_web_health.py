"""The status page's routes on the health server: what each URL answers, and with which headers.

Served by the real `health_app` over aiohttp's test server, fed a view of real manifests, so the
wiring (query parameters, content types, the Content-Security-Policy) is what `serve` runs.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ingressroute_support import delegate, ingressroute, route, service, to
from prometheus_client import CollectorRegistry
from web_support import HOSTILE, view_of

from controlplane.envoy import TranslateOptions
from controlplane.health import PAGE_POLICY, health_app
from controlplane.metrics import pipeline_metrics, xds_metrics
from controlplane.publisher import Publisher
from controlplane.web import ClusterView
from controlplane.web.page import MAX_ROWS
from controlplane.xds import SnapshotCache

MANIFESTS = [
    ingressroute(
        "www",
        "platform",
        fqdn="www.example.com",
        routes=[route("/", to("web")), route("/blog", delegate=delegate("blog", "blog"))],
    ),
    service("web", "platform"),
    ingressroute("blog", "blog", routes=[route("/blog", to("web"))]),
    service("web", "blog"),
    ingressroute("evil", "team", fqdn=HOSTILE, routes=[route("/", to("web"))]),
]


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    cache = SnapshotCache(metrics=xds_metrics(CollectorRegistry()))
    publisher = Publisher(TranslateOptions(), cache, pipeline_metrics(CollectorRegistry()))
    view = view_of(MANIFESTS)
    app = health_app(asyncio.Event(), publisher, cache, view=lambda: view)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_the_page_is_html_under_a_policy_that_allows_only_its_own_scripts(
    client: TestClient[Any, Any],
) -> None:
    answer = await client.get("/")
    assert answer.status == 200
    assert answer.content_type == "text/html"
    assert answer.headers["Content-Security-Policy"] == PAGE_POLICY
    assert "script-src 'self'" in PAGE_POLICY and "unsafe-inline" not in PAGE_POLICY
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    page = await answer.text()
    assert 'data-namespace="platform"' in page and "&lt;script&gt;" in page
    narrowed = await (await client.get("/", params={"namespace": "blog"})).text()
    assert 'data-namespace="platform"' not in narrowed and 'data-namespace="blog"' in narrowed


@pytest.mark.parametrize(
    ("name", "content_type"), [("page.js", "text/javascript"), ("page.css", "text/css")]
)
async def test_static_files_are_served_from_the_package(
    client: TestClient[Any, Any], name: str, content_type: str
) -> None:
    answer = await client.get(f"/static/{name}")
    assert answer.status == 200 and answer.content_type == content_type
    body = await answer.text()
    assert len(body) > 500
    if name == "page.js":
        assert f"const MAX_ROWS = {MAX_ROWS};" in body  # the refresh shows what the server does


@pytest.mark.parametrize("path", ["/static/health.py", "/static/..%2F__init__.py", "/static/"])
async def test_nothing_else_is_served_from_static(client: TestClient[Any, Any], path: str) -> None:
    assert (await client.get(path)).status == 404


async def test_debug_dag_is_dot_like_contour_and_svg_or_json_on_request(
    client: TestClient[Any, Any],
) -> None:
    dot = await client.get("/debug/dag")
    assert dot.status == 200 and dot.content_type == "text/plain"
    text = await dot.text()
    assert text.startswith("digraph DAG {\n") and text.endswith("}\n")
    assert '"platform/www" -> "blog/blog" [label="/blog"];' in text
    for path in ("/debug/dag?format=svg", "/debug/dag.svg"):
        svg = await client.get(path)
        assert svg.status == 200 and svg.content_type == "image/svg+xml"
        assert svg.headers["Content-Security-Policy"].startswith("default-src 'none'")
        root = ET.fromstring(await svg.text())
        keys = {g.get("data-key") for g in root.iter("{http://www.w3.org/2000/svg}g")}
        assert {"platform/www", "blog/blog", "team/evil"} <= keys
    graph = await (await client.get("/debug/dag", params={"format": "json"})).json()
    assert {"source": "platform/www", "target": "blog/blog", "label": "/blog", "back": False} in (
        graph["edges"]
    )
    assert (await client.get("/debug/dag", params={"format": "png"})).status == 400
    only = await (await client.get("/debug/dag", params={"namespace": "team"})).text()
    assert '"team/evil"' in only and "platform/www" not in only


async def test_the_json_behind_the_page(client: TestClient[Any, Any]) -> None:
    objects = await (await client.get("/api/objects")).json()
    assert objects["sequence"] == 1
    assert objects["namespaces"] == ["blog", "platform", "team"]
    assert objects["summary"] == {
        "valid": 2,
        "invalid": 1,
        "orphaned": 0,
        "ingresses": 0,
        "warnings": 0,
    }
    assert [(o["namespace"], o["name"], o["status"]) for o in objects["objects"]] == [
        ("blog", "blog", "valid"),
        ("platform", "www", "valid"),
        ("team", "evil", "invalid"),
    ]
    limited = await (await client.get("/api/objects", params={"limit": "1"})).json()
    assert len(limited["objects"]) == 1 and limited["left_out"] == 2
    team = await (await client.get("/api/objects", params={"namespace": "team"})).json()
    assert [o["name"] for o in team["objects"]] == ["evil"]
    graph = await (await client.get("/api/graph", params={"pictures": "1"})).json()
    assert [p["title"] for p in graph["pictures"]] == [
        "platform/www \u2014 www.example.com",
        f"team/evil \u2014 {HOSTILE}",
    ]
    assert all(ET.fromstring(p["svg"]) is not None for p in graph["pictures"])
    assert (await (await client.get("/api/envoys")).json()) == {"envoys": []}


async def test_before_the_first_build_every_route_answers() -> None:
    cache = SnapshotCache(metrics=xds_metrics(CollectorRegistry()))
    publisher = Publisher(TranslateOptions(), cache, pipeline_metrics(CollectorRegistry()))
    app = health_app(asyncio.Event(), publisher, cache)
    async with TestClient(TestServer(app)) as client:
        for path in ("/", "/debug/dag", "/debug/dag.svg", "/api/objects", "/api/graph"):
            assert (await client.get(path)).status == 200, path
        assert (await (await client.get("/debug/dag")).text()) == (
            "digraph DAG {\n"
            '  rankdir="LR";\n'
            '  node [shape="box", style="rounded,filled", fontname="monospace", fontsize="11"];\n'
            '  edge [fontname="monospace", fontsize="10"];\n'
            "}\n"
        )
    assert ClusterView().summary()["valid"] == 0
