"""Ingress paths on a host an IngressRoute owns (`dag/ingress_merge.py`), table-driven.

Every row is built cold, warm from two other states and by the reference oracle
(`build_every_way`); the transition rows further down start from one set of objects and edit it
into another (the IngressRoute changing its routes, its TLS, its validity; Ingresses coming and
going), and the warm build after the edit must equal the cold and reference builds of the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from dag_support import build_every_way
from ingressroute_support import (
    certificate_delegation,
    delegate,
    http_hosts,
    https_hosts,
    ingressroute,
    route,
    service,
    statuses,
    tls_secret,
    to,
)
from test_dag_ingress import backend, ingress, path, rule, tls

from controlplane.dag.builder import DagBuilder
from controlplane.dag.options import BuildOptions
from controlplane.dag.reference import reference_build
from controlplane.dag.types import DAG
from controlplane.model import ObjectSet, parse_object

JSON = dict[str, Any]
WWW = "www.example.com"
TOKEN = "/.well-known/acme-challenge/gVJl5NWL2owUqZekjHkt_bo3OHYC2XNDURRRgLI5JTk"
VALID = ("valid", "valid IngressRoute")
REDIRECT_ONLY = [f"{TOKEN} -> default/solver:8089", "/ -> https"]


def solver(
    namespace: str = "default",
    path_type: str = "ImplementationSpecific",
    name: str = "cm-acme-http-solver-x7k2p",
    **extra: Any,
) -> JSON:
    """The Ingress cert-manager's HTTP-01 solver creates: one exact token path, no TLS."""
    return ingress(
        name,
        rule(WWW, path(TOKEN, path_type, backend("solver", 8089))),
        namespace=namespace,
        age=1,
        **extra,
    )


def solver_service(namespace: str = "default") -> JSON:
    return service("solver", namespace, ports=[8089])


HOME = service("home")
TLS_ROOT = ingressroute(
    "root", fqdn=WWW, tls={"secretName": "tls"}, routes=[route("/", to("home"))]
)
PLAIN_ROOT = ingressroute("root", fqdn=WWW, routes=[route("/", to("home"))])


@dataclass(frozen=True)
class Row:
    objects: tuple[JSON, ...]
    http: dict[str, list[str]]
    https: dict[str, list[str]] = field(default_factory=dict)
    problems: Sequence[tuple[str, str, str]] = ()
    """(namespace/name, field, start of the reason) of every Problem, in order."""
    statuses: dict[str, tuple[str, str]] | None = None


def row(id: str, *objects: JSON, **expected: Any) -> Any:
    return pytest.param(Row(objects, **expected), id=id)


def problems(dag: DAG) -> list[tuple[str, str, str]]:
    return [(f"{p.namespace}/{p.name}", p.field, p.reason) for p in dag.problems]


def check(dag: DAG, expected: Row) -> None:
    assert http_hosts(dag) == expected.http
    assert https_hosts(dag) == expected.https
    found = problems(dag)
    assert len(found) == len(expected.problems), found
    for (name, field_, reason), (want_name, want_field, want_reason) in zip(
        found, expected.problems, strict=True
    ):
        assert (name, field_) == (want_name, want_field)
        assert reason.startswith(want_reason), reason
    if expected.statuses is not None:
        assert statuses(dag) == expected.statuses


ROWS = [
    row(
        "cert-manager's solver on a host whose IngressRoute forces TLS: the token path answers "
        "on plain HTTP (and HTTPS), everything else redirects",
        HOME,
        solver_service(),
        tls_secret("tls"),
        TLS_ROOT,
        solver(),
        http={WWW: REDIRECT_ONLY},
        https={
            WWW: [
                "secret default/tls tls1.2",
                f"{TOKEN} -> default/solver:8089",
                "/ -> default/home:80",
            ]
        },
        statuses={"default/root": VALID},
    ),
    row(
        "the solver with pathType Exact",
        HOME,
        solver_service(),
        tls_secret("tls"),
        TLS_ROOT,
        solver(path_type="Exact"),
        http={WWW: REDIRECT_ONLY},
        https={
            WWW: [
                "secret default/tls tls1.2",
                f"{TOKEN} -> default/solver:8089",
                "/ -> default/home:80",
            ]
        },
    ),
    row(
        "the first certificate: the IngressRoute names a Secret not issued yet (invalid, serving "
        "nothing) and still owns the host; the solver answers on plain HTTP",
        HOME,
        solver_service(),
        TLS_ROOT,
        solver(),
        http={WWW: [f"{TOKEN} -> default/solver:8089"]},
        statuses={"default/root": ("invalid", "TLS Secret [tls] not found or is malformed")},
    ),
    row(
        "a plain IngressRoute host: non-colliding paths merge, most specific first",
        HOME,
        service("web"),
        PLAIN_ROOT,
        ingress(
            "web",
            rule(
                WWW, path("/app", "Prefix", backend("web")), path("/exact", "Exact", backend("web"))
            ),
            age=1,
        ),
        http={
            WWW: [
                "/exact -> default/web:80",
                "/app -> default/web:80",
                "/ -> default/home:80",
            ]
        },
    ),
    row(
        "a colliding path is dropped with a Problem naming the IngressRoute that routes it; the "
        "others still merge (prefixes collide trailing slash and kind aside)",
        HOME,
        service("web"),
        ingressroute("root", fqdn=WWW, routes=[route("/", to("home")), route("/api/", to("home"))]),
        ingress(
            "web",
            rule(
                WWW,
                path("/", "Prefix", backend("web")),
                path("/api", "ImplementationSpecific", backend("web")),
                path("/other", "Prefix", backend("web")),
            ),
            age=1,
        ),
        http={
            WWW: [
                "/other -> default/web:80",
                "/api -> default/home:80",
                "/ -> default/home:80",
            ]
        },
        problems=[
            (
                "default/web",
                "spec.rules[0].http.paths[0]",
                f'host "{WWW}" path prefix "/" is already routed by IngressRoute default/root '
                '(route "/"): the IngressRoute owns this host; this path is ignored',
            ),
            (
                "default/web",
                "spec.rules[0].http.paths[1]",
                f'host "{WWW}" string prefix "/api" is already routed by IngressRoute '
                'default/root (route "/api/")',
            ),
        ],
    ),
    row(
        "a path a delegate routes: the Problem names the delegate and the owner",
        HOME,
        service("web"),
        service("blog", "blog"),
        ingressroute("root", fqdn=WWW, routes=[route("/blog", delegate=delegate("blog", "blog"))]),
        ingressroute("blog", "blog", routes=[route("/blog", to("blog"))]),
        ingress("web", rule(WWW, path("/blog", "Prefix", backend("web"))), age=1),
        http={WWW: ["/blog -> blog/blog:80"]},
        problems=[
            (
                "default/web",
                "spec.rules[0].http.paths[0]",
                f'host "{WWW}" path prefix "/blog" is already routed by IngressRoute blog/blog '
                '(route "/blog"), under the host IngressRoute default/root owns',
            )
        ],
    ),
    row(
        "an Ingress's TLS for the host is ignored (the IngressRoute sets the certificate); its "
        "paths still merge on both listeners",
        HOME,
        service("web"),
        tls_secret("tls"),
        tls_secret("other"),
        TLS_ROOT,
        ingress(
            "web",
            rule(WWW, path("/app", "Prefix", backend("web"))),
            age=1,
            tls_=[tls("other", WWW)],
        ),
        http={WWW: ["/app -> default/web:80", "/ -> https"]},
        https={
            WWW: [
                "secret default/tls tls1.2",
                "/app -> default/web:80",
                "/ -> default/home:80",
            ]
        },
        problems=[
            (
                "default/web",
                "spec.tls[0].hosts[0]",
                f'host "{WWW}" belongs to IngressRoute default/root, which sets its certificate',
            )
        ],
    ),
    row(
        "an Ingress whose own force-ssl-redirect covers the host keeps redirecting its path",
        HOME,
        service("web"),
        tls_secret("tls"),
        TLS_ROOT,
        ingress(
            "web",
            rule(WWW, path("/app", "Prefix", backend("web"))),
            age=1,
            tls_=[tls("tls", WWW)],
            annotations={"ingress.kubernetes.io/force-ssl-redirect": "true"},
        ),
        http={WWW: ["/app -> https", "/ -> https"]},
        https={
            WWW: [
                "secret default/tls tls1.2",
                "/app -> default/web:80",
                "/ -> default/home:80",
            ]
        },
        problems=[("default/web", "spec.tls[0].hosts[0]", f'host "{WWW}" belongs to')],
    ),
    row(
        "an Ingress in a namespace the owner does not trust adds nothing, with a Problem",
        HOME,
        solver_service("evil"),
        TLS_ROOT,
        tls_secret("tls"),
        solver("evil"),
        http={WWW: ["/ -> https"]},
        https={WWW: ["secret default/tls tls1.2", "/ -> default/home:80"]},
        problems=[
            (
                "evil/cm-acme-http-solver-x7k2p",
                "spec.rules[].host",
                f'host "{WWW}" belongs to IngressRoute default/root; only Ingresses in namespace '
                "default may add paths to it: this Ingress's rules and TLS for it are ignored",
            )
        ],
    ),
    row(
        "a certificate shared from another namespace: the solver in that namespace merges",
        HOME,
        solver_service("certs"),
        tls_secret("wild", "certs"),
        certificate_delegation("share", "certs", "wild", ["default"]),
        ingressroute(
            "root", fqdn=WWW, tls={"secretName": "certs/wild"}, routes=[route("/", to("home"))]
        ),
        solver("certs"),
        http={WWW: [f"{TOKEN} -> certs/solver:8089", "/ -> https"]},
        https={
            WWW: [
                "secret certs/wild tls1.2",
                f"{TOKEN} -> certs/solver:8089",
                "/ -> default/home:80",
            ]
        },
    ),
    row(
        "two trusted Ingresses on one path: the oldest wins among them, then merges",
        HOME,
        service("a"),
        service("b"),
        PLAIN_ROOT,
        ingress("a", rule(WWW, path("/x", "Prefix", backend("a"))), age=1),
        ingress("b", rule(WWW, path("/x", "Prefix", backend("b"))), age=2),
        http={WWW: ["/x -> default/a:80", "/ -> default/home:80"]},
        problems=[("default/b", "spec.rules[0].http.paths[0]", f'host "{WWW}" path prefix "/x"')],
    ),
    row(
        "an untrusted Ingress never shadows a trusted one among the Ingresses",
        HOME,
        service("a"),
        service("b", "evil"),
        PLAIN_ROOT,
        ingress("old", rule(WWW, path("/x", "Prefix", backend("b"))), namespace="evil", age=1),
        ingress("a", rule(WWW, path("/x", "Prefix", backend("a"))), age=2),
        http={WWW: ["/x -> default/a:80", "/ -> default/home:80"]},
        problems=[("evil/old", "spec.rules[].host", f'host "{WWW}" belongs to IngressRoute')],
    ),
    row(
        "a tcpproxy host: the solver merges on plain HTTP only, the TCP proxy is untouched",
        solver_service(),
        service("db", ports=[5432]),
        tls_secret("tls"),
        ingressroute(
            "root", fqdn=WWW, tls={"secretName": "tls"}, tcpproxy={"services": [to("db", 5432)]}
        ),
        solver(),
        http={WWW: [f"{TOKEN} -> default/solver:8089"]},
        https={WWW: ["secret default/tls tls1.2", "tcp -> default/db:5432"]},
    ),
    row(
        "an Ingress older than every root keeps the host: nothing merges, the root is invalid",
        HOME,
        service("web"),
        ingress("web", rule(WWW, path("/", "Prefix", backend("web"))), age=0),
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[route("/", to("home"))],
            created="2024-02-01T00:00:00Z",
        ),
        http={WWW: ["/ -> default/web:80"]},
        statuses={
            "default/root": ("invalid", f'fqdn "{WWW}" is already used by Ingress default/web')
        },
    ),
]


@pytest.mark.parametrize("expected", ROWS)
def test_ingress_paths_on_an_ingressroute_host(expected: Row) -> None:
    objects = ObjectSet.from_objects(parse_object(raw) for raw in expected.objects)
    check(build_every_way(objects), expected)


# --- transitions: warm builds after the IngressRoute (or an Ingress) changed -----------------


def _objects(manifests: Sequence[JSON]) -> ObjectSet:
    return ObjectSet.from_objects(parse_object(raw) for raw in manifests)


def after_edit(before: Sequence[JSON], after: Sequence[JSON]) -> DAG:
    """The warm build of `after` following `before` (a manifest in both is one Python object,
    as an object the edit left alone is in the store); it must equal the cold and reference
    builds."""
    parsed = {id(raw): parse_object(raw) for raw in (*before, *after)}
    builder = DagBuilder()
    builder.build(ObjectSet.from_objects(parsed[id(raw)] for raw in before))
    after_set = ObjectSet.from_objects(parsed[id(raw)] for raw in after)
    warm = builder.build(after_set)
    expected = reference_build(after_set, BuildOptions())
    assert warm == expected, "the warm build after the edit differs from the reference build"
    assert warm.clusters() == expected.clusters()
    assert warm == DagBuilder().build(after_set)
    return warm


WEB = service("web")
APP = ingress("web", rule(WWW, path("/app", "Prefix", backend("web"))), age=1)
APP_ROOT = ingressroute(
    "root", fqdn=WWW, routes=[route("/", to("home")), route("/app", to("home"))]
)
BLOG_ROOT = ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("blog"))])
SECRET = tls_secret("tls")
YOUNG_ROOT = ingressroute(
    "root", fqdn=WWW, routes=[route("/", to("home"))], created="2024-02-01T00:00:00Z"
)
COLLIDES = ("default/web", "spec.rules[0].http.paths[0]", f'host "{WWW}" path prefix "/app"')


OTHER_SOLVER, OTHER_SOLVER_SERVICE = solver("other"), solver_service("other")
CERTS_SOLVER, CERTS_SOLVER_SERVICE = solver("certs"), solver_service("certs")


def _invalid_root(secret: str) -> JSON:
    return ingressroute(
        "root", fqdn=WWW, tls={"secretName": secret}, routes=[route("/", to("home"))]
    )


TRANSITIONS = [
    pytest.param(
        [HOME, WEB, PLAIN_ROOT, APP],
        [HOME, WEB, APP_ROOT, APP],
        Row(
            (), http={WWW: ["/app -> default/home:80", "/ -> default/home:80"]}, problems=[COLLIDES]
        ),
        id="the IngressRoute starts routing the merged path: the Ingress path is dropped",
    ),
    pytest.param(
        [HOME, WEB, APP_ROOT, APP],
        [HOME, WEB, PLAIN_ROOT, APP],
        Row((), http={WWW: ["/app -> default/web:80", "/ -> default/home:80"]}),
        id="the IngressRoute stops routing it: the Ingress path merges",
    ),
    pytest.param(
        [HOME, WEB, BLOG_ROOT, ingressroute("blog", routes=[route("/", to("home"))]), APP],
        [
            HOME,
            WEB,
            BLOG_ROOT,
            ingressroute("blog", routes=[route("/", to("home")), route("/app", to("home"))]),
            APP,
        ],
        Row(
            (), http={WWW: ["/app -> default/home:80", "/ -> default/home:80"]}, problems=[COLLIDES]
        ),
        id="a delegate of the owner starts routing the merged path",
    ),
    pytest.param(
        [HOME, WEB, SECRET, PLAIN_ROOT, APP],
        [HOME, WEB, SECRET, TLS_ROOT, APP],
        Row(
            (),
            http={WWW: ["/app -> default/web:80", "/ -> https"]},
            https={
                WWW: ["secret default/tls tls1.2", "/app -> default/web:80", "/ -> default/home:80"]
            },
        ),
        id="the IngressRoute turns to TLS: the merged path joins its HTTPS host, stays on HTTP",
    ),
    pytest.param(
        [HOME, WEB, SECRET, TLS_ROOT, APP],
        [HOME, WEB, TLS_ROOT, APP],
        Row((), http={WWW: ["/app -> default/web:80"]}),
        id="its Secret goes (the IngressRoute turns invalid): the merged path stays on HTTP",
    ),
    pytest.param(
        [HOME, CERTS_SOLVER_SERVICE, SECRET, TLS_ROOT, CERTS_SOLVER],
        [
            HOME,
            CERTS_SOLVER_SERVICE,
            SECRET,
            ingressroute(
                "root", fqdn=WWW, tls={"secretName": "certs/tls"}, routes=[route("/", to("home"))]
            ),
            CERTS_SOLVER,
        ],
        Row((), http={WWW: [f"{TOKEN} -> certs/solver:8089"]}),
        id="the IngressRoute names a Secret in another namespace: that namespace's solver merges",
    ),
    pytest.param(
        [HOME, OTHER_SOLVER_SERVICE, OTHER_SOLVER, _invalid_root("certs/missing")],
        [HOME, OTHER_SOLVER_SERVICE, OTHER_SOLVER, _invalid_root("other/missing")],
        Row((), http={WWW: [f"{TOKEN} -> other/solver:8089"]}),
        id="an invalid IngressRoute (serving nothing before and after) names another Secret "
        "namespace: the trust follows",
    ),
    pytest.param(
        [HOME, OTHER_SOLVER_SERVICE, OTHER_SOLVER, _invalid_root("other/missing")],
        [HOME, OTHER_SOLVER_SERVICE, OTHER_SOLVER, _invalid_root("certs/missing")],
        Row(
            (),
            http={},
            problems=[("other/cm-acme-http-solver-x7k2p", "spec.rules[].host", "host")],
        ),
        id="... and away again",
    ),
    pytest.param(
        [HOME, WEB, PLAIN_ROOT, APP],
        [HOME, WEB, APP],
        Row((), http={WWW: ["/app -> default/web:80"]}),
        id="the IngressRoute goes: the Ingress serves the host alone",
    ),
    pytest.param(
        [HOME, WEB, APP],
        [HOME, WEB, APP, YOUNG_ROOT],
        Row(
            (),
            http={WWW: ["/app -> default/web:80"]},
            statuses={
                "default/root": ("invalid", f'fqdn "{WWW}" is already used by Ingress default/web')
            },
        ),
        id="a root claims the host later than the Ingress: nothing changes for the Ingress",
    ),
    pytest.param(
        [HOME, WEB, PLAIN_ROOT],
        [HOME, WEB, PLAIN_ROOT, APP],
        Row((), http={WWW: ["/app -> default/web:80", "/ -> default/home:80"]}),
        id="an Ingress comes to the owned host",
    ),
]


@pytest.mark.parametrize(("before", "after", "expected"), TRANSITIONS)
def test_merged_paths_are_settled_again_after_an_edit(
    before: list[JSON], after: list[JSON], expected: Row
) -> None:
    check(after_edit(before, after), expected)


def test_a_host_into_which_nothing_merges_is_the_ingressroute_host_itself() -> None:
    """The translator's identity cache keys on hosts: merging nothing must not copy them."""
    builder = DagBuilder()
    objects = _objects([HOME, SECRET, TLS_ROOT, solver_service("evil"), solver("evil")])
    first = builder.build(objects)
    alone = DagBuilder().build(_objects([HOME, SECRET, TLS_ROOT]))
    assert first.virtual_hosts == alone.virtual_hosts
    edited = builder.build(
        ObjectSet.from_objects([*objects.services.values(), *objects.secrets.values(),
                                *objects.ingress_routes.values(),
                                parse_object(solver("evil", name="other"))])
    )  # fmt: skip
    assert edited.virtual_hosts[0] is first.virtual_hosts[0]
