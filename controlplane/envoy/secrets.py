"""DAG TLS secrets → Envoy SDS `Secret`s.

A secret's SDS name (`namespace/name/<hash of the material>`) changes whenever the certificate
or key does, so a rotated certificate is a new resource: listeners that reference it change too
and Envoy never serves a half-updated pair. The material is sent inline (PEM bytes).
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
