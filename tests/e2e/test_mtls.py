"""Envoy and the controller in different processes, over mutual TLS (issue 11 items 2 and 6).

- A real Envoy, bootstrapped as `controlplane bootstrap --xds-ca --xds-cert --xds-key` writes
  it, gets its configuration from a `controlplane serve --xds-ca ...` process over mTLS
  (TLS 1.3), and routes a request to a backend.
- Envoys that cannot prove themselves get nothing and never go LIVE: one with a certificate of
  another CA, one speaking plaintext. The controller refuses their handshakes; they retry.
- Rotation under load: the Envoy's Secret volume is updated (the kubelet's `..data` swap) and
  Envoy loads its new client certificate without a restart; the controller's volume is updated
  and new handshakes get its new certificate; the ADS stream opened before either keeps
  delivering edits (no reconnection happened). Then the controller restarts, Envoy reconnects
  with the new certificates on both sides and keeps receiving edits. A request loop through
  Envoy runs throughout and sees nothing but 200s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mtls_rig import (
    Traffic,
    backend_manifests,
    client_certificate_serials,
    controller,
    mtls_envoy,
    route_host,
    routed,
    xds_stats,
)
from waiting import eventually

from controlplane import certgen
from controlplane.testing.backends import Backend
from controlplane.testing.certs import CertKey, issue_leaf, make_ca
from controlplane.testing.envoy import free_port
from controlplane.testing.mtls import SecretVolume, scratch_dir, served_certificate, volumes_for

pytestmark = pytest.mark.e2e


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend("app") as app:
        yield app


@pytest.fixture
def workdir() -> Path:
    return scratch_dir("mtls-e2e-")


async def test_envoy_over_mtls_routes_and_strangers_get_nothing(
    tmp_path: Path, workdir: Path, backend: Backend
) -> None:
    bundle = certgen.generate()
    server_volume, envoy_volume = volumes_for(bundle, workdir / "certs")
    http_port = free_port()
    backend_manifests(tmp_path, backend)
    route_host(tmp_path, "app.test", "app")
    replica = controller(tmp_path, server_volume, workdir, http_port=http_port)
    await replica.start()
    envoys = []
    try:
        envoy = await mtls_envoy([replica.xds_address], envoy_volume, workdir / "good")
        envoys.append(envoy)
        await envoy.wait_live(timeout_s=20)
        await routed(http_port, "app.test", "app")
        stats = await envoy.stats()
        assert stats["cluster.xds_cluster.ssl.handshake"] >= 1
        assert stats["cluster.xds_cluster.ssl.versions.TLSv1.3"] >= 1
        assert stats["control_plane.connected_state"] == 1

        # Another CA's Envoy certificate (trusting our CA all the same), and no TLS at all.
        stranger = SecretVolume(workdir / "certs" / "stranger")
        other = certgen.generate()
        stranger.write({"ca.crt": bundle.ca_pem, "tls.crt": other.envoy.cert_pem,
                        "tls.key": other.envoy.key_pem})  # fmt: skip
        refused = [
            await mtls_envoy([replica.xds_address], stranger, workdir / "stranger"),
            await mtls_envoy([replica.xds_address], None, workdir / "plaintext"),
        ]
        envoys += refused
        for outsider in refused:

            async def retried(outsider=outsider) -> bool:  # type: ignore[no-untyped-def]
                return (await xds_stats(outsider))["connections"] >= 3

            await eventually(retried, within=10, message="the outsider retried")
            assert await outsider.state() == "PRE_INITIALIZING"
            assert (await xds_stats(outsider))["connected"] == 0
            assert not await outsider.config_dump(resource="dynamic_active_clusters")
        # TLS 1.3: the stranger's handshake completes on its side, then our server, having
        # checked its certificate, closes the connection before any request is read.
        stranger_stats = await refused[0].stats()
        assert stranger_stats["cluster.xds_cluster.ssl.handshake"] >= 3
        assert stranger_stats["cluster.xds_cluster.upstream_cx_destroy_remote_with_active_rq"] >= 3
        assert stranger_stats.get("cluster.xds_cluster.upstream_rq_200", 0) == 0
    finally:
        for item in envoys:
            await item.stop()
        await replica.stop()


def _serial(pair: CertKey) -> int:
    return pair.certificate.serial_number


async def test_certificates_rotate_under_load_without_a_failed_request(
    tmp_path: Path, workdir: Path, backend: Backend
) -> None:
    ca = make_ca()
    server_v1 = issue_leaf(ca, ["controlplane", "127.0.0.1"])
    envoy_v1 = issue_leaf(ca, ["envoy"])
    server_volume = SecretVolume(workdir / "controlplane")
    envoy_volume = SecretVolume(workdir / "envoy-certs")

    def put(volume: SecretVolume, leaf: CertKey) -> None:
        volume.write({"ca.crt": ca.cert_pem, "tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem})

    put(server_volume, server_v1)
    put(envoy_volume, envoy_v1)
    http_port = free_port()
    backend_manifests(tmp_path, backend)
    route_host(tmp_path, "app.test", "app")
    replica = controller(tmp_path, server_volume, workdir, http_port=http_port)
    await replica.start()
    envoy = await mtls_envoy([replica.xds_address], envoy_volume, workdir / "envoy")
    traffic = Traffic(http_port, ["app.test"])
    try:
        await envoy.wait_live(timeout_s=20)
        await routed(http_port, "app.test", "app")
        traffic.start()
        before = await xds_stats(envoy)
        assert before["connections"] == 1 and before["handshakes"] == 1
        assert await client_certificate_serials(envoy) == {_serial(envoy_v1)}

        # 1. Envoy's Secret volume is updated: Envoy loads the new client certificate itself.
        envoy_v2 = issue_leaf(ca, ["envoy"])
        put(envoy_volume, envoy_v2)

        async def envoy_reloaded() -> bool:
            return await client_certificate_serials(envoy) == {_serial(envoy_v2)}

        await eventually(envoy_reloaded, within=10, message="Envoy loaded its new certificate")

        # 2. The controller's volume is updated: new handshakes get its new certificate.
        server_v2 = issue_leaf(ca, ["controlplane", "127.0.0.1"])
        put(server_volume, server_v2)
        host, port = replica.xds_address.rsplit(":", 1)
        presented = await asyncio.to_thread(
            served_certificate, host, int(port), ca=envoy_volume.path("ca.crt"),
            cert=envoy_volume.path("tls.crt"), key=envoy_volume.path("tls.key"),
        )  # fmt: skip
        assert presented.serial_number == _serial(server_v2)

        # 3. The stream opened before both rotations still delivers edits: no reconnection.
        route_host(tmp_path, "after-rotation.test", "app")
        await routed(http_port, "after-rotation.test", "app")
        during = await xds_stats(envoy)
        assert during["connections"] == 1 and during["handshakes"] == 1

        # 4. A new connection uses the new certificates on both sides.
        await replica.stop()
        await replica.start()

        async def reconnected() -> bool:
            stats = await xds_stats(envoy)
            return stats["handshakes"] == 2 and stats["connected"] == 1

        await eventually(reconnected, within=10, message="Envoy reconnected over mTLS")
        route_host(tmp_path, "after-restart.test", "app")
        await routed(http_port, "after-restart.test", "app")
        after = await xds_stats(envoy)
        assert after["tls_errors"] == 0
        # The restarted controller served the same bytes: nothing was modified or drained.
        assert after["listeners_modified"] == before["listeners_modified"] == 0
        assert after["listeners_draining"] == 0
    finally:
        await traffic.stop()
        await envoy.stop()
        await replica.stop()
    assert traffic.total > 50
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.statuses) == {200}
