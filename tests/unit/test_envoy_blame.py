"""What Envoy's NACK messages blame, how a composite resource comes apart, and whose it is.

The messages are Envoy 1.40's own, recorded against the real binary (SotW and delta say the
same); the resources are the translator's.
"""

from __future__ import annotations

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from controlplane.dag import (
    DAG,
    Cluster,
    Origin,
    PathMatch,
    PathMatchKind,
    Route,
    SecureVirtualHost,
    TLSSecret,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import (
    EdsTopology,
    IncrementalTranslator,
    named_resources,
    owner_of,
    part_index,
    split_parts,
    summarize,
)
from controlplane.protowire import fields, first_string
from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SECRET_TYPE,
)

PGV_CLUSTER = (
    'goo.gle/debugstr    \nname: "bad/svc/80/6dad941232"\ntype: EDS\neds_cluster_config {\n'
    '  service_name: "bad/svc"\n}\nhealth_checks {\n  http_health_check {\n'
    '    host: "contour-envoy-healthcheck"\n    path: "/h\\nx"\n  }\n}\n'
    'alt_stat_name: "bad_svc_80"\n: Proto constraint validation failed (ClusterValidationError.'
    "HealthChecks[0]: embedded message failed validation | caused by HealthCheckValidationError."
    "HttpHealthCheck: embedded message failed validation | caused by HttpHealthCheckValidationError"
    '.Path: value does not match regex pattern "^[^\\x00-\\b\\n-\\x1f\\x7f]*$")'
)
PGV_ROUTES = (
    'goo.gle/debugproto  \nname: "ingress_http"\nvirtual_hosts {\n  name: "a.local"\n'
    '  domains: "a.local"\n}\nvirtual_hosts {\n  name: "b.local"\n  domains: "b.local"\n'
    '  routes {\n    route {\n      cluster: "default/b/80/a33b6075b8"\n      regex_rewrite {\n'
    '        substitution: "/x\\ny/"\n      }\n    }\n  }\n}\n: Proto constraint validation '
    "failed (RouteConfigurationValidationError.VirtualHosts[1]: embedded message failed "
    "validation | caused by VirtualHostValidationError.Routes[0]: embedded message failed "
    "validation | caused by RouteValidationError.Route: embedded message failed validation | "
    "caused by RouteActionValidationError.RegexRewrite: embedded message failed validation | "
    "caused by RegexMatchAndSubstituteValidationError.Substitution: value does not match regex "
    'pattern "^[^\\x00\\n\\r]*$")'
)
LISTENER = (
    "Error adding/updating listener(s) ingress_https: error adding listener '0.0.0.0:43229': "
    "multiple filter chains with overlapping matching rules are defined\n"
)
SECRET = (
    "Failed to load private key from <inline>, Cause: error:0b000074:X.509 certificate "
    "routines:OPENSSL_internal:KEY_VALUES_MISMATCH"
)


@pytest.mark.parametrize(
    ("message", "names", "blamed"),
    [
        # printed in text format: that resource, and only it (clusters it routes to are not)
        (PGV_CLUSTER, ["bad/svc/80/6dad941232", "good/svc/80/1"], ["bad/svc/80/6dad941232"]),
        (PGV_ROUTES, ["ingress_http", "ingress_https"], ["ingress_http"]),
        (PGV_ROUTES, ["ingress_https"], []),
        # named in prose, as a whole word: ingress_http is not in ingress_https
        (LISTENER, ["ingress_http", "ingress_https"], ["ingress_https"]),
        (
            "Error adding/updating cluster(s) ns/a/80/x: bad, ns/b/80/y: worse",
            ["ns/a/80/x", "ns/b/80/y", "ns/a/80"],
            ["ns/a/80/x", "ns/b/80/y"],
        ),
        # named nowhere
        (SECRET, ["default/s1/abc", "bad/s2/def"], []),
        ("missing ): (", ["ingress_http", "ingress_https"], []),
    ],
)
def test_named_resources(message: str, names: list[str], blamed: list[str]) -> None:
    assert named_resources(message, names) == blamed


def test_part_index_and_summary() -> None:
    assert part_index(ROUTE_TYPE, PGV_ROUTES) == 1
    assert part_index(LISTENER_TYPE, PGV_ROUTES) is None
    assert part_index(ROUTE_TYPE, "missing ): (") is None
    assert summarize(PGV_ROUTES) == (
        "Proto constraint validation failed: RegexMatchAndSubstituteValidationError.Substitution:"
        ' value does not match regex pattern "^[^\\x00\\n\\r]*$"'
    )
    assert summarize(LISTENER).startswith("Error adding/updating listener(s) ingress_https:")
    assert len(summarize("x" * 1000)) == 240


def _route(cluster: Cluster, origin: Origin | None = None) -> Route:
    return Route(PathMatch(PathMatchKind.PREFIX, "/"), (WeightedCluster(cluster),), origin=origin)


def _dag() -> DAG:
    a, b = Cluster("team-a", "web", 80), Cluster("team-b", "api", 80, port_name="http")
    secret = TLSSecret("team-a", "tls", b"cert", b"key")
    return DAG(
        virtual_hosts=(
            VirtualHost("a.local", (_route(a),), origin=Origin("IngressRoute", "team-a", "web")),
            VirtualHost("b.local", (_route(b),), origin=Origin("Ingress", "team-b", "api")),
        ),
        secure_virtual_hosts=(
            SecureVirtualHost(
                "s.local", (_route(a),), secret=secret, origin=Origin("IngressRoute", "team-a", "s")
            ),
        ),
    )


def test_a_route_configuration_and_a_listener_come_apart_by_fqdn_and_back() -> None:
    dag = _dag()
    encoded = IncrementalTranslator().translate(dag)
    body = encoded[ROUTE_TYPE]["ingress_http"]
    parts = split_parts(ROUTE_TYPE, body)
    assert parts is not None and parts.keys() == ["a.local", "b.local"]
    assert parts.join(lambda key, field: field) == body
    without_b = route_pb2.RouteConfiguration.FromString(
        parts.join(lambda key, field: None if key == "b.local" else field)
    )
    assert without_b.name == "ingress_http"
    assert [v.name for v in without_b.virtual_hosts] == ["a.local"]

    listener = encoded[LISTENER_TYPE]["ingress_https"]
    chains = split_parts(LISTENER_TYPE, listener)
    assert chains is not None and chains.keys() == ["s.local"]
    rebuilt = listener_pb2.Listener.FromString(chains.join(lambda key, field: field))
    assert rebuilt == listener_pb2.Listener.FromString(listener)
    assert split_parts(CLUSTER_TYPE, b"") is None


def test_owner_of_walks_the_dag_back_to_the_kubernetes_object() -> None:
    dag = _dag()
    topology = EdsTopology.of(dag.clusters())
    b = dag.clusters()[1]
    assert owner_of(dag, topology, ROUTE_TYPE, "ingress_http", "b.local") == Origin(
        "Ingress", "team-b", "api"
    )
    assert owner_of(dag, topology, ROUTE_TYPE, "ingress_https", "s.local") == Origin(
        "IngressRoute", "team-a", "s"
    )
    assert owner_of(dag, topology, LISTENER_TYPE, "ingress_https", "s.local") == Origin(
        "IngressRoute", "team-a", "s"
    )
    assert owner_of(dag, topology, ROUTE_TYPE, "ingress_http", "") is None
    assert owner_of(dag, topology, CLUSTER_TYPE, b.name) == Origin("Service", "team-b", "api")
    assert owner_of(dag, topology, ENDPOINT_TYPE, "team-b/api/http") == Origin(
        "Service", "team-b", "api"
    )
    sds_name = dag.secrets()[0].sds_name
    assert owner_of(dag, topology, SECRET_TYPE, sds_name) == Origin("Secret", "team-a", "tls")
    assert owner_of(dag, topology, CLUSTER_TYPE, "nobody/x/80/y") is None


def test_wire_fields_and_strings() -> None:
    message = route_pb2.RouteConfiguration(name="r")
    message.virtual_hosts.add(name="v1", domains=["v1"])
    data = message.SerializeToString(deterministic=True)
    assert [number for number, _, _ in fields(data)] == [1, 2]
    assert b"".join(whole for _, whole, _ in fields(data)) == data
    assert first_string(data, (2, 1)) == "v1"
    assert first_string(data, (3,)) is None
    with pytest.raises(ValueError):
        list(fields(data[:-1]))
