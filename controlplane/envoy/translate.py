"""`translate`: one DAG → every Envoy resource but endpoints, as v3 protobuf messages.

This is the slow path's last pure step (ARCHITECTURE.md §1): the runtime calls it after each
debounced DAG build, encodes the result once, and the snapshot versions each resource by the hash
of its bytes. Endpoints are not here: they change far more often and go through
`endpoints.load_assignments` without a DAG rebuild.

What `EnvoyConfig` guarantees:
- per type, resources by name in name order (listeners `ingress_http`, then `ingress_https` when
  there is a secure host; route configurations `ingress_http` and `ingress_https`, both always
  present, the second possibly empty; clusters and secrets sorted by name);
- the same DAG and options give byte-identical encodings (`encode`). Messages are built
  directly from constructor arguments, never through JSON, so 10,000 virtual hosts and 10,000
  clusters translate in well under a second (bench/translate_micro.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from controlplane.dag.types import DAG
from controlplane.envoy.clusters import clusters
from controlplane.envoy.jsonview import static_bootstrap, to_json
from controlplane.envoy.listeners import HTTP_LISTENER, HTTPS_LISTENER, listeners
from controlplane.envoy.options import Shared, TranslateOptions, type_url
from controlplane.envoy.routes import https_hosts, route_configuration
from controlplane.envoy.secrets import secrets

LISTENER_TYPE: Final = type_url(listener_pb2.Listener)
ROUTE_TYPE: Final = type_url(route_pb2.RouteConfiguration)
CLUSTER_TYPE: Final = type_url(cluster_pb2.Cluster)
ENDPOINT_TYPE: Final = type_url(endpoint_pb2.ClusterLoadAssignment)
SECRET_TYPE: Final = type_url(secret_pb2.Secret)

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
    "ROUTE_TYPE",
    "SECRET_TYPE",
    "Encoded",
    "EnvoyConfig",
    "TranslateOptions",
    "encode_endpoints",
    "static_bootstrap",
    "to_json",
    "translate",
]

Encoded = dict[str, dict[str, bytes]]
"""type URL → resource name → serialized resource, names in order."""


@dataclass(frozen=True)
class EnvoyConfig:
    """Every resource of one translation except endpoints, per type, by name in name order."""

    listeners: Mapping[str, listener_pb2.Listener] = field(default_factory=dict)
    routes: Mapping[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    clusters: Mapping[str, cluster_pb2.Cluster] = field(default_factory=dict)
    secrets: Mapping[str, secret_pb2.Secret] = field(default_factory=dict)

    def encode(self) -> Encoded:
        """Serialize every resource once (deterministically), keyed by type URL then name."""
        return {
            LISTENER_TYPE: _encode(self.listeners),
            ROUTE_TYPE: _encode(self.routes),
            CLUSTER_TYPE: _encode(self.clusters),
            SECRET_TYPE: _encode(self.secrets),
        }


def _encode(
    resources: Mapping[str, listener_pb2.Listener]
    | Mapping[str, route_pb2.RouteConfiguration]
    | Mapping[str, cluster_pb2.Cluster]
    | Mapping[str, secret_pb2.Secret]
    | Mapping[str, endpoint_pb2.ClusterLoadAssignment],
) -> dict[str, bytes]:
    return {
        name: message.SerializeToString(deterministic=True) for name, message in resources.items()
    }


def encode_endpoints(
    assignments: Mapping[str, endpoint_pb2.ClusterLoadAssignment],
) -> dict[str, bytes]:
    """Serialized load assignments by EDS name (for the ENDPOINT_TYPE snapshot entry)."""
    return _encode(assignments)


def translate(dag: DAG, options: TranslateOptions | None = None) -> EnvoyConfig:
    """Translate `dag` into Envoy resources (everything but endpoints)."""
    shared = Shared.of(options or TranslateOptions())
    return EnvoyConfig(
        listeners=listeners(dag.secure_virtual_hosts, shared),
        routes={
            HTTP_LISTENER: route_configuration(HTTP_LISTENER, dag.virtual_hosts, shared),
            HTTPS_LISTENER: route_configuration(
                HTTPS_LISTENER, https_hosts(dag.secure_virtual_hosts), shared
            ),
        },
        clusters=clusters(dag.clusters(), shared),
        secrets=secrets(dag.secrets()),
    )
