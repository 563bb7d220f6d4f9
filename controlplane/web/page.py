"""The status page (`/` on the health port), rendered server-side as one HTML document.

The page is complete without JavaScript: the objects table, one delegation picture per root (and
one of what no root reaches), and the connected Envoys, filtered by `?namespace=` when given.
`static/page.js` (served from `/static/`, no CDN, no build step) only makes it live: it filters
by namespace without a reload and refreshes the three sections every few seconds from the JSON
endpoints (`/api/objects`, `/api/graph?pictures=1`, `/api/envoys`), building table cells with
`textContent`.

Every user-controlled string is escaped (`text.markup`); the health server also sends a
Content-Security-Policy that allows scripts and styles from the page's own origin only, so even
a missed escape could not run an inline script. Sizes are capped (`MAX_ROWS`, `MAX_PICTURES`,
`svg.picture`'s node limit) so that a tenant with thousands of objects cannot make the page
unusable; the page says what it left out and that the namespace filter narrows it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from controlplane.web.svg import Picture, pictures, render_svg
from controlplane.web.text import markup
from controlplane.web.views import ClusterView, EnvoyRow, ObjectRow

__all__ = ["MAX_PICTURES", "MAX_ROWS", "picture_dicts", "render_page"]

DASH = "\u2014"
MAX_ROWS = 2000
MAX_PICTURES = 60
LEGEND = (
    ("valid", "valid"),
    ("invalid", "invalid"),
    ("orphaned", "orphaned"),
    ("missing", "missing (no such IngressRoute of ours)"),
)


def render_page(
    view: ClusterView | None,
    envoys: Sequence[EnvoyRow],
    *,
    namespace: str | None = None,
    now: float | None = None,
) -> str:
    """The whole page; `view` None means no build has been published yet."""
    view = view if view is not None else ClusterView()
    namespace = namespace or None
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>controlplane status</title>",
        '<link rel="stylesheet" href="/static/page.css">',
        '<script src="/static/page.js" defer></script>',
        "</head>",
        f'<body data-sequence="{view.sequence}">',
        _header(view, namespace),
        "<main>",
        _objects(view, namespace),
        _graphs(view, namespace),
        _envoys(envoys, now if now is not None else time.time()),
        "</main>",
        _footer(),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _header(view: ClusterView, namespace: str | None) -> str:
    summary = view.summary()
    options = ['<option value="">all namespaces</option>']
    for name in view.namespaces:
        selected = " selected" if name == namespace else ""
        options.append(f'<option value="{markup(name)}"{selected}>{markup(name)}</option>')
    if namespace is not None and namespace not in view.namespaces:
        options.append(f'<option value="{markup(namespace)}" selected>{markup(namespace)}</option>')
    build = f"build {view.sequence}" if view.sequence else "no build published yet"
    return (
        "<header>"
        "<h1>controlplane</h1>"
        f'<p class="summary" id="summary">{markup(build)} \u00b7 IngressRoutes: '
        f'<span class="status valid">{summary["valid"]} valid</span> '
        f'<span class="status invalid">{summary["invalid"]} invalid</span> '
        f'<span class="status orphaned">{summary["orphaned"]} orphaned</span> '
        f"\u00b7 Ingresses: {summary['ingresses']}"
        f' (<span class="status warning">{summary["warnings"]} with warnings</span>)</p>'
        '<span id="stale" hidden></span>'
        '<form id="filter" method="get" action="/">'
        '<label for="namespace">Namespace</label> '
        f'<select id="namespace" name="namespace">{"".join(options)}</select> '
        '<button type="submit" id="apply">Filter</button> '
        '<label class="live"><input type="checkbox" id="live" checked> live</label>'
        "</form>"
        "</header>"
    )


def _objects(view: ClusterView, namespace: str | None) -> str:
    rows = [row for row in view.rows if namespace is None or row.namespace == namespace]
    shown_rows = rows[:MAX_ROWS]
    body = "\n".join(_object_row(row) for row in shown_rows)
    note = ""
    if len(rows) > len(shown_rows):
        note = (
            f'<p class="note">Showing {len(shown_rows)} of {len(rows)} objects: filter by '
            "namespace to see the rest (or read /api/objects).</p>"
        )
    empty = f'<p class="empty" id="objects-empty"{_hidden(bool(rows))}>No objects.</p>'
    return (
        '<section id="objects"><h2>IngressRoutes and Ingresses</h2>'
        '<table id="objects-table"><thead><tr><th>Kind</th><th>Namespace</th><th>Name</th>'
        "<th>Host</th><th>Status</th><th>Description</th></tr></thead>"
        f"<tbody>{body}</tbody></table>{empty}{note}</section>"
    )


def _object_row(row: ObjectRow) -> str:
    return (
        f'<tr data-namespace="{markup(row.namespace)}" data-kind="{markup(row.kind)}" '
        f'data-status="{markup(row.status)}">'
        f"<td>{markup(row.kind)}</td><td>{markup(row.namespace)}</td>"
        f"<td>{markup(row.name)}</td><td>{markup(row.host)}</td>"
        f'<td><span class="status {markup(row.status)}">{markup(row.status)}</span></td>'
        f'<td class="description">{markup(row.description)}</td></tr>'
    )


def picture_dicts(drawn: Sequence[Picture]) -> list[dict[str, object]]:
    """The pictures as `/api/graph?pictures=1` serves them (the page's refresh inlines them)."""
    return [
        {
            "title": p.title,
            "namespaces": list(p.namespaces),
            "cycles": p.cycles,
            "left_out": p.left_out,
            "svg": render_svg(p, prefix=f"g{index}"),
        }
        for index, p in enumerate(drawn)
    ]


def _graphs(view: ClusterView, namespace: str | None) -> str:
    drawn, matched = pictures(view.graph, namespace=namespace, most=MAX_PICTURES)
    figures = [_figure(p, index) for index, p in enumerate(drawn)]
    legend = " ".join(
        f'<span class="status {state}">{markup(text)}</span>' for state, text in LEGEND
    )
    note = ""
    if matched > len(drawn):
        note = (
            f'<p class="note">Showing {len(drawn)} of {matched} pictures: filter by namespace '
            "to see the rest.</p>"
        )
    empty = "" if drawn else '<p class="empty">No IngressRoutes.</p>'
    return (
        '<section id="graphs"><h2>Delegation</h2>'
        f'<p class="legend">{legend} <span class="back">\u21ba closes a cycle</span> '
        '\u00b7 <a href="/debug/dag">DOT</a> \u00b7 <a href="/debug/dag.svg">SVG</a></p>'
        f'<div id="pictures">{"".join(figures)}</div>{empty}{note}</section>'
    )


def _figure(drawn: Picture, index: int) -> str:
    extra = []
    if drawn.cycles:
        extra.append(f"{drawn.cycles} cycle{'s' if drawn.cycles > 1 else ''}")
    if drawn.left_out:
        extra.append(f"{drawn.left_out} more not drawn")
    caption = markup(drawn.title) + (f" ({markup(', '.join(extra))})" if extra else "")
    return (
        f'<figure class="graph" data-namespaces="{markup(" ".join(drawn.namespaces))}">'
        f"<figcaption>{caption}</figcaption>"
        f"{render_svg(drawn, prefix=f'g{index}')}</figure>"
    )


def _envoys(envoys: Sequence[EnvoyRow], now: float) -> str:
    rows = "\n".join(_envoy_row(envoy, now) for envoy in envoys)
    empty = f'<p class="empty" id="envoys-empty"{_hidden(bool(envoys))}>No Envoy is connected.</p>'
    return (
        '<section id="envoys"><h2>Connected Envoys</h2>'
        '<table id="envoys-table"><thead><tr><th>Node id</th><th>Cluster</th><th>Streams</th>'
        "<th>ACKed versions</th><th>Last NACK</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{empty}</section>"
    )


def _envoy_row(envoy: EnvoyRow, now: float) -> str:
    versions = " ".join(
        f'<span class="version {"current" if t.current else "behind"}" '
        f'title="{"what is served now" if t.current else "not what is served now"}">'
        f"{markup(t.type)} {markup(t.acked[:12])}</span>"
        for t in envoy.types
    )
    nack = DASH
    if envoy.last_nack is not None:
        ago = max(int(now - envoy.last_nack.time), 0)
        nack = (
            f'<span class="status invalid">{markup(envoy.last_nack.type)}</span> '
            f"{ago}s ago: {markup(envoy.last_nack.message)}"
        )
    return (
        f'<tr data-node="{markup(envoy.node_id)}"><td>{markup(envoy.node_id or "(no node id yet)")}'
        f"</td><td>{markup(envoy.cluster)}</td><td>{envoy.streams}</td>"
        f'<td class="versions">{versions or DASH}</td><td class="description">{nack}</td></tr>'
    )


def _hidden(hide: bool) -> str:
    return " hidden" if hide else ""


def _footer() -> str:
    links = (
        "/debug/dag",
        "/debug/dag.svg",
        "/api/objects",
        "/api/graph",
        "/api/envoys",
        "/debug/status",
        "/debug/nacks",
        "/debug/quarantine",
        "/metrics",
    )
    anchors = " \u00b7 ".join(f'<a href="{link}">{link}</a>' for link in links)
    return f"<footer>{anchors}</footer>"
