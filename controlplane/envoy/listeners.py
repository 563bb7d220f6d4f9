"""DAG → Envoy `Listener`s `ingress_http` and `ingress_https`.

The listener names, stat prefixes and route configuration names are public (Contour's), so
dashboards and `config_dump` readers carry over.

- `ingress_http` always exists: one filter chain with an HTTP connection manager that fetches
  route configuration `ingress_http` over RDS. `strip_any_host_port` makes `Host: a.local:8080`
  match the virtual host `a.local`; `use_remote_address` makes Envoy the trust boundary for
  `x-forwarded-for` (and the remote address it trusts is the client address that source ranges
  and per-client rate limits key on).
- Every HTTP connection manager (plain and TLS) runs the same HTTP filter chain, always all of
  it: CORS, RBAC, local rate limit, buffer, router, each inert until a route's
  `typed_per_filter_config` arms it. The chain does not depend on what routes use, so the first
  route that uses CORS (or a body limit, …) changes the route configuration only, and Envoy
  never drains the listener (closing every tenant's connections) for it. Websocket upgrades
  (`upgrade_configs`: off unless a route enables them) run it without the buffer filter.
  `http_filters.py` documents the chain, its order and why.
- `ingress_https` exists only when there is at least one secure virtual host. A `tls_inspector`
  reads the SNI and one filter chain per secure host (sorted by fqdn) matches
  `server_names: [fqdn]`. A host whose TLS Envoy terminates gets a `DownstreamTlsContext` whose
  certificate arrives over SDS (by `TLSSecret.sds_name`, the Secret's `namespace/name`: a
  renewal changes the SDS resource only, never the chain, so it drains nothing) and then
  either an HCM on route configuration `ingress_https` (ALPN h2, http/1.1) or a `tcp_proxy` (no
  ALPN: the upstream protocol is unknown); a passthrough host gets a `tcp_proxy` and no
  transport socket at all.
  A connection without a matching SNI matches no chain and is closed. A secure host with
  neither a secret nor a TCP proxy serves nothing and gets no chain.

Determinism: a listener is a function of its inputs only (no timestamps, chains sorted), so its
bytes are identical whenever its inputs are, and Envoy never drains a listener for nothing.
HCM timeouts are documented in docs/timeouts.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf import wrappers_pb2

from controlplane.dag import SecureVirtualHost, TCPProxy, TLSSecret, TLSVersion
from controlplane.envoy.http_filters import http_filters, upgrade_configs
from controlplane.envoy.options import TLS_TRANSPORT_SOCKET, CommonMessages, duration, pack

HTTP_LISTENER = "ingress_http"
HTTPS_LISTENER = "ingress_https"
HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"

_TLS_VERSIONS = {
    TLSVersion.V1_2: common_pb2.TlsParameters.TLSv1_2,
    TLSVersion.V1_3: common_pb2.TlsParameters.TLSv1_3,
}
_HTTP_ALPN = ("h2", "http/1.1")


def _address(shared: CommonMessages, port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=shared.options.address, port_value=port)
    )


def http_connection_manager(
    stat_prefix: str, route_config_name: str, shared: CommonMessages
) -> hcm.HttpConnectionManager:
    timeouts = shared.options.timeouts
    manager = hcm.HttpConnectionManager(
        stat_prefix=stat_prefix,
        rds=hcm.Rds(config_source=shared.config_source, route_config_name=route_config_name),
        http_filters=http_filters(),
        upgrade_configs=upgrade_configs(),
        use_remote_address=wrappers_pb2.BoolValue(value=True),
        strip_any_host_port=True,
        access_log=shared.access_logs,
    )
    if timeouts.connection_idle_seconds is not None:
        manager.common_http_protocol_options.CopyFrom(
            protocol_pb2.HttpProtocolOptions(
                idle_timeout=duration(timeouts.connection_idle_seconds)
            )
        )
    if timeouts.stream_idle_seconds is not None:
        manager.stream_idle_timeout.CopyFrom(duration(timeouts.stream_idle_seconds))
    if timeouts.request_seconds is not None:
        manager.request_timeout.CopyFrom(duration(timeouts.request_seconds))
    if timeouts.drain_seconds is not None:
        manager.drain_timeout.CopyFrom(duration(timeouts.drain_seconds))
    return manager


def http_listener(shared: CommonMessages) -> listener_pb2.Listener:
    manager = http_connection_manager(HTTP_LISTENER, HTTP_LISTENER, shared)
    return listener_pb2.Listener(
        name=HTTP_LISTENER,
        address=_address(shared, shared.options.http_port),
        filter_chains=[
            lc.FilterChain(
                filters=[lc.Filter(name=HTTP_CONNECTION_MANAGER, typed_config=pack(manager))]
            )
        ],
    )


def downstream_tls_context(
    secret: TLSSecret, minimum: TLSVersion, alpn: Iterable[str], shared: CommonMessages
) -> tls_pb2.DownstreamTlsContext:
    return tls_pb2.DownstreamTlsContext(
        common_tls_context=tls_pb2.CommonTlsContext(
            tls_params=common_pb2.TlsParameters(
                tls_minimum_protocol_version=_TLS_VERSIONS[minimum]
            ),
            tls_certificate_sds_secret_configs=[
                secret_pb2.SdsSecretConfig(name=secret.sds_name, sds_config=shared.config_source)
            ],
            alpn_protocols=alpn,
        )
    )


def tcp_proxy(proxy: TCPProxy, shared: CommonMessages) -> tcp_proxy_pb2.TcpProxy:
    """A TCP proxy to one cluster, or weighted across several (all-zero weights: equal)."""
    clusters = proxy.clusters
    if len(clusters) == 1:
        return tcp_proxy_pb2.TcpProxy(
            stat_prefix=HTTPS_LISTENER,
            cluster=clusters[0].cluster.name,
            access_log=shared.access_logs,
        )
    weights = [max(0, weighted.weight) for weighted in clusters]
    if not any(weights):
        weights = [1] * len(weights)
    return tcp_proxy_pb2.TcpProxy(
        stat_prefix=HTTPS_LISTENER,
        weighted_clusters=tcp_proxy_pb2.TcpProxy.WeightedCluster(
            clusters=[
                tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(
                    name=weighted.cluster.name, weight=weight
                )
                for weighted, weight in zip(clusters, weights, strict=True)
            ]
        ),
        access_log=shared.access_logs,
    )


def https_manager_filter(shared: CommonMessages) -> lc.Filter:
    """The HCM filter every TLS-terminating HTTP chain shares (built once per listener)."""
    manager = http_connection_manager(HTTPS_LISTENER, HTTPS_LISTENER, shared)
    return lc.Filter(name=HTTP_CONNECTION_MANAGER, typed_config=pack(manager))


def filter_chain(
    host: SecureVirtualHost, shared: CommonMessages, manager_filter: lc.Filter
) -> lc.FilterChain | None:
    """The chain serving one secure host, selected by SNI; None if the host serves nothing.

    `manager_filter` is `https_manager_filter(shared)`, passed in so it is encoded once.
    """
    chain_match = lc.FilterChainMatch(server_names=[host.fqdn])
    if host.tcp_proxy is not None:
        network_filter = lc.Filter(
            name=TCP_PROXY, typed_config=pack(tcp_proxy(host.tcp_proxy, shared))
        )
        alpn: tuple[str, ...] = ()
    elif host.secret is not None:
        network_filter = manager_filter
        alpn = _HTTP_ALPN
    else:
        return None
    chain = lc.FilterChain(filter_chain_match=chain_match, filters=[network_filter])
    if host.secret is not None:
        context = downstream_tls_context(host.secret, host.minimum_tls_version, alpn, shared)
        chain.transport_socket.CopyFrom(
            base_pb2.TransportSocket(name=TLS_TRANSPORT_SOCKET, typed_config=pack(context))
        )
    return chain


def https_listener_frame(shared: CommonMessages) -> listener_pb2.Listener:
    """`ingress_https` without its filter chains (the incremental translator appends those)."""
    return listener_pb2.Listener(
        name=HTTPS_LISTENER,
        address=_address(shared, shared.options.https_port),
        listener_filters=[
            lc.ListenerFilter(
                name=TLS_INSPECTOR, typed_config=pack(tls_inspector_pb2.TlsInspector())
            )
        ],
    )


def secure_host_order(hosts: Iterable[SecureVirtualHost]) -> list[SecureVirtualHost]:
    return sorted(hosts, key=lambda host: host.fqdn)
