"""The delegation graph of the status page and `/debug/dag`: one table row per shape of graph.

Each row: manifests in; out, the node states, the edges (`source -> target [label]`, with `!`
for an edge that closes a cycle), the layer of each node in its root's picture, and which
objects each picture holds. The graph is built from what a real build reports (statuses), so a
row also pins that the colours the page shows are the DAG's verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from ingressroute_support import delegate, ingressroute, route, service, to
from web_support import JSON, view_of

from controlplane.web import DelegationGraph, pictures


@dataclass
class Row:
    name: str
    manifests: list[JSON]
    states: dict[str, str]
    edges: list[str]
    layers: dict[str, int] = field(default_factory=dict)
    """Layer of each node in the picture of the first root (or of what no root reaches)."""
    pictures: list[list[str]] = field(default_factory=list)


def edges_of(graph: DelegationGraph) -> list[str]:
    walk = graph.walk([*graph.roots, *graph.nodes])
    return [
        f"{'/'.join(e.source)} -> {'/'.join(e.target)} [{e.label}]"
        + ("!" if (e.source, e.target) in walk.back else "")
        for e in walk.edges
    ]


WEB = service("web")
ROWS = [
    Row(
        "a root delegating to two teams",
        [
            ingressroute(
                "www",
                fqdn="www.example.com",
                routes=[
                    route("/", to("web")),
                    route("/blog", delegate=delegate("blog", "blog")),
                    route("/shop", delegate=delegate("shop", "shop")),
                ],
            ),
            WEB,
            ingressroute("blog", "blog", routes=[route("/blog", to("web"))]),
            service("web", "blog"),
            ingressroute("shop", "shop", routes=[route("/shop", to("web"))]),
            service("web", "shop"),
        ],
        {"blog/blog": "valid", "default/www": "valid", "shop/shop": "valid"},
        ["default/www -> blog/blog [/blog]", "default/www -> shop/shop [/shop]"],
        {"default/www": 0, "blog/blog": 1, "shop/shop": 1},
        [["default/www", "blog/blog", "shop/shop"]],
    ),
    Row(
        "the delegate's namespace defaults to the delegating object's; tcpproxy edges",
        [
            ingressroute(
                "root",
                fqdn="tcp.example.com",
                tls={"passthrough": True},
                tcpproxy={"delegate": {"name": "backend"}},
            ),
            ingressroute("backend", tcpproxy={"services": [to("web", 443)]}),
            service("web", ports=(443,)),
        ],
        {"default/backend": "valid", "default/root": "valid"},
        ["default/root -> default/backend [tcpproxy]"],
        {"default/root": 0, "default/backend": 1},
    ),
    Row(
        "a cycle among delegates is a back edge; the delegates stay valid",
        [
            ingressroute("a", fqdn="a.example.com", routes=[route("/", delegate=delegate("b"))]),
            ingressroute("b", routes=[route("/", delegate=delegate("c"))]),
            ingressroute("c", routes=[route("/", delegate=delegate("b"))]),
        ],
        {"default/a": "valid", "default/b": "valid", "default/c": "valid"},
        [
            "default/a -> default/b [/]",
            "default/b -> default/c [/]",
            "default/c -> default/b [/]!",
        ],
        {"default/a": 0, "default/b": 1, "default/c": 2},
    ),
    Row(
        "a missing delegate is a node of its own; an orphan gets the last picture",
        [
            ingressroute(
                "www",
                fqdn="www.example.com",
                routes=[route("/", to("web")), route("/gone", delegate=delegate("ghost", "x"))],
            ),
            WEB,
            ingressroute("lost", routes=[route("/", to("web"))]),
        ],
        {"default/lost": "orphaned", "default/www": "valid", "x/ghost": "missing"},
        ["default/www -> x/ghost [/gone]"],
        {"default/www": 0, "x/ghost": 1},
        [["default/www", "x/ghost"], ["default/lost"]],
    ),
    Row(
        "a diamond: the shared delegate sits after the longest path to it",
        [
            ingressroute(
                "r",
                fqdn="r.example.com",
                routes=[
                    route("/a", delegate=delegate("a")),
                    route("/a/c", delegate=delegate("c")),
                ],
            ),
            ingressroute("a", routes=[route("/a/c", delegate=delegate("c"))]),
            ingressroute("c", routes=[route("/a/c", to("web"))]),
            WEB,
        ],
        {"default/a": "valid", "default/c": "valid", "default/r": "valid"},
        [
            "default/r -> default/a [/a]",
            "default/r -> default/c [/a/c]",
            "default/a -> default/c [/a/c]",
        ],
        {"default/r": 0, "default/a": 1, "default/c": 2},
    ),
    Row(
        "two routes to one delegate make one edge; an orphan delegating to itself loops",
        [
            ingressroute(
                "r",
                fqdn="r.example.com",
                routes=[
                    route("/", delegate=delegate("d")),
                    route("/y", delegate=delegate("d")),
                ],
            ),
            ingressroute("d", routes=[route("/x", to("web")), route("/y", to("web"))]),
            WEB,
            ingressroute("self", routes=[route("/", delegate=delegate("self"))]),
        ],
        {"default/d": "valid", "default/r": "valid", "default/self": "orphaned"},
        ["default/r -> default/d [/, /y]", "default/self -> default/self [/]!"],
        {"default/r": 0, "default/d": 1},
        [["default/r", "default/d"], ["default/self"]],
    ),
    Row(
        "an invalid delegate is drawn red with what it delegates to beyond it",
        [
            ingressroute("r", fqdn="r.example.com", routes=[route("/", delegate=delegate("bad"))]),
            ingressroute(
                "bad",
                routes=[route("/", to("missing")), route("/deep", delegate=delegate("deep"))],
            ),
            ingressroute("deep", routes=[route("/deep", to("web"))]),
            WEB,
        ],
        {"default/bad": "invalid", "default/deep": "orphaned", "default/r": "valid"},
        ["default/r -> default/bad [/]", "default/bad -> default/deep [/deep]"],
        {"default/r": 0, "default/bad": 1, "default/deep": 2},
        [["default/r", "default/bad", "default/deep"]],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_delegation_graph(row: Row) -> None:
    graph = view_of(row.manifests).graph
    assert {"/".join(key): node.state.value for key, node in graph.nodes.items()} == row.states
    assert edges_of(graph) == row.edges
    drawn, _ = pictures(graph)
    first = drawn[0]
    layers = {box.node.label: int(box.x) for box in first.boxes}
    by_column = {x: index for index, x in enumerate(sorted(set(layers.values())))}
    assert {label: by_column[x] for label, x in layers.items()} == row.layers
    if row.pictures:
        assert [[box.node.label for box in p.boxes] for p in drawn] == row.pictures


def test_a_chain_of_thousands_is_walked_without_recursion_and_drawn_within_the_limit() -> None:
    chain = [
        ingressroute("n0", fqdn="deep.example.com", routes=[route("/", delegate=delegate("n1"))])
    ]
    chain += [
        ingressroute(f"n{i}", routes=[route("/", delegate=delegate(f"n{i + 1}"))])
        for i in range(1, 3000)
    ]
    graph = view_of(chain).graph
    walk = graph.walk(graph.roots)
    assert len(walk.order) == 3001  # n3000 is missing: a node too
    assert walk.layers[("default", "n3000")] == 3000
    drawn, _ = pictures(graph, limit=50)
    assert len(drawn[0].boxes) == 50
    assert drawn[0].left_out == 2951


def test_vhost_of_each_object_is_the_first_root_reaching_it_through_valid_objects() -> None:
    view = view_of(
        [
            ingressroute("a", fqdn="a.example.com", routes=[route("/", delegate=delegate("d"))]),
            ingressroute("b", fqdn="b.example.com", routes=[route("/", delegate=delegate("d"))]),
            ingressroute("d", routes=[route("/", to("web"))]),
            WEB,
            ingressroute("bad", fqdn="<b>bad</b>", routes=[route("/", to("web"))]),
        ]
    )
    graph = view.graph
    roots = graph.serving_roots()
    assert graph.vhost(("default", "d"), roots) == "a.example.com"
    assert graph.vhost(("default", "b"), roots) == "b.example.com"
    assert graph.vhost(("default", "bad"), roots) == ""  # never user text as a label


def test_around_a_namespace_keeps_its_objects_and_their_neighbours() -> None:
    graph = view_of(ROWS[0].manifests).graph
    around = graph.around("blog")
    assert sorted("/".join(k) for k in around.nodes) == ["blog/blog", "default/www"]
    assert [("/".join(e.source), "/".join(e.target)) for e in around.edges] == [
        ("default/www", "blog/blog")
    ]
