"""xDS over mutual TLS, through real gRPC streams on 127.0.0.1 (issue 11 item 2).

- A client with a certificate of the server's CA gets the configuration; a client without a
  certificate, with one of another CA, speaking plaintext, or not trusting the server's CA gets
  nothing: its handshake is refused before any stream reaches the server's handlers.
- The server re-reads its certificate when the files change (a Kubernetes Secret volume update,
  the ``..data`` symlink swap): new handshakes see the new certificate, streams already open
  keep receiving pushes. A half-done rotation (a certificate without its key) keeps the
  previous configuration. A ``ca.crt`` bundle holding a new CA and the previous one (the trust
  step of ``certgen --rotate``) keeps accepting clients of the previous CA.
- Plaintext stays possible without TLS flags; binding it to anything but loopback is warned
  about. Some TLS flags without the others are one clear error, wherever they are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
from envoy.service.discovery.v3 import ads_pb2_grpc
from pydantic import ValidationError
from xds_support import Client, ack, cluster, listener, request, snapshot

from controlplane import certgen
from controlplane.cli import main
from controlplane.config import ServeSettings
from controlplane.testing.mtls import (
    SecretVolume,
    scratch_dir,
    served_certificate,
    update_volumes,
    volumes_for,
)
from controlplane.xds import (
    CLUSTER_TYPE,
    SnapshotCache,
    TlsFiles,
    XdsServer,
    fetch_config,
    is_loopback,
    open_channel,
)


@pytest.fixture
def bundle() -> certgen.Bundle:
    return certgen.generate()


@pytest.fixture
def volumes(bundle: certgen.Bundle) -> Iterator[tuple[SecretVolume, SecretVolume]]:
    root = scratch_dir()
    yield volumes_for(bundle, root)


def _files(volume: SecretVolume) -> TlsFiles:
    return TlsFiles(volume.path("ca.crt"), volume.path("tls.crt"), volume.path("tls.key"))


@pytest.fixture
async def tls_server(
    cache: SnapshotCache, volumes: tuple[SecretVolume, SecretVolume]
) -> AsyncIterator[XdsServer]:
    server = XdsServer(cache, tls=_files(volumes[0]))
    await server.start("127.0.0.1:0")
    cache.publish(snapshot(clusters=[cluster("a", eds=False)], listeners=[listener("l")]))
    yield server
    await server.stop(grace=0)


def _address(server: XdsServer) -> str:
    return f"127.0.0.1:{server.port}"


async def _certificate(server: XdsServer, client: TlsFiles | None, ca: Path) -> Any:
    return await asyncio.to_thread(
        served_certificate,
        "127.0.0.1",
        server.port or 0,
        ca=ca,
        cert=client.cert if client else None,
        key=client.key if client else None,
    )


async def test_a_client_of_the_ca_gets_the_configuration(
    tls_server: XdsServer, volumes: tuple[SecretVolume, SecretVolume]
) -> None:
    config = await fetch_config(_address(tls_server), tls=_files(volumes[1]), timeout_s=5)
    assert [c["name"] for c in config["cds"]] == ["a"]
    assert [item["name"] for item in config["lds"]] == ["l"]


def _foreign_client(tmp: Path, trusted_ca: bytes) -> TlsFiles:
    """Envoy's certificate from another certgen run, trusting the server's CA all the same."""
    other = certgen.generate()
    (tmp / "ca.crt").write_bytes(trusted_ca)
    (tmp / "tls.crt").write_bytes(other.envoy.cert_pem)
    (tmp / "tls.key").write_bytes(other.envoy.key_pem)
    return TlsFiles(tmp / "ca.crt", tmp / "tls.crt", tmp / "tls.key")


def _server_certificate_as_client(volume: SecretVolume, tmp: Path) -> TlsFiles:
    """The server's own certificate (serverAuth only) presented as a client certificate."""
    return _files(volume)


@pytest.mark.parametrize(
    "client", ["no-certificate", "foreign-ca", "server-certificate", "plaintext", "untrusting"]
)
async def test_clients_that_cannot_prove_themselves_get_nothing(
    tls_server: XdsServer,
    volumes: tuple[SecretVolume, SecretVolume],
    bundle: certgen.Bundle,
    tmp_path: Path,
    client: str,
) -> None:
    address = _address(tls_server)
    if client == "plaintext":
        channel = grpc.aio.insecure_channel(address)
    elif client == "no-certificate":
        credentials = grpc.ssl_channel_credentials(root_certificates=bundle.ca_pem)
        channel = grpc.aio.secure_channel(
            address, credentials, options=[("grpc.ssl_target_name_override", "controlplane")]
        )
    elif client == "foreign-ca":
        channel = open_channel(address, _foreign_client(tmp_path, bundle.ca_pem))
    elif client == "server-certificate":
        channel = open_channel(address, _server_certificate_as_client(volumes[0], tmp_path))
    else:  # a client that trusts another CA refuses the server
        files = _foreign_client(tmp_path, certgen.generate().ca_pem)
        (tmp_path / "tls.crt").write_bytes(bundle.envoy.cert_pem)
        (tmp_path / "tls.key").write_bytes(bundle.envoy.key_pem)
        channel = open_channel(address, files)
    async with channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        stream = Client(stub.StreamAggregatedResources, tls_server)
        with contextlib.suppress(grpc.aio.AioRpcError):  # refused already at the write
            await stream.send(request(CLUSTER_TYPE, node=True))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream.reader
        stream.close()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert stream.received == 0
    assert not tls_server.sessions  # no stream ever reached the server's handlers
    if client in ("no-certificate", "foreign-ca", "server-certificate"):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            files = {
                "no-certificate": None,
                "foreign-ca": _foreign_client(tmp_path, bundle.ca_pem),
                "server-certificate": _files(volumes[0]),
            }[client]
            await _certificate(tls_server, files, volumes[1].path("ca.crt"))


async def test_the_server_reloads_its_certificate_without_dropping_streams(
    cache: SnapshotCache,
    tls_server: XdsServer,
    volumes: tuple[SecretVolume, SecretVolume],
    bundle: certgen.Bundle,
) -> None:
    server_volume, envoy_volume = volumes
    ca = envoy_volume.path("ca.crt")
    envoy = _files(envoy_volume)
    before = await _certificate(tls_server, envoy, ca)
    assert before.serial_number == certgen_serial(bundle.controlplane)

    async with open_channel(_address(tls_server), envoy) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        stream = Client(stub.StreamAggregatedResources, tls_server)
        await stream.send(request(CLUSTER_TYPE, node=True))
        cds = await stream.recv()
        await stream.send(ack(cds))

        # A new CA and new leaves, with the old CA kept in the bundle (what --rotate's trust step
        # leaves in place):
        # the server's volume is updated first, the Envoys' a little later.
        renewed = certgen.generate(previous_ca_pem=bundle.ca_pem)
        update_volumes(renewed, server_volume, None)
        after = await _certificate(tls_server, envoy, server_volume.path("ca.crt"))
        assert after.serial_number == certgen_serial(renewed.controlplane)
        assert tls_server.certificates is not None and tls_server.certificates.reloads == 1
        # A client with the old certificate is still let in (its CA is in the new bundle).
        old_client = await fetch_config(_address(tls_server), tls=_files_with_ca(
            envoy_volume, server_volume.path("ca.crt")), timeout_s=5)  # fmt: skip
        assert [c["name"] for c in old_client["cds"]] == ["a"]

        # The stream opened before the rotation still gets pushes.
        cache.publish(snapshot(clusters=[cluster("a", eds=False), cluster("b", eds=False)]))
        pushed = await stream.recv()
        assert pushed.type_url == CLUSTER_TYPE and len(pushed.resources) == 2
        stream.close()

    # Once the Envoys' volume follows, they connect with the new certificate too.
    update_volumes(renewed, None, envoy_volume)
    config = await fetch_config(_address(tls_server), tls=_files(envoy_volume), timeout_s=5)
    assert [c["name"] for c in config["cds"]] == ["a", "b"]


def _files_with_ca(volume: SecretVolume, ca: Path) -> TlsFiles:
    return TlsFiles(ca, volume.path("tls.crt"), volume.path("tls.key"))


def certgen_serial(leaf: certgen.Leaf) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(leaf.cert_pem).serial_number


async def test_a_half_done_rotation_keeps_the_previous_certificate(
    tls_server: XdsServer, volumes: tuple[SecretVolume, SecretVolume], bundle: certgen.Bundle
) -> None:
    server_volume, envoy_volume = volumes
    envoy = _files(envoy_volume)
    other = certgen.generate()
    with structlog.testing.capture_logs() as logs:
        server_volume.write(
            {
                "ca.crt": bundle.ca_pem,
                "tls.crt": other.controlplane.cert_pem,  # not the key's certificate
                "tls.key": bundle.controlplane.key_pem,
            }
        )
        served = await _certificate(tls_server, envoy, envoy_volume.path("ca.crt"))
    assert served.serial_number == certgen_serial(bundle.controlplane)
    assert tls_server.certificates is not None and tls_server.certificates.reloads == 0
    refused = [entry for entry in logs if entry["event"] == "xds.tls.reload_refused"]
    assert refused and "is not the key of" in refused[0]["error"]
    config = await fetch_config(_address(tls_server), tls=envoy, timeout_s=5)
    assert [c["name"] for c in config["cds"]] == ["a"]


# -- plaintext and flags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:0", True),
        ("[::1]:0", True),
        ("localhost:0", True),
        ("unix:/tmp/x.sock", True),
        ("0.0.0.0:0", False),
        ("[::]:0", False),
        ("10.1.2.3:8001", False),
        ("controlplane:8001", False),
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize(("address", "warned"), [("127.0.0.1:0", False), ("0.0.0.0:0", True)])
async def test_plaintext_on_the_network_is_warned_about(
    cache: SnapshotCache, address: str, warned: bool
) -> None:
    server = XdsServer(cache)
    with structlog.testing.capture_logs() as logs:
        await server.start(address)
    await server.stop(grace=0)
    warnings = [e for e in logs if e["event"] == "xds.server.plaintext"]
    assert bool(warnings) is warned
    if warned:
        assert warnings[0]["log_level"] == "warning" and "--xds-ca" in warnings[0]["reason"]
    assert server.tls is None and server.certificates is None


MISSING_KEY = (
    "--xds-ca, --xds-cert and --xds-key go together (mutual TLS needs all three); missing --xds-key"
)


def test_some_tls_flags_without_the_others_are_one_error() -> None:
    with pytest.raises(ValueError, match=r"missing --xds-key$"):
        TlsFiles.of("ca.crt", "tls.crt", None)
    with pytest.raises(ValueError, match=r"missing --xds-ca, --xds-cert$"):
        TlsFiles.of(None, None, "tls.key")
    assert TlsFiles.of(None, None, None) is None
    with pytest.raises(ValidationError, match="missing --xds-key"):
        ServeSettings(xds_ca=Path("ca.crt"), xds_cert=Path("tls.crt"))


@pytest.mark.parametrize("command", ["serve", "bootstrap", "xds"])
def test_the_commands_say_so_in_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "--xds-ca", "ca.crt", "--xds-cert", "tls.crt"]
    if command == "bootstrap":
        argv.insert(1, str(tmp_path / "envoy.yaml"))
    if command == "serve":
        argv += ["--manifests", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert MISSING_KEY in err, err
    assert not (tmp_path / "envoy.yaml").exists()


@pytest.mark.parametrize("command", ["serve", "bootstrap", "xds"])
def test_unusable_tls_files_are_named(
    command: str,
    tmp_path: Path,
    volumes: tuple[SecretVolume, SecretVolume],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = _files(volumes[0])
    argv = [command, "--xds-ca", str(server.ca), "--xds-cert", str(server.cert),
            "--xds-key", str(tmp_path / "missing.key")]  # fmt: skip
    if command == "bootstrap":
        argv.insert(1, str(tmp_path / "envoy.yaml"))
    if command == "serve":
        argv += ["--manifests", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{tmp_path / 'missing.key'}: No such file or directory"), err


async def test_the_debug_client_over_mtls_and_without(
    tls_server: XdsServer,
    volumes: tuple[SecretVolume, SecretVolume],
    capsys: pytest.CaptureFixture[str],
) -> None:
    envoy = _files(volumes[1])
    argv = ["xds", "--xds-address", _address(tls_server), "--timeout", "5", "--type", "cds"]
    tls = ["--xds-ca", str(envoy.ca), "--xds-cert", str(envoy.cert), "--xds-key", str(envoy.key)]
    # main() runs its own event loop; the server runs in this one.
    assert await asyncio.to_thread(main, [*argv, *tls]) == 0
    assert '"name": "a"' in capsys.readouterr().out
    assert await asyncio.to_thread(main, argv) == 1  # a failure, not a usage error
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"controlplane xds: the controller at {_address(tls_server)} closed the connection ("
    )
    assert err.endswith("one serving mTLS needs --xds-ca, --xds-cert, --xds-key")
    assert len(err.splitlines()) == 1
