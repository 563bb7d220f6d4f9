"""What the build does once per value instead of once per route, and that none of it leaks.

A 10,000-route build shares a few `match` strings, port names and policies, and nearly every
IngressRoute has the same warning-free status: those values are remembered (`dag/memo.py`, the
cluster policy memo in `dag/types.py`, the shared statuses in `dag/status.py`) or skipped (a
Service without our annotations). Each row here holds a shortcut to the long way, and a change
between two builds of one builder to a cold build of the new objects: nothing a memo holds may
leak from one build into the next.
"""

from __future__ import annotations

import random
from typing import Any

from dag_support import build_every_way
from hypothesis import given
from hypothesis import strategies as st
from ingressroute_support import delegate, ingressroute, route, service, to

from controlplane.dag.builder import DagBuilder
from controlplane.dag.ingressroute_spec import _is_hostname, path_match
from controlplane.dag.memo import LONGEST, text_memo
from controlplane.dag.reads import in_store_order
from controlplane.dag.status import orphaned, route_where, valid
from controlplane.dag.types import (
    NO_BREAKERS,
    CircuitBreakers,
    Cluster,
    HealthCheck,
    LoadBalancerPolicy,
    UpstreamProtocol,
    UpstreamValidation,
    short_hash,
)
from controlplane.model import ObjectSet, parse_object

CLUSTER_VARIANTS: list[dict[str, Any]] = [
    {},
    {"port_name": "http"},
    {"port_name": "x" * 300},
    {"protocol": UpstreamProtocol.H2, "load_balancer": LoadBalancerPolicy.COOKIE},
    {"health_check": HealthCheck("/healthz")},
    {"validation": UpstreamValidation(b"ca", "backend")},
    {"circuit_breakers": CircuitBreakers(max_connections=10)},
    {"circuit_breakers": CircuitBreakers()},  # equal to the shared one, another object
    {"external_name": "example.com"},
    {"connect_timeout_seconds": 1.0},
    {"fallback": Cluster("ns", "default-backend", 80)},
]


def _long_way(cluster: Cluster) -> str:
    """`Cluster.name` as it was computed before the memo: the hash of every policy field."""
    policy = short_hash(
        cluster.port_name,
        cluster.protocol,
        cluster.load_balancer,
        cluster.health_check,
        cluster.validation,
        cluster.circuit_breakers,
        cluster.external_name,
        *(() if cluster.connect_timeout_seconds is None else (cluster.connect_timeout_seconds,)),
        *(() if cluster.fallback is None else (cluster.fallback.name,)),
    )
    return f"{cluster.namespace}/{cluster.service}/{cluster.port}/{policy}"


def test_a_cluster_name_is_the_hash_of_its_whole_policy_memo_or_not() -> None:
    names = set()
    for variant in CLUSTER_VARIANTS:
        for _ in range(2):  # the second time from the memo
            cluster = Cluster("ns", "web", 80, **variant)
            assert cluster.name == _long_way(cluster), variant
        names.add(cluster.name)
    assert len(names) == len(CLUSTER_VARIANTS) - 1  # CircuitBreakers() is NO_BREAKERS' value
    assert Cluster("ns", "web", 80, circuit_breakers=NO_BREAKERS).name == _long_way(
        Cluster("ns", "web", 80, circuit_breakers=CircuitBreakers())
    )


def test_text_memo_remembers_short_strings_only() -> None:
    calls: list[str] = []

    @text_memo(maxsize=2)
    def shout(text: str) -> str:
        calls.append(text)
        return text.upper() + "!"

    long = "a" * (LONGEST + 1)
    assert [shout("a"), shout("a"), shout(long), shout(long)] == ["A!", "A!"] + [
        long.upper() + "!"
    ] * 2
    assert calls == ["a", long, long]  # the long one is computed each time, never held
    for text in ("b", "c", "a"):  # maxsize 2: "a" was pushed out
        shout(text)
    assert calls[-1] == "a"


def test_memoized_phrases_and_matches_are_the_values_they_stand_for() -> None:
    assert route_where("/a\nb") == 'route "/a\\nb"'
    assert route_where("/a\nb") is route_where("/a\nb")
    assert path_match("/blog/") == path_match("/blog")
    assert path_match("/").value == "/"


@given(st.text(alphabet="ab-.9Z_\n\u00e9", max_size=14))
def test_the_hostname_pattern_is_the_label_rule(fqdn: str) -> None:
    labels = fqdn.removesuffix(".").split(".")
    by_labels = len(fqdn) <= 253 and all(
        0 < len(label) <= 63
        and set(label) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    )
    assert _is_hostname(fqdn) == by_labels


def test_statuses_share_one_typed_value_per_generation_and_kind() -> None:
    first = parse_object(ingressroute("a", generation=3))
    second = parse_object(ingressroute("b", generation=3))
    third = parse_object(ingressroute("c", generation=4))
    assert valid(first).status is valid(second).status
    assert valid(first).status == valid(third).status.model_copy(update={"observed_generation": 3})
    assert (valid(first).namespace, valid(first).name) == ("default", "a")
    assert orphaned(first).status is orphaned(second).status
    assert orphaned(third).status.observed_generation == 4
    assert valid(first).status != orphaned(first).status


def _objects(*manifests: dict[str, Any]) -> ObjectSet:
    return ObjectSet.from_objects(parse_object(m) for m in manifests)


ROOT = ingressroute(
    "root",
    fqdn="www.example.com",
    routes=[route("/", to("web")), route("/blog", delegate=delegate("blog"))],
)
BLOG = ingressroute("blog", routes=[route("/blog", to("web"))])


def _clusters(
    builder: DagBuilder, objects: ObjectSet
) -> list[tuple[str, UpstreamProtocol, int | None]]:
    dag = builder.build(objects)
    assert dag == build_every_way(objects)  # the warm result is the cold one
    return [(c.name, c.protocol, c.circuit_breakers.max_connections) for c in dag.clusters()]


def test_a_service_changed_between_builds_changes_its_cluster() -> None:
    builder = DagBuilder()
    plain = _clusters(builder, _objects(ROOT, BLOG, service("web")))
    annotated = service(
        "web",
        annotations={
            "projectcontour.io/upstream-protocol.h2c": "80",
            "projectcontour.io/max-connections": "7",
        },
    )
    changed = _clusters(builder, _objects(ROOT, BLOG, annotated))
    back = _clusters(builder, _objects(ROOT, BLOG, service("web")))
    [(plain_name, plain_protocol, plain_max)] = plain
    [(changed_name, changed_protocol, changed_max)] = changed
    assert (plain_protocol, plain_max) == (UpstreamProtocol.HTTP1, None)
    assert (changed_protocol, changed_max) == (UpstreamProtocol.H2C, 7)
    assert changed_name != plain_name
    assert back == plain
    # Another port of the same Service name: the plain policy memo is keyed by the port name.
    other = _clusters(builder, _objects(ROOT, BLOG, service("web", ports=(80, 81))))
    assert other == plain


def test_an_annotation_of_another_prefix_leaves_the_cluster_plain() -> None:
    builder = DagBuilder()
    plain = _clusters(builder, _objects(ROOT, BLOG, service("web")))
    other = _clusters(
        builder, _objects(ROOT, BLOG, service("web", annotations={"example.com/owner": "me"}))
    )
    assert other == plain


def test_in_store_order_is_the_store_order_for_a_large_batch_only() -> None:
    store = {f"k{index}": index for index in range(1000)}
    small = {"k5", "k1", "k3"}
    assert in_store_order(small, store) is small
    large = {f"k{index}" for index in range(0, 1000, 2)} | {"gone"}
    assert list(in_store_order(large, store)) == [f"k{i}" for i in range(0, 1000, 2)] + ["gone"]


def test_a_large_build_in_store_order_is_the_reference_build() -> None:
    """Past 256 changed IngressRoutes the builder goes through them in the store's order
    (`in_store_order`); the result must not depend on it. Roots with delegates, a delegate
    shared by many roots (one component), a cycle, a missing delegate and an fqdn two roots
    claim, shuffled into the store."""
    manifests: list[dict[str, Any]] = [service("web"), service("shared")]
    manifests.append(ingressroute("shared", routes=[route("/shared", to("shared"))]))
    for index in range(150):
        name = f"r{index}"
        routes = [route("/", to("web")), route("/blog", delegate=delegate(f"{name}-blog"))]
        if index % 10 == 0:
            routes.append(route("/shared", delegate=delegate("shared")))
        if index % 25 == 0:
            routes.append(route("/gone", delegate=delegate("missing")))
        fqdn = "twice.example.com" if index in (7, 8) else f"{name}.example.com"
        manifests.append(ingressroute(name, fqdn=fqdn, routes=routes))
        blog_routes = [route("/blog", to("web"))]
        if index % 30 == 0:
            blog_routes.append(route("/blog/loop", delegate=delegate(name)))
        manifests.append(ingressroute(f"{name}-blog", routes=blog_routes))
    random.Random(13).shuffle(manifests)
    dag = build_every_way(_objects(*manifests))
    assert len(dag.statuses) == 301
