"""Certificates of every key type, for the certificate tests (the shared helpers in
`controlplane.testing.certs` make only ECDSA P-256 and RSA 2048)."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from controlplane.testing.certs import CertKey

Key = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)


def pair_for(key: Key) -> CertKey:
    """A self-signed certificate for `key` (any type `controlplane.testing.certs` does not make)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secure.local")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.local")]), critical=False)
        .sign(
            key,
            None
            if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
            else hashes.SHA256(),
        )
    )
    return CertKey(certificate.public_bytes(serialization.Encoding.PEM), pkcs8(key))


def pkcs8(key: Key, encryption: serialization.KeySerializationEncryption | None = None) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )
