"""The CRDs (crds/*.yaml): structural, printing what teams read, accepting what the DAG reports.

A structural schema (what `apiextensions.k8s.io/v1` demands) gives every node a `type`, and we
use `x-kubernetes-preserve-unknown-fields` nowhere: every field of the v1beta1 API is spelled out.
The examples (examples/ingressroute/) must validate against the schema, and so must the objects
behind the status rows of the DAG tests (port 70000, weight -1, wildcard or missing fqdn): if the
schema refused them, those statuses could never be seen on a real cluster. A `match` without a
leading `/` and values outside the enumerations are refused, as the issue asks.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed in .venv
import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import kubernetes_validate.utils  # type: ignore[import-untyped]
import pytest
import yaml

from controlplane.dag import build
from controlplane.dag.options import BuildOptions
from controlplane.dag.types import StatusKind
from controlplane.model import (
    IngressRoute,
    KubeObject,
    ObjectSet,
    TLSCertificateDelegation,
    parse_object,
)

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples" / "ingressroute"
JSON = dict[str, Any]


def load_all(path: Path) -> list[JSON]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def crd(plural: str) -> JSON:
    [doc] = load_all(CRDS / f"{plural.removesuffix('s')}.yaml")
    assert doc["spec"]["names"]["plural"] == plural
    result: JSON = doc
    return result


def version(plural: str) -> JSON:
    [served] = crd(plural)["spec"]["versions"]
    assert served["name"] == "v1beta1"
    result: JSON = served
    return result


def schema(plural: str) -> JSON:
    result: JSON = version(plural)["schema"]["openAPIV3Schema"]
    return result


def nodes(node: JSON, path: str = "") -> Iterator[tuple[str, JSON]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from nodes(node["items"], f"{path}[]")


def validate(plural: str, obj: JSON) -> None:
    jsonschema.Draft4Validator(schema(plural)).validate(obj)


def example_documents() -> list[JSON]:
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) for doc in load_all(path)]


PLURALS = ["ingressroutes", "tlscertificatedelegations"]
MODELS: dict[str, type[KubeObject]] = {
    "ingressroutes": IngressRoute,
    "tlscertificatedelegations": TLSCertificateDelegation,
}


@pytest.mark.parametrize("plural", PLURALS)
def test_crd_validates_as_a_kubernetes_object(plural: str) -> None:
    kubernetes_validate.validate(
        crd(plural), kubernetes_validate.utils.latest_version(), strict=True
    )


@pytest.mark.parametrize("plural", PLURALS)
def test_crd_names_match_the_model(plural: str) -> None:
    model = MODELS[plural]
    spec = crd(plural)["spec"]
    assert crd(plural)["metadata"]["name"] == f"{plural}.{spec['group']}"
    assert f"{spec['group']}/{version(plural)['name']}" in model.API_VERSIONS
    assert spec["names"]["kind"] == model.KIND
    assert spec["scope"] == "Namespaced"
    assert version(plural)["served"] and version(plural)["storage"]


@pytest.mark.parametrize("plural", PLURALS)
def test_schema_is_structural(plural: str) -> None:
    for path, node in nodes(schema(plural)):
        assert "type" in node, f"{plural}{path} has no type"
        assert "x-kubernetes-preserve-unknown-fields" not in node, f"{plural}{path}"
        assert "$ref" not in node and "additionalProperties" not in node, f"{plural}{path}"
        if node["type"] == "array":
            assert "items" in node, f"{plural}{path} is an array without items"
    assert schema(plural)["properties"]["metadata"] == {"type": "object"}


def test_ingressroute_schema_spells_out_every_model_field() -> None:
    spec = schema("ingressroutes")["properties"]["spec"]["properties"]
    route = spec["routes"]["items"]["properties"]
    service = route["services"]["items"]["properties"]
    assert set(spec) == {"virtualhost", "routes", "tcpproxy"}
    assert set(spec["virtualhost"]["properties"]["tls"]["properties"]) == {
        "secretName",
        "minimumProtocolVersion",
        "passthrough",
    }
    assert set(route) == {
        "match",
        "services",
        "delegate",
        "enableWebsockets",
        "permitInsecure",
        "prefixRewrite",
        "timeoutPolicy",
        "retryPolicy",
    }
    assert set(service) == {"name", "port", "weight", "strategy", "healthCheck", "validation"}
    assert service["strategy"]["enum"] == ["RoundRobin", "WeightedLeastRequest", "Random", "Cookie"]
    assert spec["tcpproxy"]["properties"]["services"]["items"]["properties"] == service


def test_ingressroute_has_status_subresource_short_name_and_printer_columns() -> None:
    served = version("ingressroutes")
    assert served["subresources"] == {"status": {}}
    assert crd("ingressroutes")["spec"]["names"]["shortNames"] == ["ir"]
    columns = [(c["name"].upper(), c["jsonPath"]) for c in served["additionalPrinterColumns"]]
    assert columns[:5] == [
        ("FQDN", ".spec.virtualhost.fqdn"),
        ("TLS SECRET", ".spec.virtualhost.tls.secretName"),
        ("FIRST ROUTE", ".spec.routes[0].match"),
        ("STATUS", ".status.currentStatus"),
        ("STATUS DESCRIPTION", ".status.description"),
    ]
    status = schema("ingressroutes")["properties"]["status"]["properties"]
    assert {"currentStatus", "description", "observedGeneration", "conditions"} <= set(status)


def test_examples_validate_against_the_schemas() -> None:
    kinds = {
        "IngressRoute": "ingressroutes",
        "TLSCertificateDelegation": "tlscertificatedelegations",
    }
    checked = 0
    for doc in example_documents():
        plural = kinds.get(doc["kind"])
        if plural is not None:
            validate(plural, doc)
            checked += 1
    assert checked >= 3


def test_examples_build_valid_and_serve_each_team() -> None:
    objects = ObjectSet.from_objects(
        parse_object(doc) for doc in example_documents() if doc["kind"] != "Namespace"
    )
    dag = build(objects, BuildOptions())
    assert {(s.namespace, s.name): s.current_status for s in dag.statuses} == {
        ("platform", "www"): StatusKind.VALID,
        ("blog", "blog"): StatusKind.VALID,
        ("shop", "shop"): StatusKind.VALID,
    }
    assert {s.description for s in dag.statuses} == {"valid IngressRoute"}
    [secure] = dag.secure_virtual_hosts
    assert secure.fqdn == "www.example.com" and secure.secret is not None
    served = {(r.match.value, r.clusters[0].cluster.namespace) for r in secure.routes}
    assert {("/", "platform"), ("/blog", "blog"), ("/shop", "shop")} <= served
    namespaces = {
        doc["metadata"]["name"] for doc in example_documents() if doc["kind"] == "Namespace"
    }
    assert namespaces == {"platform", "blog", "shop"}


def test_example_backends_use_distinct_loopback_ports() -> None:
    ports = [
        port["port"]
        for doc in example_documents()
        if doc["kind"] == "EndpointSlice"
        for port in doc["ports"]
    ]
    assert sorted(ports) == [9201, 9202, 9203]


def _root() -> JSON:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "root", "namespace": "default"},
        "spec": {
            "virtualhost": {"fqdn": "www.example.com", "tls": {"secretName": "certs/www"}},
            "routes": [{"match": "/", "services": [{"name": "home", "port": 80}]}],
        },
    }


def _with(change: Any) -> JSON:
    obj = _root()
    change(obj["spec"])
    return obj


def _service(spec: JSON) -> JSON:
    service: JSON = spec["routes"][0]["services"][0]
    return service


ACCEPTED = {
    # Values the DAG reports in .status must get through the schema.
    "port 70000": lambda s: _service(s).update(port=70000),
    "negative weight": lambda s: _service(s).update(weight=-1),
    "huge weight": lambda s: _service(s).update(weight=2**40),
    "wildcard fqdn": lambda s: s["virtualhost"].update(fqdn="*.x.com"),
    "missing fqdn": lambda s: s["virtualhost"].pop("fqdn"),
    "empty fqdn": lambda s: s["virtualhost"].update(fqdn=""),
    "upper-case fqdn": lambda s: s["virtualhost"].update(fqdn="WWW.Example.com"),
    "bad duration": lambda s: s["routes"][0].update(timeoutPolicy={"request": "soon"}),
    "negative retry count": lambda s: s["routes"][0].update(retryPolicy={"count": -1}),
    "services and delegate": lambda s: s["routes"][0].update(delegate={"name": "x"}),
    "empty tls": lambda s: s["virtualhost"].update(tls={}),
    "passthrough and tcpproxy": lambda s: s.update(
        virtualhost={"fqdn": "db.example.com", "tls": {"passthrough": True}},
        tcpproxy={"services": [{"name": "db", "port": 5432}]},
    ),
    "delegate only": lambda s: s.update(routes=[{"match": "/blog", "delegate": {"name": "b"}}]),
}

REJECTED = {
    "match without leading slash": lambda s: s["routes"][0].update(match="foo"),
    "empty match": lambda s: s["routes"][0].update(match=""),
    "unknown strategy": lambda s: _service(s).update(strategy="Fastest"),
    "TLS 1.0": lambda s: s["virtualhost"]["tls"].update(minimumProtocolVersion="1.0"),
    "secret name with upper case": lambda s: s["virtualhost"]["tls"].update(secretName="Www"),
    "fqdn with a space": lambda s: s["virtualhost"].update(fqdn="a b.com"),
    "port as a string": lambda s: _service(s).update(port="80"),
    "service without name": lambda s: _service(s).pop("name"),
    "routes not a list": lambda s: s.update(routes={"match": "/"}),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_schema_accepts_what_the_dag_reports(name: str) -> None:
    validate("ingressroutes", _with(ACCEPTED[name]))


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_schema_rejects(name: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("ingressroutes", _with(REJECTED[name]))


def test_certificate_delegation_schema() -> None:
    delegation: JSON = {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "TLSCertificateDelegation",
        "metadata": {"name": "d", "namespace": "certs"},
        "spec": {"delegations": [{"secretName": "www", "targetNamespaces": ["blog", "*"]}]},
    }
    validate("tlscertificatedelegations", delegation)
    broken = copy.deepcopy(delegation)
    broken["spec"]["delegations"][0]["targetNamespaces"] = ["Not A Namespace"]
    with pytest.raises(jsonschema.ValidationError):
        validate("tlscertificatedelegations", broken)
