"""Issue 5 end to end: configuration changes never cost a request, nor a websocket.

Both tests run the whole pipeline (manifest files → the controller in-process → a real Envoy →
local backends) and change the configuration while traffic flows:

- Stable hosts keep serving while 120 changes land: their backends move from one Service to
  another (always to a Service no route used before, so the move needs a new Cluster and its
  endpoints before the route may point at it, and the old Cluster goes away after), and other
  hosts are added, edited and removed around them. Every request goes to a stable host, so
  every answer must be a 200 from a backend that host was routed to; a 404, a 503 or a reset
  connection means Envoy was briefly sent a route to a cluster it did not have (or had lost).
- A websocket opened through Envoy keeps echoing while 50 other hosts are added and edited,
  and the `ingress_http` Listener is never sent again: a listener update would make Envoy drain
  (and eventually close) every connection on it.

Manifests are written atomically (a dot-file renamed into place): the file source would read a
half-written file as "this file declares nothing" and delete its objects, which is the rig's
doing, not the controller's.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from pipeline import Pipeline, endpoint_slice, ingress, service
from prometheus_client import REGISTRY

from controlplane.testing.backends import Backend

pytestmark = pytest.mark.e2e

SERVICES = 6
STABLE_INGRESS = ("stable0.local", "stable1.local")
STABLE_ROUTE = ("stable2.local", "stable3.local")  # IngressRoutes, stable3 through a delegate
CHANGES = 120
CHANGE_INTERVAL_S = 0.04
CLIENTS = 3


def write_atomically(directory: Path, name: str, *documents: Mapping[str, Any]) -> None:
    temporary = directory / f".{name}.tmp"
    temporary.write_text(yaml.safe_dump_all(list(documents)), encoding="utf-8")
    os.replace(temporary, directory / name)


def ingressroute(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def route_to(svc: str, match: str = "/") -> dict[str, Any]:
    return {"match": match, "services": [{"name": svc, "port": 80}]}


class Routing:
    """Which Service each stable host goes to, and the manifests that say so."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.current: dict[str, str] = {}
        self.allowed: dict[str, set[str]] = {}  # host → every backend it was ever routed to

    def point(self, host: str, svc: str) -> None:
        self.current[host] = svc
        self.allowed.setdefault(host, set()).add(svc)
        label = host.split(".")[0]
        if host in STABLE_INGRESS:
            document = ingress(label, host, [("/", "Prefix", svc)])
            write_atomically(self.directory, f"{label}.yaml", document)
        elif host == STABLE_ROUTE[0]:
            document = ingressroute(
                label, {"virtualhost": {"fqdn": host}, "routes": [route_to(svc)]}
            )
            write_atomically(self.directory, f"{label}.yaml", document)
        else:  # the root stays put; its delegate moves
            write_atomically(
                self.directory,
                f"{label}-delegate.yaml",
                ingressroute(f"{label}-app", {"routes": [route_to(svc)]}),
            )

    def write_root_of_delegated_host(self) -> None:
        host = STABLE_ROUTE[1]
        label = host.split(".")[0]
        root = {
            "virtualhost": {"fqdn": host},
            "routes": [{"match": "/", "delegate": {"name": f"{label}-app"}}],
        }
        write_atomically(self.directory, f"{label}.yaml", ingressroute(label, root))

    def unused(self, rng: random.Random) -> str:
        free = sorted({f"svc{n}" for n in range(SERVICES)} - set(self.current.values()))
        return rng.choice(free)


class Traffic:
    """Clients looping GETs over keep-alive connections; every answer is tallied."""

    def __init__(self, http_port: int, hosts: list[str]) -> None:
        self.url = f"http://127.0.0.1:{http_port}/"
        self.hosts = hosts
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.backends: dict[str, Counter[str]] = {host: Counter() for host in hosts}
        self._stop = asyncio.Event()

    async def client(self, offset: int) -> None:
        connector = aiohttp.TCPConnector(limit=1)  # one connection, reused: resets would show
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            turn = offset
            while not self._stop.is_set():
                host = self.hosts[turn % len(self.hosts)]
                turn += 1
                try:
                    async with session.get(self.url, headers={"Host": host}) as response:
                        await response.read()
                        self.statuses[response.status] += 1
                        if response.status == 200:
                            self.backends[host][response.headers.get("x-backend-name", "")] += 1
                        else:
                            self.failures.append(f"{host}: HTTP {response.status}")
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    self.failures.append(f"{host}: {error!r}")
                await asyncio.sleep(0)

    async def run(self, until: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.client(n)) for n in range(CLIENTS)]
        await until.wait()
        self._stop.set()
        await asyncio.gather(*tasks)


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    started = [Backend(f"svc{n}") for n in range(SERVICES)]
    for backend in started:
        await backend.start()
    try:
        yield started
    finally:
        for backend in started:
            await backend.stop()


def services_manifest(backends: list[Backend]) -> list[dict[str, Any]]:
    documents = []
    for backend in backends:
        documents += [
            service(backend.name, backend.port),
            endpoint_slice(backend.name, backend.port),
        ]
    return documents


async def test_stable_hosts_answer_every_request_while_routes_change(
    tmp_path: Path, backends: list[Backend]
) -> None:
    rng = random.Random(5)
    write_atomically(tmp_path, "services.yaml", *services_manifest(backends))
    async with Pipeline(tmp_path) as pipe:
        routing = Routing(tmp_path)
        stable = [*STABLE_INGRESS, *STABLE_ROUTE]
        routing.write_root_of_delegated_host()
        for index, host in enumerate(stable):
            routing.point(host, f"svc{index}")
        for host in stable:
            await pipe.eventually(host, "/", lambda a, h=host: a.backend == routing.current[h])

        done = asyncio.Event()
        traffic = Traffic(pipe.http_port, stable)
        running = asyncio.create_task(traffic.run(done))
        churn: dict[int, int] = {}  # churn host → edits so far (present hosts only)
        kinds: Counter[str] = Counter()
        for change in range(CHANGES):
            if change % 3 == 0:
                host = stable[(change // 3) % len(stable)]
                routing.point(host, routing.unused(rng))
                kinds["move"] += 1
            else:
                index = rng.randrange(8)
                name = f"churn{index}"
                if index not in churn:
                    churn[index] = 0
                    kinds["add"] += 1
                elif rng.random() < 0.3:
                    del churn[index]
                    (tmp_path / f"{name}.yaml").unlink()
                    kinds["remove"] += 1
                    await asyncio.sleep(CHANGE_INTERVAL_S)
                    continue
                else:
                    churn[index] += 1
                    kinds["edit"] += 1
                svc = f"svc{rng.randrange(SERVICES)}"
                paths = [("/", "Prefix", svc), (f"/v{churn[index]}", "Prefix", svc)]
                write_atomically(tmp_path, f"{name}.yaml", ingress(name, f"{name}.local", paths))
            await asyncio.sleep(CHANGE_INTERVAL_S)
        for host in stable:  # every move has reached Envoy
            await pipe.eventually(host, "/", lambda a, h=host: a.backend == routing.current[h])
        await asyncio.sleep(0.5)
        done.set()
        await running

        assert traffic.failures == [], (
            f"{len(traffic.failures)} failed of {sum(traffic.statuses.values())} requests "
            f"({dict(kinds)}): {traffic.failures[:10]}"
        )
        assert sum(traffic.statuses.values()) >= 500, traffic.statuses
        for host in stable:
            landed = set(traffic.backends[host])
            assert landed <= routing.allowed[host], (host, landed, routing.allowed[host])
        assert kinds["move"] >= 40 and kinds["remove"] > 0, kinds
        assert await nacks(pipe) == []


async def nacks(pipe: Pipeline) -> list[Any]:
    """What this controller recorded as rejected by Envoy (its debug endpoint)."""
    url = f"http://127.0.0.1:{pipe.health_port}/debug/nacks"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        found: list[Any] = await response.json()
        return found


def pushes(type_name: str) -> float:
    return REGISTRY.get_sample_value("controlplane_xds_pushes_total", {"type": type_name}) or 0.0


LISTENER_STATS = (
    "listener_manager.lds.update_attempt",
    "listener_manager.lds.version",
    "listener_manager.listener_modified",
    "listener_manager.listener_in_place_updated",
    "listener_manager.listener_removed",
    "listener_manager.total_listeners_draining",
    "http.ingress_http.downstream_cx_drain_close",
)


async def test_a_websocket_stays_open_across_unrelated_changes(tmp_path: Path) -> None:
    async with Backend("ws") as ws_backend, Backend("other") as other:
        write_atomically(
            tmp_path,
            "ws.yaml",
            service("ws", ws_backend.port),
            endpoint_slice("ws", ws_backend.port),
            service("other", other.port),
            endpoint_slice("other", other.port),
            ingress(
                "ws",
                "ws.local",
                [("/", "Prefix", "ws"), ("/ws", "Prefix", "ws")],
                annotations={"contour.heptio.com/websocket-routes": "/ws"},
            ),
        )
        async with Pipeline(tmp_path) as pipe:
            assert pipe.envoy is not None
            await pipe.eventually("ws.local", "/", lambda a: a.backend == "ws")
            before = await pipe.envoy.stats()
            lds_before, rds_before = pushes("lds"), pushes("rds")
            url = f"http://127.0.0.1:{pipe.http_port}/ws"
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(url, headers={"Host": "ws.local"}) as socket,
            ):
                for change in range(50):
                    host = f"other{change % 10}"
                    paths = [("/", "Prefix", "other"), (f"/edit{change}", "Prefix", "other")]
                    write_atomically(
                        tmp_path, f"{host}.yaml", ingress(host, f"{host}.local", paths)
                    )
                    await asyncio.sleep(0.1)
                    await socket.send_str(f"ping {change}")
                    reply = await asyncio.wait_for(socket.receive_str(), 5)
                    assert reply == f"ping {change}"
                await pipe.eventually("other9.local", "/edit49", lambda a: a.backend == "other")
                await socket.send_str("still there")
                assert await asyncio.wait_for(socket.receive_str(), 5) == "still there"
                assert not socket.closed
            after = await pipe.envoy.stats()
            assert await nacks(pipe) == []

        assert rds_before < pushes("rds"), "the changes never reached Envoy"
        assert pushes("lds") == lds_before, "the ingress_http Listener was sent again"
        changed = {name: (before.get(name), after.get(name)) for name in LISTENER_STATS}
        assert all(old == new is not None for old, new in changed.values()), changed
        routes_applied = "http.ingress_http.rds.ingress_http.update_success"
        assert after[routes_applied] - before[routes_applied] >= 25, "changes were not applied"
