"""TLS material from Secrets: a certificate is served only if it exists and parses.

A `kubernetes.io/tls` Secret (or any Secret with `tls.crt` and `tls.key`) becomes a `TLSSecret`
when both decode from base64 and parse as PEM (a certificate chain and a private key). Parsing is
cached by content: the same bytes are never parsed twice across rebuilds.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from controlplane.dag.types import TLSSecret
from controlplane.model import CA_KEY, CERT_KEY, PRIVATE_KEY_KEY, ObjectSet


@lru_cache(maxsize=4096)
def _parses_as_certificates(pem: bytes) -> bool:
    try:
        return len(x509.load_pem_x509_certificates(pem)) > 0
    except ValueError:
        return False


@lru_cache(maxsize=4096)
def _parses_as_private_key(pem: bytes) -> bool:
    try:
        load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def split_secret_name(reference: str, default_namespace: str) -> tuple[str, str]:
    """`name` or `namespace/name` → (namespace, name)."""
    if "/" in reference:
        namespace, _, name = reference.partition("/")
        return namespace, name
    return default_namespace, reference


def tls_secret(objects: ObjectSet, namespace: str, name: str) -> TLSSecret | None:
    """The parsed certificate and key of Secret namespace/name, or None if missing/malformed."""
    secret = objects.secrets.get((namespace, name))
    if secret is None:
        return None
    certificate, key = secret.decoded(CERT_KEY), secret.decoded(PRIVATE_KEY_KEY)
    if not certificate or not key:
        return None
    if not _parses_as_certificates(certificate) or not _parses_as_private_key(key):
        return None
    return TLSSecret(namespace, name, certificate, key)


def ca_certificate(objects: ObjectSet, namespace: str, name: str) -> bytes | None:
    """The `ca.crt` bundle of Secret namespace/name, or None if missing or not a certificate."""
    secret = objects.secrets.get((namespace, name))
    if secret is None:
        return None
    bundle = secret.decoded(CA_KEY)
    if not bundle or not _parses_as_certificates(bundle):
        return None
    return bundle
