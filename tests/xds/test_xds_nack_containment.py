"""A NACK is contained, over a real gRPC stream (tier 2): the runtime, the xDS server, and a
client that answers the way Envoy would.

A hostile tenant's route is translated with a flaw Envoy refuses and our checks pass
(`faults.envoy_rejects`, an RE2 pattern Envoy cannot compile: its message names nothing). The
client rejects every RouteConfiguration holding such a route, with that message, and accepts
the rest. The controller bisects over the wire (its probes, the client's ACKs and NACKs), leaves
the hostile virtual host out, keeps every other tenant flowing, and says so on the owner's
status and in `/debug/nacks`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer
from envoy.config.route.v3 import route_pb2
from envoy.service.route.v3 import rds_pb2_grpc
from faults import envoy_rejects
from kube_manifests import service
from xds_support import Client, ack, request

from controlplane.dag import BuildOptions
from controlplane.envoy import TranslateOptions
from controlplane.health import health_app
from controlplane.publisher import Unit
from controlplane.runtime import Runtime
from controlplane.xds import ROUTE_TYPE, SnapshotCache, XdsServer

TENANTS = [f"t{i}" for i in range(6)]
ROUTE_NAMES = ["ingress_http", "ingress_https"]


def ingressroute(namespace: str, fqdn: str, service_name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "app", "namespace": namespace},
        "spec": {
            "virtualhost": {"fqdn": fqdn},
            "routes": [{"match": "/", "services": [{"name": service_name, "port": 80}]}],
        },
    }


def envoy_says(config: route_pb2.RouteConfiguration) -> str | None:
    """What Envoy 1.40 says of a RouteConfiguration with a route it cannot compile."""
    for vhost in config.virtual_hosts:
        for route in vhost.routes:
            if route.route.regex_rewrite.pattern.regex == "(":
                return "missing ): ("
    return None


class Envoy:
    """An RDS stream that accepts or rejects each response as Envoy would."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.held: dict[str, route_pb2.RouteConfiguration] = {}
        self.verdicts: list[bool] = []

    async def converge(self, rounds: int = 30) -> None:
        for _ in range(rounds):
            try:
                response = await self.client.recv(wait=0.5)
            except TimeoutError:
                return
            configs = [route_pb2.RouteConfiguration.FromString(r.value) for r in response.resources]
            errors = [e for c in configs if (e := envoy_says(c)) is not None]
            if errors:
                self.verdicts.append(False)
                await self.client.send(ack(response, ROUTE_NAMES, error=errors[0]))
                continue
            self.verdicts.append(True)
            self.held.update({c.name: c for c in configs})
            await self.client.send(ack(response, ROUTE_NAMES))
        raise AssertionError("the stream never settled")

    def hosts(self) -> set[str]:
        return {v.name for v in self.held["ingress_http"].virtual_hosts}


@pytest.fixture
def faulty() -> Iterator[None]:
    with envoy_rejects("hostile", "regex"):
        yield


@pytest.fixture
async def runtime(cache: SnapshotCache, faulty: None) -> Runtime:
    runtime = Runtime(
        build_options=BuildOptions(), translate_options=TranslateOptions(), cache=cache
    )
    for tenant in TENANTS:
        runtime.store.apply_raw(service("web", tenant))
        runtime.store.apply_raw(ingressroute(tenant, f"{tenant}.example.com"))
    runtime.store.apply_raw(service("web", "hostile"))
    runtime.store.apply_raw(ingressroute("hostile", "evil.example.com"))
    await runtime.rebuild()
    return runtime


@pytest.fixture
async def debug(runtime: Runtime, cache: SnapshotCache) -> AsyncIterator[TestClient]:
    import asyncio

    ready = asyncio.Event()
    ready.set()
    async with TestClient(TestServer(health_app(ready, runtime.publisher, cache))) as client:
        yield client


async def open_envoy(channel: grpc.aio.Channel, server: XdsServer) -> Envoy:
    client = Client(rds_pb2_grpc.RouteDiscoveryServiceStub(channel).StreamRoutes, server)
    await client.send(request(ROUTE_TYPE, ROUTE_NAMES, node=True))
    return Envoy(client)


async def test_the_hostile_virtual_host_is_found_by_bisection_and_left_out(
    runtime: Runtime, server: XdsServer, channel: grpc.aio.Channel, debug: TestClient
) -> None:
    envoy = await open_envoy(channel, server)
    try:
        await envoy.converge()
    finally:
        envoy.client.close()
    quarantine = runtime.publisher.quarantine
    assert set(quarantine.held) == {Unit(ROUTE_TYPE, "ingress_http", "evil.example.com")}
    assert envoy.verdicts[0] is False and envoy.verdicts[-1] is True
    assert len(envoy.verdicts) > 2  # bisected: the message names no virtual host
    assert envoy.hosts() == {f"{t}.example.com" for t in TENANTS}

    # The owner is told, on its status; the good tenants' statuses say nothing of it.
    status = {(row["namespace"]): row for row in await (await debug.get("/debug/status")).json()}
    assert status["hostile"]["currentStatus"] == "valid"
    assert (
        "not served: Envoy rejected virtual host evil.example.com"
        in (status["hostile"]["description"])
    )
    assert "missing ): (" in status["hostile"]["description"]
    assert all("Envoy rejected" not in status[t]["description"] for t in TENANTS)

    # /debug/nacks: each NACK with what came of it; /debug/quarantine: what is left out now.
    nacks = await (await debug.get("/debug/nacks")).json()
    assert nacks[0]["message"] == "missing ): ("
    assert nacks[0]["resources"] == ["ingress_http", "ingress_https"]
    contained = [entry for nack in nacks for entry in nack["contained"]]
    assert [(c["resource"], c["part"], c["owner"]) for c in contained] == [
        ("ingress_http", "evil.example.com", "IngressRoute hostile/app")
    ]
    held = await (await debug.get("/debug/quarantine")).json()
    assert held == contained


async def test_other_tenants_keep_flowing_and_a_changed_owner_is_tried_again(
    runtime: Runtime, server: XdsServer, channel: grpc.aio.Channel
) -> None:
    envoy = await open_envoy(channel, server)
    try:
        await envoy.converge()
        assert len(runtime.publisher.quarantine.held) == 1

        # A good tenant's edit is published at once, the hostile host still left out.
        runtime.store.apply_raw(ingressroute("t0", "t0-new.example.com"))
        await runtime.rebuild()
        await envoy.converge()
        assert envoy.verdicts[-1] is True
        assert "t0-new.example.com" in envoy.hosts()
        assert "evil.example.com" not in envoy.hosts()

        # The hostile owner changes its object: released and sent again; still refused, so
        # caught again (the only virtual host changed since the last ACK: no bisection). What
        # is published is then what this Envoy already holds, so nothing more is sent.
        runtime.store.apply_raw(ingressroute("hostile", "evil.example.com", "other"))
        runtime.store.apply_raw(service("other", "hostile"))
        await runtime.rebuild()
        before = len(envoy.verdicts)
        await envoy.converge()
        assert envoy.verdicts[before:] == [False]
        (entry,) = runtime.publisher.quarantine.entries()
        assert entry.unit == Unit(ROUTE_TYPE, "ingress_http", "evil.example.com")
        assert "evil.example.com" not in envoy.hosts()

        # Deleted: its entry goes too (the quarantine holds only what the configuration has).
        runtime.store.delete("IngressRoute", "hostile", "app")
        await runtime.rebuild()
        await envoy.converge()
        assert runtime.publisher.quarantine.held == {}
    finally:
        envoy.client.close()
