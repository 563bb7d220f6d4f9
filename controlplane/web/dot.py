"""The delegation graph as Graphviz DOT: what Contour users fetch from `/debug/dag`.

    curl -s localhost:8000/debug/dag | dot -Tpng > dag.png

The document is `digraph DAG { ... }` as Contour's is. Nodes are `namespace/name` (boxes coloured
by status, the fqdn of a root on a second line, the status description as the tooltip); edges
are labelled with the route matches (or `tcpproxy`). An edge that closes a cycle (a back edge of
the walk from every root, then from what no root reaches) is red, dashed and does not constrain
the ranking, so Graphviz draws it going back. Every string is quoted and escaped (`text.dot_id`).
"""

from __future__ import annotations

from controlplane.web.graph import DelegationGraph, Node, NodeState
from controlplane.web.svg import COLOURS
from controlplane.web.text import dot_id

__all__ = ["render_dot"]


def render_dot(graph: DelegationGraph) -> str:
    """`digraph DAG { ... }` for `graph` (see the module docstring)."""
    starts = [*graph.roots, *graph.nodes]
    walk = graph.walk(starts)
    lines = [
        "digraph DAG {",
        '  rankdir="LR";',
        '  node [shape="box", style="rounded,filled", fontname="monospace", fontsize="11"];',
        '  edge [fontname="monospace", fontsize="10"];',
    ]
    for node in graph.nodes.values():
        lines.append(f"  {dot_id(node.label)} [{_node_attributes(node)}];")
    for edge in walk.edges:
        attributes = [f"label={dot_id(edge.label)}"]
        if (edge.source, edge.target) in walk.back:
            attributes += ['color="#c62828"', 'fontcolor="#c62828"', 'style="dashed"']
            attributes.append('constraint="false"')
        source, target = graph.nodes[edge.source], graph.nodes[edge.target]
        lines.append(
            f"  {dot_id(source.label)} -> {dot_id(target.label)} [{', '.join(attributes)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_attributes(node: Node) -> str:
    fill, stroke = COLOURS[node.state]
    label = node.label + (f"\n{node.fqdn}" if node.root and node.fqdn else "")
    style = "rounded,filled,dashed" if node.state is NodeState.MISSING else "rounded,filled"
    attributes = [
        f"label={dot_id(label)}",
        f'fillcolor="{fill}"',
        f'color="{stroke}"',
        f"style={dot_id(style)}",
        f"tooltip={dot_id(f'{node.state.value}: {node.description}')}",
    ]
    if node.root:
        attributes.append('penwidth="2"')
    return ", ".join(attributes)
