"""The health and debug server on `--health-address`: what kubelets, Prometheus and people ask.

- `/healthz`: the process is alive (always 200 while the loop runs);
- `/readyz`: 200 once every source finished its initial load and the first snapshot built from
  it is published (a new Envoy is then never served a half-empty configuration), else 503;
- `/metrics`: Prometheus text format (the process-wide registry);
- `/debug/nacks`: configurations Envoys rejected, with Envoy's message, the names the rejected
  response carried and what came of it (`contained`: what was left out because of it,
  `bisecting`, or, as `unattributed`, why it could not be pinned on anything);
- `/debug/quarantine`: everything left out now because an Envoy rejected it, with its owner;
- `/debug/status`: every object's status as `translate` prints it (`status_row`);
- `/debug/leader`: whether this replica writes that status (`sources.Leadership`), and if not, why.

It reads the publisher's last report, its quarantine and the cache's NACK records; it never
builds or writes.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controlplane.dag import ObjectStatus
from controlplane.publisher import Publisher
from controlplane.sources import Leadership
from controlplane.xds import SnapshotCache

__all__ = ["health_app", "start_health_server", "status_row"]


def status_row(status: ObjectStatus) -> dict[str, str]:
    """One object's status as `translate` and `/debug/status` print it (ARCHITECTURE §6)."""
    return {
        "kind": status.kind,
        "namespace": status.namespace,
        "name": status.name,
        "currentStatus": status.current_status.value,
        "description": status.description,
    }


def health_app(
    ready: asyncio.Event,
    publisher: Publisher,
    cache: SnapshotCache,
    leadership: Leadership | None = None,
) -> web.Application:
    """`/healthz`, `/readyz`, `/metrics` and the debug endpoints (see the module docstring)."""
    leading = leadership if leadership is not None else Leadership()

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ready.is_set():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: initial load or first build pending\n")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

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

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/debug/nacks", nacks)
    app.router.add_get("/debug/quarantine", quarantined)
    app.router.add_get("/debug/status", statuses)
    app.router.add_get("/debug/leader", leader)
    return app


async def start_health_server(
    address: str,
    ready: asyncio.Event,
    publisher: Publisher,
    cache: SnapshotCache,
    leadership: Leadership | None = None,
) -> web.AppRunner:
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(health_app(ready, publisher, cache, leadership), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or "0.0.0.0", int(port))
    await site.start()
    return runner
