"""TLS material from Secrets: a certificate is served only if Envoy would load it.

A `kubernetes.io/tls` Secret (or any Secret with `tls.crt` and `tls.key`) becomes a `TLSSecret`
when both decode from base64 and `certificates.check_key_pair` accepts them: PEM that parses, a
key Envoy supports (RSA ≥ 2048 bits, P-256/384/521, Ed25519), unencrypted, and matching the
certificate. Otherwise the caller gets the reason, which it puts in the status of whatever uses
the Secret; Envoy never sees it (it would reject the whole listener or SDS update). Checks are
cached by content: the same bytes are never checked twice across rebuilds.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography import x509

from controlplane.dag.certificates import check_key_pair
from controlplane.dag.types import TLSSecret
from controlplane.model import CA_KEY, CERT_KEY, PRIVATE_KEY_KEY, ObjectSet


@lru_cache(maxsize=4096)
def _parses_as_certificates(pem: bytes) -> bool:
    try:
        return len(x509.load_pem_x509_certificates(pem)) > 0
    except ValueError:
        return False


_checked_key_pair = lru_cache(maxsize=4096)(check_key_pair)


def split_secret_name(reference: str, default_namespace: str) -> tuple[str, str]:
    """`name` or `namespace/name` → (namespace, name)."""
    if "/" in reference:
        namespace, _, name = reference.partition("/")
        return namespace, name
    return default_namespace, reference


def tls_secret(objects: ObjectSet, namespace: str, name: str) -> TLSSecret | str | None:
    """The certificate and key of Secret namespace/name; None if it is missing, or the reason
    Envoy would not load it."""
    secret = objects.secrets.get((namespace, name))
    if secret is None:
        return None
    certificate, key = secret.decoded(CERT_KEY), secret.decoded(PRIVATE_KEY_KEY)
    if not certificate or not key:
        missing = " and ".join(
            k for k, v in ((CERT_KEY, certificate), (PRIVATE_KEY_KEY, key)) if not v
        )
        return f"{missing} is missing or not base64"
    reason = _checked_key_pair(certificate, key)
    if reason is not None:
        return reason
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
