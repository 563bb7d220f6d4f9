"""DAG clusters → Envoy `Cluster`s.

A DAG `Cluster` is one Service port with one upstream policy; its Envoy name
(`namespace/service/port/<policy hash>`) already changes with the policy, so two routes that use
the same Service port with different policies get two Envoy clusters that share one EDS name
(`namespace/service/portname`).

- Ordinary Services are `EDS` clusters whose endpoints arrive over the configured ConfigSource
  (ADS or the separate EDS stream). ExternalName Services are `STRICT_DNS` clusters with an inline
  load assignment to `external_name:port`; Envoy resolves the name itself (IPv4 preferred, as in
  the bootstrap) and no EDS name is involved.
- Load balancing: RoundRobin → ROUND_ROBIN, WeightedLeastRequest → LEAST_REQUEST,
  Random → RANDOM, Cookie → RING_HASH (the route hashes on the affinity cookie).
- Protocol: `h2c` and `h2` set explicit HTTP/2 through
  `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`; `h2` and `tls` add an
  `UpstreamTlsContext` (SNI: the external name, if any; ALPN h2 for `h2`). Upstream validation
  needs TLS, so a cluster with `validation` always gets the TLS context, whatever its protocol,
  with the CA inline and the subject name matched as a DNS SAN.
- `alt_stat_name` is Contour's `namespace_service_port`, so per-service stats keep their names
  when a policy change renames the cluster.
- `connect_timeout` is the cluster's `connect_timeout_seconds` (ingress-nginx
  `proxy-connect-timeout`), else 2 s.

Fallback (ingress-nginx `default-backend`): a DAG cluster with a `fallback` is an Envoy
aggregate cluster (`envoy.clusters.aggregate`, `lb_policy: CLUSTER_PROVIDED`) named by the DAG
cluster's own name (the routes point at it), whose `clusters` are `[primary.name,
fallback.name]`. The primary (the same Service port without the fallback) and the fallback are
ordinary clusters of their own, listed beside it by `DAG.clusters()`, with their own EDS names;
the aggregate has no endpoints and no EDS name (`EdsTopology` leaves it out, see
`incremental.eds_topology`). Envoy treats the two as priority levels: the primary takes
everything while it has healthy endpoints; with none (no endpoints at all, or all failing their
health checks) requests go to the fallback. Between the two, Envoy's overprovisioning factor
(1.4) spills the primary's share over gradually once fewer than ~71% of its endpoints are
healthy; nginx has no such middle ground, but it only matters with health checks.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, health_check_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.clusters.aggregate.v3 import cluster_pb2 as aggregate_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import wrappers_pb2

from controlplane.dag import (
    CircuitBreakers,
    Cluster,
    HealthCheck,
    LoadBalancerPolicy,
    UpstreamProtocol,
    UpstreamValidation,
)
from controlplane.envoy.options import TLS_TRANSPORT_SOCKET, CommonMessages, duration, pack

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
AGGREGATE_CLUSTER = "envoy.clusters.aggregate"
CONNECT_TIMEOUT_SECONDS = 2

_LB_POLICIES = {
    LoadBalancerPolicy.ROUND_ROBIN: cluster_pb2.Cluster.ROUND_ROBIN,
    LoadBalancerPolicy.WEIGHTED_LEAST_REQUEST: cluster_pb2.Cluster.LEAST_REQUEST,
    LoadBalancerPolicy.RANDOM: cluster_pb2.Cluster.RANDOM,
    LoadBalancerPolicy.COOKIE: cluster_pb2.Cluster.RING_HASH,
}


def _u32(value: int) -> wrappers_pb2.UInt32Value:
    return wrappers_pb2.UInt32Value(value=value)


def health_check(check: HealthCheck) -> health_check_pb2.HealthCheck:
    return health_check_pb2.HealthCheck(
        timeout=duration(check.timeout_seconds),
        interval=duration(check.interval_seconds),
        unhealthy_threshold=_u32(check.unhealthy_threshold),
        healthy_threshold=_u32(check.healthy_threshold),
        http_health_check=health_check_pb2.HealthCheck.HttpHealthCheck(
            path=check.path, host=check.host
        ),
    )


def circuit_breakers(limits: CircuitBreakers) -> circuit_breaker_pb2.CircuitBreakers | None:
    """Thresholds for the default priority, or None when no limit is set (Envoy's defaults)."""
    values = {
        "max_connections": limits.max_connections,
        "max_pending_requests": limits.max_pending_requests,
        "max_requests": limits.max_requests,
        "max_retries": limits.max_retries,
    }
    present = {key: _u32(value) for key, value in values.items() if value is not None}
    if not present:
        return None
    return circuit_breaker_pb2.CircuitBreakers(
        thresholds=[circuit_breaker_pb2.CircuitBreakers.Thresholds(**present)]
    )


def upstream_tls_context(
    sni: str | None, validation: UpstreamValidation | None, alpn: tuple[str, ...]
) -> tls_pb2.UpstreamTlsContext:
    common = tls_pb2.CommonTlsContext(alpn_protocols=alpn)
    if validation is not None:
        common.validation_context.CopyFrom(
            common_pb2.CertificateValidationContext(
                trusted_ca=base_pb2.DataSource(inline_bytes=validation.ca_certificate),
                match_typed_subject_alt_names=[
                    common_pb2.SubjectAltNameMatcher(
                        san_type=common_pb2.SubjectAltNameMatcher.DNS,
                        matcher=string_pb2.StringMatcher(exact=validation.subject_name),
                    )
                ],
            )
        )
    return tls_pb2.UpstreamTlsContext(common_tls_context=common, sni=sni or "")


def _http2_options() -> hpo.HttpProtocolOptions:
    return hpo.HttpProtocolOptions(
        explicit_http_config=hpo.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions()
        )
    )


def _external_load_assignment(cluster: Cluster) -> endpoint_pb2.ClusterLoadAssignment:
    address = address_pb2.Address(
        socket_address=address_pb2.SocketAddress(
            address=cluster.external_name or "", port_value=cluster.port
        )
    )
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=cluster.name,
        endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(
                lb_endpoints=[
                    endpoint_components_pb2.LbEndpoint(
                        endpoint=endpoint_components_pb2.Endpoint(address=address)
                    )
                ]
            )
        ],
    )


def _connect_timeout(value: Cluster) -> float:
    if value.connect_timeout_seconds is None:
        return CONNECT_TIMEOUT_SECONDS
    return value.connect_timeout_seconds


def aggregate_cluster(value: Cluster) -> cluster_pb2.Cluster:
    """The aggregate of `value`'s primary and its fallback, in that order of preference."""
    fallback = value.fallback
    if fallback is None:
        raise ValueError(f"cluster {value.name} has no fallback to aggregate")
    if fallback.fallback is not None:
        raise ValueError(f"the fallback {fallback.name} of {value.name} has a fallback itself")
    members = aggregate_pb2.ClusterConfig(clusters=[value.primary.name, fallback.name])
    return cluster_pb2.Cluster(
        name=value.name,
        connect_timeout=duration(_connect_timeout(value)),
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED,
        cluster_type=cluster_pb2.Cluster.CustomClusterType(
            name=AGGREGATE_CLUSTER, typed_config=pack(members)
        ),
    )


def cluster(value: Cluster, shared: CommonMessages) -> cluster_pb2.Cluster:
    if value.fallback is not None:
        return aggregate_cluster(value)
    result = cluster_pb2.Cluster(
        name=value.name,
        alt_stat_name=f"{value.namespace}_{value.service}_{value.port}",
        connect_timeout=duration(_connect_timeout(value)),
        lb_policy=_LB_POLICIES[value.load_balancer],
    )
    if value.external_name is not None:
        result.type = cluster_pb2.Cluster.STRICT_DNS
        result.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
        result.load_assignment.CopyFrom(_external_load_assignment(value))
    else:
        result.type = cluster_pb2.Cluster.EDS
        result.eds_cluster_config.CopyFrom(
            cluster_pb2.Cluster.EdsClusterConfig(
                eds_config=shared.config_source, service_name=value.eds_name
            )
        )
    if value.health_check is not None:
        result.health_checks.append(health_check(value.health_check))
        # As Contour: an endpoint that leaves EDS leaves at once, not when it fails its checks.
        result.ignore_health_on_host_removal = True
    breakers = circuit_breakers(value.circuit_breakers)
    if breakers is not None:
        result.circuit_breakers.CopyFrom(breakers)
    protocol = value.protocol
    if protocol in (UpstreamProtocol.H2, UpstreamProtocol.H2C):
        result.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(
            pack(_http2_options())
        )
    if protocol in (UpstreamProtocol.H2, UpstreamProtocol.TLS) or value.validation is not None:
        alpn = ("h2",) if protocol is UpstreamProtocol.H2 else ()
        context = upstream_tls_context(value.external_name, value.validation, alpn)
        result.transport_socket.CopyFrom(
            base_pb2.TransportSocket(name=TLS_TRANSPORT_SOCKET, typed_config=pack(context))
        )
    return result
