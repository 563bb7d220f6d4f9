"""The checkers held against the real Envoy: what they refuse, Envoy refuses, and what they pass,
Envoy loads.

Each case is a translation (from DAG values, as the controller makes it) turned into a static
bootstrap, sometimes with one value changed afterwards (values the translator cannot produce but a
bug could). The bootstrap goes to `envoy --mode validate` in binary form, so values JSON cannot
carry (durations beyond its range) reach Envoy as they would over xDS. The same bootstrap goes to
`violations()`; the case passes when both verdicts agree with the expected one. The certificate
cases do the same with `check_key_pair` and a TLS listener serving the pair.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from certificate_support import pair_for
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from google.protobuf import duration_pb2, json_format

import controlplane.envoy.checked as checked_module
from controlplane.dag.certificates import check_key_pair
from controlplane.dag.types import (
    DAG,
    Cluster,
    CorsPolicy,
    HeaderMatch,
    HealthCheck,
    PathMatch,
    PathMatchKind,
    RateLimit,
    Redirect,
    RegexRewrite,
    Route,
    SecureVirtualHost,
    SourceRanges,
    TCPProxy,
    TLSSecret,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import static_bootstrap, translate
from controlplane.envoy.options import pack
from controlplane.envoy.validation import violations
from controlplane.testing.certs import CertKey, self_signed

pytestmark = pytest.mark.e2e

KUARD = Cluster("default", "kuard", 80)
OTHER = Cluster("default", "other", 80)


def host(fqdn: str = "kuard.local", **route: Any) -> VirtualHost:
    match = route.pop("match", PathMatch(PathMatchKind.PREFIX, "/"))
    clusters = route.pop("clusters", (WeightedCluster(KUARD),))
    return VirtualHost(fqdn, (Route(match, clusters, **route),))


@cache
def pair() -> CertKey:
    return self_signed(["secure.local", "other.local"])


def secure(fqdn: str, *, secret: TLSSecret | None = None, **fields: Any) -> SecureVirtualHost:
    material = pair()
    secret = secret or TLSSecret("default", "tls", material.cert_pem, material.key_pem)
    return SecureVirtualHost(fqdn, host().routes, secret=secret, **fields)


def bootstrap(dag: DAG) -> bootstrap_pb2.Bootstrap:
    endpoints = {}
    for cluster in dag.clusters():
        endpoint = endpoint_components_pb2.LbEndpoint()
        endpoint.endpoint.address.socket_address.address = "10.0.0.1"
        endpoint.endpoint.address.socket_address.port_value = 8080
        endpoints[cluster.eds_name] = endpoint_pb2.ClusterLoadAssignment(
            endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint])]
        )
    result = bootstrap_pb2.Bootstrap()
    # The translator's own backstop (envoy/checked.py) would leave the hostile values out; here
    # they must reach Envoy, to hold the checker against Envoy's own verdict.
    with mock.patch.object(checked_module, "violations", lambda message: []):
        config = translate(dag)
    json_format.ParseDict(static_bootstrap(replace(config, endpoints=endpoints)), result)
    return result


def first_route(config: bootstrap_pb2.Bootstrap, edit: Callable[[Any], None]) -> None:
    """Edit the first route of the HTTP listener's (inline) route configuration."""
    network_filter = config.static_resources.listeners[0].filter_chains[0].filters[0]
    manager = hcm.HttpConnectionManager()
    network_filter.typed_config.Unpack(manager)
    edit(manager.route_config.virtual_hosts[0].routes[0])
    network_filter.typed_config.CopyFrom(pack(manager))


def first_endpoint(config: bootstrap_pb2.Bootstrap) -> Any:
    assignment = config.static_resources.clusters[0].load_assignment
    return assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address


def rds_without_api_type(config: bootstrap_pb2.Bootstrap) -> None:
    """The HTTP listener fetches its routes from an `api_config_source` whose `api_type` is left
    at its default, DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE."""
    network_filter = config.static_resources.listeners[0].filter_chains[0].filters[0]
    manager = hcm.HttpConnectionManager()
    network_filter.typed_config.Unpack(manager)
    manager.ClearField("route_config")
    manager.rds.route_config_name = "ingress_http"
    source = manager.rds.config_source.api_config_source
    source.transport_api_version = config_source_pb2.V3
    source.grpc_services.add().envoy_grpc.cluster_name = config.static_resources.clusters[0].name
    manager.rds.config_source.resource_api_version = config_source_pb2.V3
    network_filter.typed_config.CopyFrom(pack(manager))


@dataclass(frozen=True)
class Case:
    dag: DAG
    edit: Callable[[bootstrap_pb2.Bootstrap], None] | None = None
    accepted: bool = False


def _set(path: str, value: Any) -> Callable[[Any], None]:
    *parents, last = path.split(".")

    def edit(message: Any) -> None:
        for name in parents:
            message = getattr(message, name)
        setattr(message, last, value)

    return edit


PLAIN = DAG(virtual_hosts=(host(),))
FALLBACK = Cluster("default", "default-backend", 80)
NGINX_ROUTES = (
    Route(
        PathMatch(PathMatchKind.REGEX, "(?i)/something(/|$)(.*).*"),
        (WeightedCluster(KUARD),),
        regex_rewrite=RegexRewrite("(?i)/something(/|$)(.*)", r"/\2"),
        headers=(HeaderMatch("cookie", regex=r"(.*;\s*)?canary=always(;.*)?"),),
        host_rewrite="upstream.local",
        idle_timeout_seconds=60,
    ),
    Route(PathMatch(PathMatchKind.PREFIX, "/r"), redirect=Redirect(307, "https", "a.b", 8443, "/")),
    Route(
        PathMatch(PathMatchKind.PREFIX, "/"),
        (WeightedCluster(replace(KUARD, fallback=FALLBACK)),),
        cors=CorsPolicy(allow_origins=("*", "https://*.example.com", "https://a.example")),
        source_ranges=SourceRanges(allow=("10.0.0.0/8",), deny=("10.1.0.0/16",)),
        rate_limit=RateLimit(1, 1, 1),
        max_request_bytes=1,
    ),
)


def cors_origin(regex: str) -> Callable[[Any], None]:
    """Replace the first origin matcher of the route's CORS policy by an RE2 pattern."""

    def edit(route: Any) -> None:
        policy = cors_pb2.CorsPolicy()
        route.typed_per_filter_config["envoy.filters.http.cors"].Unpack(policy)
        policy.allow_origin_string_match[0].safe_regex.regex = regex
        route.typed_per_filter_config["envoy.filters.http.cors"].CopyFrom(pack(policy))

    return edit


LONGEST = duration_pb2.Duration(seconds=9_223_372_035, nanos=999_999_999)

CASES: dict[str, Case] = {
    # accepted: the control, and values at the edge of a rule
    "the plain translation": Case(PLAIN, accepted=True),
    "prefix rewrite with a tab": Case(
        DAG(virtual_hosts=(host(prefix_rewrite="/x\ty"),)), accepted=True
    ),
    "health check path with a tab": Case(
        DAG(
            virtual_hosts=(
                host(
                    clusters=(
                        WeightedCluster(Cluster("d", "s", 80, health_check=HealthCheck("/h\tx"))),
                    )
                ),
            )
        ),
        accepted=True,
    ),
    "one route weight 0 of two": Case(
        DAG(virtual_hosts=(host(clusters=(WeightedCluster(KUARD, 0), WeightedCluster(OTHER, 1))),)),
        accepted=True,
    ),
    "IPv6 endpoint with a scope": Case(
        PLAIN, lambda b: setattr(first_endpoint(b), "address", "fe80::1%eth0"), accepted=True
    ),
    "route timeout at Envoy's limit": Case(
        PLAIN, lambda b: first_route(b, lambda r: r.route.timeout.CopyFrom(LONGEST)), accepted=True
    ),
    "two TLS hosts": Case(
        DAG(secure_virtual_hosts=(secure("secure.local"), secure("other.local"))), accepted=True
    ),
    "every ingress-nginx route feature, and an aggregate cluster": Case(
        DAG(virtual_hosts=(VirtualHost("kuard.local", NGINX_ROUTES),)), accepted=True
    ),
    "header condition whose name has a control character (never matches)": Case(
        DAG(virtual_hosts=(host(headers=(HeaderMatch("x\x01y", exact="a\x01"),)),)),
        accepted=True,
    ),
    "regex path match of program size 100, Envoy's limit": Case(
        DAG(virtual_hosts=(host(match=PathMatch(PathMatchKind.REGEX, "/" + "a" * 95)),)),
        accepted=True,
    ),
    # refused: RE2 patterns Envoy will not compile (issue 10)
    "regex path match of program size 101": Case(
        DAG(virtual_hosts=(host(match=PathMatch(PathMatchKind.REGEX, "/" + "a" * 96)),)),
    ),
    "regex path match over Envoy's program size": Case(
        DAG(virtual_hosts=(host(match=PathMatch(PathMatchKind.REGEX, "/(abc|def|ghi){20}")),)),
    ),
    "regex path match with a lookbehind": Case(
        DAG(virtual_hosts=(host(match=PathMatch(PathMatchKind.REGEX, "/(?<=a)b")),))
    ),
    "header condition with an unbalanced group": Case(
        DAG(virtual_hosts=(host(headers=(HeaderMatch("x", regex="(a"),)),))
    ),
    "header condition whose name has a NUL": Case(
        DAG(virtual_hosts=(host(headers=(HeaderMatch("x\x00y", exact="a"),)),))
    ),
    "regex rewrite with a backreference": Case(
        DAG(virtual_hosts=(host(regex_rewrite=RegexRewrite(r"/(a)\1", "/")),))
    ),
    "CORS origin pattern over Envoy's program size": Case(
        DAG(virtual_hosts=(host(cors=CorsPolicy()),)),
        lambda b: first_route(b, cors_origin("(abc|def|ghi){20}")),
    ),
    "rate limit answering 499": Case(
        DAG(virtual_hosts=(host(rate_limit=RateLimit(1, 1, 1, 499)),))
    ),
    "rate limit refilling every 0s": Case(
        DAG(virtual_hosts=(host(rate_limit=RateLimit(1, 0, 1)),))
    ),
    "body limit of 0 bytes": Case(DAG(virtual_hosts=(host(max_request_bytes=0),))),
    # refused, as the translator makes them from DAG values (issue 9's table)
    "prefix rewrite with LF": Case(DAG(virtual_hosts=(host(prefix_rewrite="/x\ny"),))),
    "health check path with LF": Case(
        DAG(
            virtual_hosts=(
                host(
                    clusters=(
                        WeightedCluster(Cluster("d", "s", 80, health_check=HealthCheck("/h\nx"))),
                    )
                ),
            )
        )
    ),
    "health check host with CR": Case(
        DAG(
            virtual_hosts=(
                host(
                    clusters=(
                        WeightedCluster(
                            Cluster("d", "s", 80, health_check=HealthCheck("/h", host="a\rb"))
                        ),
                    )
                ),
            )
        )
    ),
    "tcp_proxy with one weighted and one unweighted service": Case(
        DAG(
            secure_virtual_hosts=(
                SecureVirtualHost(
                    "secure.local",
                    tcp_proxy=TCPProxy((WeightedCluster(KUARD, 10), WeightedCluster(OTHER, 0))),
                ),
            )
        )
    ),
    "negative route timeout": Case(DAG(virtual_hosts=(host(timeout_seconds=-1),))),
    "two virtual hosts for one domain, in another case": Case(
        DAG(virtual_hosts=(host("kuard.local"), host("KUARD.local")))
    ),
    "two TLS hosts for one name, in another case": Case(
        DAG(secure_virtual_hosts=(secure("secure.local"), secure("SECURE.local")))
    ),
    "virtual host with an empty name": Case(DAG(virtual_hosts=(host(""),))),
    # refused, one value changed after translation
    "route weights all 0": Case(
        DAG(virtual_hosts=(host(clusters=(WeightedCluster(KUARD), WeightedCluster(OTHER))),)),
        lambda b: first_route(
            b,
            lambda r: [
                w.weight.__setattr__("value", 0) for w in r.route.weighted_clusters.clusters
            ],
        ),
    ),
    "endpoint port 70000": Case(PLAIN, lambda b: setattr(first_endpoint(b), "port_value", 70000)),
    "endpoint that is a name": Case(
        PLAIN, lambda b: setattr(first_endpoint(b), "address", "example.com")
    ),
    "retry budget of 150 percent": Case(
        PLAIN,
        lambda b: (
            b.static_resources.clusters[0]
            .circuit_breakers.thresholds.add()
            .retry_budget.budget_percent.__setattr__("value", 150)
        ),
    ),
    "connect timeout 0s": Case(
        PLAIN, lambda b: b.static_resources.clusters[0].connect_timeout.__setattr__("seconds", 0)
    ),
    "route timeout beyond Envoy's range": Case(
        PLAIN, lambda b: first_route(b, _set("route.timeout.seconds", 9_223_372_036))
    ),
    "route timeout with negative nanos": Case(
        PLAIN, lambda b: first_route(b, _set("route.timeout.nanos", -1))
    ),
    "path_separated_prefix with a trailing slash": Case(
        PLAIN, lambda b: first_route(b, _set("match.path_separated_prefix", "/app/"))
    ),
    "a deprecated field disallowed by default": Case(
        PLAIN,
        lambda b: first_route(
            b,
            lambda r: (
                r.route.rate_limits.add()
                .actions.add()
                .dynamic_metadata.CopyFrom(
                    rc.RateLimit.Action.DynamicMetaData(
                        descriptor_key="k", metadata_key={"key": "a", "path": [{"key": "b"}]}
                    )
                )
            ),
        ),
    ),
    "RDS from an API config source without api_type": Case(
        PLAIN, lambda b: rds_without_api_type(b)
    ),
    "undefined load balancing policy": Case(
        PLAIN, lambda b: setattr(b.static_resources.clusters[0], "lb_policy", 77)
    ),
}


def envoy_accepts(
    envoy_binary: str, config: bootstrap_pb2.Bootstrap, path: Path
) -> tuple[bool, str]:
    path.write_bytes(config.SerializeToString())
    checked = subprocess.run(
        [envoy_binary, "--mode", "validate", "--config-path", str(path), "-l", "critical"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return checked.returncode == 0, (checked.stdout + checked.stderr)[-600:]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_violations_agree_with_envoy(case: Case, envoy_binary: str, tmp_path: Path) -> None:
    config = bootstrap(case.dag)
    if case.edit is not None:
        case.edit(config)
    found = violations(config)
    accepted, log = envoy_accepts(envoy_binary, config, tmp_path / "bootstrap.pb")
    assert accepted == case.accepted, log
    assert (not found) == case.accepted, found


def _rsa_1024() -> CertKey:
    return pair_for(rsa.generate_private_key(public_exponent=65537, key_size=1024))


def _p224() -> CertKey:
    return pair_for(ec.generate_private_key(ec.SECP224R1()))


def _encrypted() -> CertKey:
    material = pair()
    key = serialization.load_pem_private_key(material.key_pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"password"),
    )
    return CertKey(material.cert_pem, encrypted)


CERTIFICATES: dict[str, Callable[[], CertKey]] = {
    "ECDSA P-256": pair,
    "RSA 2048": lambda: self_signed(["secure.local"], key_type="rsa"),
    "mismatched key": lambda: CertKey(pair().cert_pem, self_signed(["x.local"]).key_pem),
    "RSA 1024": _rsa_1024,
    "secp224r1": _p224,
    "encrypted key": _encrypted,
    "garbage": lambda: CertKey(b"garbage", b"garbage"),
    "chain with a broken second certificate": lambda: CertKey(
        pair().cert_pem + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        pair().key_pem,
    ),
}


@pytest.mark.parametrize("make", list(CERTIFICATES.values()), ids=list(CERTIFICATES))
def test_check_key_pair_agrees_with_envoy(
    make: Callable[[], CertKey], envoy_binary: str, tmp_path: Path
) -> None:
    material = make()
    secret = TLSSecret("default", "tls", material.cert_pem, material.key_pem)
    config = bootstrap(DAG(secure_virtual_hosts=(secure("secure.local", secret=secret),)))
    accepted, log = envoy_accepts(envoy_binary, config, tmp_path / "bootstrap.pb")
    reason = check_key_pair(material.cert_pem, material.key_pem)
    assert (reason is None) == accepted, (reason, log)
