"""An end-to-end rig: manifests on disk → the controller (in-process) → a real Envoy → backends.

`Pipeline` runs `controlplane.runtime.serve` with the file source on a temporary directory, a
real Envoy bootstrapped against it, and lets a test write manifests, wait until Envoy holds what
they describe, and send requests through Envoy by host, path and (for HTTPS) SNI.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import kube_manifests
import yaml
from multidict import CIMultiDict

from controlplane.config import ServeSettings
from controlplane.envoy.bootstrap import render_bootstrap
from controlplane.runtime import serve
from controlplane.testing.envoy import EnvoyProcess, free_port


@dataclass
class Answer:
    status: int
    backend: str | None
    body: dict[str, Any]
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300


class Pipeline:
    def __init__(self, manifests: Path | None, **settings: Any) -> None:
        """`manifests`: the directory the file source follows; None with `kubeconfig=...`."""
        self.manifests = manifests
        self.http_port, self.https_port = free_port(), free_port()
        self.xds_port, self.health_port = free_port(), free_port()
        self.settings = ServeSettings(
            manifests=manifests,
            xds_address=f"127.0.0.1:{self.xds_port}",
            health_address=f"127.0.0.1:{self.health_port}",
            envoy_http_port=self.http_port,
            envoy_https_port=self.https_port,
            holdoff_delay=0.02,
            holdoff_max_delay=0.1,
            log_json=True,
            log_level="warning",
            **settings,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.envoy: EnvoyProcess | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start_controller(self) -> None:
        """Only the controller (no Envoy): for tests that talk xDS themselves."""
        self._task = asyncio.create_task(serve(self.settings, stop=self._stop))
        await self.wait_ready()

    async def stop_controller(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)

    async def __aenter__(self) -> Self:
        await self.start_controller()
        self.envoy = EnvoyProcess(
            render_bootstrap(xds_address=self.settings.xds_address, mode=self.settings.xds_mode)
        )
        await self.envoy.start()
        await self.envoy.wait_live(timeout_s=20)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
        if self.envoy is not None:
            await self.envoy.stop()
        await self.stop_controller()

    async def wait_ready(self, timeout_s: float = 15) -> None:
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        deadline = asyncio.get_running_loop().time() + timeout_s
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                if self._task is not None and self._task.done():
                    self._task.result()  # raise what stopped the controller
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise TimeoutError("controller never became ready")

    async def statuses(self) -> dict[tuple[str, str], dict[str, str]]:
        """Every IngressRoute's status as `/debug/status` serves it, by (namespace, name)."""
        url = f"http://127.0.0.1:{self.health_port}/debug/status"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            rows = await response.json()
        return {(r["namespace"], r["name"]): r for r in rows if r["kind"] == "IngressRoute"}

    def write(self, name: str, *documents: Mapping[str, Any]) -> None:
        assert self.manifests is not None, "write() needs the file source"
        path = self.manifests / name
        path.write_text(yaml.safe_dump_all(list(documents)), encoding="utf-8")

    async def get(
        self,
        host: str,
        path: str = "/",
        *,
        https: bool = False,
        ca: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        assert self._session is not None
        if https:
            context = ssl.create_default_context(cadata=ca.decode() if ca else None)
            url = f"https://127.0.0.1:{self.https_port}{path}"
            request = self._session.get(
                url,
                headers={"Host": host, **(headers or {})},
                ssl=context,
                server_hostname=host,
                allow_redirects=False,
            )
        else:
            url = f"http://127.0.0.1:{self.http_port}{path}"
            request = self._session.get(
                url, headers={"Host": host, **(headers or {})}, allow_redirects=False
            )
        async with request as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = {}
            return Answer(
                response.status,
                response.headers.get("x-backend-name"),
                body if isinstance(body, dict) else {},
                CIMultiDict(response.headers),
            )

    async def eventually(
        self,
        host: str,
        path: str,
        check: Callable[[Answer], bool],
        *,
        timeout_s: float = 10,
        **kwargs: Any,
    ) -> Answer:
        """Request until `check` holds (configuration propagates asynchronously)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        last: Answer | BaseException | None = None
        while asyncio.get_running_loop().time() < deadline:
            try:
                last = await self.get(host, path, **kwargs)
                if check(last):
                    return last
            except (aiohttp.ClientError, ssl.SSLError, OSError) as error:
                last = error
            await asyncio.sleep(0.05)
        raise AssertionError(f"{host}{path}: condition never held; last answer: {last!r}")


def service(
    name: str, port: int, *, namespace: str = "default", **annotations: str
) -> dict[str, Any]:
    return kube_manifests.service(name, namespace, [("http", 80, port)], annotations=annotations)


def endpoint_slice(
    service_name: str, port: int, *, namespace: str = "default", ready: bool = True
) -> dict[str, Any]:
    """One slice per backend (each local backend is its own port on 127.0.0.1)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-{port}",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}],
    }


def ingress(
    name: str,
    host: str | None,
    paths: list[tuple[str, str, str]],
    *,
    tls_secret: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """paths: (path, pathType, service)."""
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": path_type,
                    "backend": {"service": {"name": svc, "port": {"number": 80}}},
                }
                for path, path_type, svc in paths
            ]
        }
    }
    if host:
        rule["host"] = host
    spec: dict[str, Any] = {"rules": [rule]}
    if tls_secret and host:
        spec["tls"] = [{"hosts": [host], "secretName": tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "annotations": dict(annotations or {})},
        "spec": spec,
    }
