"""The renderers of the status page: HTML, SVG and DOT, from what a build reports.

A hostile tenant puts markup wherever its text reaches a page (an fqdn, a route match, a
delegate's name, an Ingress host; the descriptions quote them). The tests parse what the
renderers produce (HTML with the standard parser, SVG as XML) and assert that no element or
attribute came from a tenant: the only script is the page's own, no event handler exists, and
the hostile text is there as text. DOT strings are checked against the grammar of a quoted ID.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from ingressroute_support import delegate, ingressroute, route, service, to
from web_support import HOSTILE, JSON, view_of

from controlplane.typeurls import CLUSTER_TYPE
from controlplane.web import (
    ClusterView,
    envoy_rows,
    picture,
    pictures,
    render_dot,
    render_page,
    render_svg,
)
from controlplane.web import page as page_module
from controlplane.xds import NackRecord, Resource, Snapshot

SVG = "{http://www.w3.org/2000/svg}"
NASTY = HOSTILE + ' "quoted" \\back\\slash\nnew line \x07bell'


def hostile_ingress(host: str) -> JSON:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "ing", "namespace": "evil"},
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ]
        },
    }


def hostile_manifests() -> list[JSON]:
    return [
        ingressroute("fqdn", "evil", fqdn=NASTY, routes=[route("/", to("web"))]),
        ingressroute(
            "root",
            "evil",
            fqdn="evil.example.com",
            routes=[
                route("/", to("web")),
                route("/x" + HOSTILE, delegate=delegate(NASTY)),
                route("/ok", delegate=delegate(NASTY, "other")),
            ],
        ),
        ingressroute("fine", "evil", fqdn="fine.example.com", routes=[route("/", to("web"))]),
        service("web", "evil"),
        hostile_ingress(HOSTILE),
    ]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def test_the_page_holds_hostile_text_as_text_only() -> None:
    view = view_of(hostile_manifests())
    page = render_page(view, [])
    tags = tags_of(page)
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert scripts == [{"src": "/static/page.js", "defer": None}]
    assert not [tag for tag, _ in tags if tag in ("img", "iframe", "object", "embed", "style")]
    handlers = [name for _, attrs in tags for name in attrs if name.startswith("on")]
    assert handlers == []
    assert "&lt;script&gt;document.body.dataset.pwned" in page
    assert "\x07" not in page  # not well-formed in an SVG: replaced
    rows = [attrs for tag, attrs in tags if tag == "tr" and "data-kind" in attrs]
    assert {(r["data-kind"], r["data-status"]) for r in rows} >= {
        ("IngressRoute", "invalid"),
        ("IngressRoute", "valid"),
        ("Ingress", "warning"),
    }


@pytest.mark.parametrize("namespace", [None, "evil", "other"])
def test_every_svg_is_well_formed_and_holds_no_markup_from_tenants(namespace: str | None) -> None:
    graph = view_of(hostile_manifests()).graph
    drawn, _ = pictures(graph, namespace=namespace)
    drawn.append(picture(graph, [*graph.roots, *graph.nodes], "all"))
    for index, one in enumerate(drawn):
        svg = ET.fromstring(render_svg(one, prefix=f"p{index}"))
        names = {element.tag.removeprefix(SVG) for element in svg.iter()}
        assert names <= {"svg", "title", "defs", "marker", "path", "g", "rect", "text"}
        for element in svg.iter():
            assert not [name for name in element.attrib if name.lower().startswith("on")]
    whole = ET.fromstring(render_svg(drawn[-1]))
    texts = "".join(whole.itertext())
    assert HOSTILE in texts  # shown, as text, in the tooltip of the missing delegate
    keys = [g.get("data-key") for g in whole.iter(f"{SVG}g") if g.get("data-key")]
    # an attribute value holds a newline as a space (XML normalisation)
    assert "evil/" + NASTY.replace("\x07", "\ufffd").replace("\n", " ") in keys


QUOTED = r'"(?:[^"\\\n]|\\.)*"'
DOT_LINE = re.compile(
    rf"^  {QUOTED}( -> {QUOTED})? \[(\w+=({QUOTED}|\w+))(, \w+=({QUOTED}|\w+))*\];$"
)


def test_dot_is_contour_shaped_and_every_string_is_one_quoted_id() -> None:
    dot = render_dot(view_of(hostile_manifests()).graph)
    lines = dot.splitlines()
    assert lines[0] == "digraph DAG {" and lines[-1] == "}"
    body = [line for line in lines[1:-1] if not line.startswith(("  rankdir", "  node", "  edge"))]
    assert body
    for line in body:
        assert DOT_LINE.match(line), line
    assert '\\"quoted\\" \\\\back\\\\slash\\nnew line' in dot


def test_dot_marks_the_edge_that_closes_a_cycle() -> None:
    view = view_of(
        [
            ingressroute("a", fqdn="a.example.com", routes=[route("/", delegate=delegate("b"))]),
            ingressroute("b", routes=[route("/", delegate=delegate("a2"))]),
            ingressroute("a2", routes=[route("/", delegate=delegate("b"))]),
        ]
    )
    dot = render_dot(view.graph)
    assert '"default/a" -> "default/b" [label="/"];' in dot
    assert (
        '"default/a2" -> "default/b" [label="/", color="#c62828", fontcolor="#c62828", '
        'style="dashed", constraint="false"];'
    ) in dot
    svg = ET.fromstring(render_svg(picture(view.graph, view.graph.roots, "a")))
    back = [g for g in svg.iter(f"{SVG}g") if "back" in (g.get("class") or "").split()]
    assert [(g.get("data-source"), g.get("data-target")) for g in back] == [
        ("default/a2", "default/b")
    ]


def platform() -> list[JSON]:
    return [
        ingressroute(
            "www",
            "platform",
            fqdn="www.example.com",
            routes=[route("/", to("web")), route("/blog", delegate=delegate("blog", "blog"))],
        ),
        service("web", "platform"),
        ingressroute("blog", "blog", routes=[route("/blog", to("web"))]),
        service("web", "blog"),
        ingressroute("other", "team", fqdn="other.example.com", routes=[route("/", to("web"))]),
        service("web", "team"),
        ingressroute("lost", "team", routes=[route("/", to("web"))]),
    ]


def rows_of(page: str) -> list[tuple[str | None, ...]]:
    return [
        (attrs["data-namespace"], attrs["data-kind"], attrs["data-status"])
        for tag, attrs in tags_of(page)
        if tag == "tr" and "data-kind" in attrs
    ]


@pytest.mark.parametrize(
    ("namespace", "rows", "figures"),
    [
        (
            None,
            [
                ("blog", "IngressRoute", "valid"),
                ("platform", "IngressRoute", "valid"),
                ("team", "IngressRoute", "orphaned"),
                ("team", "IngressRoute", "valid"),
            ],
            ["blog platform", "team", "team"],
        ),
        ("blog", [("blog", "IngressRoute", "valid")], ["blog platform"]),
        (
            "team",
            [("team", "IngressRoute", "orphaned"), ("team", "IngressRoute", "valid")],
            ["team", "team"],
        ),
        ("nowhere", [], []),
    ],
)
def test_the_namespace_filter_keeps_rows_and_pictures_of_that_namespace(
    namespace: str | None, rows: list[tuple[str, ...]], figures: list[str]
) -> None:
    page = render_page(view_of(platform()), [], namespace=namespace)
    assert rows_of(page) == rows
    found = [a["data-namespaces"] for t, a in tags_of(page) if t == "figure"]
    assert found == figures
    selected = [a.get("value") for t, a in tags_of(page) if t == "option" and "selected" in a]
    assert selected == ([namespace] if namespace else [])


def test_the_page_says_what_it_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_module, "MAX_ROWS", 2)
    monkeypatch.setattr(page_module, "MAX_PICTURES", 1)
    page = render_page(view_of(platform()), [])
    assert len(rows_of(page)) == 2
    assert "Showing 2 of 4 objects" in page
    assert "Showing 1 of 3 pictures" in page


def test_before_the_first_build_the_page_says_so() -> None:
    page = render_page(None, [])
    assert "no build published yet" in page
    assert rows_of(page) == []


class FakeState:
    def __init__(self, node_id: str, acked: dict[str, str]) -> None:
        self.node_id = node_id
        self.node: Any = type("Node", (), {"cluster": "edge"})() if node_id else None
        self._acked = acked

    def acked_versions(self) -> dict[str, str]:
        return self._acked


class FakeSession:
    def __init__(self, node_id: str, acked: dict[str, str]) -> None:
        self.state = FakeState(node_id, acked)


def test_envoys_are_listed_by_node_with_acked_versions_and_their_last_nack() -> None:
    cluster = Resource.encode(CLUSTER_TYPE, "c", cluster_pb2.Cluster(name="c"))
    snapshot = Snapshot.build({CLUSTER_TYPE: [cluster]})
    current = snapshot.version(CLUSTER_TYPE)
    eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    sessions = [
        FakeSession("envoy-b", {CLUSTER_TYPE: current}),
        FakeSession("envoy-a", {CLUSTER_TYPE: "old", eds: "v1"}),
        FakeSession("envoy-a", {}),
        FakeSession("", {}),
    ]
    nacks = [
        NackRecord("envoy-a", CLUSTER_TYPE, "v0", "first", 3, 10.0),
        NackRecord("gone", CLUSTER_TYPE, "v0", "not connected", 3, 11.0),
        NackRecord("envoy-a", CLUSTER_TYPE, "v2", HOSTILE, 3, 12.0),
    ]
    rows = envoy_rows(sessions, nacks, snapshot)
    assert [(r.node_id, r.streams) for r in rows] == [("", 1), ("envoy-a", 2), ("envoy-b", 1)]
    a, b = rows[1], rows[2]
    assert [(t.type, t.acked, t.current) for t in a.types] == [
        ("cds", "old", False),
        ("eds", "v1", False),
    ]
    assert [(t.type, t.current) for t in b.types] == [("cds", True)]
    assert a.last_nack is not None and a.last_nack.message == HOSTILE
    assert b.last_nack is None and a.cluster == "edge"
    page = render_page(ClusterView(), rows, now=20.0)
    assert [t for t, _ in tags_of(page) if t in ("img", "script")] == ["script"]
    assert "8s ago: &lt;script&gt;" in page
