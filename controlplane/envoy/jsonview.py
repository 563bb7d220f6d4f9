"""Envoy resources as JSON: the `translate` CLI's view, and a self-contained static bootstrap.

Both are debugging and validation tools, off the hot path, so they go through `json_format`.

- `to_json` gives `{"listeners", "routes", "clusters", "endpoints", "secrets"}`, each a list of
  resources in the protobuf JSON mapping with snake_case field names (as Envoy's `config_dump`
  prints them), in the translation's order. The CLI adds `"status"`.
- `static_bootstrap` turns a translation into a bootstrap with everything under
  `static_resources`, so `envoy --mode validate -c FILE` (or a real Envoy without any control
  plane) can check a translation offline: RDS references are replaced by the route configuration
  itself, SDS references by a name-only reference to a static secret, and EDS clusters become
  STATIC clusters carrying their load assignment (empty when none is given).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.envoy.options import pack

if TYPE_CHECKING:  # translate re-exports this module's functions; avoid the import cycle
    from controlplane.envoy.translate import EnvoyConfig


def message_json(message: Message) -> dict[str, Any]:
    """One resource in the protobuf JSON mapping, snake_case field names."""
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def to_json(config: EnvoyConfig) -> dict[str, list[dict[str, Any]]]:
    """The translation as `{"listeners", "routes", "clusters", "endpoints", "secrets"}`."""
    return {
        "listeners": [message_json(m) for m in config.listeners.values()],
        "routes": [message_json(m) for m in config.routes.values()],
        "clusters": [message_json(m) for m in config.clusters.values()],
        "endpoints": [message_json(config.endpoints[n]) for n in sorted(config.endpoints)],
        "secrets": [message_json(m) for m in config.secrets.values()],
    }


def _static_listener(listener: listener_pb2.Listener, config: EnvoyConfig) -> listener_pb2.Listener:
    result = listener_pb2.Listener()
    result.CopyFrom(listener)
    for chain in result.filter_chains:
        for network_filter in chain.filters:
            manager = hcm.HttpConnectionManager()
            if not network_filter.typed_config.Unpack(manager) or not manager.HasField("rds"):
                continue
            routes = config.routes[manager.rds.route_config_name]
            manager.route_config.CopyFrom(routes)
            network_filter.typed_config.CopyFrom(pack(manager))
        if chain.HasField("transport_socket"):
            context = tls_pb2.DownstreamTlsContext()
            if chain.transport_socket.typed_config.Unpack(context):
                for sds in context.common_tls_context.tls_certificate_sds_secret_configs:
                    sds.ClearField("sds_config")
                chain.transport_socket.typed_config.CopyFrom(pack(context))
    return result


def _static_cluster(
    cluster: cluster_pb2.Cluster, endpoints: Mapping[str, endpoint_pb2.ClusterLoadAssignment]
) -> cluster_pb2.Cluster:
    result = cluster_pb2.Cluster()
    result.CopyFrom(cluster)
    if result.type != cluster_pb2.Cluster.EDS:
        return result
    assignment = endpoint_pb2.ClusterLoadAssignment()
    known = endpoints.get(result.eds_cluster_config.service_name)
    if known is not None:
        assignment.CopyFrom(known)
    assignment.cluster_name = result.name
    result.ClearField("eds_cluster_config")
    result.type = cluster_pb2.Cluster.STATIC
    result.load_assignment.CopyFrom(assignment)
    return result


def static_bootstrap(config: EnvoyConfig, *, admin_port: int | None = None) -> dict[str, Any]:
    """A bootstrap (JSON mapping) serving `config` (and its endpoints) with no control plane.

    `admin_port` adds an admin listener on 127.0.0.1 (0 picks a free port).
    """
    bootstrap = bootstrap_pb2.Bootstrap(
        node=base_pb2.Node(id="controlplane-static", cluster="controlplane"),
        static_resources=bootstrap_pb2.Bootstrap.StaticResources(
            listeners=[_static_listener(m, config) for m in config.listeners.values()],
            clusters=[_static_cluster(m, config.endpoints) for m in config.clusters.values()],
            secrets=list(config.secrets.values()),
        ),
    )
    if admin_port is not None:
        bootstrap.admin.address.CopyFrom(
            address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=admin_port)
            )
        )
    return message_json(bootstrap)
