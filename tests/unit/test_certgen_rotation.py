"""`controlplane certgen --rotate`: a new CA without a failed handshake, in files and Secrets.

- The bundle (`trust_bundle`): the new CA first; a previous CA kept while it is valid and
  signed a leaf being replaced; expired ones dropped, and so are CAs no current leaf comes from
  (an earlier rotation's, an interrupted rotation's); each CA once.
- The handshakes, for real (OpenSSL, in memory, each side verifying the other as gRPC and Envoy
  do): a rotation goes through three states, *before*, *trust* (step 1: new bundle, old leaves)
  and *leaves* (step 2: new leaves). Every pair of sides at most one step apart handshakes, in
  both roles; sides two steps apart (*before* against *leaves*) fail, which is why the
  rotation waits between its steps, and why `--overwrite` (one step) breaks handshakes.
- Files (`rotate_directory`) and Secrets (`rotate_secrets`, against the Kubernetes API test
  server): what step 1 wrote is what is there during the wait; step 2 follows it; a Secret
  changed during the wait stops the rotation (409) without clobbering it; nothing to rotate is
  an error; expired certificates are replaced in one step, without waiting; rotating again
  keeps the bundle at two CAs. The command line, and the mistakes it refuses in one line.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane import certgen
from controlplane.cli import main
from controlplane.testing.apiserver import TestApiServer

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def _serials(pem: bytes) -> list[int]:
    return [cert.serial_number for cert in x509.load_pem_x509_certificates(pem)]


def _ca_of(bundle: certgen.Bundle) -> bytes:
    """The first CA of ``bundle``'s ca.crt, as PEM."""
    first = x509.load_pem_x509_certificates(bundle.ca_pem)[0]
    return first.public_bytes(serialization.Encoding.PEM)


def _sides(bundle: certgen.Bundle) -> tuple[tuple[bytes, certgen.Leaf], tuple[bytes, certgen.Leaf]]:
    return (bundle.ca_pem, bundle.controlplane), (bundle.ca_pem, bundle.envoy)


# -- the bundle ------------------------------------------------------------------------------


def test_the_new_ca_comes_first_and_the_one_that_signed_the_leaves_is_kept() -> None:
    old = certgen.generate(now=NOW)
    new = certgen.generate(now=NOW)
    bundle, kept, dropped = certgen.trust_bundle(
        _ca_of(new), [old.ca_pem, old.ca_pem], [old.controlplane.cert_pem], NOW + DAY
    )
    assert _serials(bundle) == _serials(new.ca_pem) + _serials(old.ca_pem)
    assert (kept, dropped) == (1, ())


def test_expired_cas_and_cas_that_signed_no_current_leaf_are_dropped() -> None:
    expired = certgen.generate(lifetime_days=1, now=NOW - 10 * DAY)
    orphan = certgen.generate(now=NOW)  # an interrupted rotation's: none of its leaves written
    current = certgen.generate(now=NOW)
    new = certgen.generate(now=NOW)
    previous = expired.ca_pem + current.ca_pem + orphan.ca_pem
    leaves = [expired.envoy.cert_pem, current.controlplane.cert_pem]
    bundle, kept, dropped = certgen.trust_bundle(_ca_of(new), [previous], leaves, NOW)
    assert _serials(bundle) == _serials(new.ca_pem) + _serials(current.ca_pem)
    assert kept == 1
    assert [reason.split(": ", 1)[1] for reason in dropped] == [
        "expired 2029-12-23 UTC",
        "signed none of the current leaves",
    ]
    # Unreadable input keeps nothing and does not raise.
    assert certgen.trust_bundle(_ca_of(new), [b"junk"], [b"junk"], NOW)[:2] == (_ca_of(new), 0)


def test_a_leaf_of_either_ca_verifies_against_the_bundle() -> None:
    old = certgen.generate(now=NOW)
    rotation = certgen.plan_rotation(*_sides(old), now=NOW + DAY)
    cas = x509.load_pem_x509_certificates(rotation.leaves.ca_pem)
    for leaf in (old.controlplane, old.envoy, rotation.leaves.controlplane, rotation.leaves.envoy):
        certificate = x509.load_pem_x509_certificate(leaf.cert_pem)
        issuers = [ca for ca in cas if certgen.certificates._issued(ca, certificate)]
        assert len(issuers) == 1
    assert rotation.trust.ca_pem == rotation.leaves.ca_pem
    assert (rotation.trust.controlplane, rotation.trust.envoy) == (old.controlplane, old.envoy)
    assert (rotation.kept, rotation.dropped) == (1, ())
    reason, _ = certgen.check_bundle(*_sides(rotation.leaves), NOW + DAY)
    assert reason is None


# -- the handshakes, for real ----------------------------------------------------------------


def _context(server: bool, ca: bytes, leaf: certgen.Leaf, where: Path) -> ssl.SSLContext:
    where.mkdir(parents=True, exist_ok=True)
    (where / "tls.crt").write_bytes(leaf.cert_pem)
    (where / "tls.key").write_bytes(leaf.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca.decode("ascii"))
    context.load_cert_chain(where / "tls.crt", where / "tls.key")
    return context


def _handshake(
    server: tuple[bytes, certgen.Leaf], client: tuple[bytes, certgen.Leaf], where: Path
) -> bool:
    """One TLS 1.3 handshake in memory: the client checks the name `controlplane` and the
    server's chain, the server requires and checks the client's certificate."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    tls_server = _context(True, *server, where / "server").wrap_bio(
        server_in, server_out, server_side=True
    )
    tls_client = _context(False, *client, where / "client").wrap_bio(
        client_in, client_out, server_hostname=certgen.SERVER_NAME
    )
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side, out, peer in (
            ("client", tls_client, client_out, server_in),
            ("server", tls_server, server_out, client_in),
        ):
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False
            peer.write(out.read())
        if all(done.values()):
            return True
    raise AssertionError("the handshake went nowhere")


STATES = ("before", "trust", "leaves")


@pytest.fixture(scope="module")
def rotation_states() -> dict[str, certgen.Bundle]:
    before = certgen.generate()
    rotation = certgen.plan_rotation(*_sides(before))
    return {"before": before, "trust": rotation.trust, "leaves": rotation.leaves}


@pytest.mark.parametrize("server_state", STATES)
@pytest.mark.parametrize("client_state", STATES)
def test_sides_at_most_one_step_apart_always_handshake(
    rotation_states: dict[str, certgen.Bundle],
    server_state: str,
    client_state: str,
    tmp_path: Path,
) -> None:
    server, client = rotation_states[server_state], rotation_states[client_state]
    apart = abs(STATES.index(server_state) - STATES.index(client_state))
    succeeded = _handshake(
        (server.ca_pem, server.controlplane), (client.ca_pem, client.envoy), tmp_path
    )
    assert succeeded == (apart <= 1)


def test_overwrite_is_one_step_and_breaks_handshakes_until_both_sides_follow(
    tmp_path: Path,
) -> None:
    before = certgen.generate()
    after = certgen.generate()
    assert not _handshake((after.ca_pem, after.controlplane), (before.ca_pem, before.envoy),
                          tmp_path / "a")  # fmt: skip
    assert not _handshake((before.ca_pem, before.controlplane), (after.ca_pem, after.envoy),
                          tmp_path / "b")  # fmt: skip


# -- a directory -----------------------------------------------------------------------------


def test_a_directory_rotates_in_two_steps(tmp_path: Path) -> None:
    certgen.write_directory(tmp_path, now=NOW)
    before = certgen.read_directory(tmp_path)
    assert before is not None
    seen: list[certgen.Bundle | None] = []
    progress: list[str] = []

    def sleep(seconds: float) -> None:
        assert seconds == 42
        seen.append(certgen.read_directory(tmp_path))

    outcome = certgen.rotate_directory(
        tmp_path, wait_s=42, now=NOW + DAY, sleep=sleep, progress=progress.append
    )
    (during,) = seen
    after = certgen.read_directory(tmp_path)
    assert during is not None and after is not None
    assert (during.controlplane, during.envoy) == (before.controlplane, before.envoy)
    assert _serials(during.ca_pem)[1:] == _serials(before.ca_pem)
    assert after.ca_pem == during.ca_pem
    assert after.controlplane != before.controlplane and after.envoy != before.envoy
    assert outcome.written and outcome.reason == "rotated; ca.crt trusts the new CA and 1 previous"
    assert progress == [f"{tmp_path}: ca.crt trusts the new CA; new leaves in 42 s"]

    # Again: the first CA signed nothing current any more and goes; two CAs stay.
    certgen.rotate_directory(tmp_path, wait_s=0, now=NOW + 2 * DAY, sleep=lambda _: None)
    again = certgen.read_directory(tmp_path)
    assert again is not None
    assert len(_serials(again.ca_pem)) == 2
    assert _serials(again.ca_pem)[1] == _serials(after.ca_pem)[0]


def test_expired_certificates_are_replaced_in_one_step(tmp_path: Path) -> None:
    certgen.write_directory(tmp_path, lifetime_days=1, now=NOW - 10 * DAY)

    def sleep(_: float) -> None:
        raise AssertionError("nothing works that waiting would protect")

    outcome = certgen.rotate_directory(tmp_path, now=NOW, sleep=sleep)
    assert outcome.reason.startswith("rotated in one step: no previous CA left to trust (CA ")
    after = certgen.read_directory(tmp_path)
    assert after is not None and len(_serials(after.ca_pem)) == 1
    assert certgen.check_bundle(*_sides(after), NOW)[0] is None


def test_the_command_rotates_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "certs"
    assert main(["certgen", str(target), "--rotate"]) == 2
    assert "nothing to rotate" in capsys.readouterr().err
    assert main(["certgen", str(target)]) == 0
    first = (target / "ca.crt").read_bytes()
    capsys.readouterr()
    assert main(["certgen", str(target), "--rotate", "--rotate-wait", "0"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"controlplane certgen: {target}: ca.crt trusts the new CA; new leaves in 0 s"
    assert err[1].startswith(f"wrote {target} (rotated; ca.crt trusts the new CA and 1 previous;")
    assert _serials((target / "ca.crt").read_bytes())[1:] == _serials(first)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rotate", "--overwrite"], "--rotate or --overwrite, not both"),
        (["--rotate", "--rotate-wait", "-1"], "--rotate-wait -1: seconds, from 0 to a day"),
    ],
)
def test_rotation_mistakes_are_one_line(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certgen", str(tmp_path), *extra]) == 2
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


def _secrets(server: TestApiServer) -> dict[str, dict[str, bytes]]:
    return {
        name: {
            key: base64.b64decode(value)
            for key, value in server.get_object("v1", "Secret", name, "edge")["data"].items()
        }
        for name in (certgen.CONTROLPLANE_SECRET, certgen.ENVOY_SECRET)
    }


async def _rotate(kubeconfig: Path, **options: Any) -> certgen.Outcome:
    from controlplane.sources import make_api_client

    api = await make_api_client(kubeconfig)
    try:
        return await certgen.rotate_secrets(api, namespace="edge", **options)
    finally:
        await api.close()


async def test_secrets_rotate_in_two_steps(server: TestApiServer, kubeconfig: Path) -> None:
    with pytest.raises(ValueError, match="--rotate: nothing to rotate in Secrets edge/"):
        await _rotate(kubeconfig)
    argv = ["certgen", "--kubernetes", "--namespace", "edge", "--kubeconfig", str(kubeconfig)]
    assert await asyncio.to_thread(main, argv) == 0
    before = _secrets(server)
    during: list[dict[str, dict[str, bytes]]] = []

    async def sleep(seconds: float) -> None:
        assert seconds == 7
        during.append(_secrets(server))

    outcome = await _rotate(kubeconfig, wait_s=7, sleep=sleep)
    (step1,) = during
    after = _secrets(server)
    assert outcome.written
    for name in (certgen.CONTROLPLANE_SECRET, certgen.ENVOY_SECRET):
        assert step1[name]["tls.crt"] == before[name]["tls.crt"]
        assert step1[name]["tls.key"] == before[name]["tls.key"]
        assert _serials(step1[name]["ca.crt"])[1:] == _serials(before[name]["ca.crt"])
        assert after[name]["ca.crt"] == step1[name]["ca.crt"]
        assert after[name]["tls.crt"] != before[name]["tls.crt"]
    # What the certgen Job finds next is valid and kept.
    assert await asyncio.to_thread(main, argv) == 0
    assert _secrets(server) == after


async def test_a_secret_changed_during_the_wait_stops_the_rotation(
    server: TestApiServer, kubeconfig: Path
) -> None:
    argv = ["certgen", "--kubernetes", "--namespace", "edge", "--kubeconfig", str(kubeconfig)]
    assert await asyncio.to_thread(main, argv) == 0

    async def meddle(_: float) -> None:
        secret = server.get_object("v1", "Secret", certgen.ENVOY_SECRET, "edge")
        secret["metadata"].setdefault("annotations", {})["someone"] = "else"
        server.put_object(secret)

    with pytest.raises(ValueError, match=r"409 .*\(a Secret changed meanwhile: run again\)"):
        await _rotate(kubeconfig, wait_s=1, sleep=meddle)
    envoy = server.get_object("v1", "Secret", certgen.ENVOY_SECRET, "edge")
    assert envoy["metadata"]["annotations"] == {"someone": "else"}
