"""Envoy v3 resource type URLs, their message classes, and the order in which they are pushed.

The one table of resource types: the translator (`envoy`), the server (`xds`) and the debug
client all name types only through these constants.

Every ``google.protobuf.Any`` in a response must carry exactly these type URLs (Envoy NACKs a
mismatch, see ARCHITECTURE §8), so the rest of the package refers to types only through these
constants.

``PUSH_ORDER`` is the make-before-break order of ARCHITECTURE §5: clusters first, then their
endpoints and secrets, then the listeners and routes that refer to them. ``WILDCARD_TYPES`` are
the types whose state-of-the-world responses always carry the complete set.
"""

from collections.abc import Mapping
from typing import Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf.message import Message

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
    "MESSAGE_TYPES",
    "PUSH_ORDER",
    "ROUTE_TYPE",
    "SECRET_TYPE",
    "TYPE_NAMES",
    "WILDCARD_TYPES",
]

LISTENER_TYPE: Final = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE: Final = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER_TYPE: Final = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE: Final = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET_TYPE: Final = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

PUSH_ORDER: Final = (CLUSTER_TYPE, ENDPOINT_TYPE, SECRET_TYPE, LISTENER_TYPE, ROUTE_TYPE)
WILDCARD_TYPES: Final = frozenset({LISTENER_TYPE, CLUSTER_TYPE})

# Short names for logs and metric labels ("cds", "eds", ...), as Envoy's own stats spell them.
TYPE_NAMES: Final = {
    CLUSTER_TYPE: "cds",
    ENDPOINT_TYPE: "eds",
    SECRET_TYPE: "sds",
    LISTENER_TYPE: "lds",
    ROUTE_TYPE: "rds",
}

MESSAGE_TYPES: Final[Mapping[str, type[Message]]] = {
    LISTENER_TYPE: listener_pb2.Listener,
    ROUTE_TYPE: route_pb2.RouteConfiguration,
    CLUSTER_TYPE: cluster_pb2.Cluster,
    ENDPOINT_TYPE: endpoint_pb2.ClusterLoadAssignment,
    SECRET_TYPE: secret_pb2.Secret,
}
"""The generated message class of each resource type URL."""
