"""Blast radius of one: a bug met while building one object costs that object, never the build.

Faults are injected where a real bug would surface (compiling one IngressRoute, reading one
Ingress, walking one root's delegations); the object hit is left out with an `internal error`
status or problem carrying the traceback, and every other object is built as usual.
"""

from __future__ import annotations

from typing import Any

import pytest
from ingressroute_support import ingressroute, route, service, statuses, to
from test_dag_ingress import ingress, path, rule
from test_dag_ingress import service as ingress_service

import controlplane.dag.ingress as ingress_module
import controlplane.dag.ingressroute as ingressroute_module
import controlplane.dag.ingressroute_processor as processor_module
from controlplane.dag import DagBuilder
from controlplane.dag.types import INTERNAL_ERROR
from controlplane.model import ObjectSet, parse_object

HOME = service("home")
WWW = "www.example.com"
GOOD = ingressroute("good", fqdn=WWW, routes=[route("/", to("home"))])
BAD = ingressroute("bad", fqdn="bad.example.com", routes=[route("/", to("home"))])


def build(*manifests: dict[str, Any]) -> Any:
    return DagBuilder().build(ObjectSet.from_objects(parse_object(m) for m in manifests))


def test_a_bug_compiling_one_ingressroute_makes_only_it_invalid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compile_ingressroute = ingressroute_module.compile_ingressroute

    def faulty(route: Any, *args: Any) -> Any:
        if route.name == "bad":
            raise ZeroDivisionError("injected")
        return compile_ingressroute(route, *args)

    monkeypatch.setattr(ingressroute_module, "compile_ingressroute", faulty)
    dag = build(HOME, GOOD, BAD)
    found = statuses(dag)
    assert found["default/good"][0] == "valid"
    assert found["default/bad"] == (
        "invalid",
        "internal error while building this object (ZeroDivisionError); "
        "the controller's log has the details",
    )
    assert [host.fqdn for host in dag.virtual_hosts] == [WWW]
    [problem] = [p for p in dag.problems if p.field == INTERNAL_ERROR]
    assert (problem.kind, problem.namespace, problem.name) == ("IngressRoute", "default", "bad")
    assert "Traceback" in problem.reason and "ZeroDivisionError: injected" in problem.reason


def test_a_bug_reading_one_ingress_drops_only_that_ingress(monkeypatch: pytest.MonkeyPatch) -> None:
    read = ingress_module._IngressReader.read

    def faulty(self: Any) -> None:
        if self.ingress.name == "bad":
            raise KeyError("injected")
        read(self)

    monkeypatch.setattr(ingress_module._IngressReader, "read", faulty)
    dag = build(
        ingress_service("web"),
        ingress("good", rule("good.example.com", path())),
        ingress("bad", rule("bad.example.com", path())),
    )
    assert [host.fqdn for host in dag.virtual_hosts] == ["good.example.com"]
    [problem] = [p for p in dag.problems if p.field == INTERNAL_ERROR]
    assert (problem.kind, problem.name) == ("Ingress", "bad")
    assert "KeyError: 'injected'" in problem.reason


def test_a_bug_in_one_delegation_walk_costs_only_its_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    walk = processor_module.walk_delegations

    def faulty(roots: Any, *args: Any) -> Any:
        if ("default", "bad") in roots:
            raise RecursionError("injected")
        return walk(roots, *args)

    monkeypatch.setattr(processor_module, "walk_delegations", faulty)
    dag = build(HOME, GOOD, BAD)
    found = statuses(dag)
    assert found["default/good"][0] == "valid"
    assert found["default/bad"][0] == "invalid"
    assert "internal error" in found["default/bad"][1]
    assert [host.fqdn for host in dag.virtual_hosts] == [WWW]
    assert [p.name for p in dag.problems if p.field == INTERNAL_ERROR] == ["bad"]


# Found by the hostile fuzz (tests/hostile): a creationTimestamp without a time zone (a
# hand-written manifest for the file source or `translate`; the API server always writes `Z`)
# parses as a naive datetime, and comparing it with everyone else's raises TypeError where the
# oldest claimant is picked: the whole build fails, for every object, on every rebuild.
NAIVE = "2024-06-01T00:00:00"


def created(manifest: dict[str, Any], timestamp: str) -> dict[str, Any]:
    return {**manifest, "metadata": {**manifest["metadata"], "creationTimestamp": timestamp}}


@pytest.mark.parametrize(
    "manifests",
    [
        pytest.param(
            [
                HOME,
                GOOD,
                created(ingressroute("bad", fqdn=WWW, routes=[route("/", to("home"))]), NAIVE),
            ],
            id="two roots claim one fqdn",
        ),
        pytest.param(
            [
                ingress_service("web"),
                ingress("good", rule(WWW, path())),
                created(ingress("bad", rule(WWW, path())), NAIVE),
            ],
            id="two Ingresses claim one path",
        ),
    ],
)
def test_a_creation_timestamp_without_a_time_zone_costs_nothing(
    manifests: list[dict[str, Any]],
) -> None:
    dag = build(*manifests)
    assert [host.fqdn for host in dag.virtual_hosts] == [WWW]
    assert not [p for p in dag.problems if p.field == INTERNAL_ERROR]
