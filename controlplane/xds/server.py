"""The gRPC server: ADS (SotW and delta) and the per-type services, over ``grpc.aio``.

Handlers are registered as *generic* method handlers rather than generated servicers, so the
response serializer can be the identity: the state machine already produced the encoded
``DiscoveryResponse`` bytes (assembled from per-resource encodings shared by every stream), and
gRPC writes them as they are. Requests are parsed with the generated ``FromString``.

Every method is the same state machine with a different framing (SotW or delta) and type set
(all types for ADS, one for a per-type service). Make-before-break ordering only applies to ADS:
per-type services run each type on its own stream, where no cross-type order exists.

Connection options: a 64 MiB receive limit (Envoy's Node and large NACK messages), keepalive
pings both ways (with a tolerant ping policy, since Envoy may ping idle connections), and an
optional maximum connection age so Envoys reconnect from time to time and spread over replicas.

Transport: mutual TLS when given ``TlsFiles`` (``xds/tls.py``: client certificates required and
verified, the server's own certificate re-read when its files change, open streams untouched).
Without them the port is plaintext, which is only safe where nothing but the local Envoy can
connect: binding anything but loopback that way logs ``xds.server.plaintext`` as a warning,
since xDS carries every TLS private key.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    PUSH_ORDER,
    ROUTE_TYPE,
    SECRET_TYPE,
)
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.session import Session
from controlplane.xds.stream import Framing
from controlplane.xds.tls import ServerCertificates, TlsFiles

__all__ = ["SERVICES", "ServerSettings", "XdsServer"]

_log = structlog.get_logger(__name__)

ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"

# service name → (SotW method, delta method, types served)
SERVICES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    ADS_SERVICE: ("StreamAggregatedResources", "DeltaAggregatedResources", PUSH_ORDER),
    "envoy.service.cluster.v3.ClusterDiscoveryService": (
        "StreamClusters",
        "DeltaClusters",
        (CLUSTER_TYPE,),
    ),
    "envoy.service.endpoint.v3.EndpointDiscoveryService": (
        "StreamEndpoints",
        "DeltaEndpoints",
        (ENDPOINT_TYPE,),
    ),
    "envoy.service.secret.v3.SecretDiscoveryService": (
        "StreamSecrets",
        "DeltaSecrets",
        (SECRET_TYPE,),
    ),
    "envoy.service.listener.v3.ListenerDiscoveryService": (
        "StreamListeners",
        "DeltaListeners",
        (LISTENER_TYPE,),
    ),
    "envoy.service.route.v3.RouteDiscoveryService": ("StreamRoutes", "DeltaRoutes", (ROUTE_TYPE,)),
}


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Tunables of the xDS server; the defaults suit a production controller."""

    max_receive_message_length: int = 64 * 1024 * 1024
    keepalive_time_ms: int = 60_000
    keepalive_timeout_ms: int = 20_000
    min_recv_ping_interval_ms: int = 10_000
    # Envoys reconnect every half hour (spreading over replicas after a scale-up), and a stream
    # given up for not reading is reclaimed at the latest a grace period later.
    max_connection_age_ms: int | None = 30 * 60 * 1000
    max_connection_age_grace_ms: int = 60_000
    write_timeout_s: float = 30.0
    # The largest TLS record the server writes. gRPC's default (16 KiB) is a buffer held per
    # connection for its lifetime; at 4 KiB an idle mTLS Envoy connection costs ~20 KiB less
    # (bench/README.md, mtls_streams), and a 200 KB push is 50 records instead of 13.
    tls_max_frame_size: int = 4096
    make_before_break: bool = True
    control_plane_id: str = "controlplane"

    def grpc_options(self) -> list[tuple[str, int]]:
        options = [
            ("grpc.max_receive_message_length", self.max_receive_message_length),
            ("grpc.keepalive_time_ms", self.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", self.min_recv_ping_interval_ms),
            ("grpc.http2.max_ping_strikes", 0),
            # Refuse to share a port with another process: a second controller must fail loudly.
            ("grpc.so_reuseport", 0),
            ("grpc.tsi.max_frame_size", self.tls_max_frame_size),
        ]
        if self.max_connection_age_ms is not None:
            options.append(("grpc.max_connection_age_ms", self.max_connection_age_ms))
            options.append(("grpc.max_connection_age_grace_ms", self.max_connection_age_grace_ms))
        return options


def is_loopback(address: str) -> bool:
    """Whether a gRPC listen address (``host:port``, ``[v6]:port``, ``unix:path``) is local."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _passthrough(payload: bytes) -> bytes:
    return payload


class XdsServer:
    """Serves the snapshots of a :class:`SnapshotCache` to Envoys."""

    def __init__(
        self,
        cache: SnapshotCache,
        settings: ServerSettings | None = None,
        *,
        tls: TlsFiles | None = None,
    ) -> None:
        self.cache = cache
        self.settings = settings if settings is not None else ServerSettings()
        self.tls = tls
        self.certificates: ServerCertificates | None = None
        """The server's certificates when serving mTLS (reload count included)."""
        self._server: Any = None
        self.port: int | None = None
        self._stream_ids = itertools.count(1)
        self.sessions: set[Session] = set()
        """The streams open now (for debug pages, and tests that wait on their progress)."""

    async def start(self, address: str) -> int:
        """Listen on ``address`` (``host:port``, port 0 picks one); return the bound port."""
        if self._server is not None:
            raise RuntimeError("server already started")
        server = grpc.aio.server(options=self.settings.grpc_options())
        server.add_generic_rpc_handlers(self._handlers())
        if self.tls is not None:
            self.certificates = ServerCertificates(self.tls)
            port = server.add_secure_port(address, self.certificates.credentials())
        else:
            port = server.add_insecure_port(address)
            if not is_loopback(address):
                _log.warning(
                    "xds.server.plaintext",
                    address=address,
                    reason="xDS carries TLS private keys; give --xds-ca, --xds-cert and "
                    "--xds-key, or bind a loopback address",
                )
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        await server.start()
        self._server = server
        self.port = int(port)
        _log.info("xds.server.started", address=address, port=port, mtls=self.tls is not None)
        return self.port

    async def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting streams; cancel the open ones after ``grace`` seconds."""
        if self._server is None:
            return
        server, self._server = self._server, None
        await server.stop(grace)
        _log.info("xds.server.stopped")

    def _handlers(self) -> list[Any]:
        sotw = discovery_pb2.DiscoveryRequest.FromString
        delta = discovery_pb2.DeltaDiscoveryRequest.FromString
        handlers = []
        for service, (sotw_method, delta_method, types) in SERVICES.items():
            mbb = self.settings.make_before_break and service == ADS_SERVICE
            methods = {
                sotw_method: self._method(Framing.SOTW, types, mbb, sotw),
                delta_method: self._method(Framing.DELTA, types, mbb, delta),
            }
            handlers.append(grpc.method_handlers_generic_handler(service, methods))
        return handlers

    def _method(
        self,
        framing: Framing,
        types: Collection[str],
        make_before_break: bool,
        deserializer: Callable[[bytes], Any],
    ) -> Any:
        async def behaviour(requests: Any, context: Any) -> None:
            session = Session(
                self.cache,
                stream_id=next(self._stream_ids),
                framing=framing,
                types=types,
                make_before_break=make_before_break,
                write_timeout=self.settings.write_timeout_s,
                control_plane=self.settings.control_plane_id,
            )
            self.sessions.add(session)
            try:
                await session.run(requests, context)
            finally:
                self.sessions.discard(session)

        return grpc.stream_stream_rpc_method_handler(
            behaviour, request_deserializer=deserializer, response_serializer=_passthrough
        )
