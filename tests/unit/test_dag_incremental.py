"""`DagBuilder` against the reference build: equal after every edit, however hostile.

The builder caches per-object work and hands back the previous DAG values for what did not
change, so the one property that matters is that after any sequence of edits it returns exactly
what `reference_build` returns for the same objects. Hypothesis draws a starting set of objects
(IngressRoutes, Ingresses, Services, Secrets, IngressClasses, TLSCertificateDelegations, from the
generators of the other DAG property tests, over small pools of names so they collide) and then a
sequence of edits: objects added or replaced, deleted, or re-parsed unchanged (a new object, equal
to the old one, as a re-list delivers). The objects are kept as a store keeps them: an object
stays the very same Python object until it is edited, which is what the builder keys on.

Scenario tests then walk through the hostile cases one by one (cycles created and broken, fqdn
conflicts appearing and disappearing, a delegate moving between roots, a Service deleted under a
route, a Secret turning malformed, an IngressClass changing hands), and check that values that
did not change are handed back as the same objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingressroute_support import (
    certificate_delegation,
    delegate,
    ingressroute,
    malformed_secret,
    route,
    service,
    tls_secret,
    to,
)
from test_dag_ingress import backend, ingress, ingress_class, path, rule, tls
from test_dag_ingress import service as ingress_service
from test_dag_properties import chains, ingressroutes, mostly, supporting_objects, webs

from controlplane.dag.builder import DagBuilder
from controlplane.dag.options import BuildOptions
from controlplane.dag.reference import reference_build
from controlplane.dag.types import DAG, StatusKind
from controlplane.model import KubeObject, ObjectSet, parse_object
from controlplane.testing import certs

JSON = dict[str, Any]
Key = tuple[str, str, str]
OURS = "projectcontour.io/ingress-controller"


class World:
    """Objects as a store holds them, and both builders fed from them after every edit."""

    def __init__(self, manifests: Iterable[JSON], options: BuildOptions) -> None:
        self.objects: dict[Key, KubeObject] = {}
        self.options = options
        self.builder = DagBuilder()
        for raw in manifests:
            self.put(raw)

    @staticmethod
    def key(obj: KubeObject) -> Key:
        return (obj.KIND, obj.namespace, obj.name)

    def put(self, raw: JSON) -> None:
        obj = parse_object(raw)
        self.objects[self.key(obj)] = obj

    def delete(self, key: Key) -> None:
        self.objects.pop(key, None)

    def touch(self, key: Key) -> None:
        """Replace an object by an equal copy (a new Python object)."""
        obj = self.objects[key]
        self.objects[key] = obj.model_copy()

    def object_set(self) -> ObjectSet:
        return ObjectSet.from_objects(self.objects.values())

    def check(self) -> DAG:
        objects = self.object_set()
        incremental = self.builder.build(objects, self.options)
        full = reference_build(objects, self.options)
        assert incremental == full
        assert incremental.clusters() == full.clusters()
        assert incremental.secrets() == full.secrets()
        for mine, theirs in zip(incremental.clusters(), full.clusters(), strict=True):
            assert mine.port_name == theirs.port_name
        return incremental


# --- drawing objects --------------------------------------------------------------------------

HOSTS = mostly(["www.example.com", "x.example.com", None], ["WWW.example.com", "bad host"], 8)
PATHS = mostly(["/", "/foo", "/foo/bar", "/bar"], [None, "foo", "/a?b"], 10)
PATH_TYPES = mostly(["Prefix", "Exact", "ImplementationSpecific"], ["Regex"], 10)
BACKENDS = st.builds(
    backend,
    st.sampled_from(["s0", "s1", "gone"]),
    mostly([80], [8080, "p80", "p8080", "nope", None], 4),
)


@st.composite
def ingresses(draw: st.DrawFn) -> JSON:
    rules = [
        rule(
            draw(HOSTS),
            *(
                path(draw(PATHS), draw(PATH_TYPES), draw(BACKENDS))
                for _ in range(draw(st.integers(0, 2)))
            ),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    tls_entries = [
        tls(
            draw(mostly(["tls", "b/tls"], ["bad", "missing", "a/tls", None])),
            *draw(st.lists(st.sampled_from(["www.example.com", "x.example.com", "*"]), max_size=2)),
        )
        for _ in range(draw(st.integers(0, 1)))
    ]
    annotations = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "ingress.kubernetes.io/force-ssl-redirect",
                    "kubernetes.io/ingress.allow-http",
                    "kubernetes.io/ingress.class",
                    "projectcontour.io/tls-minimum-protocol-version",
                ]
            ),
            st.sampled_from(["true", "false", "contour", "1.3", "nginx"]),
            max_size=2,
        )
    )
    return ingress(
        draw(st.sampled_from(["i0", "i1", "i2"])),
        *rules,
        namespace=draw(mostly(["a"], ["b"], 3)),
        age=draw(st.integers(0, 2)),
        annotations=annotations,
        class_name=draw(st.sampled_from([None, None, None, "contour", "mine", "theirs"])),
        default=draw(st.one_of(st.none(), st.none(), BACKENDS)),
        tls_=tls_entries,
    )


ingress_classes = st.builds(
    ingress_class, st.sampled_from(["mine", "theirs"]), st.sampled_from([OURS, "k8s.io/nginx"])
)
certificate_delegations = st.builds(
    certificate_delegation,
    st.just("d"),
    st.just("b"),
    st.just("tls"),
    st.sampled_from([["*"], ["a"], ["c"], []]),
)


RENEWED = certs.self_signed(["www.example.com"])


def renewed(name: str, namespace: str = "default") -> dict[str, Any]:
    """Secret namespace/name with a certificate and key of its own, as a renewal leaves it."""
    return certs.tls_secret(name, namespace, RENEWED)


secrets = st.sampled_from(["a", "b"]).flatmap(
    lambda namespace: st.sampled_from(
        # Two certificates: one Secret renewed (same name, new material), and back.
        [
            tls_secret("tls", namespace),
            renewed("tls", namespace),
            malformed_secret("tls", namespace),
        ]
    )
)
services = st.builds(
    service,
    st.sampled_from(["s0", "s1"]),
    st.sampled_from(["a", "b"]),
    mostly([[80], [80, 8080]], [[443], []]),
)
any_object = st.one_of(
    ingressroutes(), ingresses(), services, secrets, certificate_delegations, ingress_classes
)


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["put", "put", "put", "delete", "touch"]))
    if kind == "put":
        return kind, draw(any_object)
    return kind, draw(st.integers(0, 2**16))


def apply(world: World, edit: tuple[str, Any]) -> None:
    kind, value = edit
    if kind == "put":
        world.put(value)
        return
    keys = sorted(world.objects)
    if not keys:
        return
    key = keys[value % len(keys)]
    if kind == "delete":
        world.delete(key)
    else:
        world.touch(key)


OPTIONS = st.builds(
    BuildOptions,
    root_namespaces=st.sampled_from([frozenset(), frozenset({"a"})]),
    enable_external_name_services=st.booleans(),
)
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    initial=st.lists(any_object, max_size=10).map(lambda found: found),
    supporting=supporting_objects(),
    steps=st.lists(edits(), min_size=1, max_size=12),
    options=OPTIONS,
)
def test_equal_to_the_full_build_after_every_edit(
    initial: list[JSON], supporting: list[JSON], steps: list[tuple[str, Any]], options: BuildOptions
) -> None:
    world = World([*supporting, *initial], options)
    world.check()
    for step in steps:
        apply(world, step)
        world.check()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=webs(),
    second=webs(),
    picks=st.lists(st.tuples(st.booleans(), st.integers(0, 2**16)), min_size=1, max_size=12),
)
def test_delegation_webs_rewired_step_by_step(
    first: list[JSON], second: list[JSON], picks: list[tuple[bool, int]]
) -> None:
    """Objects of one web replaced by the other's, one at a time: cycles appear and vanish,
    delegates move between roots, groups of roots sharing delegates merge and split."""
    world = World(first, BuildOptions())
    world.check()
    pool = [*first, *second]
    for delete, index in picks:
        raw = pool[index % len(pool)]
        if delete:
            world.delete((raw["kind"], raw["metadata"]["namespace"], raw["metadata"]["name"]))
        else:
            world.put(raw)
        world.check()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=chains(),
    second=chains(),
    picks=st.lists(st.integers(0, 2**16), min_size=1, max_size=8),
)
def test_deep_chains_rewired(first: list[JSON], second: list[JSON], picks: list[int]) -> None:
    world = World(first, BuildOptions())
    world.check()
    for index in picks:
        world.put(second[index % len(second)])
        world.check()


@SETTINGS
@given(
    initial=st.lists(any_object, max_size=8),
    supporting=supporting_objects(),
    steps=st.lists(st.tuples(edits(), OPTIONS), min_size=1, max_size=6),
)
def test_options_changing_between_builds(
    initial: list[JSON], supporting: list[JSON], steps: list[tuple[tuple[str, Any], BuildOptions]]
) -> None:
    world = World([*supporting, *initial], BuildOptions())
    world.check()
    for edit, options in steps:
        apply(world, edit)
        world.options = options
        world.check()


# --- scenarios --------------------------------------------------------------------------------

WWW, API = "www.example.com", "api.example.com"
EARLIER, LATER = "2023-01-01T00:00:00Z", "2024-06-01T00:00:00Z"


def statuses(dag: DAG) -> dict[str, StatusKind]:
    return {f"{s.namespace}/{s.name}": s.current_status for s in dag.statuses}


def scenario(*manifests: JSON, options: BuildOptions | None = None) -> World:
    world = World(manifests, options or BuildOptions())
    world.check()
    return world


def test_nothing_changed_returns_the_same_dag() -> None:
    world = scenario(service("s"), ingressroute("r", fqdn=WWW, routes=[route("/", to("s"))]))
    first = world.check()
    assert world.check() is first


def test_unchanged_hosts_and_statuses_are_the_same_objects() -> None:
    world = scenario(
        service("s"),
        service("t"),
        ingressroute("r", fqdn=WWW, routes=[route("/", to("s"))]),
        ingressroute("q", fqdn=API, routes=[route("/", to("t"))]),
        ingress("i", rule("ing.example.com", path(to=backend("t", 80)))),
    )
    before = world.check()
    world.put(ingressroute("q", fqdn=API, routes=[route("/", to("t")), route("/x", to("s"))]))
    after = world.check()
    by_fqdn = {host.fqdn: host for host in before.virtual_hosts}
    kept = [host for host in after.virtual_hosts if by_fqdn.get(host.fqdn) is host]
    assert [host.fqdn for host in kept] == ["ing.example.com", WWW]
    # default/q was compiled again, but its status is equal: the old object is handed back.
    assert before.statuses[0] is after.statuses[0]
    assert before.statuses[1] is after.statuses[1]  # default/r


def test_cycle_created_and_broken() -> None:
    world = scenario(
        service("s"),
        ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("a"))]),
        ingressroute("a", routes=[route("/", to("s")), route("/b", delegate=delegate("b"))]),
        ingressroute("b", routes=[route("/b", to("s"))]),
    )
    world.put(ingressroute("b", routes=[route("/b", delegate=delegate("a"))]))
    closed = {s.name: s for s in world.check().statuses}["b"]  # b's delegation closes it
    assert closed.current_status is StatusKind.VALID
    assert closed.description.endswith(
        "delegation cycle: default/root -> default/a -> default/b -> default/a"
    )
    world.put(ingressroute("b", routes=[route("/b", to("s"))]))
    reopened = {s.name: s for s in world.check().statuses}["b"]
    assert (reopened.current_status, reopened.description) == (
        StatusKind.VALID,
        "valid IngressRoute",
    )


def test_fqdn_conflict_appears_and_disappears() -> None:
    world = scenario(
        service("s"),
        ingressroute(
            "young", fqdn=WWW, routes=[route("/", to("s"))], created="2024-06-01T00:00:00Z"
        ),
    )
    world.put(
        ingressroute(
            "old", fqdn=WWW, routes=[route("/old", to("s"))], created="2023-01-01T00:00:00Z"
        )
    )
    assert statuses(world.check()) == {
        "default/old": StatusKind.VALID,
        "default/young": StatusKind.INVALID,
    }
    world.delete(("IngressRoute", "default", "old"))
    assert statuses(world.check()) == {"default/young": StatusKind.VALID}


def test_delegate_moves_between_roots() -> None:
    world = scenario(
        service("s"),
        ingressroute("one", fqdn=WWW, routes=[route("/blog", delegate=delegate("blog"))]),
        ingressroute("two", fqdn=API, routes=[route("/", to("s"))]),
        ingressroute("blog", routes=[route("/blog", to("s"))]),
    )
    world.put(ingressroute("one", fqdn=WWW, routes=[route("/", to("s"))]))
    world.put(ingressroute("two", fqdn=API, routes=[route("/blog", delegate=delegate("blog"))]))
    dag = world.check()
    assert [host.fqdn for host in dag.virtual_hosts] == [API, WWW]
    world.put(ingressroute("one", fqdn=WWW, routes=[route("/blog", delegate=delegate("blog"))]))
    world.check()  # shared by both roots: one group
    world.delete(("IngressRoute", "default", "two"))
    world.check()  # split again


def test_service_deleted_under_a_route_and_restored() -> None:
    world = scenario(
        service("s"),
        ingressroute("r", fqdn=WWW, routes=[route("/", to("s"))]),
        ingress("i", rule("ing.example.com", path(to=backend("s", 80)))),
    )
    world.delete(("Service", "default", "s"))
    dag = world.check()
    assert statuses(dag) == {"default/r": StatusKind.INVALID}
    assert dag.virtual_hosts == ()
    world.put(service("s"))
    assert len(world.check().virtual_hosts) == 2


def test_secret_turns_malformed_and_certificate_delegation_changes() -> None:
    world = scenario(
        service("s"),
        tls_secret("tls", "certs"),
        certificate_delegation("d", "certs", "tls", ["default"]),
        ingressroute("r", fqdn=WWW, tls={"secretName": "certs/tls"}, routes=[route("/", to("s"))]),
        ingress("i", rule(API, path(to=backend("s", 80))), tls_=[tls("certs/tls", API)]),
    )
    assert len(world.check().secure_virtual_hosts) == 2
    world.put(malformed_secret("tls", "certs"))
    assert world.check().secure_virtual_hosts == ()
    world.put(tls_secret("tls", "certs"))
    world.check()
    world.put(certificate_delegation("d", "certs", "tls", ["elsewhere"]))
    assert world.check().secure_virtual_hosts == ()
    world.delete(("TLSCertificateDelegation", "certs", "d"))
    world.check()


def test_a_renewed_secret_is_listed_with_its_new_material_under_the_same_name() -> None:
    """Two hosts share one Secret; a renewal (new certificate and key, same Secret) reaches both
    hosts, and `secrets()` lists the new material under the name the hosts already use."""
    world = scenario(
        service("s"),
        tls_secret("tls", "certs"),
        certificate_delegation("d", "certs", "tls", ["default"]),
        ingressroute("r", fqdn=WWW, tls={"secretName": "certs/tls"}, routes=[route("/", to("s"))]),
        ingress("i", rule(API, path(to=backend("s", 80))), tls_=[tls("certs/tls", API)]),
    )
    before = world.check()
    (old,) = before.secrets()
    world.put(renewed("tls", "certs"))
    after = world.check()
    (new,) = after.secrets()
    assert new.sds_name == old.sds_name == "certs/tls"
    assert new.certificate_chain != old.certificate_chain
    assert {h.secret for h in after.secure_virtual_hosts} == {new}


def test_ingress_class_changes_hands() -> None:
    world = scenario(
        service("s"),
        ingress_class("mine", OURS),
        ingress("i", rule(WWW, path(to=backend("s", 80))), class_name="mine"),
    )
    world.put(ingress_class("mine", "k8s.io/nginx"))
    assert world.check().virtual_hosts == ()
    world.put(ingress_class("mine", OURS))
    assert len(world.check().virtual_hosts) == 1


def test_ingress_and_ingressroute_contest_a_host() -> None:
    """The oldest claimant owns the host, across kinds; ownership moves as claimants come, age
    and go (the Ingress is created 2024-01-02)."""
    world = scenario(
        service("s"), tls_secret("x"), ingress("i", rule(WWW, path(to=backend("s", 80))), age=1)
    )
    world.put(ingressroute("r", fqdn=WWW, routes=[route("/r", to("s"))]))  # 2024-01-01: older
    dag = world.check()  # the Ingress's "/" merges into the IngressRoute's host
    assert (dag.problems, [len(host.routes) for host in dag.virtual_hosts]) == ((), [2])
    world.put(
        ingressroute("r", fqdn=WWW, routes=[route("/r", to("s"))], created="2024-01-15T00:00:00Z")
    )
    dag = world.check()
    assert (dag.problems, statuses(dag)["default/r"]) == ((), StatusKind.INVALID)
    assert dag.statuses[0].description == f'fqdn "{WWW}" is already used by Ingress default/i'
    assert len(dag.virtual_hosts[0].routes) == 1
    world.put(ingress("i", rule(WWW, path(to=backend("s", 80))), age=30))  # now younger
    dag = world.check()
    assert (dag.problems, [len(host.routes) for host in dag.virtual_hosts]) == ((), [2])
    assert statuses(dag)["default/r"] is StatusKind.VALID
    world.put(ingress("i", rule(WWW, path("/r", to=backend("s", 80))), age=30))  # collides
    [problem] = world.check().problems
    assert "is already routed by IngressRoute default/r" in problem.reason
    world.put(ingress("i", rule(API, path(to=backend("s", 80))), age=0))  # leaves the host
    assert statuses(world.check())["default/r"] is StatusKind.VALID
    world.put(ingress("i", rule(API, path(to=backend("s", 80))), tls_=[tls("x", WWW)]))
    assert statuses(world.check())["default/r"] is StatusKind.INVALID  # a TLS claim is a claim
    world.delete(("Ingress", "default", "i"))
    dag = world.check()
    assert (dag.problems, statuses(dag)["default/r"]) == ((), StatusKind.VALID)
    world.put(ingress("i", rule(WWW, path(to=backend("s", 80)))))
    world.delete(("IngressRoute", "default", "r"))
    assert world.check().problems == ()


def test_delegate_turns_root_then_back() -> None:
    world = scenario(
        service("s"),
        ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("child"))]),
        ingressroute("child", routes=[route("/", to("s"))]),
    )
    world.put(ingressroute("child", fqdn=API, routes=[route("/", to("s"))]))
    assert statuses(world.check())["default/root"] is StatusKind.INVALID
    world.put(ingressroute("child", routes=[route("/", to("s"))]))
    assert statuses(world.check())["default/root"] is StatusKind.VALID


def test_two_ports_of_one_number_are_two_clusters() -> None:
    """The port name is part of a cluster's name: two ports of one number (TCP and UDP) are two
    clusters, each listed while some host uses it."""
    two_ports = ingress_service("dup", ports=(("tcp", 53), ("udp", 53)))
    world = scenario(
        two_ports,
        ingress("i1", rule("b.example.com", path(to=backend("dup", "udp")))),
        ingress("i2", rule("c.example.com", path(to=backend("dup", 53)))),
    )
    assert sorted(c.port_name for c in world.check().clusters()) == ["tcp", "udp"]
    world.delete(("Ingress", "default", "i1"))
    assert [c.port_name for c in world.check().clusters()] == ["tcp"]
    world.put(ingress("i0", rule("a.example.com", path(to=backend("dup", "udp")))))
    assert sorted(c.port_name for c in world.check().clusters()) == ["tcp", "udp"]
