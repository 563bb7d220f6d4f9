"""`controlplane xds`: a debug client that asks the controller what it serves, as an Envoy would.

It opens one ADS stream, subscribes to clusters and listeners (wildcard), then to the
ClusterLoadAssignments the clusters name, the route configurations and secrets the listeners
name, ACKs every response (the server holds listeners and routes back until clusters and their
endpoints are ACKed: make-before-break), and returns once it has a response for everything it
asked for (`fetch_config`). `watch_config` keeps the stream open and hands back the whole
configuration again each time a response completes a change (`controlplane xds --watch`),
following the names the clusters and listeners refer to as they change. Private keys in secrets
are redacted before anything is returned.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    MESSAGE_TYPES,
    ROUTE_TYPE,
    SECRET_TYPE,
    TYPE_NAMES,
)

# Typed extensions the controller puts inside `Any` fields: their modules must be loaded for the
# JSON printer to find their descriptors (importlib, so no unused-import noise).
EXTENSION_MODULES = (
    "envoy.extensions.access_loggers.stream.v3.stream_pb2",
    "envoy.extensions.filters.http.router.v3.router_pb2",
    "envoy.extensions.filters.listener.tls_inspector.v3.tls_inspector_pb2",
    "envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2",
    "envoy.extensions.upstreams.http.v3.http_protocol_options_pb2",
)


def _names_from_clusters(clusters: list[Message]) -> set[str]:
    names = set()
    for cluster in clusters:
        assert isinstance(cluster, cluster_pb2.Cluster)
        if cluster.type == cluster_pb2.Cluster.EDS:
            names.add(cluster.eds_cluster_config.service_name or cluster.name)
    return names


def _names_from_listeners(listeners: list[Message]) -> tuple[set[str], set[str]]:
    routes: set[str] = set()
    secrets: set[str] = set()
    for listener in listeners:
        assert isinstance(listener, listener_pb2.Listener)
        for chain in listener.filter_chains:
            socket = chain.transport_socket.typed_config
            if socket.Is(tls_pb2.DownstreamTlsContext.DESCRIPTOR):
                context = tls_pb2.DownstreamTlsContext()
                socket.Unpack(context)
                tls = context.common_tls_context.tls_certificate_sds_secret_configs
                secrets.update(config.name for config in tls)
            for network_filter in chain.filters:
                if network_filter.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                    manager = hcm_pb2.HttpConnectionManager()
                    network_filter.typed_config.Unpack(manager)
                    if manager.HasField("rds"):
                        routes.add(manager.rds.route_config_name)
    return routes, secrets


def _load_extensions() -> None:
    for module in EXTENSION_MODULES:
        importlib.import_module(module)


def _as_json(type_url: str, message: Message) -> dict[str, Any]:
    if isinstance(message, secret_pb2.Secret) and message.HasField("tls_certificate"):
        message.tls_certificate.private_key.inline_bytes = b"[redacted]"
    shown: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return shown


async def fetch_config(
    address: str, *, node_id: str = "controlplane-xds-client", timeout_s: float = 10.0
) -> dict[str, list[dict[str, Any]]]:
    """Everything the controller serves, by type name (`cds`, `eds`, `lds`, `rds`, `sds`)."""
    async with asyncio.timeout(timeout_s), aclosing(watch_config(address, node_id=node_id)) as it:
        async for config in it:
            return config
    raise ConnectionError(f"{address} closed the xDS stream before answering")


async def watch_config(
    address: str, *, node_id: str = "controlplane-xds-client"
) -> AsyncGenerator[dict[str, list[dict[str, Any]]], None]:
    """What the controller serves, as `fetch_config` returns it, once at first and then again
    each time a response completes a change (`controlplane xds --watch`), until the stream ends
    (`ConnectionError`) or the caller stops iterating.

    State of the world: LDS and CDS answers carry the full set; EDS, RDS and SDS answers carry
    only what changed, so they are merged and pruned to the names still wanted. When the
    clusters or listeners change, the names they refer to are subscribed again (with the last
    nonce of that type, which the server answers); a configuration is complete, and returned,
    once every wanted name has been received.
    """
    outgoing: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
    node = discovery_pb2.DiscoveryRequest().node
    node.id, node.cluster = node_id, "controlplane-debug"

    async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while True:
            yield await outgoing.get()

    wanted: dict[str, set[str] | None] = {CLUSTER_TYPE: None, LISTENER_TYPE: None}
    received: dict[str, dict[str, Message]] = {}
    last: dict[str, tuple[str, str]] = {}  # type URL -> (version, nonce) of the latest response

    def subscribe(type_url: str, names: set[str] | None, first: bool = False) -> None:
        if names is not None and not names:
            # Nothing to ask for (an empty list would be a wildcard): keep what is there out.
            received[type_url] = {}
            return
        version, nonce = last.get(type_url, ("", ""))
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url, version_info=version, response_nonce=nonce
        )
        request.resource_names.extend(sorted(names or ()))
        if first:
            request.node.CopyFrom(node)
        outgoing.put_nowait(request)

    def want(type_url: str, names: set[str]) -> None:
        if wanted.get(type_url) == names:
            return
        wanted[type_url] = names
        if type_url in received:
            received[type_url] = {n: m for n, m in received[type_url].items() if n in names}
        subscribe(type_url, names)

    def complete() -> bool:
        for type_url, names in wanted.items():
            if type_url not in received:
                return False
            if names is not None and not names <= set(received[type_url]):
                return False
        return True

    subscribe(CLUSTER_TYPE, None, first=True)
    subscribe(LISTENER_TYPE, None)
    _load_extensions()
    shown: dict[str, list[dict[str, Any]]] | None = None
    async with grpc.aio.insecure_channel(address) as channel:
        stream = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
            requests()
        )
        try:
            async for response in stream:
                type_url = response.type_url
                message_type = MESSAGE_TYPES[type_url]
                if wanted.get(type_url, set()) is None:  # LDS, CDS: always the full set
                    received[type_url] = {}
                table = received.setdefault(type_url, {})
                names = wanted.get(type_url)
                for packed in response.resources:
                    message = message_type.FromString(packed.value)
                    name = getattr(message, "name", "") or getattr(message, "cluster_name", "")
                    if names is None or name in names:
                        table[name] = message
                last[type_url] = (response.version_info, response.nonce)
                ack = discovery_pb2.DiscoveryRequest(
                    type_url=type_url,
                    version_info=response.version_info,
                    response_nonce=response.nonce,
                )
                ack.resource_names.extend(sorted(names or ()))
                outgoing.put_nowait(ack)
                if type_url == CLUSTER_TYPE:
                    want(ENDPOINT_TYPE, _names_from_clusters(list(table.values())))
                if type_url == LISTENER_TYPE:
                    routes, secrets = _names_from_listeners(list(table.values()))
                    want(ROUTE_TYPE, routes)
                    if secrets or SECRET_TYPE in wanted:
                        want(SECRET_TYPE, secrets)
                if not complete():
                    continue
                config = {
                    TYPE_NAMES[url]: [_as_json(url, resources[n]) for n in sorted(resources)]
                    for url, resources in sorted(received.items(), key=lambda i: TYPE_NAMES[i[0]])
                }
                if config != shown:
                    shown = config
                    yield config
        finally:
            stream.cancel()
    raise ConnectionError(f"{address} closed the xDS stream")
