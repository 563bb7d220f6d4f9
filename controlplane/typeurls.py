"""Envoy v3 resource type URLs and the order in which the server pushes them.

Every ``google.protobuf.Any`` in a response must carry exactly these type URLs (Envoy NACKs a
mismatch, see ARCHITECTURE §8), so the rest of the package refers to types only through these
constants.

``PUSH_ORDER`` is the make-before-break order of ARCHITECTURE §5: clusters first, then their
endpoints and secrets, then the listeners and routes that refer to them. ``WILDCARD_TYPES`` are
the types whose state-of-the-world responses always carry the complete set.
"""

from typing import Final

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
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
