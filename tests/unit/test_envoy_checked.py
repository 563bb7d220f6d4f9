"""The translator's backstop: a DAG value Envoy would reject is left out, alone, and reported.

The DAG refuses the hostile values it knows of; these rows build DAG values directly, as a DAG
bug would, and check that nothing Envoy would reject is encoded, that everything else is, and
that the publisher tells the owner (a status warning for an IngressRoute, a problem otherwise).
"""

from __future__ import annotations

from dataclasses import replace

from envoy.config.route.v3 import route_pb2

from controlplane.dag import (
    DAG,
    CircuitBreakers,
    Cluster,
    ObjectStatus,
    Origin,
    PathMatch,
    PathMatchKind,
    Route,
    SecureVirtualHost,
    TLSSecret,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import IncrementalTranslator, TranslateOptions
from controlplane.model import IngressRouteStatus, ObjectSet
from controlplane.publisher import Publisher
from controlplane.testing.certs import self_signed
from controlplane.typeurls import CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE

GOOD_CLUSTER = Cluster("good", "web", 80, port_name="http")
BAD_CLUSTER = Cluster("bad", "web", 80, circuit_breakers=CircuitBreakers(max_connections=2**32))
BAD_ORIGIN = Origin("IngressRoute", "bad", "root", 'route "/x"')
GOOD_ORIGIN = Origin("IngressRoute", "good", "root", 'route "/"')


def _route(prefix: str, cluster: Cluster, origin: Origin, **extra: object) -> Route:
    match = PathMatch(
        PathMatchKind.SEGMENT_PREFIX if prefix != "/" else PathMatchKind.PREFIX, prefix
    )
    return Route(match, (WeightedCluster(cluster),), origin=origin, **extra)  # type: ignore[arg-type]


def _dag() -> DAG:
    bad_route = _route("/x", GOOD_CLUSTER, BAD_ORIGIN, prefix_rewrite="/x\ny")
    return DAG(
        virtual_hosts=(
            VirtualHost("bad.example.com", (bad_route, _route("/", GOOD_CLUSTER, BAD_ORIGIN))),
            VirtualHost("good.example.com", (_route("/", GOOD_CLUSTER, GOOD_ORIGIN),)),
            VirtualHost("worse.example.com", (_route("/", BAD_CLUSTER, BAD_ORIGIN),)),
        )
    )


def test_a_route_envoy_would_reject_is_left_out_alone() -> None:
    translator = IncrementalTranslator()
    encoded = translator.translate(_dag())
    http = route_pb2.RouteConfiguration.FromString(encoded[ROUTE_TYPE]["ingress_http"])
    served = {host.name: [r.match.prefix or r.match.path_separated_prefix for r in host.routes]
              for host in http.virtual_hosts}  # fmt: skip
    assert served == {
        "bad.example.com": ["/"],
        "good.example.com": ["/"],
        "worse.example.com": ["/"],
    }
    assert list(encoded[CLUSTER_TYPE]) == [GOOD_CLUSTER.name]  # the uint32 overflow is left out
    rejections = translator.rejections()
    assert {(r.type_url, r.resource) for r in rejections} == {
        (ROUTE_TYPE, "bad.example.com"),
        (CLUSTER_TYPE, BAD_CLUSTER.name),
    }
    [route_rejection] = [r for r in rejections if r.type_url == ROUTE_TYPE]
    assert route_rejection.origin == BAD_ORIGIN
    assert route_rejection.path.endswith("substitution")
    assert "not allowed in an HTTP header value" in route_rejection.reason
    [cluster_rejection] = [r for r in rejections if r.type_url == CLUSTER_TYPE]
    assert cluster_rejection.origin == Origin("Service", "bad", "web")
    assert "cannot be translated (ValueError" in cluster_rejection.reason


def test_rejections_survive_cached_translations() -> None:
    translator = IncrementalTranslator()
    dag = _dag()
    first = translator.translate(dag)
    assert translator.translate(dag) is not None
    assert len(translator.rejections()) == 2
    again = IncrementalTranslator()
    again.translate(replace(dag))  # an equal DAG: every value from the value cache
    assert {r.resource for r in again.rejections()} == {r.resource for r in translator.rejections()}
    assert first[ROUTE_TYPE]


def test_a_secret_left_out_takes_its_filter_chain_with_it() -> None:
    pair = self_signed(["secure.example.com"])
    fine = TLSSecret("good", "tls", pair.cert_pem, pair.key_pem)
    broken = TLSSecret("bad", "tls", pair.cert_pem, "not bytes")  # type: ignore[arg-type]
    route = _route("/", GOOD_CLUSTER, GOOD_ORIGIN)
    dag = DAG(
        secure_virtual_hosts=(
            SecureVirtualHost("a.example.com", (route,), secret=broken, origin=BAD_ORIGIN),
            SecureVirtualHost("b.example.com", (route,), secret=fine, origin=GOOD_ORIGIN),
        )
    )
    translator = IncrementalTranslator()
    encoded = translator.translate(dag)
    assert list(encoded[SECRET_TYPE]) == [fine.sds_name]
    assert b"a.example.com" not in encoded[LISTENER_TYPE]["ingress_https"]
    assert b"b.example.com" in encoded[LISTENER_TYPE]["ingress_https"]
    kinds = {(r.type_url, r.origin.kind if r.origin else None) for r in translator.rejections()}
    assert kinds == {(SECRET_TYPE, "Secret"), (LISTENER_TYPE, "IngressRoute")}


def test_the_publisher_tells_the_owner() -> None:
    valid = IngressRouteStatus(currentStatus="valid", description="valid IngressRoute")
    statuses = (
        ObjectStatus("IngressRoute", "bad", "root", valid),
        ObjectStatus("IngressRoute", "good", "root", valid),
    )
    dag = replace(_dag(), statuses=statuses)
    publisher = Publisher(TranslateOptions())
    report = publisher.report(dag, publisher.translate(dag, ObjectSet()))
    by_name = {s.namespace: s for s in report.statuses}
    assert by_name["good"].description == "valid IngressRoute"
    bad = by_name["bad"]
    assert bad.current_status.value == "valid"
    assert bad.description.startswith('valid IngressRoute, with warnings: route "/x": not served:')
    assert [c.reason for c in bad.conditions if c.type == "Warning"] == ["RejectedByEnvoyRules"]
    [problem] = report.problems
    assert (problem.kind, problem.namespace, problem.name) == ("Service", "bad", "web")
    assert problem.reason.startswith("not served: Envoy would reject")


def _hosts(count: int, bad: set[int] = frozenset()) -> tuple[VirtualHost, ...]:  # type: ignore[assignment]
    """`count` hosts in host order; those in `bad` have a route Envoy would reject."""
    hosts = []
    for index in range(count):
        routes = [_route("/", Cluster("ns", f"app{index}", 80, port_name="http"), GOOD_ORIGIN)]
        if index in bad:
            routes.append(_route("/x", GOOD_CLUSTER, BAD_ORIGIN, prefix_rewrite="/x\ny"))
        hosts.append(VirtualHost(f"host{index:03}.example.com", tuple(routes)))
    return tuple(hosts)


def test_an_edited_route_configuration_is_the_cold_one_byte_for_byte() -> None:
    """Replacing a few hosts by hosts of the same fqdn splices their encodings into the last
    configuration; everything else is assembled again. Either way the bytes and the
    rejections (in host order) are what a fresh translator makes of the same DAG."""
    hosts = _hosts(100)
    steps = [
        hosts,
        (*hosts[:7], replace(hosts[7], routes=hosts[7].routes[:0]), *hosts[8:]),  # empty host
        _hosts(100, bad={3, 50}),  # every host a new object: the whole configuration again
        hosts[:3] + _hosts(100, bad={3, 50})[3:4] + hosts[4:],  # one host turns bad
        hosts[:3] + _hosts(100, bad={3, 50})[3:4] + hosts[4:50] + _hosts(100, {50})[50:],
        hosts,  # both good again
        hosts[:10] + hosts[11:],  # a host leaves
        (*hosts[:10], replace(hosts[10], fqdn="zzz.example.com"), *hosts[11:]),  # out of order
        tuple(reversed(hosts)),
        hosts,
    ]
    translator = IncrementalTranslator()
    for step, current in enumerate(steps):
        dag = DAG(virtual_hosts=current)
        warm = translator.translate(dag)
        fresh = IncrementalTranslator()
        cold = fresh.translate(dag)
        assert warm == cold, step
        assert translator.rejections() == fresh.rejections(), step
