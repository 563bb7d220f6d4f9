"""ingress-nginx canaries: a canary Ingress's paths join the main Ingress's routes.

Table rows as in test_dag_ingress_nginx.py (each built cold, warm from two prior states, by the
reference oracle and in reverse order), then sequences of edits through one warm builder: a
change to the canary or to the main Ingress must settle the host again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_dag_ingress import (
    BASE_SERVICES,
    P,
    Row,
    Secure,
    backend,
    ingress,
    path,
    rule,
    secret,
    service,
    tls,
)
from test_dag_ingress_nginx import (
    API,
    NGINX,
    ROOT,
    WEB,
    ann,
    certificate,  # noqa: F401  (the fixture)
    cluster,
    field,
    ng,
    nx,
    regex,
    rewrite,
)

from controlplane.dag.builder import DagBuilder
from controlplane.dag.ingress_canary import cookie_pattern
from controlplane.dag.options import BuildOptions
from controlplane.dag.reference import reference_build
from controlplane.dag.types import HeaderMatch, Redirect, Route, UpstreamProtocol, WeightedCluster
from controlplane.model import ObjectSet, parse_object

MAIN = nx("main", rule("foo.com", path()))
TO_API = rule("foo.com", path(to=backend("api", 9000)))


def canary(
    *rules: Any, age: int = 1, name: str = "canary", namespace: str = "default", **annotations: str
) -> dict[str, Any]:
    return nx(
        name,
        *(rules or (TO_API,)),
        age=age,
        namespace=namespace,
        annotations=ann(canary="true", **annotations),
    )


def header(value: str, name: str = "x-canary") -> tuple[HeaderMatch, ...]:
    return (HeaderMatch(name, exact=value),)


def cookie(value: str, name: str = "canary") -> tuple[HeaderMatch, ...]:
    return (HeaderMatch("cookie", regex=cookie_pattern(name, value)),)


ROWS = [
    Row(
        "canary-weight splits the main route",
        [MAIN, canary(canary_weight="20")],
        {"foo.com": [ng(ROOT, clusters=(WeightedCluster(WEB, 80), WeightedCluster(API, 20)))]},
        options=NGINX,
    ),
    Row(
        "canary-weight 0 leaves the main route alone",
        [MAIN, canary(canary_weight="0")],
        {"foo.com": [ng(ROOT)]},
        options=NGINX,
    ),
    Row(
        "canary-weight of the whole total sends everything to the canary",
        [MAIN, canary(canary_weight="5", canary_weight_total="5")],
        {"foo.com": [ng(ROOT, clusters=(WeightedCluster(API, 5),))]},
        options=NGINX,
    ),
    Row(
        "canary-weight beyond the total is refused",
        [MAIN, canary(canary_weight="101")],
        {"foo.com": [ng(ROOT)]},
        problems=[P("canary", field("canary-weight"), "more than 100")],
        options=NGINX,
    ),
    Row(
        "canary-by-header: always and never",
        [MAIN, canary(canary_by_header="X-Canary")],
        {
            "foo.com": [
                ng(ROOT, API, headers=header("always")),
                ng(ROOT, headers=header("never")),
                ng(ROOT),
            ]
        },
        options=NGINX,
    ),
    Row(
        "canary-by-header-value",
        [MAIN, canary(canary_by_header="X-Canary", canary_by_header_value="v2")],
        {"foo.com": [ng(ROOT, API, headers=header("v2")), ng(ROOT)]},
        options=NGINX,
    ),
    Row(
        "canary-by-header-pattern",
        [MAIN, canary(canary_by_header="X-Canary", canary_by_header_pattern="^v[23]$")],
        {
            "foo.com": [
                ng(ROOT, API, headers=(HeaderMatch("x-canary", regex=".*(?:^v[23]$).*"),)),
                ng(ROOT),
            ]
        },
        options=NGINX,
    ),
    Row(
        "canary-by-header-pattern RE2 refuses",
        [MAIN, canary(canary_by_header="X-Canary", canary_by_header_pattern="(?=v2)")],
        {
            "foo.com": [
                ng(ROOT, API, headers=header("always")),
                ng(ROOT, headers=header("never")),
                ng(ROOT),
            ]
        },
        problems=[P("canary", field("canary-by-header-pattern"), "RE2")],
        options=NGINX,
    ),
    Row(
        "nginx precedence: header, cookie, weight",
        [
            MAIN,
            canary(canary_by_header="X-Canary", canary_by_cookie="canary", canary_weight="10"),
        ],
        {
            "foo.com": [
                ng(ROOT, API, headers=header("always")),
                ng(ROOT, headers=header("never")),
                ng(ROOT, API, headers=cookie("always")),
                ng(ROOT, headers=cookie("never")),
                ng(ROOT, clusters=(WeightedCluster(WEB, 90), WeightedCluster(API, 10))),
            ]
        },
        options=NGINX,
    ),
    Row(
        "the canary takes the main Ingress's annotations (rewrite, protocol)",
        [
            nx(
                "main",
                rule("foo.com", path("/app(/|$)(.*)")),
                annotations=ann(rewrite_target="/$2", backend_protocol="HTTPS"),
            ),
            canary(
                rule("foo.com", path("/app(/|$)(.*)", to=backend("api", 9000))),
                canary_weight="50",
                proxy_body_size="1k",
            ),
        ],
        {
            "foo.com": [
                ng(
                    regex("/app(/|$)(.*)"),
                    clusters=(
                        WeightedCluster(cluster(WEB, protocol=UpstreamProtocol.TLS), 50),
                        WeightedCluster(cluster(API, protocol=UpstreamProtocol.TLS), 50),
                    ),
                    regex_rewrite=rewrite("/app(/|$)(.*)", "/\\2"),
                )
            ]
        },
        options=NGINX,
    ),
    Row(
        "a canary joins a regex path, ? and all",
        [
            nx("main", rule("foo.com", path("/api/?(.*)")), annotations=ann(use_regex="true")),
            canary(
                rule("foo.com", path("/api/?(.*)", to=backend("api", 9000))), canary_weight="10"
            ),
        ],
        {
            "foo.com": [
                ng(
                    regex("/api/?(.*)"),
                    clusters=(WeightedCluster(WEB, 90), WeightedCluster(API, 10)),
                )
            ]
        },
        options=NGINX,
    ),
    Row(
        "a canary without a main Ingress is ignored",
        [canary(canary_weight="50")],
        problems=[P("canary", "spec.rules[0].http.paths[0]", "no Ingress serves this host")],
        options=NGINX,
    ),
    Row(
        "a canary of another pathType finds no main Ingress",
        [
            MAIN,
            canary(
                rule("foo.com", path("/", "Exact", to=backend("api", 9000))), canary_weight="50"
            ),
        ],
        {"foo.com": [ng(ROOT)]},
        problems=[P("canary", "spec.rules[0].http.paths[0]", "no Ingress serves this host")],
        options=NGINX,
    ),
    Row(
        "a canary of another namespace cannot take a tenant's traffic",
        [
            MAIN,
            service("api", namespace="evil", ports=(("", 9000),)),
            canary(namespace="evil", canary_weight="100"),
        ],
        {"foo.com": [ng(ROOT)]},
        problems=[
            P(
                "canary",
                "spec.rules[0].http.paths[0]",
                "only to an Ingress of its own namespace",
                namespace="evil",
            )
        ],
        options=NGINX,
    ),
    Row(
        "one canary per path",
        [MAIN, canary(canary_weight="20"), canary(name="second", age=2, canary_weight="30")],
        {"foo.com": [ng(ROOT, clusters=(WeightedCluster(WEB, 80), WeightedCluster(API, 20)))]},
        problems=[P("second", "spec.rules[0].http.paths[0]", "already has a canary")],
        options=NGINX,
    ),
    Row(
        "a canary's own TLS is ignored; plain HTTP redirects before any canary rule",
        [
            secret(),
            nx("main", rule("foo.com", path()), tls_=(tls("cert", "foo.com"),)),
            nx(
                "canary",
                TO_API,
                age=1,
                tls_=(tls("cert", "foo.com"),),
                annotations=ann(canary="true", canary_by_header="x-canary"),
            ),
        ],
        {"foo.com": [Route(ROOT, redirect=Redirect(308, "https"))]},
        {
            "foo.com": Secure(
                [
                    ng(ROOT, API, headers=header("always")),
                    ng(ROOT, headers=header("never")),
                    ng(ROOT),
                ]
            )
        },
        problems=[P("canary", "spec.tls", "canary Ingress")],
        options=NGINX,
    ),
    Row(
        "canary annotations without canary: true are reported",
        [nx("main", rule("foo.com", path()), annotations=ann(canary_weight="20"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("main", field("canary-weight"), 'canary is not "true"')],
        options=NGINX,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_build(row: Row, certificate: Any) -> None:  # noqa: F811
    from test_dag_ingress import test_build as check

    check(row, certificate)


_PARSED: dict[str, Any] = {}


def _objects(*raws: dict[str, Any]) -> ObjectSet:
    """The objects of `raws`, each parsed once: an unchanged manifest is the very same object
    from one state to the next, as the store keeps it, so the warm builder redoes only what an
    edit touched."""
    objects = []
    for raw in [*BASE_SERVICES, *raws]:
        key = json.dumps(raw, sort_keys=True)
        objects.append(_PARSED.setdefault(key, parse_object(raw)))
    return ObjectSet.from_objects(objects)


EDITS = [
    pytest.param(
        [
            [MAIN],
            [MAIN, canary(canary_weight="20")],
            [MAIN, canary(canary_weight="60")],
            [MAIN, canary(canary_by_header="x-canary")],
            [canary(canary_by_header="x-canary")],
            [MAIN, canary(canary_by_header="x-canary")],
            [MAIN],
        ],
        id="the canary changes, the main Ingress goes and comes back",
    ),
    pytest.param(
        [
            [MAIN, canary(canary_weight="20")],
            [
                nx("main", rule("foo.com", path()), annotations=ann(backend_protocol="GRPC")),
                canary(canary_weight="20"),
            ],
            [nx("main", rule("foo.com", path("/x"))), canary(canary_weight="20")],
            [
                nx("main", rule("foo.com", path())),
                canary(canary_weight="20"),
                canary(name="second", age=2, canary_weight="30"),
            ],
            [nx("main", rule("foo.com", path())), canary(name="second", age=2, canary_weight="30")],
        ],
        id="the main Ingress changes its policy and its path; a second canary takes over",
    ),
    pytest.param(
        [
            [ingress("main", rule("foo.com", path())), canary(canary_weight="20")],
            [
                nx("main", rule("foo.com", path()), annotations=ann(use_regex="true")),
                canary(canary_weight="20"),
            ],
            [nx("main", rule("foo.com", path())), canary(canary_weight="20")],
        ],
        id="the main Ingress becomes a regex host and back",
    ),
]


@pytest.mark.parametrize("states", EDITS)
def test_warm_builds_settle_the_host_again(states: list[list[dict[str, Any]]]) -> None:
    builder = DagBuilder()
    options = BuildOptions(ingress_class="contour,nginx")
    for index, raws in enumerate(states):
        objects = _objects(*raws)
        assert builder.build(objects, options) == reference_build(objects, options), index
