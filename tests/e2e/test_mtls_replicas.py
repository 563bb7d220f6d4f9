"""Two controller replicas, one Envoy fleet (issue 11 items 3 and 6).

Two `controlplane serve` processes read the same manifests and serve mTLS xDS; one Envoy is
bootstrapped with both addresses (`bootstrap --xds-address A --xds-address B`).

- Every replica publishes byte-identical resources and versions for the same state: fetched
  over ADS from each process, every type's `version_info` and every resource's bytes agree
  (the manifests include delegation, TLS and an SDS secret, so every type is compared).
- Each replica in turn is killed (SIGKILL) while a request loop runs through Envoy. Envoy's ADS
  stream moves to the other replica, which sends what Envoy already holds: no listener or
  cluster is modified or removed, nothing drains. An edit applied after the kill reaches Envoy
  through the survivor; the killed replica comes back and serves the same bytes again.
  The loop sees nothing but 200s.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mtls_rig import (
    Traffic,
    backend_manifests,
    controller,
    mtls_envoy,
    route_host,
    routed,
    xds_stats,
    xds_streams,
)
from waiting import eventually

from controlplane import certgen
from controlplane.testing.backends import Backend
from controlplane.testing.controller import ControllerProcess
from controlplane.testing.envoy import free_ports
from controlplane.testing.mtls import scratch_dir, volumes_for
from controlplane.xds import TlsFiles, fetch_resources

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ingressroute"


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend("app") as app:
        yield app


async def _same_everywhere(replicas: list[ControllerProcess], tls: TlsFiles) -> None:
    served = [await fetch_resources(r.xds_address, tls=tls, timeout_s=10) for r in replicas]
    first = served[0]
    assert {len(item.resources) for item in first.values()} >= {1}
    assert len(first) == 5, sorted(first)  # clusters, endpoints, listeners, routes, secrets
    for other in served[1:]:
        assert other.keys() == first.keys()
        for type_url, fetched in first.items():
            assert other[type_url].version == fetched.version, type_url
            assert other[type_url].resources == fetched.resources, type_url


async def test_two_replicas_serve_the_same_bytes_and_envoy_survives_losing_each(
    tmp_path: Path, backend: Backend
) -> None:
    workdir = scratch_dir("replicas-")
    manifests = tmp_path / "manifests"
    shutil.copytree(EXAMPLES, manifests)
    backend_manifests(manifests, backend)
    route_host(manifests, "app.test", "app")
    server_volume, envoy_volume = volumes_for(certgen.generate(), workdir / "certs")
    envoy_tls = TlsFiles(
        envoy_volume.path("ca.crt"), envoy_volume.path("tls.crt"), envoy_volume.path("tls.key")
    )
    http_port, https_port = free_ports(2)
    replicas = [
        controller(manifests, server_volume, workdir, http_port=http_port,
                   https_port=https_port, label=label)
        for label in ("a", "b")
    ]  # fmt: skip
    for replica in replicas:
        await replica.start()
    envoy = None
    traffic = Traffic(http_port, ["app.test"])
    try:
        await _same_everywhere(replicas, envoy_tls)
        envoy = await mtls_envoy([r.xds_address for r in replicas], envoy_volume, workdir / "e")
        await envoy.wait_live(timeout_s=20)
        await routed(http_port, "app.test", "app")
        traffic.start()

        for turn in range(2):
            # The replica Envoy is connected to now (the other one holds no stream, once the
            # debug client's streams are closed on the server's side too).
            streams: list[int] = []
            await eventually(
                lambda seen=streams: _one_stream(replicas, seen),
                within=5,
                message="Envoy holds one stream",
            )
            victim = replicas[streams.index(1)]
            survivor = replicas[streams.index(0)]
            before = await xds_stats(envoy)
            await victim.kill()

            async def failed_over(connections: int = before["connections"]) -> bool:
                stats = await xds_stats(envoy)  # type: ignore[union-attr]
                return stats["connected"] == 1 and stats["connections"] > connections

            await eventually(failed_over, within=10, message="Envoy moved to the survivor")
            await eventually(
                lambda s=survivor: _holds_a_stream(s), within=5, message="survivor holds it"
            )
            after = await xds_stats(envoy)
            for counter in ("listeners_modified", "listeners_removed", "listeners_draining",
                            "clusters_modified", "clusters_removed"):  # fmt: skip
                assert after[counter] == before[counter], (turn, counter, before, after)

            # An edit made while the victim is down reaches Envoy through the survivor.
            route_host(manifests, f"edit{turn}.test", "app")
            await routed(http_port, f"edit{turn}.test", "app")
            await victim.start()
            await _same_everywhere(replicas, envoy_tls)
    finally:
        await traffic.stop()
        if envoy is not None:
            await envoy.stop()
        for replica in replicas:
            await replica.stop()
    assert traffic.total > 50
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.statuses) == {200}


async def _one_stream(replicas: list[ControllerProcess], seen: list[int]) -> bool:
    seen[:] = [await xds_streams(r) for r in replicas]
    return sorted(seen) == [0, 1]


async def _holds_a_stream(replica: ControllerProcess) -> bool:
    return await xds_streams(replica) == 1
