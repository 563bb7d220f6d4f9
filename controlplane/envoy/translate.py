"""`translate`: one DAG → every Envoy resource, as v3 protobuf messages (a decoded view).

There is one translator, `incremental.IncrementalTranslator`: it encodes each DAG value once and
assembles resources from cached bytes, and the publisher streams exactly those bytes.
`translate(dag)` is a cold run of it, decoded into messages (`EnvoyConfig.decode`), for tests,
`static_bootstrap` and the JSON of `controlplane translate`: what it shows is what `serve` sends.

What `EnvoyConfig` guarantees:
- per type, resources by name in name order (listeners `ingress_http`, then `ingress_https` when
  there is a secure host; route configurations `ingress_http` and `ingress_https`, both always
  present, the second possibly empty; clusters and secrets sorted by name);
- `encode()` gives back the translator's bytes (deterministic encoding of the same messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf.message import Message

from controlplane.dag import DAG
from controlplane.envoy.incremental import Encoded, IncrementalTranslator
from controlplane.envoy.options import TranslateOptions
from controlplane.model import ObjectSet
from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    MESSAGE_TYPES,
    ROUTE_TYPE,
    SECRET_TYPE,
)

__all__ = ["EnvoyConfig", "translate"]


@dataclass(frozen=True)
class EnvoyConfig:
    """Every resource of one translation, per type, by name in name order."""

    listeners: Mapping[str, listener_pb2.Listener] = field(default_factory=dict)
    routes: Mapping[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    clusters: Mapping[str, cluster_pb2.Cluster] = field(default_factory=dict)
    secrets: Mapping[str, secret_pb2.Secret] = field(default_factory=dict)
    endpoints: Mapping[str, endpoint_pb2.ClusterLoadAssignment] = field(default_factory=dict)

    @classmethod
    def decode(cls, encoded: Mapping[str, Mapping[str, bytes]]) -> EnvoyConfig:
        """The messages of encoded resources (type URL → name → bytes), names sorted."""

        def table(type_url: str) -> dict[str, Message]:
            bodies = encoded.get(type_url, {})
            message = MESSAGE_TYPES[type_url]
            return {name: message.FromString(bodies[name]) for name in sorted(bodies)}

        return cls(
            listeners=table(LISTENER_TYPE),
            routes=table(ROUTE_TYPE),
            clusters=table(CLUSTER_TYPE),
            secrets=table(SECRET_TYPE),
            endpoints=table(ENDPOINT_TYPE),
        )

    def encode(self) -> Encoded:
        """Serialize every resource (deterministically), keyed by type URL then name."""
        tables: dict[str, Mapping[str, Message]] = {
            LISTENER_TYPE: self.listeners,
            ROUTE_TYPE: self.routes,
            CLUSTER_TYPE: self.clusters,
            SECRET_TYPE: self.secrets,
        }
        if self.endpoints:
            tables[ENDPOINT_TYPE] = self.endpoints
        return {
            type_url: {n: m.SerializeToString(deterministic=True) for n, m in messages.items()}
            for type_url, messages in tables.items()
        }


def translate(
    dag: DAG, options: TranslateOptions | None = None, objects: ObjectSet | None = None
) -> EnvoyConfig:
    """Translate `dag` into Envoy resources; with `objects`, endpoints too."""
    return EnvoyConfig.decode(IncrementalTranslator(options).translate(dag, objects))
