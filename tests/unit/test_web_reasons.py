"""Reason classes for `controlplane_objects_invalid`: every invalid IngressRoute the DAG can
report gets a class from a fixed vocabulary, and no tenant text ever becomes a label value.

The rows build real objects, so the classes follow the DAG's actual wording: a change of
wording that would silently turn a class into `other` fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ingressroute_support import delegate, ingressroute, route, service, tls_secret, to
from web_support import HOSTILE, view_of

from controlplane.dag import INTERNAL_ERROR, BuildOptions, Problem
from controlplane.web import REASONS, problem_class, reason_class

JSON = dict[str, Any]


def unparsable() -> JSON:
    broken = ingressroute("x", fqdn="x.example.com")
    broken["spec"]["routes"] = "not a list"
    return broken


def root(**spec: Any) -> JSON:
    manifest = ingressroute("x", fqdn="x.example.com")
    manifest["spec"].update(spec)
    return manifest


WEB = service("web")
ROWS: list[tuple[str, list[JSON], BuildOptions | None]] = [
    (
        "root_namespace",
        [ingressroute("x", fqdn="x.example.com")],
        BuildOptions(root_namespaces=frozenset({"roots"})),
    ),
    ("fqdn_missing", [{**ingressroute("x"), "spec": {"virtualhost": {}}}], None),
    ("fqdn_wildcard", [ingressroute("x", fqdn="*.example.com")], None),
    ("fqdn_invalid", [ingressroute("x", fqdn="not a host")], None),
    (
        "fqdn_conflict",
        [
            ingressroute("a", fqdn="x.example.com", created="2020-01-01T00:00:00Z"),
            ingressroute("x", fqdn="x.example.com"),
        ],
        None,
    ),
    ("tls_secret", [ingressroute("x", fqdn="x.example.com", tls={"secretName": "nope"})], None),
    ("route_match", [root(routes=[route("nope", to("web"))]), WEB], None),
    (
        "services_and_delegate",
        [root(routes=[route("/", to("web"), delegate=delegate("d"))]), WEB],
        None,
    ),
    ("service_missing", [root(routes=[route("/", to("missing"))])], None),
    ("service_weight", [root(routes=[route("/", to("web", weight=-1))]), WEB], None),
    (
        "load_balancer_strategy",
        [root(routes=[route("/", to("web", strategy="Fastest"))]), WEB],
        None,
    ),
    ("health_check", [root(routes=[route("/", to("web", healthCheck={"path": ""}))]), WEB], None),
    (
        "retry_policy",
        [root(routes=[route("/", to("web"), retryPolicy={"count": 2**32})]), WEB],
        None,
    ),
    (
        "root_to_root",
        [
            root(routes=[route("/", delegate=delegate("y"))]),
            ingressroute("y", fqdn="y.example.com", routes=[route("/", to("web"))]),
            WEB,
        ],
        None,
    ),
    (
        "tcpproxy",
        [root(tcpproxy={}, virtualhost={"fqdn": "x.example.com", "tls": {"passthrough": True}})],
        None,
    ),
    ("spec_unparsable", [unparsable()], None),
]


@pytest.mark.parametrize(("expected", "manifests", "options"), ROWS, ids=[r[0] for r in ROWS])
def test_each_invalid_ingressroute_gets_its_class(
    expected: str, manifests: list[JSON], options: BuildOptions | None
) -> None:
    view = view_of([*manifests, tls_secret("unused")], options)
    statuses = {s.name: s for s in view.statuses}
    assert statuses["x"].current_status.value == "invalid", statuses["x"].description
    assert view.counts.invalid_by_reason.get(("IngressRoute", expected)) == 1, statuses[
        "x"
    ].description
    assert expected in REASONS


@pytest.mark.parametrize(
    "description",
    [
        f'route "/weight{HOSTILE}": service "strategy": Service [a:80] is invalid or missing',
        f'fqdn "{HOSTILE} TLS Secret" is already used by IngressRoute ns/a',
    ],
)
def test_quoted_text_does_not_steer_the_class(description: str) -> None:
    assert reason_class(description) in ("service_missing", "fqdn_conflict")


@given(st.text(max_size=200))
def test_any_text_gets_a_class_from_the_vocabulary(text: str) -> None:
    assert reason_class(text) in REASONS


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        (Problem("Ingress", "a", "b", "spec.rules[0].host", "bad"), "spec.rules[].host"),
        (
            Problem("Ingress", "a", "b", "spec.rules[].http.paths[3]", "x"),
            "spec.rules[].http.paths[]",
        ),
        (
            Problem("Ingress", "a", "b", "metadata.annotations[contour.heptio.com/x]", "x"),
            "metadata.annotations[]",
        ),
        (Problem("Service", "a", "b", INTERNAL_ERROR, "Traceback ..."), "internal_error"),
        (Problem("Secret", "a", "b", "data", "not served: bad key"), "rejected_by_envoy"),
        (Problem("Ingress", "a", "b", f"route {HOSTILE}", "x"), "other"),
        (Problem("Ingress", "a", "b", "", "x"), "other"),
    ],
)
def test_problems_are_classed_by_their_field_path(problem: Problem, expected: str) -> None:
    assert problem_class(problem) == expected
