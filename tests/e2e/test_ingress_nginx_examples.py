"""examples/ingress-nginx through a real Envoy: manifests written for ingress-nginx, unchanged,
served by `serve --ingress-class contour,nginx` (a migration taking over the `nginx` class).

Every example file is used as it is, except that each EndpointSlice's loopback port is moved to a
local echo backend of the same Service (the examples name fixed ports for `make demo`).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from pipeline import Pipeline

from controlplane.testing.backends import Backend

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "ingress-nginx"


def _documents() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(EXAMPLES.glob("*.yaml"))
    }


@asynccontextmanager
async def examples_served(directory: Path) -> AsyncIterator[tuple[Pipeline, dict[str, Backend]]]:
    """The examples in `directory`, one echo backend per Service with an EndpointSlice."""
    files = _documents()
    async with AsyncExitStack() as stack:
        backends: dict[str, Backend] = {}
        for documents in files.values():
            for doc in documents:
                if doc["kind"] != "EndpointSlice":
                    continue
                service = doc["metadata"]["labels"]["kubernetes.io/service-name"]
                backend = await stack.enter_async_context(Backend(service))
                backends[service] = backend
                for port in doc["ports"]:
                    port["port"] = backend.port
        for name, documents in files.items():
            (directory / name).write_text(yaml.safe_dump_all(documents), encoding="utf-8")
        pipe = await stack.enter_async_context(Pipeline(directory, ingress_class="contour,nginx"))
        yield pipe, backends


def _secure_ca() -> bytes:
    for doc in _documents()["redirects.yaml"]:
        if doc["kind"] == "Secret":
            return base64.b64decode(doc["data"]["tls.crt"])
    raise AssertionError("redirects.yaml holds the secure-tls Secret")


async def test_rewrite_canary_and_legacy_ingress_serve_as_in_nginx(tmp_path: Path) -> None:
    async with examples_served(tmp_path) as (pipe, _):
        # rewrite-target /$2 with capture groups; nginx regex locations ignore case.
        answer = await pipe.eventually("app.nginx.local", "/api/users?x=1", lambda a: a.ok)
        assert (answer.backend, answer.body["path"]) == ("api", "/users?x=1")
        answer = await pipe.get("app.nginx.local", "/API")
        assert (answer.backend, answer.body["path"]) == ("api", "/")
        assert (await pipe.get("app.nginx.local", "/apix")).status == 404

        # extensions/v1beta1 with the class annotation; rewrite-target / replaces the path.
        answer = await pipe.eventually("legacy.nginx.local", "/token/abc", lambda a: a.ok)
        assert (answer.backend, answer.body["path"]) == ("token", "/")
        # The configuration-snippet was refused, not applied.
        assert "x-frame-options" not in answer.headers

        # Canary: header, then cookie, then weight (0 here).
        await pipe.eventually("shop.nginx.local", "/", lambda a: a.backend == "shop")
        for headers, expected in (
            ({"X-Canary": "always"}, "shop-canary"),
            ({"X-Canary": "never", "Cookie": "canary=always"}, "shop"),
            ({"Cookie": "a=b; canary=always"}, "shop-canary"),
            ({"Cookie": "canary=never"}, "shop"),
            ({}, "shop"),
        ):
            answer = await pipe.get("shop.nginx.local", "/cart", headers=headers)
            assert answer.backend == expected, headers


async def test_websockets_limits_cors_and_allowlist(tmp_path: Path) -> None:
    async with examples_served(tmp_path) as (pipe, backends):
        await pipe.eventually("chat.nginx.local", "/ws", lambda a: a.backend == "chat")
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                f"http://127.0.0.1:{pipe.http_port}/ws", headers={"Host": "chat.nginx.local"}
            ) as socket,
        ):
            await socket.send_str("hello")
            reply = await asyncio.wait_for(socket.receive_str(), 5)
            assert "hello" in reply
        assert backends["chat"].received[-1].websocket

        await pipe.eventually("limits.nginx.local", "/", lambda a: a.backend == "quota")
        async with aiohttp.ClientSession() as session:
            preflight = await session.options(
                f"http://127.0.0.1:{pipe.http_port}/",
                headers={
                    "Host": "limits.nginx.local",
                    "Origin": "https://shop.example",
                    "Access-Control-Request-Method": "PUT",
                },
            )
            assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
            assert "PUT" in preflight.headers["access-control-allow-methods"]
            # One request per second with a burst of five (limit-burst-multiplier): the bucket
            # empties within a few more requests, and the rest are nginx's 503.
            statuses = [(await pipe.get("limits.nginx.local", "/")).status for _ in range(12)]
            assert statuses.count(503) >= 5, statuses


async def test_redirects_sessions_and_default_backend(tmp_path: Path) -> None:
    async with examples_served(tmp_path) as (pipe, _):
        answer = await pipe.eventually("home.nginx.local", "/", lambda a: a.status == 302)
        assert answer.headers["location"] == "http://home.nginx.local/app"
        assert (await pipe.get("home.nginx.local", "/app")).backend == "site"

        answer = await pipe.eventually("old.nginx.local", "/x", lambda a: a.status == 308)
        assert answer.headers["location"] == "https://new.example/"

        # nginx's default for a TLS host: plain HTTP is redirected with 308.
        answer = await pipe.eventually("secure.nginx.local", "/x?q=1", lambda a: a.status == 308)
        assert answer.headers["location"] == "https://secure.nginx.local/x?q=1"
        answer = await pipe.eventually(
            "secure.nginx.local", "/x", lambda a: a.ok, https=True, ca=_secure_ca()
        )
        assert answer.backend == "site"

        answer = await pipe.eventually("sticky.nginx.local", "/", lambda a: a.ok)
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("route=") and "Max-Age=3600" in cookie and "Path=/" in cookie

        # orders has no ready endpoint: its default-backend answers.
        answer = await pipe.eventually("fallback.nginx.local", "/", lambda a: a.ok)
        assert answer.backend == "sorry"
