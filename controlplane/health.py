"""The health and debug server on `--health-address`: what kubelets, Prometheus and people ask.

- `/healthz`: the process is alive (always 200 while the loop runs);
- `/readyz`: 200 once every source finished its initial load and the first snapshot built from
  it is published (a new Envoy is then never served a half-empty configuration), else 503;
- `/metrics`: Prometheus text format (the process-wide registry);
- `/`: the status page (`controlplane.web`): every IngressRoute and Ingress with its status, the
  delegation graph of each root as a picture, the connected Envoys; `?namespace=` filters;
- `/debug/dag`: the delegation graph as Graphviz DOT (`digraph DAG { ... }`, as Contour serves
  it); `?format=svg` (or `/debug/dag.svg`) as SVG, `?format=json` as JSON; `?namespace=` keeps
  that namespace's objects and their delegation neighbours;
- `/api/objects`, `/api/graph` (`?pictures=1` adds the page's SVG pictures), `/api/envoys`:
  the JSON behind the page (`?namespace=` filters objects and pictures);
- `/debug/nacks`: configurations Envoys rejected, with Envoy's message, the names the rejected
  response carried and what came of it (`contained`: what was left out because of it,
  `bisecting`, or, as `unattributed`, why it could not be pinned on anything);
- `/debug/quarantine`: everything left out now because an Envoy rejected it, with its owner;
- `/debug/status`: every object's status as `translate` prints it (`status_row`);
- `/debug/leader`: whether this replica writes that status (`sources.Leadership`), and if not, why.

It reads the publisher's last report, its quarantine, the cache's NACK records, the xDS
server's open streams and the runtime's `ClusterView` of the last build; it never builds or
writes. Pages that show tenants' text carry a Content-Security-Policy allowing only this origin's
scripts and styles (and every response `nosniff`), on top of the renderers' escaping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controlplane.dag import ObjectStatus
from controlplane.publisher import Publisher
from controlplane.sources import Leadership
from controlplane.web import (
    MAX_PICTURES,
    ClusterView,
    DelegationGraph,
    SessionView,
    asset,
    envoy_rows,
    picture,
    picture_dicts,
    pictures,
    render_dot,
    render_page,
    render_svg,
)
from controlplane.xds import SnapshotCache

__all__ = ["health_app", "start_health_server", "status_row"]

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SVG_POLICY = "default-src 'none'; frame-ancestors 'none'"
FULL_GRAPH_LIMIT = 1000
"""Objects drawn at most in `/debug/dag.svg` (the DOT and JSON forms have them all)."""

ViewSource = Callable[[], ClusterView | None]
Sessions = Callable[[], Iterable[SessionView]]


def status_row(status: ObjectStatus) -> dict[str, str]:
    """One object's status as `translate` and `/debug/status` print it (ARCHITECTURE §6)."""
    return {
        "kind": status.kind,
        "namespace": status.namespace,
        "name": status.name,
        "currentStatus": status.current_status.value,
        "description": status.description,
    }


def _no_view() -> ClusterView | None:
    return None


def _no_sessions() -> Iterable[SessionView]:
    return ()


@web.middleware
async def _nosniff(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def health_app(
    ready: asyncio.Event,
    publisher: Publisher,
    cache: SnapshotCache,
    *,
    view: ViewSource = _no_view,
    sessions: Sessions = _no_sessions,
    leadership: Leadership | None = None,
) -> web.Application:
    """`/healthz`, `/readyz`, `/metrics`, the status page and the debug endpoints (see the
    module docstring). `view`: the runtime's view of the last build; `sessions`: the xDS
    server's open streams; `leadership`: whether this replica writes status."""
    leading = leadership if leadership is not None else Leadership()

    def current() -> ClusterView:
        return view() or ClusterView()

    def envoys() -> list[dict[str, Any]]:
        rows = envoy_rows(sessions(), cache.nacks(), cache.current)
        return [row.as_dict() for row in rows]

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ready.is_set():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: initial load or first build pending\n")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def page(request: web.Request) -> web.Response:
        rows = envoy_rows(sessions(), cache.nacks(), cache.current)
        body = render_page(view(), rows, namespace=_namespace(request))
        return web.Response(
            text=body,
            content_type="text/html",
            headers={
                "Content-Security-Policy": PAGE_POLICY,
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    async def static(request: web.Request) -> web.Response:
        found = asset(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def dag(request: web.Request) -> web.Response:
        graph = _graph(current(), request)
        form = request.query.get("format", "dot")
        if form == "svg":
            return _svg(graph)
        if form == "json":
            return web.json_response(_graph_json(graph))
        if form != "dot":
            raise web.HTTPBadRequest(text="format must be dot, svg or json\n")
        return web.Response(text=render_dot(graph), content_type="text/plain")

    async def dag_svg(request: web.Request) -> web.Response:
        return _svg(_graph(current(), request))

    async def api_objects(request: web.Request) -> web.Response:
        shown = current()
        namespace = _namespace(request)
        rows = [r for r in shown.rows if namespace is None or r.namespace == namespace]
        limit = _limit(request, len(rows))
        return web.json_response(
            {
                "sequence": shown.sequence,
                "summary": shown.summary(),
                "namespaces": list(shown.namespaces),
                "objects": [row.as_dict() for row in rows[:limit]],
                "left_out": max(len(rows) - limit, 0),
            }
        )

    async def api_graph(request: web.Request) -> web.Response:
        shown = current()
        namespace = _namespace(request)
        graph = shown.graph if namespace is None else shown.graph.around(namespace)
        body: dict[str, Any] = {"sequence": shown.sequence, **_graph_json(graph)}
        if request.query.get("pictures") == "1":
            drawn, matched = pictures(shown.graph, namespace=namespace, most=MAX_PICTURES)
            body["pictures"] = picture_dicts(drawn)
            body["pictures_left_out"] = matched - len(drawn)
        return web.json_response(body)

    async def api_envoys(_: web.Request) -> web.Response:
        return web.json_response({"envoys": envoys()})

    async def nacks(_: web.Request) -> web.Response:
        quarantine = publisher.quarantine
        rows = [{**nack.as_dict(), **quarantine.outcome(nack)} for nack in cache.nacks()]
        return web.json_response(rows)

    async def quarantined(_: web.Request) -> web.Response:
        return web.json_response([entry.as_dict() for entry in publisher.quarantine.entries()])

    async def statuses(_: web.Request) -> web.Response:
        report = publisher.last
        rows = () if report is None else report.statuses
        return web.json_response([status_row(status) for status in rows])

    async def leader(_: web.Request) -> web.Response:
        return web.json_response(leading.as_dict())

    app = web.Application(middlewares=[_nosniff])
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/debug/dag", dag)
    app.router.add_get("/debug/dag.svg", dag_svg)
    app.router.add_get("/api/objects", api_objects)
    app.router.add_get("/api/graph", api_graph)
    app.router.add_get("/api/envoys", api_envoys)
    app.router.add_get("/debug/nacks", nacks)
    app.router.add_get("/debug/quarantine", quarantined)
    app.router.add_get("/debug/status", statuses)
    app.router.add_get("/debug/leader", leader)
    return app


def _namespace(request: web.Request) -> str | None:
    return request.query.get("namespace", "")[:253] or None


def _limit(request: web.Request, default: int) -> int:
    try:
        return max(int(request.query.get("limit", default)), 0)
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a number\n") from None


def _graph(view: ClusterView, request: web.Request) -> DelegationGraph:
    namespace = _namespace(request)
    return view.graph if namespace is None else view.graph.around(namespace)


def _svg(graph: DelegationGraph) -> web.Response:
    drawn = picture(graph, [*graph.roots, *graph.nodes], "delegation graph", limit=FULL_GRAPH_LIMIT)
    return web.Response(
        text=render_svg(drawn),
        content_type="image/svg+xml",
        headers={"Content-Security-Policy": SVG_POLICY},
    )


def _graph_json(graph: DelegationGraph) -> dict[str, Any]:
    walk = graph.walk([*graph.roots, *graph.nodes])
    return {
        "nodes": [
            {
                "namespace": node.namespace,
                "name": node.name,
                "status": node.state.value,
                "description": node.description,
                "fqdn": node.fqdn,
                "root": node.root,
            }
            for node in graph.nodes.values()
        ],
        "edges": [
            {
                "source": "/".join(edge.source),
                "target": "/".join(edge.target),
                "label": edge.label,
                "back": (edge.source, edge.target) in walk.back,
            }
            for edge in walk.edges
        ],
    }


async def start_health_server(
    address: str,
    ready: asyncio.Event,
    publisher: Publisher,
    cache: SnapshotCache,
    *,
    view: ViewSource = _no_view,
    sessions: Sessions = _no_sessions,
    leadership: Leadership | None = None,
) -> web.AppRunner:
    host, _, port = address.rpartition(":")
    app = health_app(ready, publisher, cache, view=view, sessions=sessions, leadership=leadership)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or "0.0.0.0", int(port))
    await site.start()
    return runner
