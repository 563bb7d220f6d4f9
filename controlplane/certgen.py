"""`controlplane certgen`: the certificates that let Envoys and controllers speak xDS over mTLS.

xDS carries every tenant's private keys (SDS), so when Envoys and controllers run in different
pods the connection between them is mutual TLS: the controller proves it is the controller, and
only Envoys holding a certificate of the same CA get anything. As Contour's `certgen` does, one
run makes a throw-away CA and two leaves signed by it:

- ``ca.crt``: the CA bundle both sides trust. The CA's private key is never written anywhere:
  nobody can issue another certificate from it later.
- ``controlplane/tls.crt|tls.key``: the server certificate, ``serverAuth``, with the names a
  client may dial: ``controlplane``, ``controlplane.NS``, ``controlplane.NS.svc``,
  ``controlplane.NS.svc.cluster.local``, ``localhost`` and ``127.0.0.1``. Envoys and
  ``controlplane xds`` check the name ``controlplane`` whatever address they dial
  (`controlplane.envoy.bootstrap`), so replicas behind any Service or IP are the same server.
- ``envoy/tls.crt|tls.key``: the client certificate, ``clientAuth``, named ``envoy``.

Keys are ECDSA P-256 (``--rsa``: RSA-2048), certificates SHA-256 signed, valid from an hour
before now (clock skew) for ``--lifetime`` days.

Two destinations, one rule: what is there and still valid (parses, the key matches, each leaf
is signed by a CA of its bundle, both bundles are the same, not expired) is kept unless
``--overwrite``; anything else is replaced as a whole (the CA key is gone, so a missing leaf
can only come with a new CA), by a new CA alone.

- ``certgen DIR`` writes files, keys with mode 0600, each file replaced atomically.
- ``certgen --kubernetes --namespace NS`` writes two ``kubernetes.io/tls`` Secrets with a
  ``ca.crt`` key, ``controlplanecert`` and ``envoycert``, through kubernetes-asyncio (the
  certgen Job in ``manifests/``); a Secret replaced meanwhile by another writer fails the
  replace (resourceVersion) rather than being clobbered.

Rotation (``--rotate``) without a failed handshake
--------------------------------------------------
The two sides never change at the same moment: the kubelet updates each pod's Secret volume on
its own schedule (up to a minute or two apart), and a handshake needs each side's leaf to be
signed by a CA the *other* side trusts. Replacing CA and leaves at once (``--overwrite``)
therefore fails new connections while the pods catch up: a controller presenting a leaf of
the new CA to an Envoy that trusts only the old one, and the other way round. Open streams
never notice (certificates are only looked at during a handshake), but an Envoy that
reconnects then, or a new one, gets nothing until its volume is updated.

``--rotate`` makes a new CA and new leaves, and writes them in two steps, holding the new CA's
key in memory only in between:

1. **trust**: ``ca.crt`` becomes the new CA followed by the previous CAs that still matter
   (`trust_bundle`), while the leaves stay as they are. Every combination of old and new
   volumes still verifies: nothing but trust was added.
2. after ``--rotate-wait`` seconds (every pod has seen step 1), **leaves**: new leaves signed by
   the new CA, with the same ``ca.crt``. A peer already on the new leaf is trusted by one
   still on the old leaf (step 1 gave it the new CA) and the other way round (the old CA is
   still in the bundle).

`trust_bundle` keeps a previous CA only if it is still valid *and* signed one of the leaves
being replaced: those are the leaves pods may still present or verify during the swap. CAs
that expired are dropped, and so is a CA left over from an earlier rotation (its leaves were
replaced a rotation ago) or from a rotation interrupted between its steps (no leaf of it was
ever written), so the bundle stays at two CAs. When no previous CA is kept (the certificates
had expired: nothing works that could be broken) step 1 and the wait are skipped. A rotation
interrupted in the wait leaves a working state that the next run rotates again.

Generation and checks are pure functions of their inputs (``now`` is injectable); the writes
are the explicit I/O steps, and the wait is an injectable ``sleep``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CONTROLPLANE_SECRET",
    "ENVOY_SECRET",
    "Bundle",
    "KeyType",
    "Leaf",
    "Outcome",
    "Rotation",
    "build_certificate",
    "check_bundle",
    "controlplane_names",
    "generate",
    "key_pem",
    "new_key",
    "plan_rotation",
    "read_directory",
    "rotate_directory",
    "rotate_secrets",
    "secret_manifests",
    "trust_bundle",
    "write_directory",
    "write_secrets",
]

KeyType = Literal["ec", "rsa"]
CONTROLPLANE_SECRET: Final = "controlplanecert"
ENVOY_SECRET: Final = "envoycert"
DEFAULT_NAMESPACE: Final = "projectcontour"
DEFAULT_LIFETIME_DAYS: Final = 365
DEFAULT_ROTATE_WAIT_S: Final = 300.0
"""Between the two steps of a rotation: the kubelet's sync period (1 min) and its Secret cache,
with room to spare."""
SERVER_NAME: Final = "controlplane"
CLIENT_NAME: Final = "envoy"
KEY_MODE: Final = 0o600
CERT_MODE: Final = 0o644
_SKEW: Final = datetime.timedelta(hours=1)
_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_USAGE_NAMES: Final = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
}


@dataclass(frozen=True)
class Leaf:
    """A leaf certificate and its private key, PEM (PKCS#8, unencrypted)."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class Bundle:
    """What certgen writes: the CA bundle and the two leaves."""

    ca_pem: bytes
    controlplane: Leaf
    envoy: Leaf


@dataclass(frozen=True)
class Outcome:
    """What a run did: ``written`` (True) or kept valid certificates; ``reason`` says why."""

    written: bool
    reason: str
    not_after: datetime.datetime


@dataclass(frozen=True)
class Rotation:
    """The two steps of a rotation (module docstring): ``trust`` holds the current leaves with
    the new ``ca.crt``, ``leaves`` the new leaves with the same ``ca.crt``; ``kept`` counts the
    previous CAs in it (0: there is no step 1 to make), ``dropped`` describes the others."""

    trust: Bundle
    leaves: Bundle
    kept: int
    dropped: tuple[str, ...]


def controlplane_names(namespace: str) -> list[str]:
    """The subject alternative names of the controller's certificate."""
    return [
        SERVER_NAME,
        f"{SERVER_NAME}.{namespace}",
        f"{SERVER_NAME}.{namespace}.svc",
        f"{SERVER_NAME}.{namespace}.svc.cluster.local",
        "localhost",
        "127.0.0.1",
    ]


# -- generation (pure but for the randomness of keys and serials) -----------------------------


def new_key(key_type: KeyType) -> _PrivateKey:
    """A fresh private key: ECDSA P-256, or RSA-2048 for ``"rsa"``."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: _PrivateKey) -> bytes:
    """``key`` as PEM, PKCS#8, unencrypted."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "controlplane"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def build_certificate(
    *,
    subject: x509.Name,
    key: _PrivateKey,
    issuer: x509.Name,
    issuer_key: _PrivateKey,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    is_ca: bool,
    path_length: int | None = None,
    usages: Sequence[x509.ObjectIdentifier] = (),
    names: Sequence[str] = (),
) -> x509.Certificate:
    """A SHA-256 signed certificate of ``key``, signed by ``issuer_key``: shared with the test
    certificates (`controlplane.testing.certs`) so both build chains the same way.

    Always: critical ``basicConstraints`` (``path_length`` only means something on a CA),
    subject and authority key identifiers (BoringSSL and OpenSSL 3 need them to build chains),
    critical ``keyUsage`` (digitalSignature; keyCertSign and cRLSign on a CA; keyEncipherment on
    an RSA leaf). ``usages`` become ``extendedKeyUsage`` and ``names`` the subjectAltName (IP
    addresses as ``IPAddress``, the rest as ``DNSName``), each only when given."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey) and not is_ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def generate(
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    now: datetime.datetime | None = None,
    previous_ca_pem: bytes | None = None,
) -> Bundle:
    """A new CA and the two leaves it signs; ``ca.crt`` is the new CA alone, followed by the
    first certificate of ``previous_ca_pem`` when given (`plan_rotation` builds the bundles a
    rotation writes)."""
    if lifetime_days < 1:
        raise ValueError(f"--lifetime {lifetime_days}: a certificate must live at least a day")
    start = (now or datetime.datetime.now(datetime.UTC)) - _SKEW
    end = start + _SKEW + datetime.timedelta(days=lifetime_days)
    ca_key = new_key(key_type)
    ca_name = _name("controlplane xDS CA")
    ca = build_certificate(
        subject=ca_name, key=ca_key, issuer=ca_name, issuer_key=ca_key,
        not_before=start, not_after=end, is_ca=True, path_length=0,
    )  # fmt: skip

    def leaf(common_name: str, usage: x509.ObjectIdentifier, names: Sequence[str]) -> Leaf:
        key = new_key(key_type)
        cert = build_certificate(
            subject=_name(common_name), key=key, issuer=ca_name, issuer_key=ca_key,
            not_before=start, not_after=end, is_ca=False, usages=[usage], names=names,
        )  # fmt: skip
        return Leaf(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))

    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    if previous_ca_pem:
        ca_pem += _first_certificate(previous_ca_pem)
    return Bundle(
        ca_pem=ca_pem,
        controlplane=leaf(
            SERVER_NAME, ExtendedKeyUsageOID.SERVER_AUTH, controlplane_names(namespace)
        ),
        envoy=leaf(CLIENT_NAME, ExtendedKeyUsageOID.CLIENT_AUTH, [CLIENT_NAME]),
    )


def _issued(ca: x509.Certificate, leaf: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _certificates(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def trust_bundle(
    new_ca_pem: bytes,
    previous_bundles: Sequence[bytes],
    leaves: Sequence[bytes],
    now: datetime.datetime,
) -> tuple[bytes, int, tuple[str, ...]]:
    """The ``ca.crt`` of a rotation: ``new_ca_pem`` first, then each distinct CA of
    ``previous_bundles`` that is valid at ``now`` and signed one of ``leaves`` (the leaf
    certificates being replaced), in the order found. Returns the bundle, how many previous CAs
    it kept, and why each other one was dropped. Unreadable input keeps nothing."""
    current = [cert for pem in leaves for cert in _certificates(pem)[:1]]
    bundle = new_ca_pem
    kept: list[bytes] = []
    dropped: list[str] = []
    seen: set[bytes] = set()
    for ca in (ca for pem in previous_bundles for ca in _certificates(pem)):
        der = ca.public_bytes(serialization.Encoding.DER)
        if der in seen:
            continue
        seen.add(der)
        serial = f"CA {ca.serial_number:x}"
        if not ca.not_valid_before_utc <= now < ca.not_valid_after_utc:
            dropped.append(f"{serial}: expired {ca.not_valid_after_utc:%Y-%m-%d} UTC")
        elif not any(_issued(ca, leaf) for leaf in current):
            dropped.append(f"{serial}: signed none of the current leaves")
        else:
            kept.append(ca.public_bytes(serialization.Encoding.PEM))
    return bundle + b"".join(kept), len(kept), tuple(dropped)


def plan_rotation(
    controlplane: tuple[bytes, Leaf],
    envoy: tuple[bytes, Leaf],
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    now: datetime.datetime | None = None,
) -> Rotation:
    """The two steps that replace these certificates (each side: its ``ca.crt`` and leaf) with
    a new CA's (module docstring)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    fresh = generate(namespace=namespace, key_type=key_type, lifetime_days=lifetime_days,
                     now=moment)  # fmt: skip
    ca_pem, kept, dropped = trust_bundle(
        fresh.ca_pem,
        [controlplane[0], envoy[0]],
        [controlplane[1].cert_pem, envoy[1].cert_pem],
        moment,
    )
    return Rotation(
        trust=Bundle(ca_pem, controlplane[1], envoy[1]),
        leaves=Bundle(ca_pem, fresh.controlplane, fresh.envoy),
        kept=kept,
        dropped=dropped,
    )


def _rotation_reason(rotation: Rotation) -> str:
    if not rotation.kept:
        return (
            "rotated in one step: no previous CA left to trust ("
            + ("; ".join(rotation.dropped) or "none readable")
            + ")"
        )
    reason = f"rotated; ca.crt trusts the new CA and {rotation.kept} previous"
    return reason + (f"; dropped {'; '.join(rotation.dropped)}" if rotation.dropped else "")


def _first_certificate(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificates(pem)[0].public_bytes(serialization.Encoding.PEM)


# -- checks (pure) ----------------------------------------------------------------------------


def _check_leaf(
    what: str, ca_pem: bytes, leaf: Leaf, usage: x509.ObjectIdentifier, now: datetime.datetime
) -> tuple[str | None, datetime.datetime]:
    try:
        cas = x509.load_pem_x509_certificates(ca_pem)
        cert = x509.load_pem_x509_certificate(leaf.cert_pem)
        key = serialization.load_pem_private_key(leaf.key_pem, password=None)
    except ValueError as error:
        return f"{what}: {error}", now
    if cert.public_key() != key.public_key():
        return f"{what}: tls.key is not the key of tls.crt", now
    issuers = [ca for ca in cas if _issued(ca, cert)]
    if not issuers:
        return f"{what}: tls.crt is not signed by a CA of ca.crt", now
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is not None and usage not in usages:
        return f"{what}: tls.crt is not for {_USAGE_NAMES[usage]}", now
    not_after = min(cert.not_valid_after_utc, *(ca.not_valid_after_utc for ca in issuers))
    if not cert.not_valid_before_utc <= now < not_after:
        return f"{what}: not valid now (valid until {not_after:%Y-%m-%d %H:%M} UTC)", not_after
    return None, not_after


def check_bundle(
    controlplane: tuple[bytes, Leaf], envoy: tuple[bytes, Leaf], now: datetime.datetime
) -> tuple[str | None, datetime.datetime]:
    """Why these certificates cannot be kept (``None``: they can), and when the first expires.

    Each side is ``(its ca.crt, its leaf)``: in a cluster they come from two Secrets.
    """
    if controlplane[0] != envoy[0]:
        return "the two ca.crt differ", now
    reason, server_end = _check_leaf(
        SERVER_NAME, controlplane[0], controlplane[1], ExtendedKeyUsageOID.SERVER_AUTH, now
    )
    if reason is not None:
        return reason, server_end
    reason, client_end = _check_leaf(
        CLIENT_NAME, envoy[0], envoy[1], ExtendedKeyUsageOID.CLIENT_AUTH, now
    )
    return reason, min(server_end, client_end)


def _not_after(bundle: Bundle) -> datetime.datetime:
    return x509.load_pem_x509_certificate(bundle.controlplane.cert_pem).not_valid_after_utc


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- a directory --------------------------------------------------------------------------------


def _paths(directory: Path) -> dict[str, Path]:
    return {
        "ca": directory / "ca.crt",
        "controlplane.crt": directory / SERVER_NAME / "tls.crt",
        "controlplane.key": directory / SERVER_NAME / "tls.key",
        "envoy.crt": directory / CLIENT_NAME / "tls.crt",
        "envoy.key": directory / CLIENT_NAME / "tls.key",
    }


def read_directory(directory: Path) -> Bundle | None:
    """The certificates a previous run wrote to ``directory``; ``None`` if any file is missing."""
    try:
        data = {name: path.read_bytes() for name, path in _paths(directory).items()}
    except FileNotFoundError:
        return None
    return Bundle(
        ca_pem=data["ca"],
        controlplane=Leaf(data["controlplane.crt"], data["controlplane.key"]),
        envoy=Leaf(data["envoy.crt"], data["envoy.key"]),
    )


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write a sibling temporary file with ``mode`` from the start, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_directory(
    directory: Path,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    overwrite: bool = False,
    now: datetime.datetime | None = None,
) -> Outcome:
    """Write (or keep) the certificates in ``directory``; see the module docstring."""
    moment = now or datetime.datetime.now(datetime.UTC)
    existing = read_directory(directory)
    reason = "no certificates yet"
    if existing is not None:
        invalid, not_after = check_bundle(
            (existing.ca_pem, existing.controlplane), (existing.ca_pem, existing.envoy), moment
        )
        if invalid is None and not overwrite:
            return Outcome(False, "valid certificates already there", not_after)
        reason = invalid or "--overwrite"
    bundle = generate(
        namespace=namespace, key_type=key_type, lifetime_days=lifetime_days, now=moment
    )
    _write_bundle(directory, bundle)
    return Outcome(True, reason, _not_after(bundle))


def _write_bundle(directory: Path, bundle: Bundle) -> None:
    paths = _paths(directory)
    # Leaves first and the CA last: a reader that sees the new ca.crt sees new leaves too.
    _write_atomically(paths["controlplane.key"], bundle.controlplane.key_pem, KEY_MODE)
    _write_atomically(paths["controlplane.crt"], bundle.controlplane.cert_pem, CERT_MODE)
    _write_atomically(paths["envoy.key"], bundle.envoy.key_pem, KEY_MODE)
    _write_atomically(paths["envoy.crt"], bundle.envoy.cert_pem, CERT_MODE)
    _write_atomically(paths["ca"], bundle.ca_pem, CERT_MODE)


def _nothing_to_rotate(where: str) -> ValueError:
    return ValueError(
        f"--rotate: nothing to rotate in {where}: no certificates yet "
        "(certgen without --rotate writes the first ones)"
    )


def rotate_directory(
    directory: Path,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    wait_s: float = DEFAULT_ROTATE_WAIT_S,
    now: datetime.datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = _quiet,
) -> Outcome:
    """Rotate the certificates in ``directory`` in two steps (module docstring)."""
    existing = read_directory(directory)
    if existing is None:
        raise _nothing_to_rotate(str(directory))
    rotation = plan_rotation(
        (existing.ca_pem, existing.controlplane),
        (existing.ca_pem, existing.envoy),
        namespace=namespace, key_type=key_type, lifetime_days=lifetime_days, now=now,
    )  # fmt: skip
    if rotation.kept:
        _write_atomically(_paths(directory)["ca"], rotation.trust.ca_pem, CERT_MODE)
        progress(f"{directory}: ca.crt trusts the new CA; new leaves in {wait_s:g} s")
        sleep(wait_s)
    _write_bundle(directory, rotation.leaves)
    return Outcome(True, _rotation_reason(rotation), _not_after(rotation.leaves))


# -- Kubernetes Secrets -------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def secret_manifests(bundle: Bundle, namespace: str) -> dict[str, dict[str, Any]]:
    """The two ``kubernetes.io/tls`` Secrets (with ``ca.crt``), by name."""

    def secret(name: str, leaf: Leaf) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/part-of": "controlplane",
                    "app.kubernetes.io/managed-by": "controlplane-certgen",
                },
            },
            "type": "kubernetes.io/tls",
            "data": {
                "ca.crt": _b64(bundle.ca_pem),
                "tls.crt": _b64(leaf.cert_pem),
                "tls.key": _b64(leaf.key_pem),
            },
        }

    return {
        CONTROLPLANE_SECRET: secret(CONTROLPLANE_SECRET, bundle.controlplane),
        ENVOY_SECRET: secret(ENVOY_SECRET, bundle.envoy),
    }


def _from_secret(data: Mapping[str, str] | None) -> tuple[bytes, Leaf] | None:
    if not data or not {"ca.crt", "tls.crt", "tls.key"} <= set(data):
        return None
    try:
        ca, cert, key = (base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key"))
    except ValueError:
        return None
    return ca, Leaf(cert, key)


async def write_secrets(
    api_client: Any,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    overwrite: bool = False,
    now: datetime.datetime | None = None,
    request_timeout: float = 30.0,
) -> Outcome:
    """Write (or keep) the two Secrets in ``namespace`` through ``api_client`` (kubernetes-
    asyncio's ``ApiClient``). A refusal of the API server is a ``ValueError`` saying which."""
    from kubernetes_asyncio import client

    return await _api_errors(
        namespace,
        _write_secrets(
            client.CoreV1Api(api_client),
            namespace=namespace,
            key_type=key_type,
            lifetime_days=lifetime_days,
            overwrite=overwrite,
            moment=now or datetime.datetime.now(datetime.UTC),
            request_timeout=request_timeout,
        ),
    )


async def rotate_secrets(
    api_client: Any,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    wait_s: float = DEFAULT_ROTATE_WAIT_S,
    now: datetime.datetime | None = None,
    request_timeout: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    progress: Progress = _quiet,
) -> Outcome:
    """Rotate the two Secrets in two steps (module docstring). Only reads and replaces them
    (``get`` and ``update``, the CronJob's Role); each replace carries the resourceVersion of
    the previous read or write, so a Secret changed meanwhile stops the rotation (409)."""
    from kubernetes_asyncio import client

    core = client.CoreV1Api(api_client)

    async def rotate() -> Outcome:
        found = {}
        for name in (CONTROLPLANE_SECRET, ENVOY_SECRET):
            try:
                found[name] = await core.read_namespaced_secret(
                    name, namespace, _request_timeout=request_timeout
                )
            except client.ApiException as error:
                if error.status != 404:
                    raise
        server = (
            _from_secret(found[CONTROLPLANE_SECRET].data) if CONTROLPLANE_SECRET in found else None
        )
        envoy = _from_secret(found[ENVOY_SECRET].data) if ENVOY_SECRET in found else None
        if server is None or envoy is None:
            raise _nothing_to_rotate(
                f"Secrets {namespace}/{CONTROLPLANE_SECRET} and {ENVOY_SECRET}"
            )
        versions = {name: secret.metadata.resource_version for name, secret in found.items()}
        rotation = plan_rotation(
            server, envoy, namespace=namespace, key_type=key_type, lifetime_days=lifetime_days,
            now=now,
        )  # fmt: skip

        async def replace(bundle: Bundle) -> None:
            for name, manifest in secret_manifests(bundle, namespace).items():
                manifest["metadata"]["resourceVersion"] = versions[name]
                body: Any = manifest
                written = await core.replace_namespaced_secret(
                    name, namespace, body, _request_timeout=request_timeout
                )
                versions[name] = written.metadata.resource_version

        if rotation.kept:
            await replace(rotation.trust)
            progress(
                f"Secrets {namespace}/{CONTROLPLANE_SECRET} and {ENVOY_SECRET}: ca.crt trusts "
                f"the new CA; new leaves in {wait_s:g} s, once every pod has seen it"
            )
            await sleep(wait_s)
        await replace(rotation.leaves)
        return Outcome(True, _rotation_reason(rotation), _not_after(rotation.leaves))

    return await _api_errors(namespace, rotate())


async def _api_errors(namespace: str, work: Awaitable[Outcome]) -> Outcome:
    """``work``'s outcome; the API server's refusals and connection errors as ``ValueError``."""
    from kubernetes_asyncio import client

    try:
        return await work
    except client.ApiException as error:
        reason = f"{error.status} {error.reason}"
        with contextlib.suppress(TypeError, ValueError, KeyError):
            reason += ": " + str(json.loads(error.body or b"")["message"])
        if error.status == 409:
            reason += " (a Secret changed meanwhile: run again)"
        raise ValueError(f"writing Secrets in {namespace}: {reason}") from None
    except OSError as error:  # aiohttp's connection errors and timeouts are OSErrors
        raise ValueError(f"writing Secrets in {namespace}: {error}") from None


async def _write_secrets(
    core: Any,
    *,
    namespace: str,
    key_type: KeyType,
    lifetime_days: int,
    overwrite: bool,
    moment: datetime.datetime,
    request_timeout: float,
) -> Outcome:
    from kubernetes_asyncio import client

    found: dict[str, Any] = {}
    for name in (CONTROLPLANE_SECRET, ENVOY_SECRET):
        try:
            found[name] = await core.read_namespaced_secret(
                name, namespace, _request_timeout=request_timeout
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
    sides = {name: _from_secret(secret.data) for name, secret in found.items()}
    server, envoy = sides.get(CONTROLPLANE_SECRET), sides.get(ENVOY_SECRET)
    reason = "no certificates yet" if not found else "incomplete Secrets"
    if server is not None and envoy is not None:
        invalid, not_after = check_bundle(server, envoy, moment)
        if invalid is None and not overwrite:
            return Outcome(False, "valid Secrets already there", not_after)
        reason = invalid or "--overwrite"
    bundle = generate(
        namespace=namespace, key_type=key_type, lifetime_days=lifetime_days, now=moment
    )
    for name, manifest in secret_manifests(bundle, namespace).items():
        if name in found:
            # The resourceVersion read above: a Secret changed meanwhile is a 409, not lost.
            manifest["metadata"]["resourceVersion"] = found[name].metadata.resource_version
        # A plain manifest: the client serializes a dict body as it is (typed as V1Secret).
        body: Any = manifest
        if name in found:
            await core.replace_namespaced_secret(
                name, namespace, body, _request_timeout=request_timeout
            )
        else:
            await core.create_namespaced_secret(namespace, body, _request_timeout=request_timeout)
    return Outcome(True, reason, _not_after(bundle))
