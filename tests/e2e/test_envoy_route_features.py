"""The ingress-nginx route vocabulary (issue 10) through the real Envoy, one Envoy for all of it.

A DAG built from values directly (no Kubernetes objects) is translated, turned into a static
bootstrap, and served by one Envoy in front of three echo backends (`main`, `canary`,
`fallback`). Each check asserts on what a client or a backend sees:

- a regex path match with a capture-group rewrite (`(?i)/something(/|$)(.*).*` → `/\\2`);
- header and cookie canary routes ahead of the plain route of the same path;
- every redirect code, with scheme, host, port, path and query handling;
- a CORS preflight answered by Envoy (origin echoed, credentials allowed), for `*`, a
  wildcard-subdomain origin and an exact one, and a refused origin;
- source ranges: 127.0.0.1 allowed and 127.0.0.2 denied on one route (403), allow and deny lists;
- a rate limit per client address: 503 once 127.0.0.1 spent its burst, while 127.0.0.2 still
  has its own bucket;
- a body limit: 413 over it, 200 under it; on every other route the buffer filter does not run
  (a chunked upload arrives chunked), and a websocket upgrades on the limited route too (the
  upgrade chain has no buffer filter), while a route without websockets still refuses upgrades;
- a host rewrite seen by the backend; the session cookie's name, Max-Age and Path;
- a route idle timeout: an upstream silent for longer gets the request a 504;
- an aggregate cluster that sends requests to its fallback while the primary has no endpoint,
  and to the primary when it has one.

Source addresses: Linux routes all of 127.0.0.0/8 to loopback, so a client bound to 127.0.0.2
is a second client address without any set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from controlplane.dag.types import (
    DAG,
    Cluster,
    CorsPolicy,
    HeaderMatch,
    LoadBalancerPolicy,
    PathMatch,
    PathMatchKind,
    RateLimit,
    Redirect,
    RegexRewrite,
    Route,
    SessionCookie,
    SourceRanges,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import (
    IncrementalTranslator,
    TranslateOptions,
    cluster_load_assignment,
    static_bootstrap,
    translate,
)
from controlplane.model import EndpointSlice
from controlplane.testing.backends import NAME_HEADER, Backend
from controlplane.testing.envoy import EnvoyProcess, free_port

# One Envoy (and one event loop) for the whole module: the checks use disjoint routes.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

HOST = "features.local"
MAIN = Cluster("default", "main", 80)
CANARY = Cluster("default", "canary", 80)
FALLBACK = Cluster("default", "fallback", 80)
SLOW = Cluster("default", "slow", 80)
"""A backend that answers after SLOW_S."""
SLOW_S = 0.5
EMPTY = Cluster("default", "empty", 80)
"""A Service with no endpoints."""
STICKY = Cluster("default", "main", 80, load_balancer=LoadBalancerPolicy.COOKIE)
WITH_FALLBACK = replace(EMPTY, fallback=FALLBACK)
MAIN_WITH_FALLBACK = replace(MAIN, fallback=FALLBACK)
SOMETHING = r"(?i)/something(/|$)(.*)"
ORIGINS = ("https://*.example.com", "https://exact.example")
SECOND_CLIENT = "127.0.0.2"


def to(cluster: Cluster) -> tuple[WeightedCluster, ...]:
    return (WeightedCluster(cluster),)


def prefix(value: str) -> PathMatch:
    return PathMatch(PathMatchKind.SEGMENT_PREFIX, value)


ROUTES = (
    Route(
        PathMatch(PathMatchKind.REGEX, SOMETHING + ".*"),
        to(MAIN),
        regex_rewrite=RegexRewrite(SOMETHING, r"/\2"),
    ),
    Route(prefix("/canary"), to(CANARY), headers=(HeaderMatch("x-canary", exact="always"),)),
    Route(
        prefix("/canary"),
        to(CANARY),
        headers=(HeaderMatch("cookie", regex=r"(.*;\s*)?canary=always(;.*)?"),),
    ),
    Route(prefix("/canary"), to(MAIN)),
    Route(prefix("/r301"), redirect=Redirect(code=301, path="/moved")),
    Route(prefix("/r302"), redirect=Redirect(code=302, host="elsewhere.example")),
    Route(prefix("/r303"), redirect=Redirect(code=303, path="/seen", strip_query=True)),
    Route(prefix("/r307"), redirect=Redirect(code=307, scheme="https", port=8443)),
    Route(prefix("/r308"), redirect=Redirect(code=308, scheme="https")),
    Route(prefix("/cors-any"), to(MAIN), cors=CorsPolicy()),
    Route(
        prefix("/cors-some"),
        to(MAIN),
        cors=CorsPolicy(allow_origins=ORIGINS, allow_credentials=False, max_age_seconds=60),
    ),
    Route(prefix("/only-first"), to(MAIN), source_ranges=SourceRanges(allow=("127.0.0.1/32",))),
    Route(prefix("/not-second"), to(MAIN), source_ranges=SourceRanges(deny=(SECOND_CLIENT,))),
    Route(
        prefix("/loopback-not-first"),
        to(MAIN),
        source_ranges=SourceRanges(allow=("127.0.0.0/8",), deny=("127.0.0.1",)),
    ),
    Route(
        prefix("/limited"), to(MAIN), rate_limit=RateLimit(requests=1, period_seconds=60, burst=3)
    ),
    Route(prefix("/small-bodies"), to(MAIN), max_request_bytes=100, websocket=True),
    Route(prefix("/upstream-host"), to(MAIN), host_rewrite="upstream.example"),
    Route(prefix("/impatient"), to(SLOW), idle_timeout_seconds=0.1),
    Route(prefix("/sticky-default"), to(STICKY)),
    Route(
        prefix("/sticky"),
        to(STICKY),
        session_cookie=SessionCookie(name="route", ttl_seconds=172800, path="/sticky"),
    ),
    Route(prefix("/fallback"), to(WITH_FALLBACK)),
    Route(prefix("/primary"), to(MAIN_WITH_FALLBACK)),
    Route(prefix("/"), to(MAIN), websocket=True),
)
DAG_OF_EVERYTHING = DAG(virtual_hosts=(VirtualHost(HOST, ROUTES),))


def _slice(name: str, port: int) -> EndpointSlice:
    return EndpointSlice.model_validate(
        {
            "metadata": {"name": name, "namespace": "default"},
            "endpoints": [{"addresses": ["127.0.0.1"]}],
            "ports": [{"port": port}],
        }
    )


def _bootstrap(http_port: int, ports: dict[str, int]) -> dict[str, Any]:
    options = TranslateOptions(http_port=http_port, address="127.0.0.1")
    translator = IncrementalTranslator(options)
    translator.translate(DAG_OF_EVERYTHING)
    assert translator.rejections() == (), "every feature must translate and pass the backstop"
    config = translate(DAG_OF_EVERYTHING, options)
    endpoints = {
        cluster.eds_name: cluster_load_assignment(
            cluster.eds_name, "", [_slice(cluster.service, ports[cluster.service])], None
        ).message
        for cluster in (MAIN, CANARY, FALLBACK, SLOW)
    }
    return static_bootstrap(replace(config, endpoints=endpoints))


class Client:
    """Requests to the Envoy under test, from one client address."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base = f"http://127.0.0.1:{port}"

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """Status, lower-cased response headers and, from a backend, its JSON description."""
        headers = {"Host": HOST, **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.base + path, headers=headers, allow_redirects=False, **kwargs
        ) as response:
            text = await response.text()
            found = {k.lower(): v for k, v in response.headers.items()}
            body = json.loads(text) if NAME_HEADER in found else None
            return response.status, found, body


@contextlib.asynccontextmanager
async def slow_backend() -> AsyncIterator[int]:
    """An HTTP server that answers every request after SLOW_S; yields its port."""

    async def answer(request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_S)
        return web.Response(text="late", headers={NAME_HEADER: "slow"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def clients(envoy_binary: str) -> AsyncIterator[tuple[Client, Client]]:
    async with (
        Backend("main") as main,
        Backend("canary") as canary,
        Backend("fallback") as fallback,
        slow_backend() as slow_port,
    ):
        port = free_port()
        ports = {
            "main": main.port,
            "canary": canary.port,
            "fallback": fallback.port,
            "slow": slow_port,
        }
        async with (
            EnvoyProcess(_bootstrap(port, ports), binary=envoy_binary) as envoy,
            aiohttp.ClientSession() as first,
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=(SECOND_CLIENT, 0))
            ) as second,
        ):
            await envoy.wait_live()
            yield Client(first, port), Client(second, port)


async def test_regex_match_and_capture_group_rewrite(clients: tuple[Client, Client]) -> None:
    client, _ = clients
    expected = {
        "/something/foo/bar?x=1": "/foo/bar?x=1",
        "/SomeThing/": "/",
        "/something": "/",
        "/somethingelse": "/somethingelse",  # the regex does not match: the plain route
    }
    for path, upstream in expected.items():
        _, _, body = await client.request("GET", path)
        assert body is not None
        assert body["path"] == upstream, path


async def test_header_and_cookie_canaries_come_before_the_plain_route(
    clients: tuple[Client, Client],
) -> None:
    client, _ = clients
    cases: list[tuple[dict[str, str], str]] = [
        ({"x-canary": "always"}, "canary"),
        ({"x-canary": "never"}, "main"),
        ({"Cookie": "a=1; canary=always"}, "canary"),
        ({"Cookie": "canary=always"}, "canary"),
        ({"Cookie": "canary=never; b=2"}, "main"),
        ({}, "main"),
    ]
    for headers, backend in cases:
        _, found, _ = await client.request("GET", "/canary/x", headers=headers)
        assert found[NAME_HEADER] == backend, headers


async def test_every_redirect_code(clients: tuple[Client, Client]) -> None:
    client, _ = clients
    expected = {
        "/r301/a?q=1": (301, f"http://{HOST}/moved?q=1"),
        "/r302/a?q=1": (302, "http://elsewhere.example/r302/a?q=1"),
        "/r303/a?q=1": (303, f"http://{HOST}/seen"),
        "/r307/a": (307, f"https://{HOST}:8443/r307/a"),
        "/r308/a?q=1": (308, f"https://{HOST}/r308/a?q=1"),
    }
    for path, (status, location) in expected.items():
        got, headers, _ = await client.request("GET", path)
        assert (got, headers.get("location")) == (status, location), path


async def test_cors_preflights_are_answered_by_envoy(clients: tuple[Client, Client]) -> None:
    client, _ = clients

    async def preflight(path: str, origin: str) -> tuple[int, dict[str, str]]:
        headers = {"Origin": origin, "Access-Control-Request-Method": "PUT"}
        status, found, _ = await client.request("OPTIONS", path, headers=headers)
        return status, found

    status, headers = await preflight("/cors-any", "https://app.test")
    assert status == 200
    # Envoy echoes the origin, never `*`, so credentialed requests work with a wildcard.
    assert headers["access-control-allow-origin"] == "https://app.test"
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-allow-methods"] == "GET, PUT, POST, DELETE, PATCH, OPTIONS"
    assert headers["access-control-max-age"] == "1728000"
    assert NAME_HEADER not in headers, "the preflight never reached the backend"
    for origin in ("https://a.example.com", "https://EXACT.example"):
        status, headers = await preflight("/cors-some", origin)
        assert (status, headers.get("access-control-allow-origin")) == (200, origin)
        assert "access-control-allow-credentials" not in headers
        assert headers["access-control-max-age"] == "60"
    # Not an allowed origin (`*` is one label): the preflight goes upstream, without CORS headers.
    _, headers = await preflight("/cors-some", "https://a.b.example.com")
    assert headers[NAME_HEADER] == "main"
    assert "access-control-allow-origin" not in headers
    # A simple request gets the CORS headers on the backend's response.
    _, headers, _ = await client.request("GET", "/cors-any", headers={"Origin": "https://x.y"})
    assert headers["access-control-allow-origin"] == "https://x.y"
    assert headers[NAME_HEADER] == "main"


async def test_source_ranges(clients: tuple[Client, Client]) -> None:
    first, second = clients
    expected = {
        "/only-first": (200, 403),
        "/not-second": (200, 403),
        "/loopback-not-first": (403, 200),
    }
    for path, statuses in expected.items():
        got = ((await first.request("GET", path))[0], (await second.request("GET", path))[0])
        assert got == statuses, path


async def test_rate_limit_per_client_address(clients: tuple[Client, Client]) -> None:
    first, second = clients
    statuses = [(await first.request("GET", "/limited"))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 503], "a burst of 3, then no token for a minute"
    assert (await second.request("GET", "/limited"))[0] == 200, "another client, its own bucket"
    assert (await first.request("GET", "/"))[0] == 200, "other routes are not limited"


async def test_body_limit_and_the_buffer_nowhere_else(clients: tuple[Client, Client]) -> None:
    client, _ = clients
    assert (await client.request("POST", "/small-bodies", data=b"x" * 100))[0] == 200
    assert (await client.request("POST", "/small-bodies", data=b"x" * 101))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * 1000

    status, _, body = await client.request("POST", "/small-bodies", data=chunks())
    assert status == 413, "a chunked body over the limit"
    status, _, body = await client.request("POST", "/plain", data=chunks())
    assert status == 200
    assert body is not None
    # Not buffered: a buffered request would arrive with a content-length instead.
    assert body["headers"].get("transfer-encoding") == "chunked"
    for path in ("/ws", "/small-bodies/ws"):  # the upgrade chain has no buffer filter
        url = client.base + path
        async with client.session.ws_connect(url, headers={"Host": HOST}) as websocket:
            await websocket.send_str("hello")
            assert (await websocket.receive(timeout=5)).data == "hello"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.session.ws_connect(client.base + "/canary", headers={"Host": HOST})
    assert refused.value.status == 403, "no upgrade on a route that does not allow websockets"


async def test_host_rewrite_and_session_cookies(clients: tuple[Client, Client]) -> None:
    client, _ = clients
    _, _, body = await client.request("GET", "/upstream-host")
    assert body is not None
    assert body["host"] == "upstream.example"
    _, headers, _ = await client.request("GET", "/sticky/x")
    cookie = headers["set-cookie"]
    assert cookie.startswith("route=")
    assert "Max-Age=172800" in cookie
    assert "Path=/sticky" in cookie
    _, headers, _ = await client.request("GET", "/sticky-default")
    cookie = headers["set-cookie"]
    assert cookie.startswith("X-Contour-Session-Affinity=")
    assert "Max-Age" not in cookie, "a session cookie"
    assert "Path=/;" in cookie + ";"


async def test_route_idle_timeout(clients: tuple[Client, Client]) -> None:
    client, _ = clients
    status, headers, _ = await client.request("GET", "/impatient")
    assert status == 504, "the upstream was silent for longer than the route's idle timeout"
    assert NAME_HEADER not in headers


async def test_aggregate_cluster_falls_back(clients: tuple[Client, Client]) -> None:
    client, _ = clients
    _, headers, _ = await client.request("GET", "/fallback")
    assert headers[NAME_HEADER] == "fallback", "the primary has no endpoint"
    _, headers, _ = await client.request("GET", "/primary")
    assert headers[NAME_HEADER] == "main", "the primary has one"
