"""`certgen --rotate` with a real Envoy and real controllers: a new CA, and no handshake fails.

The rotation's two steps (`certgen.plan_rotation`: *trust*, a ca.crt holding the new CA and
the current one; then *leaves*, the new CA's certificates) reach the two sides' Secret
volumes in the worst order the kubelet may choose: the controllers' volume first, Envoy's
later, for each step. Two controller replicas share the controllers' volume (one Secret, two
pods) and Envoy knows both.

After each of the four volume updates a new mTLS handshake is forced: the replica holding
Envoy's stream is killed, Envoy reconnects to the other one, which has been running all along
and reloads its files at the handshake (the path a rotation in a cluster takes), while Envoy
uses whatever its file-based SDS has loaded. An edit is then applied and must reach Envoy over
that new connection, and the killed replica comes back (reading the files as they are then).
Envoy's client certificate and trusted CAs are checked to be the ones of each step once its
volume is updated (no restart). Throughout, a request loop through Envoy sees only 200s, and
Envoy counts no TLS error on its xDS cluster: no handshake failed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from mtls_rig import (
    Traffic,
    backend_manifests,
    client_certificate_serials,
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
from controlplane.testing.envoy import EnvoyProcess, free_ports
from controlplane.testing.mtls import SecretVolume, scratch_dir, update_volumes, volumes_for

pytestmark = pytest.mark.e2e


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend("app") as app:
        yield app


def _serials(pem: bytes) -> set[int]:
    return {cert.serial_number for cert in x509.load_pem_x509_certificates(pem)}


async def _trusted_ca_serials(envoy: EnvoyProcess) -> set[int]:
    """Serial numbers of the CAs Envoy trusts for the controller's certificate (``/certs``)."""
    status, body = await envoy.admin_get("/certs")
    assert status == 200, body
    return {
        int(ca["serial_number"], 16)
        for context in json.loads(body).get("certificates", [])
        for ca in context.get("ca_cert", [])
    }


async def _streams(replicas: list[ControllerProcess]) -> list[int]:
    return [await xds_streams(replica) for replica in replicas]


async def test_a_rotation_in_the_worst_order_fails_no_handshake_and_no_request(
    tmp_path: Path, backend: Backend
) -> None:
    workdir = scratch_dir("rotation-")
    before = certgen.generate()
    rotation = certgen.plan_rotation(
        (before.ca_pem, before.controlplane), (before.ca_pem, before.envoy)
    )
    assert rotation.kept == 1
    server_volume, envoy_volume = volumes_for(before, workdir / "certs")
    backend_manifests(tmp_path, backend)
    route_host(tmp_path, "app.test", "app")
    http_port, https_port = free_ports(2)
    replicas = [
        controller(tmp_path, server_volume, workdir, http_port=http_port,
                   https_port=https_port, label=label)
        for label in ("a", "b")
    ]  # fmt: skip
    for replica in replicas:
        await replica.start()
    envoy = await mtls_envoy([r.xds_address for r in replicas], envoy_volume, workdir / "envoy")
    traffic = Traffic(http_port, ["app.test"])

    async def envoy_holds(bundle: certgen.Bundle) -> bool:
        return await client_certificate_serials(envoy) == _serials(
            bundle.envoy.cert_pem
        ) and await _trusted_ca_serials(envoy) == _serials(bundle.ca_pem)

    async def new_handshake_then_edit(step: str) -> None:
        seen: list[int] = []

        async def one_stream() -> bool:
            seen[:] = await _streams(replicas)
            return sorted(seen) == [0, 1]

        await eventually(one_stream, within=5, message=f"{step}: Envoy holds one stream")
        victim = replicas[seen.index(1)]
        stats = await xds_stats(envoy)
        await victim.kill()

        async def reconnected() -> bool:
            now = await xds_stats(envoy)
            return now["connected"] == 1 and now["handshakes"] > stats["handshakes"]

        await eventually(reconnected, within=10, message=f"{step}: Envoy handshook again")
        route_host(tmp_path, f"{step}.test", "app")
        await routed(http_port, f"{step}.test", "app")
        await victim.start()

    try:
        await envoy.wait_live(timeout_s=20)
        await routed(http_port, "app.test", "app")
        assert await envoy_holds(before)
        traffic.start()

        # Step 1 (trust) reaches the controllers first, then Envoy.
        update_volumes(rotation.trust, server_volume, None)
        await new_handshake_then_edit("trust-controllers")
        update_volumes(rotation.trust, None, envoy_volume)
        await eventually(lambda: envoy_holds(rotation.trust), within=10,
                         message="Envoy trusts both CAs")  # fmt: skip
        await new_handshake_then_edit("trust-envoy")

        # The rotation's wait is over: step 2 (leaves), the controllers first again.
        update_volumes(rotation.leaves, server_volume, None)
        await new_handshake_then_edit("leaves-controllers")
        update_volumes(rotation.leaves, None, envoy_volume)
        await eventually(lambda: envoy_holds(rotation.leaves), within=10,
                         message="Envoy holds the new CA's certificate")  # fmt: skip
        await new_handshake_then_edit("leaves-envoy")

        stats = await xds_stats(envoy)
        assert stats["tls_errors"] == 0, stats
        assert stats["handshakes"] == 5, stats  # the first connection and one per step
    finally:
        await traffic.stop()
        await envoy.stop()
        for replica in replicas:
            await replica.stop()
    assert traffic.total > 50
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.statuses) == {200}


def test_the_volumes_hold_what_a_rotation_writes(tmp_path: Path) -> None:
    """The rig's volumes are the Secrets `rotate_secrets` writes: each side's three files."""
    before = certgen.generate()
    rotation = certgen.plan_rotation(
        (before.ca_pem, before.controlplane), (before.ca_pem, before.envoy)
    )
    server = SecretVolume(tmp_path / "controlplane")
    update_volumes(rotation.trust, server, None)
    manifests = certgen.secret_manifests(rotation.trust, "ns")
    for key in ("ca.crt", "tls.crt", "tls.key"):
        written = base64.b64decode(manifests[certgen.CONTROLPLANE_SECRET]["data"][key])
        assert server.path(key).read_bytes() == written
