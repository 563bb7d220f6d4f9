"""Issue 4 end to end: the test API server, the real kubectl, the controller with --kubeconfig,
a real Envoy; and two controller processes sharing one Lease."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cluster import ROOT, Kubectl, ingressroute, namespace
from pipeline import Pipeline, endpoint_slice, service
from waiting import eventually

from controlplane.testing.apiserver import TestApiServer
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[TestApiServer, Kubectl]]:
    server = TestApiServer(bookmark_interval=1.0)
    await server.start("127.0.0.1", 0)
    kubeconfig = tmp_path / "kubeconfig"
    server.write_kubeconfig(kubeconfig)
    kubectl = Kubectl(kubeconfig, tmp_path / "kube-cache")
    await kubectl.run("apply", "-f", str(ROOT / "crds"))
    await kubectl.apply(namespace("projectcontour"))
    try:
        yield server, kubectl
    finally:
        await server.stop()


def status_patches(server: TestApiServer) -> int:
    return server.request_count(verb="patch", resource="ingressroutes", subresource="status")


async def test_kubectl_apply_status_columns_and_routing_follow_edits(
    tmp_path: Path, cluster: tuple[TestApiServer, Kubectl]
) -> None:
    server, kubectl = cluster
    async with Backend("blue") as blue, Backend("green") as green:
        await kubectl.apply(
            service("blue", blue.port),
            endpoint_slice("blue", blue.port),
            service("green", green.port),
            endpoint_slice("green", green.port),
            ingressroute("web", "web.example.com", [{"match": "/", "services": [
                {"name": "blue", "port": 80}]}]),
        )  # fmt: skip
        async with Pipeline(
            None,
            kubeconfig=tmp_path / "kubeconfig",
            leader_election=False,
            refuse_local_endpoints=False,  # the backends run on 127.0.0.1
        ) as pipe:
            await pipe.eventually("web.example.com", "/", lambda a: a.backend == "blue")

            async def status_written() -> bool:
                table = await kubectl.run("get", "ingressroute", "web")
                return "valid IngressRoute" in table

            await eventually(status_written, within=10, interval=0.1)
            table = (await kubectl.run("get", "ingressroute", "web")).splitlines()
            header = table[0].split()
            for column in ("NAME", "FQDN", "TLS", "SECRET", "FIRST", "ROUTE", "STATUS"):
                assert column in header
            assert "web.example.com" in table[1] and " / " in f" {table[1]} "
            assert "valid" in table[1]
            assert status_patches(server) == 1

            # Edit with kubectl: the request now lands on green; the status stays, unwritten.
            await kubectl.apply(
                ingressroute("web", "web.example.com", [{"match": "/", "services": [
                    {"name": "green", "port": 80}]}]),
            )  # fmt: skip
            await pipe.eventually("web.example.com", "/", lambda a: a.backend == "green")

            async def generation_observed() -> bool:
                obj = await kubectl.get_json("ingressroute", "web")
                return bool(obj["status"].get("observedGeneration") == 2)

            await eventually(generation_observed, within=10, interval=0.1)
            assert status_patches(server) == 2  # one write per real change, none for echoes

            # A broken route: status says why, Envoy keeps serving the others.
            await kubectl.apply(
                ingressroute("broken", "broken.example.com", [{"match": "/", "services": [
                    {"name": "missing", "port": 80}]}]),
            )  # fmt: skip

            async def broken_reported() -> bool:
                obj = await kubectl.get_json("ingressroute", "broken")
                return bool(obj.get("status", {}).get("currentStatus") == "invalid")

            await eventually(broken_reported, within=10, interval=0.1)
            obj = await kubectl.get_json("ingressroute", "broken")
            assert "Service [missing:80] is invalid or missing" in obj["status"]["description"]
            assert (await pipe.get("web.example.com", "/")).backend == "green"


async def _serve_process(
    kubeconfig: Path, identity: str, log: Path
) -> tuple[asyncio.subprocess.Process, int]:
    """`controlplane serve` in a process of its own, and its health port."""
    health = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controlplane", "serve",
        "--kubeconfig", str(kubeconfig),
        "--xds-address", f"127.0.0.1:{free_port()}",
        "--health-address", f"127.0.0.1:{health}",
        "--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.3",
        "--log-json",
        stdout=log.open("w"), stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "POD_NAME": identity},
    )  # fmt: skip
    return process, health


async def _ready(health_port: int) -> bool:
    """Whether the replica has published its first build (and so submitted its statuses)."""
    try:
        url = f"http://127.0.0.1:{health_port}/readyz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_two_controllers_one_leader_writes_and_a_killed_leader_hands_over(
    tmp_path: Path, cluster: tuple[TestApiServer, Kubectl]
) -> None:
    server, kubectl = cluster
    kubeconfig = tmp_path / "kubeconfig"
    await kubectl.apply(ingressroute("first", "first.example.com", [{"match": "/", "services": [
        {"name": "nowhere", "port": 80}]}]))  # fmt: skip
    replicas = {
        name: await _serve_process(kubeconfig, name, tmp_path / f"{name}.log")
        for name in ("replica-a", "replica-b")
    }
    processes = {name: process for name, (process, _) in replicas.items()}
    try:

        async def first_reported() -> bool:
            obj = await kubectl.get_json("ingressroute", "first")
            return bool(obj.get("status", {}).get("currentStatus") == "invalid")

        await eventually(first_reported, within=20, interval=0.1)
        for _, health_port in replicas.values():  # both built and submitted; one may write
            await eventually(lambda port=health_port: _ready(port), within=20, interval=0.1)
        assert status_patches(server) == 1

        # No --leader-election-namespace: the Lease is in the kubeconfig context's namespace.
        lease = await kubectl.get_json("lease", "-n", "default", "controlplane-leader")
        leader = lease["spec"]["holderIdentity"]
        assert any(leader.startswith(name) for name in processes)
        victim = next(name for name in processes if leader.startswith(name))
        processes[victim].send_signal(signal.SIGKILL)
        await processes[victim].wait()
        killed_at = asyncio.get_running_loop().time()

        await kubectl.apply(ingressroute("second", "second.example.com", [{"match": "/",
            "services": [{"name": "nowhere", "port": 80}]}]))  # fmt: skip

        async def second_reported() -> bool:
            obj = await kubectl.get_json("ingressroute", "second")
            return bool(obj.get("status", {}).get("currentStatus") == "invalid")

        await eventually(second_reported, within=15, interval=0.1)
        handover = asyncio.get_running_loop().time() - killed_at
        assert handover < 2.0 + 2.0  # one lease duration, plus retry jitter and kubectl's time
        lease = await kubectl.get_json("lease", "-n", "default", "controlplane-leader")
        assert not lease["spec"]["holderIdentity"].startswith(victim)
    finally:
        for proc in processes.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
