"""Delegation pictures as SVG: a layered layout, drawn left to right, rendered server-side.

`picture(graph, starts)` lays out what a walk from `starts` reaches (one root, or every root
and then the objects no root reaches): layer `n` is column `n`; in a column, objects keep the
order in which the walk met them; columns are centred on each other. Edges go from the right
side of a box to the left side of a later column's box, labelled with the route matches. A back
edge (it closes a cycle) is drawn below the boxes, dashed red, from its source back to its
target, so a cycle is visible at a glance; a self-delegation is a loop on the box.

Colours carry the status and the box says it in words too (colour is not the only cue): valid
green, invalid red, orphaned grey, missing white with a dashed border. Every box has a `<title>`
(a tooltip) with the full name and the status description.

Pure and deterministic: geometry is computed from text lengths (a monospace font of
`CHAR_WIDTH` pixels per character), nothing is measured. Every user-controlled string is
escaped (`text.markup`) and long ones clipped. Styles are presentation attributes, not a
`<style>` element, so the same SVG renders inside the status page (whose Content-Security-Policy
allows no inline styles) and on its own. Marker ids carry a per-picture prefix, so several
pictures can share one page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.model import NamespacedName
from controlplane.web.graph import DelegationGraph, Edge, Node, NodeState
from controlplane.web.text import clip, markup

__all__ = ["COLOURS", "Picture", "picture", "pictures", "render_svg"]

CHAR_WIDTH = 7.2
"""Pixels per character of 12px monospace text (the layout's only font metric)."""
BOX_HEIGHT = 38
PADDING = 10
COLUMN_GAP = 110
ROW_GAP = 16
MARGIN = 12
BACK_EDGE_DROP = 34
LABEL_CHARS = 44
EDGE_LABEL_CHARS = 14

COLOURS: dict[NodeState, tuple[str, str]] = {
    NodeState.VALID: ("#dff3df", "#2e7d32"),
    NodeState.INVALID: ("#fde2e2", "#c62828"),
    NodeState.ORPHANED: ("#eeeeee", "#6d6d6d"),
    NodeState.MISSING: ("#ffffff", "#9e9e9e"),
}
"""Fill and stroke of a box, by status."""
EDGE_COLOUR = "#555555"
BACK_COLOUR = "#c62828"


@dataclass(frozen=True, slots=True)
class Box:
    node: Node
    x: float
    y: float
    width: float

    @property
    def lines(self) -> tuple[str, str]:
        second = self.node.fqdn if self.node.root and self.node.fqdn else self.node.state.value
        if self.node.root and self.node.fqdn:
            second = f"{second} \u00b7 {self.node.state.value}"
        return clip(self.node.label, LABEL_CHARS), clip(second, LABEL_CHARS)


@dataclass(frozen=True, slots=True)
class Arrow:
    edge: Edge
    back: bool


@dataclass(frozen=True)
class Picture:
    """One laid-out picture: boxes with positions, arrows, the canvas size."""

    title: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    width: float
    height: float
    left_out: int = 0
    """Objects the walk reached beyond the size limit, not drawn."""

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(sorted({box.node.namespace for box in self.boxes}))

    @property
    def cycles(self) -> int:
        return sum(1 for arrow in self.arrows if arrow.back)


def _width(node: Node) -> float:
    box = Box(node, 0, 0, 0)
    return max(len(line) for line in box.lines) * CHAR_WIDTH + 2 * PADDING


def picture(
    graph: DelegationGraph,
    starts: Sequence[NamespacedName],
    title: str,
    *,
    limit: int = 150,
) -> Picture:
    """Lay out what a walk from `starts` reaches, at most `limit` objects (see the docstring)."""
    walk = graph.walk(starts, limit=limit)
    left_out = 0
    if len(walk.order) >= limit:
        left_out = len(graph.walk(starts).order) - len(walk.order)
    columns: dict[int, list[NamespacedName]] = {}
    for key in walk.order:
        columns.setdefault(walk.layers[key], []).append(key)
    widths = {key: _width(graph.nodes[key]) for key in walk.order}
    tallest = max((len(keys) for keys in columns.values()), default=0)
    column_height = tallest * (BOX_HEIGHT + ROW_GAP) - ROW_GAP
    boxes: dict[NamespacedName, Box] = {}
    x = float(MARGIN)
    for layer in sorted(columns):
        keys = columns[layer]
        height = len(keys) * (BOX_HEIGHT + ROW_GAP) - ROW_GAP
        y = MARGIN + (column_height - height) / 2
        column_width = max(widths[key] for key in keys)
        for key in keys:
            boxes[key] = Box(graph.nodes[key], x, y, widths[key])
            y += BOX_HEIGHT + ROW_GAP
        x += column_width + COLUMN_GAP
    arrows = tuple(Arrow(edge, (edge.source, edge.target) in walk.back) for edge in walk.edges)
    width = x - COLUMN_GAP + MARGIN if boxes else 2 * MARGIN
    height = column_height + 2 * MARGIN if boxes else 2 * MARGIN
    if any(arrow.back for arrow in arrows):
        height += BACK_EDGE_DROP + 8
    ordered = tuple(boxes[key] for key in walk.order)
    return Picture(title, ordered, arrows, round(width, 1), round(height, 1), left_out)


def pictures(
    graph: DelegationGraph,
    *,
    namespace: str | None = None,
    limit: int = 150,
    most: int = 100,
) -> tuple[list[Picture], int]:
    """One picture per root (by name), then one of the objects no root reaches, if any; only
    those with an object in `namespace` (when given), at most `most`. Also returns how many
    pictures matched in all."""
    found: list[Picture] = []
    matched = 0
    reached = set(graph.walk(graph.roots).order)
    groups: list[tuple[list[NamespacedName], str]] = []
    for root in graph.roots:
        node = graph.nodes[root]
        groups.append(([root], node.label + (f" \u2014 {node.fqdn}" if node.fqdn else "")))
    rest = [key for key in graph.nodes if key not in reached]
    if rest:
        groups.append((rest, "not reached from any root"))
    for starts, title in groups:
        if namespace is not None:
            members = graph.walk(starts).order
            if all(key[0] != namespace for key in members):
                continue
        matched += 1
        if len(found) < most:
            found.append(picture(graph, starts, title, limit=limit))
    return found, matched


def render_svg(drawing: Picture, prefix: str = "g") -> str:
    """The picture as a standalone SVG document fragment (an `<svg>` element)."""
    boxes = {box.node.key: box for box in drawing.boxes}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="delegation" '
        f'width="{_n(drawing.width)}" height="{_n(drawing.height)}" '
        f'viewBox="0 0 {_n(drawing.width)} {_n(drawing.height)}" role="img" '
        f'aria-label="{markup(drawing.title)}" font-family="monospace" font-size="12">',
        f"<title>{markup(drawing.title)}</title>",
        "<defs>",
        _marker(f"{prefix}-arrow", EDGE_COLOUR),
        _marker(f"{prefix}-back", BACK_COLOUR),
        "</defs>",
    ]
    for arrow in drawing.arrows:
        parts.append(_arrow(arrow, boxes, prefix))
    for box in drawing.boxes:
        parts.append(_box(box))
    parts.append("</svg>")
    return "\n".join(parts)


def _marker(marker_id: str, colour: str) -> str:
    return (
        f'<marker id="{markup(marker_id)}" viewBox="0 0 10 10" refX="10" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
    )


def _box(box: Box) -> str:
    node = box.node
    fill, stroke = COLOURS[node.state]
    dashed = ' stroke-dasharray="4 3"' if node.state is NodeState.MISSING else ""
    first, second = box.lines
    tooltip = f"{node.label}: {node.state.value}"
    if node.fqdn:
        tooltip += f" (root of {node.fqdn})"
    if node.description:
        tooltip += f"\n{node.description}"
    weight = ' font-weight="bold"' if node.root else ""
    return (
        f'<g class="node {node.state.value}" data-key="{markup(node.label)}" '
        f'data-status="{node.state.value}">'
        f"<title>{markup(tooltip)}</title>"
        f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.width)}" '
        f'height="{BOX_HEIGHT}" rx="6" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{2 if node.root else 1.2}"{dashed}/>'
        f'<text x="{_n(box.x + PADDING)}" y="{_n(box.y + 15)}" fill="#1a1a1a"{weight}>'
        f"{markup(first)}</text>"
        f'<text x="{_n(box.x + PADDING)}" y="{_n(box.y + 31)}" fill="{stroke}" '
        f'font-size="11">{markup(second)}</text>'
        "</g>"
    )


def _arrow(arrow: Arrow, boxes: dict[NamespacedName, Box], prefix: str) -> str:
    edge = arrow.edge
    source, target = boxes[edge.source], boxes[edge.target]
    label = clip(edge.label, EDGE_LABEL_CHARS)
    title = f"{source.node.label} \u2192 {target.node.label}: {edge.label}"
    if arrow.back:
        title += " (closes a cycle)"
        path, lx, ly = _back_path(source, target)
        colour, marker, extra = BACK_COLOUR, f"{prefix}-back", ' stroke-dasharray="6 4"'
    else:
        sx, sy = source.x + source.width, source.y + BOX_HEIGHT / 2
        tx, ty = target.x, target.y + BOX_HEIGHT / 2
        bend = (tx - sx) / 2
        path = (
            f"M{_n(sx)},{_n(sy)} C{_n(sx + bend)},{_n(sy)} "
            f"{_n(tx - bend)},{_n(ty)} {_n(tx)},{_n(ty)}"
        )
        lx, ly = (sx + tx) / 2, (sy + ty) / 2 - 4
        colour, marker, extra = EDGE_COLOUR, f"{prefix}-arrow", ""
    kind = "edge back" if arrow.back else "edge"
    return (
        f'<g class="{kind}" data-source="{markup(source.node.label)}" '
        f'data-target="{markup(target.node.label)}">'
        f"<title>{markup(title)}</title>"
        f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.4"{extra} '
        f'marker-end="url(#{markup(marker)})"/>'
        f'<text x="{_n(lx)}" y="{_n(ly)}" text-anchor="middle" font-size="11" '
        f'fill="{colour}" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
        f"{markup(label)}</text>"
        "</g>"
    )


def _back_path(source: Box, target: Box) -> tuple[str, float, float]:
    """A curve below both boxes, from the source's bottom back to the target's bottom."""
    sx, sy = source.x + source.width / 2, source.y + BOX_HEIGHT
    tx, ty = target.x + target.width / 2, target.y + BOX_HEIGHT
    if source is target:  # delegates to itself: a loop on the right of the box
        rx, my = source.x + source.width, source.y + BOX_HEIGHT / 2
        path = (
            f"M{_n(rx)},{_n(my - 8)} C{_n(rx + 40)},{_n(my - 30)} "
            f"{_n(rx + 40)},{_n(my + 30)} {_n(rx)},{_n(my + 8)}"
        )
        return path, rx + 30, my + 4
    low = max(sy, ty) + BACK_EDGE_DROP
    path = f"M{_n(sx)},{_n(sy)} C{_n(sx)},{_n(low)} {_n(tx)},{_n(low)} {_n(tx)},{_n(ty)}"
    return path, (sx + tx) / 2, low - 4


def _n(value: float) -> str:
    """A coordinate: at most one decimal, no trailing `.0`."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
