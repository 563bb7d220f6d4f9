"""DAG TLS secrets → Envoy SDS `Secret`s.

A secret's SDS name is its Secret's `namespace/name` (`TLSSecret.sds_name`), whatever the
material: a renewed certificate is a new version of the same resource, and the filter chain
that names it does not change, so Envoy drains nothing. Certificate and key travel together in
one `Secret`, so Envoy never serves a half-updated pair. The material is sent inline (PEM bytes).
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from controlplane.dag import TLSSecret


def secret(value: TLSSecret) -> secret_pb2.Secret:
    return secret_pb2.Secret(
        name=value.sds_name,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=value.certificate_chain),
            private_key=base_pb2.DataSource(inline_bytes=value.private_key),
        ),
    )
