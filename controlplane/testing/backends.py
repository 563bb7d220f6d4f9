"""Small HTTP backends that say who they are, for tests and the demo.

A ``Backend`` is an aiohttp server on ``127.0.0.1`` that answers every path and method with
status 200 (or the status it was given) and a JSON body naming itself and describing the request
as it arrived — after Envoy rewrote it::

    {"name": "kuard", "method": "GET", "path": "/foo?x=1", "host": "example.com",
     "tls": false, "headers": {"x-envoy-original-path": "/app/foo?x=1", ...}}

The response also carries an ``x-backend-name`` header, so a test that only wants to know where a
request landed need not parse the body.

Invariants:

- **Port 0, then read back.** The server binds port 0 unless told otherwise and reports the port it
  got (``backend.port``), so concurrent test runs never race for a port.
- **Any path upgrades to a websocket.** A request asking for a websocket upgrade is accepted on
  every path and each message is echoed back unchanged (text as text, binary as binary); the
  101 response carries ``x-backend-name`` too.
- **Optional TLS** from a certificate and key file (see ``controlplane.testing.certs``), for
  TLS-passthrough and upstream-TLS tests; the body's ``"tls"`` says whether TLS was used.
- ``received`` records every request the backend saw, in order.

``python -m controlplane.testing.backends --name kuard --port 9101`` runs one until SIGINT or
SIGTERM (used by the demo).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import structlog
from aiohttp import WSMsgType, web

__all__ = ["Backend", "ReceivedRequest", "main"]

log = structlog.get_logger(__name__)

NAME_HEADER: Final = "x-backend-name"


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the backend received it. Header names are lower-case."""

    method: str
    path: str
    host: str
    headers: Mapping[str, str]
    tls: bool
    websocket: bool


class Backend:
    """An HTTP(S)/websocket echo backend; use as ``async with Backend("kuard") as backend:``."""

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        status: int = 200,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        self.name = name
        self.host = host
        self.status = status
        self.received: list[ReceivedRequest] = []
        self._requested_port = port
        self._port: int | None = None
        self._ssl: ssl.SSLContext | None = None
        if tls_cert is not None and tls_key is not None:
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ssl.load_cert_chain(tls_cert, tls_key)
        self._runner: web.AppRunner | None = None
        self._log = log.bind(backend=name)

    @property
    def tls(self) -> bool:
        return self._ssl is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("Backend not started")
        return self._port

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT`` (with the host the backend listens on)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # Bind the socket ourselves: aiohttp reports the port it got only through private fields.
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            await self._runner.cleanup()
            self._runner = None
            raise
        self._port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock, ssl_context=self._ssl).start()
        self._log.info("backend.started", url=self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._log.info("backend.stopped", requests=len(self.received))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        websocket = web.WebSocketResponse()
        websocket.headers[NAME_HEADER] = self.name
        upgrade = websocket.can_prepare(request).ok
        received = ReceivedRequest(
            method=request.method,
            path=request.raw_path,
            host=request.headers.get("Host", ""),
            headers={k.lower(): v for k, v in request.headers.items()},
            tls=request.secure,
            websocket=upgrade,
        )
        self.received.append(received)
        if upgrade:
            await websocket.prepare(request)
            await self._echo(websocket)
            return websocket
        return web.json_response(
            self.describe(received), status=self.status, headers={NAME_HEADER: self.name}
        )

    def describe(self, received: ReceivedRequest) -> dict[str, Any]:
        """The JSON body answered for ``received``."""
        return {
            "name": self.name,
            "method": received.method,
            "path": received.path,
            "host": received.host,
            "tls": received.tls,
            "headers": dict(received.headers),
        }

    async def _echo(self, websocket: web.WebSocketResponse) -> None:
        async for message in websocket:
            if message.type == WSMsgType.TEXT:
                await websocket.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await websocket.send_bytes(message.data)
            elif message.type == WSMsgType.ERROR:
                self._log.warning("backend.websocket_error", error=str(websocket.exception()))


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    backend = Backend(
        args.name, host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
    async with backend:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m controlplane.testing.backends",
        description="Serve an HTTP backend that answers with its name and the request it saw.",
    )
    parser.add_argument("--name", required=True, help="name put in every answer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (logged)")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
