"""`controlplane xds`: a debug client that asks the controller what it serves, as an Envoy would.

It opens one ADS stream, subscribes to clusters and listeners (wildcard), then to the
ClusterLoadAssignments the clusters name (and any other EDS names asked for with `eds`, such as
`namespace/service/port` of a Service no route references, or `*` for every assignment the
controller publishes), the route configurations and secrets the listeners name, ACKs every
response (the server holds listeners and routes back until clusters and their endpoints are
ACKed: make-before-break), and returns once it has a response for everything it asked for.
Private keys in secrets are redacted before anything is returned. `watch_config` keeps the
stream open and hands back the whole configuration again each time a response completes a
change (`controlplane xds --watch`), following the names the clusters and listeners refer to as
they change. With ``tls``
(``--xds-ca --xds-cert --xds-key``) it connects over mutual TLS, as an Envoy of the split
deployment does (``xds/tls.py``).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
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
from controlplane.xds.tls import TlsFiles, channel_credentials

WILDCARD = "*"

# Typed extensions the controller puts inside `Any` fields: their modules must be loaded for the
# JSON printer to find their descriptors (importlib, so no unused-import noise).
EXTENSION_MODULES = (
    "envoy.extensions.access_loggers.stream.v3.stream_pb2",
    "envoy.extensions.clusters.aggregate.v3.cluster_pb2",
    "envoy.extensions.filters.http.buffer.v3.buffer_pb2",
    "envoy.extensions.filters.http.cors.v3.cors_pb2",
    "envoy.extensions.filters.http.local_ratelimit.v3.local_rate_limit_pb2",
    "envoy.extensions.filters.http.rbac.v3.rbac_pb2",
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


def open_channel(address: str, tls: TlsFiles | None = None) -> grpc.aio.Channel:
    """A channel to the controller: mutual TLS with ``tls``, plaintext without."""
    if tls is None:
        return grpc.aio.insecure_channel(address)
    credentials, options = channel_credentials(tls)
    return grpc.aio.secure_channel(address, credentials, options=options)


@dataclass(frozen=True)
class Fetched:
    """One type as a client received it: the last ``version_info`` and each resource's bytes."""

    version: str
    resources: dict[str, bytes]


async def fetch_config(
    address: str,
    *,
    node_id: str = "controlplane-xds-client",
    timeout_s: float = 10.0,
    tls: TlsFiles | None = None,
    eds: Iterable[str] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Everything the controller serves, by type name (`cds`, `eds`, `lds`, `rds`, `sds`);
    `eds`: more EDS names to ask for than the clusters', `*` for all."""
    fetched = await fetch_resources(address, node_id=node_id, timeout_s=timeout_s, tls=tls, eds=eds)
    return _shown(fetched)


async def fetch_resources(
    address: str,
    *,
    node_id: str = "controlplane-xds-client",
    timeout_s: float = 10.0,
    tls: TlsFiles | None = None,
    eds: Iterable[str] = (),
) -> dict[str, Fetched]:
    """What the controller serves, by type URL, as received: versions and encoded resources
    (private keys included: this is for comparing what replicas serve, not for printing)."""
    resources = _watch_resources(address, node_id=node_id, tls=tls, eds=eds)
    async with asyncio.timeout(timeout_s), aclosing(resources) as configurations:
        async for fetched in configurations:
            return fetched
    raise ConnectionError(f"{address} closed the xDS stream before answering")


async def watch_config(
    address: str, *, node_id: str = "controlplane-xds-client", tls: TlsFiles | None = None
) -> AsyncGenerator[dict[str, list[dict[str, Any]]], None]:
    """What the controller serves, as `fetch_config` returns it, once at first and then again
    each time a response completes a change (`controlplane xds --watch`), until the stream ends
    (`ConnectionError`) or the caller stops iterating."""
    shown: dict[str, list[dict[str, Any]]] | None = None
    async with aclosing(_watch_resources(address, node_id=node_id, tls=tls)) as configurations:
        async for fetched in configurations:
            config = _shown(fetched)
            if config != shown:
                shown = config
                yield config


def _shown(fetched: Mapping[str, Fetched]) -> dict[str, list[dict[str, Any]]]:
    """Resources as JSON by type name, keys redacted."""
    _load_extensions()
    shown = {}
    for type_url, item in sorted(fetched.items(), key=lambda entry: TYPE_NAMES[entry[0]]):
        message_type = MESSAGE_TYPES[type_url]
        shown[TYPE_NAMES[type_url]] = [
            _as_json(type_url, message_type.FromString(item.resources[name]))
            for name in sorted(item.resources)
        ]
    return shown


async def _watch_resources(
    address: str,
    *,
    node_id: str,
    tls: TlsFiles | None,
    eds: Iterable[str] = (),
) -> AsyncGenerator[dict[str, Fetched], None]:
    """The configuration as received, each time a response completes it, until the stream ends
    (`ConnectionError`) or the caller stops iterating.

    State of the world: LDS and CDS answers carry the full set; EDS, RDS and SDS answers carry
    only what changed, so they are merged and pruned to the names still wanted. When the
    clusters or listeners change, the names they refer to are subscribed again (with the last
    nonce of that type, which the server answers); a configuration is complete once every
    wanted name has been received (for a wildcard EDS subscription, `*` in `eds`, once EDS has
    answered at all: the server names nothing for a wildcard).
    """
    extra_eds = set(eds)
    eds_wildcard = WILDCARD in extra_eds
    extra_eds.discard(WILDCARD)
    outgoing: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
    node = discovery_pb2.DiscoveryRequest().node
    node.id, node.cluster = node_id, "controlplane-debug"

    async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while True:
            yield await outgoing.get()

    wanted: dict[str, set[str] | None] = {CLUSTER_TYPE: None, LISTENER_TYPE: None}
    received: dict[str, dict[str, bytes]] = {}
    last: dict[str, tuple[str, str]] = {}  # type URL -> (version, nonce) of the latest response

    def wildcard(type_url: str) -> bool:
        return type_url == ENDPOINT_TYPE and eds_wildcard

    def asked(type_url: str) -> list[str]:
        names = sorted(wanted.get(type_url) or ())
        return [WILDCARD, *names] if wildcard(type_url) else names

    def subscribe(type_url: str, names: set[str] | None, first: bool = False) -> None:
        if names is not None and not names and not wildcard(type_url):
            # Nothing to ask for (an empty list would be a wildcard): keep what is there out.
            received[type_url] = {}
            return
        version, nonce = last.get(type_url, ("", ""))
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url, version_info=version, response_nonce=nonce
        )
        request.resource_names.extend(asked(type_url))
        if first:
            request.node.CopyFrom(node)
        outgoing.put_nowait(request)

    def want(type_url: str, names: set[str]) -> None:
        if wanted.get(type_url) == names:
            return
        wanted[type_url] = names
        if type_url in received and not wildcard(type_url):
            received[type_url] = {n: m for n, m in received[type_url].items() if n in names}
        subscribe(type_url, names)

    def complete() -> bool:
        for type_url, names in wanted.items():
            if type_url not in received:
                return False
            if wildcard(type_url):
                continue
            if names is not None and not names <= set(received[type_url]):
                return False
        return True

    def decoded(type_url: str) -> list[Message]:
        message_type = MESSAGE_TYPES[type_url]
        return [message_type.FromString(raw) for raw in received[type_url].values()]

    subscribe(CLUSTER_TYPE, None, first=True)
    subscribe(LISTENER_TYPE, None)
    sent: dict[str, Fetched] | None = None
    async with open_channel(address, tls) as channel:
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
                names = None if wildcard(type_url) else wanted.get(type_url)
                for packed in response.resources:
                    message = message_type.FromString(packed.value)
                    name = getattr(message, "name", "") or getattr(message, "cluster_name", "")
                    if names is None or name in names:
                        table[name] = packed.value
                last[type_url] = (response.version_info, response.nonce)
                ack = discovery_pb2.DiscoveryRequest(
                    type_url=type_url,
                    version_info=response.version_info,
                    response_nonce=response.nonce,
                )
                ack.resource_names.extend(asked(type_url))
                outgoing.put_nowait(ack)
                if type_url == CLUSTER_TYPE:
                    want(ENDPOINT_TYPE, _names_from_clusters(decoded(CLUSTER_TYPE)) | extra_eds)
                if type_url == LISTENER_TYPE:
                    routes, secrets = _names_from_listeners(decoded(LISTENER_TYPE))
                    want(ROUTE_TYPE, routes)
                    if secrets or SECRET_TYPE in wanted:
                        want(SECRET_TYPE, secrets)
                if not complete():
                    continue
                fetched = {
                    url: Fetched(last.get(url, ("", ""))[0], dict(resources))
                    for url, resources in received.items()
                }
                if fetched != sent:
                    sent = fetched
                    yield fetched
        finally:
            stream.cancel()
    raise ConnectionError(f"{address} closed the xDS stream")
