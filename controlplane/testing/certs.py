"""Test certificates: self-signed, or a CA and leaves it signed, as PEM bytes.

Everything here is pure except ``write_cert_key``. Keys are ECDSA P-256 by default because they
are generated in microseconds (RSA 2048 takes tens of milliseconds, which adds up in table
tests); pass ``key_type="rsa"`` where a peer insists on RSA.

Invariants:

- Every name given ends up in the subjectAltName extension (names that parse as IP addresses as
  ``IPAddress`` entries, the rest as ``DNSName``); the first name is also the subject CN.
  Envoy and Python's ``ssl`` match on the SAN only.
- The extensions are built by `controlplane.certgen.build_certificate`, the production
  certificates' builder, so test chains look like the real ones (a test CA has no path length).
- Leaves carry ``basicConstraints CA:FALSE`` and the ``serverAuth`` and ``clientAuth`` extended
  key usages, so one leaf serves for HTTPS backends, Envoy listeners and client certificates; a
  CA carries ``CA:TRUE`` and ``keyCertSign``. Both have subject and authority key identifiers,
  which BoringSSL and OpenSSL 3 need to build chains.
- Validity starts a day before ``now`` (clock skew between processes) and ``now`` can be
  injected for deterministic tests.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.certgen import KeyType, build_certificate, key_pem, new_key

__all__ = [
    "CertKey",
    "KeyType",
    "issue_leaf",
    "make_ca",
    "make_ca_and_leaf",
    "self_signed",
    "tls_secret",
    "write_cert_key",
]

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_LEAF_USAGES: Final = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


@dataclass(frozen=True)
class CertKey:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def private_key(self) -> _PrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TypeError(f"unsupported key type {type(key).__name__}")
        return key


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "controlplane tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _build(
    *,
    subject: x509.Name,
    key: _PrivateKey,
    issuer: x509.Name,
    issuer_key: _PrivateKey,
    is_ca: bool,
    names: Sequence[str],
    valid_days: int,
    now: datetime.datetime | None,
) -> bytes:
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(days=1)
    certificate = build_certificate(
        subject=subject,
        key=key,
        issuer=issuer,
        issuer_key=issuer_key,
        not_before=start,
        not_after=start + datetime.timedelta(days=valid_days + 1),
        is_ca=is_ca,
        usages=() if is_ca else _LEAF_USAGES,
        names=names,
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def self_signed(
    names: Sequence[str],
    *,
    key_type: KeyType = "ec",
    valid_days: int = 365,
    now: datetime.datetime | None = None,
) -> CertKey:
    """A self-signed leaf certificate for ``names`` (DNS names or IP addresses)."""
    if not names:
        raise ValueError("a certificate needs at least one name")
    key = new_key(key_type)
    subject = _name(names[0])
    cert_pem = _build(
        subject=subject,
        key=key,
        issuer=subject,
        issuer_key=key,
        is_ca=False,
        names=names,
        valid_days=valid_days,
        now=now,
    )
    return CertKey(cert_pem=cert_pem, key_pem=key_pem(key))


def make_ca(
    common_name: str = "controlplane test CA",
    *,
    key_type: KeyType = "ec",
    valid_days: int = 3650,
    now: datetime.datetime | None = None,
) -> CertKey:
    """A self-signed certificate authority."""
    key = new_key(key_type)
    subject = _name(common_name)
    cert_pem = _build(
        subject=subject,
        key=key,
        issuer=subject,
        issuer_key=key,
        is_ca=True,
        names=(),
        valid_days=valid_days,
        now=now,
    )
    return CertKey(cert_pem=cert_pem, key_pem=key_pem(key))


def issue_leaf(
    ca: CertKey,
    names: Sequence[str],
    *,
    key_type: KeyType = "ec",
    valid_days: int = 365,
    now: datetime.datetime | None = None,
) -> CertKey:
    """A leaf certificate for ``names`` signed by ``ca``."""
    if not names:
        raise ValueError("a certificate needs at least one name")
    key = new_key(key_type)
    cert_pem = _build(
        subject=_name(names[0]),
        key=key,
        issuer=ca.certificate.subject,
        issuer_key=ca.private_key(),
        is_ca=False,
        names=names,
        valid_days=valid_days,
        now=now,
    )
    return CertKey(cert_pem=cert_pem, key_pem=key_pem(key))


def make_ca_and_leaf(
    names: Sequence[str], *, key_type: KeyType = "ec", now: datetime.datetime | None = None
) -> tuple[CertKey, CertKey]:
    """A fresh CA and one leaf for ``names`` signed by it: ``(ca, leaf)``."""
    ca = make_ca(key_type=key_type, now=now)
    return ca, issue_leaf(ca, names, key_type=key_type, now=now)


def write_cert_key(pair: CertKey, directory: str | Path, stem: str = "tls") -> tuple[Path, Path]:
    """Write ``STEM.crt`` and ``STEM.key`` (mode 0600) into ``directory``; return both paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    cert_path = target / f"{stem}.crt"
    key_path = target / f"{stem}.key"
    cert_path.write_bytes(pair.cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(pair.key_pem)
    return cert_path, key_path


def tls_secret(
    name: str, namespace: str, pair: CertKey, *, ca: CertKey | None = None
) -> dict[str, Any]:
    """A ``kubernetes.io/tls`` Secret manifest holding ``pair`` (and ``ca.crt`` when given)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    data = {"tls.crt": b64(pair.cert_pem), "tls.key": b64(pair.key_pem)}
    if ca is not None:
        data["ca.crt"] = b64(ca.cert_pem)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": data,
    }
