"""Would Envoy load this certificate and key? `check_key_pair` answers before Envoy is asked.

Envoy rejects a TLS certificate it cannot load by rejecting the whole SDS update (or listener),
so a bad Secret must be caught when the DAG is built and reported on the objects that use it.
What Envoy 1.40 (BoringSSL) does with `tls_certificate`, each point checked against the real
Envoy with `--mode validate` (tests/unit/test_envoy_validation_live.py):

- The chain is read as PEM: text outside `-----BEGIN …-----`/`-----END …-----` blocks is
  ignored, and so are blocks that are not certificates (a key block in tls.crt is fine). The
  first `CERTIFICATE` (also `X509 CERTIFICATE`, `TRUSTED CERTIFICATE`) block is the leaf; every
  later certificate block must decode too, or the whole chain is refused. CRLF line ends are
  fine; the chain's order and expiry are not checked at load.
- The leaf's key must be RSA of at least 2048 bits, ECDSA on P-256, P-384 or P-521, or Ed25519.
  Other curves (secp224r1, secp256k1, brainpool), DSA and Ed448 are refused.
- The key is the first private-key block of tls.key (`PRIVATE KEY`, `RSA PRIVATE KEY`,
  `EC PRIVATE KEY`, …; other blocks are skipped). An encrypted key is refused (the Secret carries
  no password), and the key must be the leaf's (`KEY_VALUES_MISMATCH`): a second key block that
  would match does not help, and neither does a chain whose leaf comes after its CA.

The reasons name the Secret's keys (`tls.crt`, `tls.key`) and say what to change. The PEM reader
is line-based and linear, and every failure of the parsers is caught: this runs on whatever bytes
a tenant puts in a Secret.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

__all__ = ["check_key_pair"]

_CERTIFICATE_LABELS: Final = frozenset(
    {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
)
_KEY_LABELS: Final = frozenset(
    {
        b"PRIVATE KEY",
        b"ENCRYPTED PRIVATE KEY",
        b"RSA PRIVATE KEY",
        b"EC PRIVATE KEY",
        b"DSA PRIVATE KEY",
    }
)
_MIN_RSA_BITS: Final = 2048
_CURVES: Final = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_RSA_OID: Final = x509.ObjectIdentifier("1.2.840.113549.1.1.1")
_EC_OID: Final = x509.ObjectIdentifier("1.2.840.10045.2.1")
_ED25519_OID: Final = x509.ObjectIdentifier("1.3.101.112")
_KEY_TYPE_NAMES: Final = {
    "1.2.840.10040.4.1": "DSA",
    "1.3.101.113": "Ed448",
    "1.3.101.110": "X25519",
    "1.3.101.111": "X448",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
}


class _Refused(Exception):
    """A reason Envoy would refuse the pair; the message is for the user."""


def check_key_pair(certificate_pem: bytes, key_pem: bytes) -> str | None:
    """None if Envoy would load this chain and key; otherwise a short reason a user can act on."""
    try:
        leaf = _leaf_certificate(certificate_pem)
        public_key = _check_leaf_key_type(leaf)
        key = _private_key(key_pem)
        if _spki(public_key) != _spki(key.public_key()):
            return "the private key does not match the certificate"
    except _Refused as refused:
        return str(refused)
    # The parsers are third-party code fed hostile bytes: anything they raise is reported as
    # unreadable (a reason on the Secret) instead of escaping into the build.
    except Exception as error:
        return f"tls.crt or tls.key cannot be read ({type(error).__name__})"
    return None


@dataclass(frozen=True, slots=True)
class _Block:
    label: bytes
    headers: tuple[bytes, ...]
    body: bytes | None
    """Decoded DER; None when the block is cut short or is not valid base64."""


def _pem_blocks(data: bytes) -> Iterator[_Block]:
    """PEM blocks as BoringSSL reads them: line by line, skipping text between blocks."""
    lines = data.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not (line.startswith(b"-----BEGIN ") and line.endswith(b"-----") and len(line) > 16):
            continue
        label = line[11:-5]
        end = b"-----END " + label + b"-----"
        content: list[bytes] = []
        ended = False
        while index < len(lines):
            current = lines[index].strip()
            index += 1
            if current == end:
                ended = True
                break
            if current.startswith(b"-----"):
                index -= 1  # a new BEGIN (or a wrong END): this block is cut short
                break
            content.append(current)
        headers: tuple[bytes, ...] = ()
        if content and b":" in content[0]:
            blank = content.index(b"") if b"" in content else len(content)
            headers, content = tuple(content[:blank]), content[blank:]
        yield _Block(label, headers, _decode(content) if ended else None)


def _decode(lines: list[bytes]) -> bytes | None:
    try:
        return base64.b64decode(b"".join(lines), validate=True)
    except (binascii.Error, ValueError):
        return None


def _leaf_certificate(data: bytes) -> x509.Certificate:
    if not data.strip():
        raise _Refused("tls.crt is empty")
    leaf: x509.Certificate | None = None
    for block in _pem_blocks(data):
        if block.label not in _CERTIFICATE_LABELS:
            continue
        certificate = _parse_certificate(block)
        if certificate is None:
            if leaf is None:
                raise _Refused("tls.crt is not a PEM certificate: its first certificate is invalid")
            raise _Refused("tls.crt holds an invalid certificate after the first one")
        if leaf is None:
            leaf = certificate
    if leaf is None:
        raise _Refused("tls.crt is not a PEM certificate")
    return leaf


def _parse_certificate(block: _Block) -> x509.Certificate | None:
    der = block.body
    if der is None:
        return None
    if block.label == b"TRUSTED CERTIFICATE":
        der = der[: _der_length(der)]  # OpenSSL's "auxiliary" trust data follows the certificate
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _der_length(der: bytes) -> int:
    """The length of the DER element at the start of `der` (header included)."""
    if len(der) < 2:
        return len(der)
    first = der[1]
    if first < 0x80:
        return 2 + first
    size = first & 0x7F
    return 2 + size + int.from_bytes(der[2 : 2 + size], "big")


def _check_leaf_key_type(
    leaf: x509.Certificate,
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    """The leaf's public key, if Envoy supports its type and size."""
    algorithm = leaf.public_key_algorithm_oid
    if algorithm == _RSA_OID:
        public_key = leaf.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        if public_key.key_size < _MIN_RSA_BITS:
            raise _Refused(
                f"RSA key of {public_key.key_size} bits; Envoy requires at least {_MIN_RSA_BITS}"
            )
        return public_key
    if algorithm == _EC_OID:
        try:
            curve = leaf.public_key()
        except (UnsupportedAlgorithm, ValueError):
            raise _Refused(
                "the certificate's ECDSA curve is not supported by Envoy (P-256, P-384, P-521)"
            ) from None
        assert isinstance(curve, ec.EllipticCurvePublicKey)
        if curve.curve.name not in _CURVES:
            raise _Refused(
                f"ECDSA curve {curve.curve.name} is not supported by Envoy (P-256, P-384, P-521)"
            )
        return curve
    if algorithm == _ED25519_OID:
        ed_key = leaf.public_key()
        assert isinstance(ed_key, ed25519.Ed25519PublicKey)
        return ed_key
    name = _KEY_TYPE_NAMES.get(algorithm.dotted_string, algorithm.dotted_string)
    raise _Refused(f"{name} keys are not supported by Envoy (RSA, ECDSA or Ed25519)")


def _private_key(
    data: bytes,
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    if not data.strip():
        raise _Refused("tls.key is empty")
    block = next((b for b in _pem_blocks(data) if b.label in _KEY_LABELS), None)
    if block is None:
        raise _Refused("tls.key is not a PEM private key")
    encrypted = block.label == b"ENCRYPTED PRIVATE KEY" or any(
        header.startswith(b"Proc-Type:") and b"ENCRYPTED" in header for header in block.headers
    )
    if encrypted:
        raise _Refused("tls.key is encrypted; Envoy needs an unencrypted private key")
    if block.body is None:
        raise _Refused("tls.key is not a PEM private key")
    pem = b"-----BEGIN %s-----\n%s-----END %s-----\n" % (
        block.label,
        base64.encodebytes(block.body),
        block.label,
    )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise _Refused("tls.key is encrypted; Envoy needs an unencrypted private key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise _Refused("tls.key is not a PEM private key") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise _Refused("the private key does not match the certificate")
    return key


def _spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
