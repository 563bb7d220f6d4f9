"""Properties of the DAG builder's IngressRoute build over random, often hostile, sets of objects.

Hypothesis draws IngressRoutes, Services, Secrets and TLSCertificateDelegations from small pools
of names, so collisions are the norm: delegation cycles (self-loops included), roots delegating to
roots, duplicate fqdns, wildcard and empty fqdns, empty or relative matches, ports 0 and 70000,
negative and 2**40 weights, unknown strategies, bad durations, missing and malformed secrets,
foreign ingress classes, and specs that do not even parse. A second strategy builds deep chains
and diamonds with random back edges.

For every draw: the build never raises; every IngressRoute of our class gets exactly one status
and the others none; the statuses are sorted; the output is identical for the same input, also
when the objects arrive in another order; and what is served is well formed (no wildcard or
duplicate hosts, most specific route first, weights Envoy accepts, only valid roots serve).
Finally the DAG must translate to Envoy protos without raising.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingressroute_support import (
    ca_secret,
    certificate_delegation,
    malformed_secret,
    service,
    tls_secret,
)

from controlplane.dag import build
from controlplane.dag.options import BuildOptions
from controlplane.dag.types import DAG, PathMatchKind, StatusKind
from controlplane.envoy.translate import translate
from controlplane.model import KubeObject, ObjectSet, parse_object

JSON = dict[str, Any]
NAMESPACES = ["a", "b"]
NAMES = ["r0", "r1", "r2", "r3"]
SERVICES = ["s0", "s1"]
CREATED = ["2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z"]
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mostly(good: list[Any], hostile: list[Any], one_in: int = 12) -> st.SearchStrategy[Any]:
    """A good value, or (about one time in `one_in`) a hostile one: enough valid objects are
    drawn that hosts get built, and enough hostile ones that every error path is exercised.
    Good values come first, which is also where Hypothesis shrinks to."""
    copies = max(1, (one_in - 1) * len(hostile) // len(good))
    return st.sampled_from([*good * copies, *hostile])


def sometimes(strategy: st.SearchStrategy[Any], one_in: int = 4) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from([None] * (one_in - 1)), strategy)


FQDNS = mostly(
    ["www.example.com", "x.example.com"], ["WWW.example.com", "*.x.com", "", "a b", None]
)
MATCHES = mostly(
    ["/", "/foo", "/foo/bar", "/foobar", "/bar", "/foo/"], ["", "foo", "/a?b", "/foo//"], 20
)
DELEGATED = mostly(["/", "/", "/foo"], ["/bar", "/foobar"], 4)
PORTS = mostly([80], [8080, 0, 70000, -1, 443], 25)
WEIGHTS = mostly([None, None, None, 1, 3], [0, -5, 2**32 - 1, 2**40])

health_checks = st.fixed_dictionaries(
    {"path": mostly(["/hz"], ["", "hz"])},
    optional={
        "intervalSeconds": mostly([0, 5], [-1, 2**40]),
        "unhealthyThresholdCount": mostly([0, 3], [-2]),
    },
)
validations = st.fixed_dictionaries(
    {"caSecret": mostly(["ca"], ["tls", "nope"]), "subjectName": mostly(["s0"], [""])}
)


@st.composite
def service_refs(draw: st.DrawFn) -> JSON:
    ref: JSON = {"name": draw(st.sampled_from(SERVICES)), "port": draw(PORTS)}
    weight = draw(WEIGHTS)
    if weight is not None:
        ref["weight"] = weight
    for key, strategy in (
        ("strategy", mostly(["RoundRobin", "Cookie", "Random"], ["Bogus"])),
        ("healthCheck", health_checks),
        ("validation", validations),
    ):
        value = draw(sometimes(strategy, 6))
        if value is not None:
            ref[key] = value
    return ref


delegates = st.fixed_dictionaries(
    {"name": mostly(["r2", "r3"], ["r0", "r1"], 6)},
    optional={"namespace": mostly(["a"], ["b"], 3)},
)


@st.composite
def routes(draw: st.DrawFn) -> JSON:
    kind = draw(mostly(["services", "services", "delegate"], ["both", "neither"], 25))
    # Delegating routes mostly hand over wide prefixes, so delegates often fit under them.
    route: JSON = {"match": draw(DELEGATED if kind == "delegate" else MATCHES)}
    if kind in ("services", "both"):
        route["services"] = draw(st.lists(service_refs(), min_size=1, max_size=2))
    if kind in ("delegate", "both"):
        route["delegate"] = draw(delegates)
    options = {
        "permitInsecure": st.booleans(),
        "enableWebsockets": st.booleans(),
        "prefixRewrite": st.sampled_from(["/", "/v1", ""]),
        "timeoutPolicy": st.fixed_dictionaries(
            {"request": mostly(["10s", "infinity", "0"], ["soon", "1000000000h"])}
        ),
        "retryPolicy": st.fixed_dictionaries(
            {},
            optional={
                "count": mostly([0, 2], [-1]),
                "perTryTimeout": mostly(["150ms"], ["x"]),
            },
        ),
    }
    for key, strategy in options.items():
        value = draw(sometimes(strategy))
        if value is not None:
            route[key] = value
    return route


tls_specs = st.fixed_dictionaries(
    {"secretName": mostly(["tls", "tls", "b/tls"], ["a/tls", "bad", "missing", ""])},
    optional={
        "passthrough": mostly([False], [True], 3),
        "minimumProtocolVersion": mostly(["1.2", "1.3"], ["1.0"]),
    },
)
passthrough_tls = st.just({"passthrough": True})
_tcp_services = st.fixed_dictionaries(
    {"services": st.lists(service_refs(), min_size=1, max_size=2)}
)
_tcp_delegate = st.fixed_dictionaries({"delegate": delegates})
_tcp_hostile = st.fixed_dictionaries(  # both, or neither
    {}, optional={"services": st.lists(service_refs(), max_size=2), "delegate": delegates}
)
tcp_proxies = st.one_of(*[_tcp_services, _tcp_delegate] * 4, _tcp_hostile)


@st.composite
def ingressroutes(draw: st.DrawFn) -> JSON:
    spec: JSON = {}
    name = draw(st.sampled_from(NAMES))
    # r0 and r1 are usually roots, r2 and r3 usually delegates (delegations mostly target them).
    if draw(mostly([True], [False], 5)) == (name in ("r0", "r1")):
        vhost: JSON = {}
        fqdn = draw(FQDNS)
        if fqdn is not None:
            vhost["fqdn"] = fqdn
        tls = draw(sometimes(st.one_of(tls_specs, passthrough_tls), 2))
        if tls is not None:
            vhost["tls"] = tls
        spec["virtualhost"] = vhost
    spec["routes"] = draw(st.lists(routes(), max_size=3))
    tcp = draw(sometimes(tcp_proxies))
    if tcp is not None:
        spec["tcpproxy"] = tcp
    if draw(st.integers(0, 20)) == 20:
        spec["routes"] = "not a list"  # a spec that does not parse
    annotations = draw(
        mostly(
            [{}, {"kubernetes.io/ingress.class": "contour"}],
            [{"kubernetes.io/ingress.class": "nginx"}],
        )
    )
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {
            "name": name,
            "namespace": draw(mostly(["a"], ["b"], 3)),
            "generation": draw(st.integers(0, 3)),
            "creationTimestamp": draw(st.sampled_from(CREATED)),
            "annotations": annotations,
        },
        "spec": spec,
    }


@cache
def _secrets() -> tuple[JSON, ...]:
    return (
        tls_secret("tls", "a"),
        tls_secret("tls", "b"),
        malformed_secret("bad", "a"),
        malformed_secret("bad", "b"),
        ca_secret("ca", "a"),
        ca_secret("ca", "b"),
    )


@st.composite
def supporting_objects(draw: st.DrawFn) -> list[JSON]:
    objects: list[JSON] = []
    for namespace in NAMESPACES:
        for name in SERVICES:
            ports = draw(mostly([[80], [80, 8080]], [None, [443]]))
            if ports is not None:
                objects.append(service(name, namespace, ports))
    objects += [s for s in _secrets() if draw(mostly([True], [False]))]
    if draw(st.booleans()):
        targets = draw(st.sampled_from([["*"], ["a"], ["c"]]))
        objects.append(certificate_delegation("d", "b", "tls", targets))
    return objects


@st.composite
def object_sets(draw: st.DrawFn) -> list[JSON]:
    return draw(st.lists(ingressroutes(), max_size=8)) + draw(supporting_objects())


@st.composite
def chains(draw: st.DrawFn) -> list[JSON]:
    """Deep chains of delegates (some with two children: diamonds), with random back edges."""
    depth = draw(st.integers(1, 60))
    objects: list[JSON] = [service("s0", "a")]
    for level in range(depth + 1):
        route_list: list[JSON] = []
        if level < depth:
            route_list.append({"match": "/", "delegate": {"name": f"c{level + 1}"}})
            if draw(st.booleans()) and level + 2 <= depth:
                route_list.append({"match": "/x", "delegate": {"name": f"c{level + 2}"}})
        if draw(st.integers(0, 10)) == 0:
            back = draw(st.integers(0, level))
            route_list.append(
                {"match": draw(st.sampled_from(["/", "/y"])), "delegate": {"name": f"c{back}"}}
            )
        route_list.append({"match": f"/l{level}", "services": [{"name": "s0", "port": 80}]})
        spec: JSON = {"routes": route_list}
        if level == 0:
            spec["virtualhost"] = {"fqdn": "deep.example.com"}
        objects.append(
            {
                "apiVersion": "contour.heptio.com/v1beta1",
                "kind": "IngressRoute",
                "metadata": {"name": f"c{level}", "namespace": "a"},
                "spec": spec,
            }
        )
    return objects


@st.composite
def webs(draw: st.DrawFn) -> list[JSON]:
    """Two roots over a random delegation graph of well-formed delegates: cycles, self-loops,
    diamonds, prefixes that do and do not nest, delegates shared between hosts."""
    names = [f"d{n}" for n in range(draw(st.integers(1, 6)))]
    prefixes = ["/", "/a", "/a/b", "/ab", "/c"]
    objects: list[JSON] = [service("s0", "a")]
    for index, root in enumerate(["one.example.com", "two.example.com"]):
        targets = draw(st.lists(st.tuples(st.sampled_from(prefixes), st.sampled_from(names))))
        objects.append(_web_object(f"root{index}", root, targets, []))
    for name in names:
        targets = draw(st.lists(st.tuples(st.sampled_from(prefixes), st.sampled_from(names))))
        served = draw(st.lists(st.sampled_from(prefixes), max_size=2))
        objects.append(_web_object(name, None, targets, served))
    return objects


def _web_object(
    name: str, fqdn: str | None, targets: list[tuple[str, str]], served: list[str]
) -> JSON:
    route_list: list[JSON] = [
        {"match": m, "services": [{"name": "s0", "port": 80}]} for m in served
    ]
    route_list += [{"match": m, "delegate": {"name": target}} for m, target in targets]
    spec: JSON = {"routes": route_list}
    if fqdn is not None:
        spec["virtualhost"] = {"fqdn": fqdn}
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "a"},
        "spec": spec,
    }


def parse_unique(manifests: list[JSON]) -> list[KubeObject]:
    """Parse, keeping the first object of each (kind, namespace, name): order must not matter."""
    seen: dict[tuple[str, str, str], KubeObject] = {}
    for raw in manifests:
        obj = parse_object(raw)
        seen.setdefault((obj.KIND, obj.namespace, obj.name), obj)
    return list(seen.values())


def ours(objects: list[KubeObject]) -> set[tuple[str, str]]:
    return {
        (obj.namespace, obj.name)
        for obj in objects
        if obj.KIND == "IngressRoute"
        and obj.metadata.annotations.get("kubernetes.io/ingress.class", "contour") == "contour"
    }


def check_well_formed(dag: DAG, expected: set[tuple[str, str]]) -> None:
    keys = [(s.namespace, s.name) for s in dag.statuses]
    assert len(keys) == len(set(keys)) and set(keys) == expected
    assert keys == sorted(keys)
    for status in dag.statuses:
        assert status.description
        assert status.conditions[0].type == "Valid"
        assert (status.conditions[0].status == "True") == (
            status.current_status is StatusKind.VALID
        )
    valid_roots = {
        s.namespace + "/" + s.name for s in dag.statuses if s.current_status is StatusKind.VALID
    }
    assert valid_roots or not (dag.virtual_hosts or dag.secure_virtual_hosts)
    for hosts in (dag.virtual_hosts, dag.secure_virtual_hosts):
        fqdns = [host.fqdn for host in hosts]
        assert fqdns == sorted(set(fqdns))
        for host in hosts:
            assert "*" not in host.fqdn and host.fqdn == host.fqdn.lower()
            matches = [route.match for route in host.routes]
            assert len(matches) == len(set(matches))
            assert matches == sorted(matches, key=lambda m: (m.specificity, m.value))
            for route in host.routes:
                assert route.match.kind is not PathMatchKind.EXACT
                assert route.match.value.startswith("/")
                if route.https_redirect:
                    assert route.clusters == ()
                    continue
                assert route.clusters
                weights = [weighted.weight for weighted in route.clusters]
                assert all(w >= 0 for w in weights) and 0 < sum(weights) <= 2**32 - 1
                assert all(1 <= w.cluster.port <= 65535 for w in route.clusters)
    for secure in dag.secure_virtual_hosts:
        assert secure.secret is not None or secure.tcp_proxy is not None
        if secure.tcp_proxy is not None:
            assert secure.tcp_proxy.clusters and not secure.routes


def check(manifests: list[JSON], options: BuildOptions, shuffle_seed: int) -> None:
    objects = parse_unique(manifests)
    dag = build(ObjectSet.from_objects(objects), options)
    check_well_formed(dag, ours(objects))
    assert build(ObjectSet.from_objects(objects), options) == dag
    shuffled = list(objects)
    random.Random(shuffle_seed).shuffle(shuffled)
    assert build(ObjectSet.from_objects(shuffled), options) == dag
    translate(dag)


@SETTINGS
@given(
    manifests=object_sets(),
    root_namespaces=st.sampled_from([frozenset(), frozenset({"a"})]),
    seed=st.integers(0, 2**32),
)
def test_random_object_sets(
    manifests: list[JSON], root_namespaces: frozenset[str], seed: int
) -> None:
    check(manifests, BuildOptions(root_namespaces=root_namespaces), seed)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests=chains(), seed=st.integers(0, 2**32))
def test_deep_chains_and_diamonds(manifests: list[JSON], seed: int) -> None:
    check(manifests, BuildOptions(), seed)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests=webs(), seed=st.integers(0, 2**32))
def test_delegation_webs(manifests: list[JSON], seed: int) -> None:
    check(manifests, BuildOptions(), seed)
