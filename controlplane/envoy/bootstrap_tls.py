"""Envoy's side of mutual TLS for xDS: the ``xds_cluster`` transport socket and its SDS files.

When the controller runs in other pods than Envoy, the ``xds_cluster`` of the bootstrap connects
over mutual TLS (``controlplane bootstrap --xds-ca --xds-cert --xds-key``). As in Contour's
``bootstrap --resources-dir``, Envoy does not get the certificate files directly but through
*file-based SDS*: two small SDS resource files, written next to the bootstrap, each a
``DiscoveryResponse`` holding one ``Secret``:

- ``xds-client-certificate.yaml``: ``TlsCertificate`` whose chain and key are the files named
  by ``--xds-cert`` and ``--xds-key``;
- ``xds-server-validation.yaml``: ``CertificateValidationContext`` trusting ``--xds-ca`` and
  accepting only a server certificate with the DNS name ``controlplane`` (``SERVER_NAME``),
  whatever address Envoy dialled: every replica holds the same certificate.

The cluster references them with ``sds_config.path_config_source``. Envoy watches the files a
file-based SDS secret names and reloads them, so a renewed certificate is picked up for the next
connection without restarting Envoy, and the ADS stream that is open keeps running. The secrets
set ``watched_directory`` to the directory holding the files: a Kubernetes Secret volume updates
by renaming its ``..data`` symlink inside that directory (a move Envoy sees), and Envoy then
reads certificate and key together and checks neither changed in between.

The SNI sent is ``controlplane`` as well; TLS 1.2 to 1.3. Everything here is pure: paths in,
JSON-able dicts out; ``controlplane.envoy.bootstrap`` places them and the CLI writes them.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CLIENT_CERTIFICATE_FILE",
    "CLIENT_CERTIFICATE_SECRET",
    "SERVER_NAME",
    "SERVER_VALIDATION_FILE",
    "SERVER_VALIDATION_SECRET",
    "XdsClientTls",
]

SERVER_NAME: Final = "controlplane"
CLIENT_CERTIFICATE_SECRET: Final = "xds_client_certificate"
SERVER_VALIDATION_SECRET: Final = "xds_server_validation"
CLIENT_CERTIFICATE_FILE: Final = "xds-client-certificate.yaml"
SERVER_VALIDATION_FILE: Final = "xds-server-validation.yaml"

_UPSTREAM_TLS: Final = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_SECRET: Final = "envoy.extensions.transport_sockets.tls.v3.Secret"


@dataclass(frozen=True, slots=True)
class XdsClientTls:
    """Envoy's client certificate for xDS: the three PEM files as Envoy will see them (absolute
    paths, in the pod) and the directory the two SDS resource files go to."""

    ca: str
    cert: str
    key: str
    resources_dir: str

    def __post_init__(self) -> None:
        for flag, path in (
            ("--xds-ca", self.ca),
            ("--xds-cert", self.cert),
            ("--xds-key", self.key),
            ("the SDS resources directory", self.resources_dir),
        ):
            if not posixpath.isabs(path):
                # Envoy resolves relative paths against its working directory, which nobody
                # reads from the bootstrap.
                raise ValueError(f"{flag} {path!r}: Envoy needs an absolute path")

    @property
    def certificate_resource(self) -> str:
        return posixpath.join(self.resources_dir, CLIENT_CERTIFICATE_FILE)

    @property
    def validation_resource(self) -> str:
        return posixpath.join(self.resources_dir, SERVER_VALIDATION_FILE)

    def transport_socket(self) -> dict[str, Any]:
        """The ``xds_cluster``'s ``transport_socket``: TLS with the SDS files above."""

        def sds(name: str, path: str) -> dict[str, Any]:
            return {
                "name": name,
                "sds_config": {
                    "path_config_source": {"path": path},
                    "resource_api_version": "V3",
                },
            }

        return {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": f"type.googleapis.com/{_UPSTREAM_TLS}",
                "sni": SERVER_NAME,
                "common_tls_context": {
                    "tls_params": {
                        "tls_minimum_protocol_version": "TLSv1_2",
                        "tls_maximum_protocol_version": "TLSv1_3",
                    },
                    # gRPC servers refuse a TLS connection that does not negotiate h2.
                    "alpn_protocols": ["h2"],
                    "tls_certificate_sds_secret_configs": [
                        sds(CLIENT_CERTIFICATE_SECRET, self.certificate_resource)
                    ],
                    "validation_context_sds_secret_config": sds(
                        SERVER_VALIDATION_SECRET, self.validation_resource
                    ),
                },
            },
        }

    def sds_resources(self) -> dict[str, dict[str, Any]]:
        """The two SDS resource files, by absolute path: ``DiscoveryResponse``s as JSON dicts."""
        certificate: dict[str, Any] = {
            "name": CLIENT_CERTIFICATE_SECRET,
            "tls_certificate": {
                "certificate_chain": {"filename": self.cert},
                "private_key": {"filename": self.key},
            },
        }
        if posixpath.dirname(self.cert) == posixpath.dirname(self.key):
            certificate["tls_certificate"]["watched_directory"] = {
                "path": posixpath.dirname(self.cert)
            }
        validation = {
            "name": SERVER_VALIDATION_SECRET,
            "validation_context": {
                "trusted_ca": {"filename": self.ca},
                "watched_directory": {"path": posixpath.dirname(self.ca)},
                "match_typed_subject_alt_names": [
                    {"san_type": "DNS", "matcher": {"exact": SERVER_NAME}}
                ],
            },
        }
        return {
            self.certificate_resource: _response(certificate),
            self.validation_resource: _response(validation),
        }


def _response(secret: dict[str, Any]) -> dict[str, Any]:
    return {"resources": [{"@type": f"type.googleapis.com/{_SECRET}", **secret}]}
