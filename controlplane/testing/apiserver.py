"""A Kubernetes API test server: enough of the apiserver that kubectl and kubernetes-asyncio
cannot tell it from a cluster for the resources controlplane uses.

No real kube-apiserver can run where we test, and the mocks we tried lack resourceVersion
semantics, 410 Gone and status isolation (ARCHITECTURE.md §8). This server keeps those three
honest and is otherwise small:

- `apiserver_registry` knows the served types (built-ins and CRDs) and the discovery documents;
- `apiserver_store` keeps the objects, the global revision, the event history and the watchers;
- `apiserver_patch` implements merge, strategic merge and JSON patches;
- `apiserver_table` renders the `Table` that `kubectl get` prints;
- `apiserver_http` maps the resource API's HTTP onto them and streams watches (it also says
  what kubectl needs, as measured with kubectl 1.32);
- `apiserver_protobuf` reads the protobuf bodies of `kubectl create namespace|secret|ingress|
  service|...` and `kubectl auth`, and `apiserver_reviews` answers the latter (always yes);
- `apiserver_openapi` serves OpenAPI v3 and v2 (`apiserver_openapi_proto`: v2 in the protobuf
  kubectl reads) from the CRDs' schemas and `apiserver_schemas`, so `kubectl explain` works;
- this module owns the listening socket, the test hooks, the kubeconfig and the entry points.

Public API: `TestApiServer` (`start`, `stop`, `url`, `port`, `write_kubeconfig`, the hooks, and
`get_object`/`put_object`/`delete_object` for in-process set-up), `run_testapi(listen,
kubeconfig)` for the CLI, and `python -m controlplane.testing.apiserver --listen HOST:PORT
--kubeconfig PATH`, which writes the kubeconfig (atomically) once the server listens, so a test
in another process waits for that file.

Test hooks, as methods and as HTTP endpoints under `/_test/` for tests in other processes:
`drop_watches` (POST /_test/drop-watches[?graceful=true]), `compact` (POST /_test/compact),
`refuse_connections` (POST /_test/refuse?seconds=N: the listening socket is closed, every open
connection is aborted, and the server listens again on the same port after N seconds) and
`request_count` (GET /_test/requests, DELETE /_test/requests to reset). Hook requests are not
counted. In-process tests also have `open_watches`, to wait until watches are registered (a
watch request is counted before its watch is), and `listening()`, to wait for the end of a
refusal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
import yaml
from aiohttp import web

from controlplane.testing.apiserver_http import (
    KubeApi,
    RequestRecord,
    error_response,
    json_response,
)
from controlplane.testing.apiserver_registry import Registry, ResourceType, builtin_types
from controlplane.testing.apiserver_store import ApiError, Clock, Store

__all__ = ["RequestRecord", "TestApiServer", "main", "run_testapi"]

JSON = dict[str, Any]
log = structlog.get_logger(__name__)


_TRUE = ("1", "t", "T", "true", "TRUE", "True")


def _now() -> datetime:
    return datetime.now(UTC)


class TestApiServer:
    """The server: `await start()`, use `url` or `write_kubeconfig()`, `await stop()`."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        *,
        bookmark_interval: float = 60.0,
        history_limit: int = 10_000,
        clock: Clock = _now,
        namespace_finalize_delay: float = 0.05,
    ) -> None:
        self.namespace_finalize_delay = namespace_finalize_delay
        self.clock = clock
        self.registry = Registry(builtin_types())
        self.store = Store(self.registry, history_limit=history_limit, clock=clock)
        self._requests: Counter[RequestRecord] = Counter()
        self._api = KubeApi(
            self.registry,
            self.store,
            clock=clock,
            bookmark_interval=bookmark_interval,
            on_request=self._count,
            after_delete=self._after_delete,
        )
        self._host = "127.0.0.1"
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._reopen: asyncio.Task[None] | None = None
        self._hook_tasks: set[asyncio.Task[None]] = set()

    # lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 picks a free port) and return the bound port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        self._host, self._port = host, port
        await self._listen()
        log.info("testapi.started", url=self.url)
        return self._port

    async def _listen(self) -> None:
        assert self._runner is not None
        sock = socket.socket(
            socket.AF_INET6 if ":" in self._host else socket.AF_INET, socket.SOCK_STREAM
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()

    async def stop(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reopen
        self.store.drop_watches(graceful=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("testapi.stopped", url=self.url)

    @property
    def bookmark_interval(self) -> float:
        """Seconds between BOOKMARK events on watches that allow them (settable)."""
        return self._api.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self._api.bookmark_interval = seconds

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> None:
        """Write a kubeconfig for this server, atomically (a reader never sees half a file)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testapi", "cluster": {"server": self.url}}],
            "users": [{"name": "testapi", "user": {"token": "testapi-token"}}],
            "contexts": [
                {
                    "name": "testapi",
                    "context": {"cluster": "testapi", "user": "testapi", "namespace": "default"},
                }
            ],
            "current-context": "testapi",
            "preferences": {},
        }
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config, f)
        os.replace(tmp, target)

    # test hooks

    def drop_watches(self, *, graceful: bool = False) -> int:
        """End every open watch: abruptly (the connection is reset mid-stream) or, with
        `graceful`, as a server-side timeout ends it. Returns how many were open."""
        count = self.store.drop_watches(graceful=graceful)
        log.info("testapi.watches_dropped", count=count, graceful=graceful)
        return count

    def compact(self) -> int:
        """Compact the whole history: every watch from an earlier resourceVersion gets 410."""
        self.store.compact()
        log.info("testapi.compacted", resource_version=self.store.revision)
        return self.store.revision

    async def refuse_connections(self, seconds: float) -> None:
        """Stop listening and abort every connection; listen on the same port again after
        `seconds` (in the background: this returns as soon as connections are refused)."""
        if self._site is None or self._runner is None:
            raise RuntimeError("the server is not listening")
        await self._site.stop()
        self._site = None
        self.store.drop_watches()
        server = self._runner.server
        for connection in server.connections if server is not None else []:
            if connection.transport is not None:
                connection.transport.abort()
        log.info("testapi.refusing", seconds=seconds)
        self._reopen = asyncio.create_task(self._listen_after(seconds))

    async def _listen_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._listen()
        log.info("testapi.listening_again", url=self.url)

    async def listening(self) -> None:
        """Wait until the server listens again after `refuse_connections` (at once if it does)."""
        if self._reopen is not None:
            await asyncio.shield(self._reopen)

    def request_count(
        self,
        *,
        method: str | None = None,
        verb: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        path: str | None = None,
    ) -> int:
        """How many requests matched all the given fields (`verb="patch", subresource="status"`)."""
        wanted = {
            k: v
            for k, v in {
                "method": method,
                "verb": verb,
                "resource": resource,
                "subresource": subresource,
                "namespace": namespace,
                "name": name,
                "path": path,
            }.items()
            if v is not None
        }
        return sum(
            n
            for r, n in self._requests.items()
            if all(getattr(r, k) == v for k, v in wanted.items())
        )

    def reset_request_counts(self) -> None:
        self._requests.clear()

    def open_watches(self) -> int:
        """Watches registered now: each gets the events written from here on, and
        `drop_watches` ends it."""
        return self.store.watch_count

    @property
    def resource_version(self) -> int:
        return self.store.revision

    def _count(self, record: RequestRecord) -> None:
        self._requests[record] += 1

    # in-process object access, for tests that set up state without a client

    def _type_of(self, api_version: str, kind: str) -> ResourceType:
        rtype = self.registry.by_kind(api_version, kind)
        if rtype is None:
            raise KeyError(f"no resource type for {api_version} {kind}")
        return rtype

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSON:
        """The stored object; raises `ApiError` 404 when there is none."""
        return self.store.get(self._type_of(api_version, kind), namespace, name)

    def put_object(self, obj: JSON) -> JSON:
        """Create the object, or replace it (status included) when it exists."""
        rtype = self._type_of(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace", "default") if rtype.namespaced else None
        try:
            self.store.get(rtype, namespace, meta["name"])
        except ApiError:
            created = self.store.create(rtype, namespace, obj)
            if rtype.has_status and "status" in obj:
                return self.store.update(rtype, namespace, meta["name"], obj, subresource="status")
            return created
        body = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
        self.store.update(rtype, namespace, meta["name"], body)
        if rtype.has_status:
            return self.store.update(rtype, namespace, meta["name"], body, subresource="status")
        return self.get_object(obj["apiVersion"], obj["kind"], meta["name"], namespace)

    def delete_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSON:
        """Delete the object; a Namespace goes away with its contents shortly after."""
        rtype = self._type_of(api_version, kind)
        deleted = self.store.delete(rtype, namespace, name)
        self._after_delete(rtype, name)
        return deleted

    def _after_delete(self, rtype: ResourceType, name: str) -> None:
        if rtype.plural == "namespaces" and not rtype.group:
            loop = asyncio.get_running_loop()
            loop.call_later(self.namespace_finalize_delay, self.store.finalize_namespace, name)

    # HTTP

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_test/"):
            try:
                return await self._hook(request, request.path.split("/")[2:])
            except ApiError as e:
                return error_response(e)
        return await self._api.handle(request)

    async def _hook(self, request: web.Request, parts: list[str]) -> web.Response:
        hook = "/".join(parts)
        if hook == "drop-watches" and request.method == "POST":
            return json_response(
                {"dropped": self.drop_watches(graceful=request.query.get("graceful") in _TRUE)}
            )
        if hook == "compact" and request.method == "POST":
            return json_response({"resourceVersion": str(self.compact())})
        if hook == "refuse" and request.method == "POST":
            seconds = float(request.query.get("seconds", "1"))
            # Answer first: refusing aborts every connection, this one included.
            task = asyncio.create_task(self._refuse_soon(seconds))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)
            return json_response({"seconds": seconds}, 202)
        if hook == "requests" and request.method == "GET":
            rows = [
                {**r.__dict__, "count": n}
                for r, n in sorted(self._requests.items(), key=lambda i: repr(i[0]))
            ]
            return json_response({"requests": rows})
        if hook == "requests" and request.method == "DELETE":
            self.reset_request_counts()
            return json_response({})
        raise ApiError(404, "NotFound", f"no test hook {request.method} /_test/{hook}")

    async def _refuse_soon(self, seconds: float) -> None:
        await asyncio.sleep(0.05)
        await self.refuse_connections(seconds)


async def run_testapi(
    listen: str,
    kubeconfig: str | None,
    *,
    bookmark_interval: float = 60.0,
    history_limit: int = 10_000,
) -> None:
    """Run the test API server on `listen` (HOST:PORT) until cancelled, writing a kubeconfig
    for it to `kubeconfig` once it listens."""
    host, _, port = listen.rpartition(":")
    server = TestApiServer(bookmark_interval=bookmark_interval, history_limit=history_limit)
    await server.start(host.strip("[]") or "127.0.0.1", int(port))
    try:
        if kubeconfig:
            server.write_kubeconfig(kubeconfig)
        log.info("testapi.serving", url=server.url, kubeconfig=kubeconfig)
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m controlplane.testing.apiserver --listen 127.0.0.1:0 --kubeconfig PATH`."""
    parser = argparse.ArgumentParser(
        prog="python -m controlplane.testing.apiserver", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (port 0 picks one)"
    )
    parser.add_argument(
        "--kubeconfig", help="write a kubeconfig for the server here once it listens"
    )
    parser.add_argument(
        "--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks"
    )
    parser.add_argument(
        "--history-limit", type=int, default=10_000, help="watch events kept before compaction"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_testapi(
                args.listen,
                args.kubeconfig,
                bookmark_interval=args.bookmark_interval,
                history_limit=args.history_limit,
            )
        )


if __name__ == "__main__":
    main()
