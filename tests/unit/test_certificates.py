"""`check_key_pair`: the certificate/key pairs Envoy 1.40 loads, and why it refuses the rest.

Every row's verdict was first taken from the real Envoy (`envoy --mode validate` with the pair in
a static listener); tests/unit/test_envoy_validation_live.py re-checks a sample of them.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import cache

import pytest
from certificate_support import Key, pair_for, pkcs8
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.dag.certificates import check_key_pair
from controlplane.testing.certs import CertKey, issue_leaf, make_ca, self_signed


def traditional(
    key: Key, encryption: serialization.KeySerializationEncryption | None = None
) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        encryption or serialization.NoEncryption(),
    )


@cache
def ec_pair() -> CertKey:
    return self_signed(["secure.local"])


@cache
def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def chain() -> tuple[CertKey, CertKey]:
    ca = make_ca()
    return ca, issue_leaf(ca, ["secure.local"])


def _encrypted(legacy: bool) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    secret = serialization.BestAvailableEncryption(b"password")
    key_pem = traditional(key, secret) if legacy else pkcs8(key, secret)
    return pair_for(key).cert_pem, key_pem


def _relabelled(label: bytes) -> tuple[bytes, bytes]:
    pair = ec_pair()
    cert = pair.cert_pem.replace(b"BEGIN CERTIFICATE", b"BEGIN " + label)
    return cert.replace(b"END CERTIFICATE", b"END " + label), pair.key_pem


BAD_BLOCK = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"

# name → (cert, key) builder, expected reason (None: Envoy loads it)
CASES: dict[str, tuple[Callable[[], tuple[bytes, bytes]], str | None]] = {
    "ECDSA P-256": (lambda: (ec_pair().cert_pem, ec_pair().key_pem), None),
    "ECDSA P-384": (lambda: _typed(ec.generate_private_key(ec.SECP384R1())), None),
    "ECDSA P-521": (lambda: _typed(ec.generate_private_key(ec.SECP521R1())), None),
    "RSA 2048": (lambda: _typed(rsa_key(2048)), None),
    "RSA 3072": (lambda: _typed(rsa_key(3072)), None),
    "Ed25519": (lambda: _typed(ed25519.Ed25519PrivateKey.generate()), None),
    "RSA 1024": (
        lambda: _typed(rsa_key(1024)),
        "RSA key of 1024 bits; Envoy requires at least 2048",
    ),
    "RSA 2047": (
        lambda: _typed(rsa_key(2047)),
        "RSA key of 2047 bits; Envoy requires at least 2048",
    ),
    "secp224r1": (
        lambda: _typed(ec.generate_private_key(ec.SECP224R1())),
        "ECDSA curve secp224r1 is not supported by Envoy (P-256, P-384, P-521)",
    ),
    "secp256k1": (
        lambda: _typed(ec.generate_private_key(ec.SECP256K1())),
        "ECDSA curve secp256k1 is not supported by Envoy (P-256, P-384, P-521)",
    ),
    "Ed448": (
        lambda: _typed(ed448.Ed448PrivateKey.generate()),
        "Ed448 keys are not supported by Envoy (RSA, ECDSA or Ed25519)",
    ),
    "DSA": (
        lambda: _typed(dsa.generate_private_key(2048)),
        "DSA keys are not supported by Envoy (RSA, ECDSA or Ed25519)",
    ),
    "mismatched key": (
        lambda: (ec_pair().cert_pem, self_signed(["other.local"]).key_pem),
        "the private key does not match the certificate",
    ),
    "RSA certificate, EC key": (
        lambda: (_typed(rsa_key(2048))[0], ec_pair().key_pem),
        "the private key does not match the certificate",
    ),
    "PKCS#1 RSA key": (lambda: (_typed(rsa_key(2048))[0], traditional(rsa_key(2048))), None),
    "SEC1 EC key": (
        lambda: (
            pair_for(key := ec.generate_private_key(ec.SECP256R1())).cert_pem,
            traditional(key),
        ),
        None,
    ),
    "encrypted PKCS#8 key": (
        lambda: _encrypted(legacy=False),
        "tls.key is encrypted; Envoy needs an unencrypted private key",
    ),
    "encrypted legacy PEM key": (
        lambda: _encrypted(legacy=True),
        "tls.key is encrypted; Envoy needs an unencrypted private key",
    ),
    "chain, leaf first": (
        lambda: (chain()[1].cert_pem + chain()[0].cert_pem, chain()[1].key_pem),
        None,
    ),
    "chain, CA first": (
        lambda: (chain()[0].cert_pem + chain()[1].cert_pem, chain()[1].key_pem),
        "the private key does not match the certificate",
    ),
    "chain with a broken second certificate": (
        lambda: (ec_pair().cert_pem + BAD_BLOCK, ec_pair().key_pem),
        "tls.crt holds an invalid certificate after the first one",
    ),
    "text around the blocks": (
        lambda: (b"subject=secure.local\n" + ec_pair().cert_pem + b"bye\n", ec_pair().key_pem),
        None,
    ),
    "key block in tls.crt": (
        lambda: (ec_pair().key_pem + ec_pair().cert_pem, ec_pair().key_pem),
        None,
    ),
    "certificate before the key in tls.key": (
        lambda: (ec_pair().cert_pem, ec_pair().cert_pem + ec_pair().key_pem),
        None,
    ),
    "two keys, the matching one second": (
        lambda: (ec_pair().cert_pem, self_signed(["x.local"]).key_pem + ec_pair().key_pem),
        "the private key does not match the certificate",
    ),
    "CRLF line ends": (
        lambda: (
            ec_pair().cert_pem.replace(b"\n", b"\r\n"),
            ec_pair().key_pem.replace(b"\n", b"\r\n"),
        ),
        None,
    ),
    "X509 CERTIFICATE label": (lambda: _relabelled(b"X509 CERTIFICATE"), None),
    "TRUSTED CERTIFICATE label": (lambda: _relabelled(b"TRUSTED CERTIFICATE"), None),
    "expired certificate": (lambda: _expired(), None),
    "garbage": (lambda: (b"garbage", b"garbage"), "tls.crt is not a PEM certificate"),
    "empty certificate": (lambda: (b"", ec_pair().key_pem), "tls.crt is empty"),
    "empty key": (lambda: (ec_pair().cert_pem, b"  \n"), "tls.key is empty"),
    "garbage key": (lambda: (ec_pair().cert_pem, b"not a key"), "tls.key is not a PEM private key"),
    "certificate block of bad base64": (
        lambda: (
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            ec_pair().key_pem,
        ),
        "tls.crt is not a PEM certificate: its first certificate is invalid",
    ),
    "certificate block without its end": (
        lambda: (ec_pair().cert_pem.rsplit(b"-----END", 1)[0], ec_pair().key_pem),
        "tls.crt is not a PEM certificate: its first certificate is invalid",
    ),
    "key block of bad DER": (
        lambda: (
            ec_pair().cert_pem,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
        "tls.key is not a PEM private key",
    ),
    "certificate in place of the key": (
        lambda: (ec_pair().cert_pem, ec_pair().cert_pem),
        "tls.key is not a PEM private key",
    ),
}


def _typed(key: Key) -> tuple[bytes, bytes]:
    pair = pair_for(key)
    return pair.cert_pem, pair.key_pem


def _expired() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old.local")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2000, 1, 1))
        .not_valid_after(datetime.datetime(2001, 1, 1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pkcs8(key)


@pytest.mark.parametrize(("build", "expected"), list(CASES.values()), ids=list(CASES))
def test_check_key_pair(build: Callable[[], tuple[bytes, bytes]], expected: str | None) -> None:
    cert_pem, key_pem = build()
    assert check_key_pair(cert_pem, key_pem) == expected


def test_rsa_pair_from_the_test_helpers_is_accepted() -> None:
    pair = self_signed(["secure.local"], key_type="rsa")
    assert check_key_pair(pair.cert_pem, pair.key_pem) is None


@settings(max_examples=300, deadline=None)
@given(cert_pem=st.binary(max_size=2048), key_pem=st.binary(max_size=2048))
def test_never_raises_on_any_bytes(cert_pem: bytes, key_pem: bytes) -> None:
    assert isinstance(check_key_pair(cert_pem, key_pem), str)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_never_raises_on_damaged_pem(data: st.DataObject) -> None:
    """Valid PEM with bytes flipped, cut or spliced in (the shapes a broken Secret takes)."""
    pair = ec_pair()
    pieces = []
    for original in (pair.cert_pem, pair.key_pem):
        at = data.draw(st.integers(0, len(original)))
        cut = data.draw(st.integers(0, 8))
        insert = data.draw(st.binary(max_size=8) | st.sampled_from([b"-----", b"\n", b":", b"="]))
        pieces.append(original[:at] + insert + original[at + cut :])
    reason = check_key_pair(pieces[0], pieces[1])
    assert reason is None or isinstance(reason, str)
