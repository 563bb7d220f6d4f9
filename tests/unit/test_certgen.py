"""`controlplane certgen`: what it writes, what it keeps, what it replaces; to files and Secrets.

The certificates are checked the way their users see them: names (SANs), key type and size,
extended key usage, lifetime, the chain to `ca.crt`, file modes. Keeping and replacing is
decided by the same rule for a directory and for Secrets (the module docstring), and the
Secrets are written to the Kubernetes API test server through kubernetes-asyncio, as the
certgen Job of the split deployment does.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from waiting import eventually

from controlplane import certgen
from controlplane.cli import main
from controlplane.envoy import bootstrap_tls
from controlplane.testing.apiserver import TestApiServer
from controlplane.xds import SERVER_NAME

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
FILES = ("ca.crt", "controlplane/tls.crt", "controlplane/tls.key", "envoy/tls.crt", "envoy/tls.key")


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> list[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in names]


def _usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _contents(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


# -- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "key_class", "size"),
    [("ec", ec.EllipticCurvePublicKey, 256), ("rsa", rsa.RSAPublicKey, 2048)],
)
def test_directory_holds_a_ca_and_two_leaves_it_signed(
    tmp_path: Path, key_type: certgen.KeyType, key_class: type, size: int
) -> None:
    outcome = certgen.write_directory(
        tmp_path, namespace="edge", key_type=key_type, lifetime_days=30, now=NOW
    )
    assert outcome.written and outcome.reason == "no certificates yet"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == (
        sorted(FILES)
    )
    ca = _cert(tmp_path / "ca.crt")
    server = _cert(tmp_path / "controlplane" / "tls.crt")
    client = _cert(tmp_path / "envoy" / "tls.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(leaf.public_key(), key_class)
        assert leaf.public_key().key_size == size  # type: ignore[union-attr]
        assert leaf.not_valid_after_utc - NOW == datetime.timedelta(days=30)
        assert leaf.not_valid_before_utc < NOW  # a little clock skew is tolerated
    assert _sans(server) == [
        "controlplane",
        "controlplane.edge",
        "controlplane.edge.svc",
        "controlplane.edge.svc.cluster.local",
        "localhost",
        str(ipaddress.ip_address("127.0.0.1")),
    ]
    assert _sans(client) == ["envoy"]
    assert _usages(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _usages(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for side in ("controlplane", "envoy"):
        key = serialization.load_pem_private_key(
            (tmp_path / side / "tls.key").read_bytes(), password=None
        )
        assert key.public_key() == _cert(tmp_path / side / "tls.crt").public_key()


def test_keys_are_private_and_certificates_readable(tmp_path: Path) -> None:
    certgen.write_directory(tmp_path, now=NOW)
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in FILES}
    assert modes == {
        "ca.crt": 0o644,
        "controlplane/tls.crt": 0o644,
        "controlplane/tls.key": 0o600,
        "envoy/tls.crt": 0o644,
        "envoy/tls.key": 0o600,
    }
    assert not [p.name for p in tmp_path.rglob(".*")]  # no temporary file left behind


def test_the_server_name_is_the_one_every_client_checks() -> None:
    assert certgen.SERVER_NAME == SERVER_NAME == bootstrap_tls.SERVER_NAME
    assert SERVER_NAME in certgen.controlplane_names("any")


# -- keep or replace -------------------------------------------------------------------------


def test_valid_certificates_are_kept_unless_overwrite(tmp_path: Path) -> None:
    certgen.write_directory(tmp_path, now=NOW)
    first = _contents(tmp_path)
    later = NOW + datetime.timedelta(days=100)
    kept = certgen.write_directory(tmp_path, now=later)
    assert not kept.written and kept.reason == "valid certificates already there"
    assert _contents(tmp_path) == first

    replaced = certgen.write_directory(tmp_path, overwrite=True, now=later)
    assert replaced.written and replaced.reason == "--overwrite"
    second = _contents(tmp_path)
    assert all(second[name] != first[name] for name in FILES)
    # A fresh start (a leaked key): the previous CA is trusted no more. Renewing without a
    # failed handshake is --rotate (test_certgen_rotation.py).
    assert len(x509.load_pem_x509_certificates(second["ca.crt"])) == 1


def _expire(directory: Path) -> None:
    certgen.write_directory(directory, lifetime_days=1, now=NOW - datetime.timedelta(days=5))


def _swap_key(directory: Path) -> None:
    other = certgen.generate()
    (directory / "envoy" / "tls.key").write_bytes(other.envoy.key_pem)


def _foreign_leaf(directory: Path) -> None:
    other = certgen.generate()
    (directory / "envoy" / "tls.crt").write_bytes(other.envoy.cert_pem)
    (directory / "envoy" / "tls.key").write_bytes(other.envoy.key_pem)


def _swap_roles(directory: Path) -> None:
    for name in ("tls.crt", "tls.key"):
        server = (directory / "controlplane" / name).read_bytes()
        (directory / "controlplane" / name).write_bytes((directory / "envoy" / name).read_bytes())
        (directory / "envoy" / name).write_bytes(server)


def _garbage(directory: Path) -> None:
    (directory / "ca.crt").write_text("not a certificate")


def _missing(directory: Path) -> None:
    (directory / "controlplane" / "tls.key").unlink()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_expire, "controlplane: not valid now (valid until 2029-12-28 00:00 UTC)"),
        (_swap_key, "envoy: tls.key is not the key of tls.crt"),
        (_foreign_leaf, "envoy: tls.crt is not signed by a CA of ca.crt"),
        (_swap_roles, "controlplane: tls.crt is not for serverAuth"),
        (_garbage, "controlplane: "),
        (_missing, "no certificates yet"),
    ],
    ids=["expired", "key-mismatch", "foreign-ca", "roles-swapped", "garbage", "missing"],
)
def test_what_cannot_be_kept_is_replaced_as_a_whole(
    tmp_path: Path, damage: Any, reason: str
) -> None:
    certgen.write_directory(tmp_path, now=NOW)
    damage(tmp_path)
    outcome = certgen.write_directory(tmp_path, now=NOW)
    assert outcome.written
    assert outcome.reason.startswith(reason), outcome.reason
    ca = _cert(tmp_path / "ca.crt")
    for side in ("controlplane", "envoy"):
        _cert(tmp_path / side / "tls.crt").verify_directly_issued_by(ca)
    assert certgen.write_directory(tmp_path, now=NOW).written is False


# -- the command line ------------------------------------------------------------------------


def test_the_command_writes_then_keeps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "certs"
    assert main(["certgen", str(target), "--rsa", "--lifetime", "10"]) == 0
    assert "wrote" in capsys.readouterr().err
    assert isinstance(_cert(target / "envoy" / "tls.crt").public_key(), rsa.RSAPublicKey)
    assert main(["certgen", str(target)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"kept {target}: valid certificates already there") and (
        "--rotate renews them" in err
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["certgen"], "give a directory, or --kubernetes (not both)"),
        (["certgen", "DIR", "--kubernetes"], "give a directory, or --kubernetes (not both)"),
        (["certgen", "DIR", "--lifetime", "0"], "--lifetime 0: a certificate must live"),
        (["certgen", "DIR", "--lifetime", "4294967296"], "--lifetime 4294967296: at most 36525"),
        # A path is told back with its control characters escaped, never as escape sequences.
        (["certgen", "DIR\x1b[31m", "--rotate"], "DIR\\x1b[31m: no certificates yet"),
    ],
)
def test_command_mistakes_are_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path / a) if a.startswith("DIR") else a for a in argv]
    message = message.replace("DIR", str(tmp_path / "DIR"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# -- Kubernetes Secrets ----------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[TestApiServer]:
    api = TestApiServer()
    await api.start("127.0.0.1", 0)
    api.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "edge"}})
    yield api
    await api.stop()


def _secret(server: TestApiServer, name: str) -> dict[str, Any]:
    return server.get_object("v1", "Secret", name, "edge")


def _decoded(secret: dict[str, Any]) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


async def _certgen(kubeconfig: Path, *extra: str) -> int:
    argv = ["certgen", "--kubernetes", "--namespace", "edge", "--kubeconfig", str(kubeconfig)]
    # main() runs its own event loop; the test server runs in this one.
    return await asyncio.to_thread(main, [*argv, *extra])


async def test_secrets_are_written_kept_and_overwritten(
    server: TestApiServer, kubeconfig: Path
) -> None:
    assert await _certgen(kubeconfig) == 0
    written = {name: _secret(server, name) for name in ("controlplanecert", "envoycert")}
    for name, secret in written.items():
        assert secret["type"] == "kubernetes.io/tls"
        assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == (
            "controlplane-certgen"
        )
        data = _decoded(secret)
        assert set(data) == {"ca.crt", "tls.crt", "tls.key"}
        ca = x509.load_pem_x509_certificate(data["ca.crt"])
        leaf = x509.load_pem_x509_certificate(data["tls.crt"])
        leaf.verify_directly_issued_by(ca)
        assert _sans(leaf)[0] == ("controlplane" if name == "controlplanecert" else "envoy")
    assert _sans(x509.load_pem_x509_certificate(_decoded(written["controlplanecert"])["tls.crt"]))[
        1
    ] == ("controlplane.edge")

    assert await _certgen(kubeconfig) == 0
    for name, secret in written.items():
        again = _secret(server, name)
        assert again["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]

    assert await _certgen(kubeconfig, "--overwrite") == 0
    for name, secret in written.items():
        replaced = _secret(server, name)
        assert replaced["metadata"]["resourceVersion"] != secret["metadata"]["resourceVersion"]
        assert _decoded(replaced)["tls.crt"] != _decoded(secret)["tls.crt"]


async def test_an_incomplete_or_broken_secret_is_replaced(
    server: TestApiServer, kubeconfig: Path
) -> None:
    assert await _certgen(kubeconfig) == 0
    envoy = _secret(server, "envoycert")
    envoy["data"].pop("ca.crt")
    server.put_object(envoy)
    assert await _certgen(kubeconfig) == 0
    data = {name: _decoded(_secret(server, name)) for name in ("controlplanecert", "envoycert")}
    assert data["controlplanecert"]["ca.crt"] == data["envoycert"]["ca.crt"]
    reason, _ = certgen.check_bundle(
        (data["controlplanecert"]["ca.crt"], certgen.Leaf(data["controlplanecert"]["tls.crt"],
                                                          data["controlplanecert"]["tls.key"])),
        (data["envoycert"]["ca.crt"], certgen.Leaf(data["envoycert"]["tls.crt"],
                                                   data["envoycert"]["tls.key"])),
        datetime.datetime.now(datetime.UTC),
    )  # fmt: skip
    assert reason is None


async def test_a_refusal_of_the_api_server_is_one_line(
    server: TestApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.delete_object("v1", "Namespace", "edge")

    def gone() -> bool:
        try:
            server.get_object("v1", "Namespace", "edge")
        except Exception:
            return True
        return False

    await eventually(gone, message="the namespace is deleted")
    assert await _certgen(kubeconfig) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith('writing Secrets in edge: 404 Not Found: namespaces "edge" not found')
    await server.stop()
    assert await _certgen(kubeconfig) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("controlplane certgen: writing Secrets in edge: Cannot connect")
    assert len(err.splitlines()) == 1
