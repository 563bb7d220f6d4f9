"""Reaching the Kubernetes API: client set-up, raw JSON requests, watch streams, backoff.

`make_api_client` builds a kubernetes-asyncio `ApiClient` from `--kubeconfig` or, without one, from
the service account of the pod we run in. Everything else in `sources/` talks to the API through
the helpers here rather than through the generated typed APIs, for three reasons:

- **Raw JSON, camelCase keys.** The generated APIs deserialize into OpenAPI models with snake_case
  attributes; our pydantic models parse the JSON Kubernetes serves. `request_json` and
  `watch_lines` hand back the JSON as the server wrote it (`_preload_content=False`).
- **Every request has a timeout.** kubernetes-asyncio passes an *empty* `aiohttp.ClientTimeout`
  when none is given, so a request to a dead peer would hang forever. Plain requests get
  `request_timeout` in total; a watch gets a read timeout a little longer than its server-side
  `timeoutSeconds`, so a silently dead connection is noticed without cutting a quiet watch short.
- **One error type.** `_preload_content=False` skips kubernetes-asyncio's status check, so the
  helpers raise `KubeApiError` themselves, with the HTTP status and the `Status` reason. Transport
  failures stay `aiohttp.ClientError` / `TimeoutError`; `is_transient` says what is worth a retry.

The connection pool is unlimited: a bounded pool (kubernetes-asyncio defaults to 100) with one
long-lived watch per kind and namespace would eventually starve every other request.

`Backoff` is the capped, jittered exponential delay every retry loop here uses; its random source
is injectable so tests can make it deterministic. Durations in `sources/` (lease expiry, rate
limits) are measured with `loop_time`, the running event loop's clock, the same clock
`asyncio.sleep` and timeouts follow: tests run them on a fast-forwarded loop clock (looptime)
instead of waiting on the wall clock.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config

JSON = dict[str, Any]
Query = Sequence[tuple[str, str]]

DEFAULT_REQUEST_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
MERGE_PATCH = "application/merge-patch+json"


async def make_api_client(
    kubeconfig: Path | None, *, context: str | None = None
) -> client.ApiClient:
    """An ApiClient for `kubeconfig`, or for the in-cluster service account when None.

    The caller owns it: `await api_client.close()` on shutdown.
    """
    configuration = client.Configuration()
    if kubeconfig is not None:
        await config.load_kube_config(
            config_file=str(kubeconfig), context=context, client_configuration=configuration
        )
    else:
        # kubernetes-asyncio leaves this one function unannotated
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    # None = unlimited (annotated as int upstream); see the module docstring: watches are long
    configuration.connection_pool_maxsize = None  # type: ignore[assignment]
    return client.ApiClient(configuration=configuration)


class KubeApiError(Exception):
    """A non-2xx answer from the API server, with the `Status` reason and message when given."""

    def __init__(self, status: int, reason: str = "", message: str = "") -> None:
        self.status, self.reason, self.message = status, reason, message
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")

    @classmethod
    def from_body(cls, status: int, body: bytes) -> KubeApiError:
        try:
            parsed = json.loads(body)
        except ValueError:
            return cls(status, "", body[:200].decode("utf-8", "replace"))
        if not isinstance(parsed, dict):
            return cls(status)
        return cls(status, str(parsed.get("reason", "")), str(parsed.get("message", "")))


def is_transient(error: BaseException) -> bool:
    """Worth retrying after a pause: transport failures, timeouts, 409, 429 and 5xx answers."""
    if isinstance(error, KubeApiError):
        return error.status in (409, 429) or error.status >= 500
    return isinstance(error, aiohttp.ClientError | TimeoutError | OSError | ValueError)


def resource_path(
    group: str,
    version: str,
    plural: str,
    *,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """`/api/v1/namespaces/NS/services/NAME/status` and friends."""
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


async def _send(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    query: Query = (),
    body: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    limits: aiohttp.ClientTimeout,
) -> aiohttp.ClientResponse:
    response: aiohttp.ClientResponse = await api_client.call_api(
        path,
        method,
        query_params=list(query),
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=dict(body) if body is not None else None,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=limits,
    )
    return response


async def request_json(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    query: Query = (),
    body: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> JSON:
    """One request; the decoded JSON answer. Raises KubeApiError for a non-2xx answer."""
    limits = aiohttp.ClientTimeout(
        total=request_timeout, connect=min(request_timeout, CONNECT_TIMEOUT)
    )
    response = await _send(
        api_client, method, path, query=query, body=body, content_type=content_type, limits=limits
    )
    try:
        data = await response.read()
    finally:
        response.release()
    if not 200 <= response.status < 300:
        raise KubeApiError.from_body(response.status, data)
    decoded = json.loads(data) if data else {}
    if not isinstance(decoded, dict):
        raise ValueError(f"{method} {path}: expected a JSON object")
    return decoded


@asynccontextmanager
async def watch_lines(
    api_client: client.ApiClient,
    path: str,
    *,
    query: Query,
    server_timeout: float,
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Open a watch; yields an iterator over its newline-delimited JSON events (raw lines).

    The iterator ends when the server ends the watch; a reset connection raises
    `aiohttp.ClientPayloadError`, a silent one `TimeoutError` after `server_timeout` + 30 s.
    """
    read_timeout = server_timeout + 30.0
    limits = aiohttp.ClientTimeout(
        connect=CONNECT_TIMEOUT, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout
    )
    full_query = [*query, ("watch", "true"), ("timeoutSeconds", str(max(1, int(server_timeout))))]
    response = await _send(api_client, "GET", path, query=full_query, limits=limits)
    try:
        if not 200 <= response.status < 300:
            raise KubeApiError.from_body(response.status, await response.read())

        async def lines() -> AsyncIterator[bytes]:
            while True:
                line = await response.content.readline()
                if not line:
                    return
                if line.strip():
                    yield line

        yield lines()
    finally:
        response.release()


def loop_time() -> float:
    """The running event loop's clock (monotonic seconds); call it from inside the loop."""
    return asyncio.get_running_loop().time()


class Backoff:
    """Capped exponential backoff with jitter: `initial * factor**n`, at most `maximum`, each
    delay scaled down by up to `jitter` (so replicas that failed together do not retry together).
    """

    def __init__(
        self,
        initial: float = 0.2,
        maximum: float = 10.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self._rand = rand
        self.attempts = 0

    def next(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self.attempts)
        if base < self.maximum:
            self.attempts += 1
        return base * (1.0 - self.jitter * self._rand())

    def reset(self) -> None:
        self.attempts = 0
