"""Certificates for xDS over mTLS: generated, checked, and a rotation planned (pure).

Everything here is a function of its inputs (``now`` is injectable): the CA and leaves
(`generate`), whether certificates found can be kept (`check_bundle`), and the two steps of a
rotation (`plan_rotation`, `trust_bundle`). Where they are written is `files` (a directory)
and `kube_secrets` (two Secrets); the package docstring has the rules both follow.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

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
    "Progress",
    "Rotation",
    "build_certificate",
    "check_bundle",
    "check_lifetime",
    "controlplane_names",
    "generate",
    "key_pem",
    "new_key",
    "nothing_to_rotate",
    "plan_rotation",
    "quiet",
    "rotation_reason",
    "trust_bundle",
    "valid_until",
]

KeyType = Literal["ec", "rsa"]
CONTROLPLANE_SECRET: Final = "controlplanecert"
ENVOY_SECRET: Final = "envoycert"
DEFAULT_NAMESPACE: Final = "projectcontour"
DEFAULT_LIFETIME_DAYS: Final = 365
MAX_LIFETIME_DAYS: Final = 36_525  # 100 years: far inside X.509's dates, and a C int of days
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


def check_lifetime(lifetime_days: int) -> None:
    """A ``ValueError`` saying why certificates cannot live ``lifetime_days`` days, if so."""
    if lifetime_days < 1:
        raise ValueError(f"--lifetime {lifetime_days}: a certificate must live at least a day")
    if lifetime_days > MAX_LIFETIME_DAYS:
        raise ValueError(f"--lifetime {lifetime_days}: at most {MAX_LIFETIME_DAYS} days")


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
    check_lifetime(lifetime_days)
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


def rotation_reason(rotation: Rotation) -> str:
    """What a rotation did, for ``Outcome.reason``."""
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


def valid_until(bundle: Bundle) -> datetime.datetime:
    """When the bundle's server certificate expires (what ``Outcome`` reports)."""
    return x509.load_pem_x509_certificate(bundle.controlplane.cert_pem).not_valid_after_utc


Progress = Callable[[str], None]
"""Where a rotation says what it did between its steps (the CLI prints it)."""


def quiet(_: str) -> None:
    """A ``Progress`` that says nothing."""


def nothing_to_rotate(where: str) -> ValueError:
    """The error of ``--rotate`` where no certificates were written yet."""
    return ValueError(
        f"--rotate: nothing to rotate in {where}: no certificates yet "
        "(certgen without --rotate writes the first ones)"
    )
