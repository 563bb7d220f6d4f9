"""OpenAPI v3 and v2 from the test API server: `kubectl explain` on built-in kinds and on the
IngressRoute CRD (both document versions), documents that follow CRD changes, and the compact
built-in schemas checked against the Kubernetes 1.32 definitions they were cut from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from testapi_support import Kubectl

from controlplane.testing.apiserver import TestApiServer
from controlplane.testing.apiserver_openapi import V2_REF, V3_REF, OpenApiDocuments
from controlplane.testing.apiserver_registry import Registry, builtin_types, types_from_crd
from controlplane.testing.apiserver_schemas import SCHEMAS, ObjectSchema, full_name

ROOT = Path(__file__).resolve().parents[2]
CRDS = str(ROOT / "crds")


def _explained(text: str) -> dict[str, str]:
    """`kubectl explain` output: the header lines (`KIND:`, `FIELD:`) and each listed field's
    type, as `{"KIND": "Ingress", "field host": "<string>"}`."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        head, sep, rest = line.partition(":")
        if sep and head.isupper() and rest:
            out[head] = rest.strip()
        parts = line.split()
        if line.startswith(("  ", "   ")) and len(parts) >= 2 and parts[1].startswith("<"):
            out[f"field {parts[0]}"] = " ".join(parts[1:])
    return out


async def test_explain_ingress_rules_shows_types_and_descriptions(kubectl: Kubectl) -> None:
    text = await kubectl("explain", "ingress.spec.rules")

    shown = _explained(text)
    assert shown["KIND"] == "Ingress" and shown["GROUP"] == "networking.k8s.io"
    assert shown["FIELD"] == "rules <[]IngressRule>"
    assert shown["field host"] == "<string>"
    assert shown["field http"] == "<HTTPIngressRuleValue>"
    assert "rules is a list of host rules used to configure the Ingress." in text
    deeper = _explained(await kubectl("explain", "ingress.spec.rules.http.paths.backend.service"))
    assert deeper["field name"] == "<string> -required-"
    assert deeper["field port"] == "<ServiceBackendPort>"


@pytest.mark.parametrize(
    ("args", "kind", "field"),
    [
        (["services"], "Service", "spec"),
        (["endpointslices"], "EndpointSlice", "endpoints"),
        (["secrets"], "Secret", "data"),
        (["ingresses"], "Ingress", "spec"),
        (["ingressclasses"], "IngressClass", "spec"),
        (["namespaces"], "Namespace", "status"),
        (["events"], "Event", "involvedObject"),
        (["events", "--api-version=events.k8s.io/v1"], "Event", "regarding"),
        (["leases"], "Lease", "spec"),
    ],
)
async def test_explain_every_described_builtin_kind(
    kubectl: Kubectl, args: list[str], kind: str, field: str
) -> None:
    shown = _explained(await kubectl("explain", *args))

    assert shown["KIND"] == kind
    assert f"field {field}" in shown
    assert shown["field metadata"].startswith("<ObjectMeta>")


async def test_explain_ingressroute_from_the_crd_schema(kubectl: Kubectl) -> None:
    await kubectl("apply", "-f", CRDS)

    spec = await kubectl("explain", "ingressroute.spec")
    routes = _explained(await kubectl("explain", "ingressroute.spec.routes"))
    meta = _explained(await kubectl("explain", "ir.metadata.name"))

    assert _explained(spec)["KIND"] == "IngressRoute"
    assert _explained(spec)["field virtualhost"] == "<Object>"
    assert "Present on a root IngressRoute only." in spec
    assert routes["FIELD"] == "routes <[]Object>"
    assert routes["field match"] == "<string> -required-"
    assert meta["FIELD"] == "name <string>"


async def test_explain_with_openapi_v2_reads_the_protobuf_document(kubectl: Kubectl) -> None:
    await kubectl("apply", "-f", CRDS)

    rules = await kubectl("explain", "ingress.spec.rules", "--output=plaintext-openapiv2")
    routes = await kubectl("explain", "ingressroute.spec.routes", "--output=plaintext-openapiv2")

    assert "RESOURCE: rules <[]Object>" in rules
    assert "rules is a list of host rules used to configure the Ingress." in rules
    assert _explained(routes)["field match"] == "<string> -required-"
    assert "A path prefix, matched by whole segments." in routes


async def test_explain_follows_the_crd_being_changed_and_deleted(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    await kubectl("apply", "-f", CRDS)
    assert "Present on a root IngressRoute only." in await kubectl("explain", "ingressroute.spec")
    crd = yaml.safe_load((ROOT / "crds" / "ingressroute.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["virtualhost"]["description"] = "Changed."
    changed = tmp_path / "crd.yaml"
    changed.write_text(yaml.safe_dump(crd))

    await kubectl("apply", "-f", str(changed))
    text = await kubectl("explain", "ingressroute.spec")
    await kubectl("delete", "-f", str(changed))
    gone = await kubectl.run("explain", "ingressroute.spec", check=False)

    assert "Changed." in text and "Present on a root" not in text
    assert gone.code != 0


async def test_openapi_v2_is_json_unless_protobuf_is_asked_for(server: TestApiServer) -> None:
    proto = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/openapi/v2") as response:
            document = await response.json()
        async with http.get(f"{server.url}/openapi/v2", headers={"Accept": proto}) as response:
            body = await response.read()
            content_type = response.headers["Content-Type"]

    assert document["swagger"] == "2.0"
    assert "io.k8s.api.networking.v1.Ingress" in document["definitions"]
    assert content_type == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert body.startswith(b"\x0a\x032.0")  # field 1, swagger: "2.0"


# --- the documents themselves --------------------------------------------------------------


def _refs(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["$ref"]} if isinstance(schema.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_refs(v) for v in schema))
    return set()


def _walk(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, dict):
        return [schema, *(s for v in schema.values() for s in _walk(v))]
    if isinstance(schema, list):
        return [s for v in schema for s in _walk(v)]
    return []


def _registry_with_crds() -> Registry:
    registry = Registry(builtin_types())
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        registry.add(types_from_crd(yaml.safe_load(path.read_text())))
    return registry


def test_every_v3_document_resolves_its_references_itself() -> None:
    documents = OpenApiDocuments(_registry_with_crds())

    for gv_path, entry in documents.v3_index()["paths"].items():
        document = documents.v3(gv_path)
        assert document is not None
        assert entry["serverRelativeURL"].startswith(f"/openapi/v3/{gv_path}?hash=")
        schemas = document["components"]["schemas"]
        dangling = {r for r in _refs(schemas) if r.removeprefix(V3_REF) not in schemas}
        assert not dangling, gv_path
    crd_doc = documents.v3("apis/contour.heptio.com/v1beta1")
    assert crd_doc is not None
    route = crd_doc["components"]["schemas"]["com.heptio.contour.v1beta1.IngressRoute"]
    assert route["x-kubernetes-group-version-kind"] == [
        {"group": "contour.heptio.com", "version": "v1beta1", "kind": "IngressRoute"}
    ]


def test_v2_has_what_kubectls_parser_insists_on() -> None:
    """kube-openapi refuses the whole document over one dangling reference, an array without
    exactly one item schema, or a schema with several types."""
    document = OpenApiDocuments(_registry_with_crds()).v2()
    definitions = document["definitions"]

    assert not {r for r in _refs(definitions) if r.removeprefix(V2_REF) not in definitions}
    for schema in _walk(definitions):
        assert not isinstance(schema.get("type"), list)
        assert schema.get("type") != "array" or isinstance(schema.get("items"), dict)
        assert not {"anyOf", "oneOf", "nullable"} & schema.keys()
    assert "com.heptio.contour.v1beta1.IngressRoute" in definitions


def test_documents_are_recomputed_only_when_the_types_change() -> None:
    registry = Registry(builtin_types())
    documents = OpenApiDocuments(registry)
    before = documents.v3_index()

    assert documents.v3_index() is before
    registry.add(types_from_crd(yaml.safe_load((ROOT / "crds" / "ingressroute.yaml").read_text())))
    after = documents.v3_index()
    assert after is not before and "apis/contour.heptio.com/v1beta1" in after["paths"]


# --- the compact schemas against Kubernetes' own -------------------------------------------


def _kubernetes_definitions() -> dict[str, Any]:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    path = (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / "v1.32.0-local"
        / "_definitions.json"
    )
    if not path.exists():
        pytest.skip(f"no Kubernetes 1.32 definitions at {path}")
    definitions: dict[str, Any] = json.loads(path.read_text())["$defs"]
    return definitions


def _their_type(schema: dict[str, Any]) -> str:
    """A Kubernetes JSON-schema property in `apiserver_schemas`' notation."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return name
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "array":
        return "[]" + _their_type(schema["items"])
    if kind == "object" and "additionalProperties" in schema:
        return "map[string]" + _their_type(schema["additionalProperties"])
    return f"{kind}:{schema['format']}" if schema.get("format") else str(kind)


def _our_type(expr: str) -> str:
    if expr.startswith("[]"):
        return "[]" + _our_type(expr[2:])
    if expr.startswith("map[string]"):
        return "map[string]" + _our_type(expr[len("map[string]") :])
    base = expr.partition(":")[0]
    return expr if base in ("string", "integer", "number", "boolean", "object") else full_name(expr)


@pytest.mark.parametrize(
    "short", sorted(k for k, v in SCHEMAS.items() if isinstance(v, ObjectSchema))
)
def test_compact_schemas_match_kubernetes(short: str) -> None:
    theirs = _kubernetes_definitions()[full_name(short)]
    ours = SCHEMAS[short]
    assert isinstance(ours, ObjectSchema)

    fields = {name: text.partition(" ")[0] for name, text in ours.fields.items()}
    assert set(fields) <= set(theirs["properties"])
    for name, expr in fields.items():
        assert _our_type(expr.rstrip("!")) == _their_type(theirs["properties"][name]), name
    assert {n for n, e in fields.items() if e.endswith("!")} == set(theirs.get("required", []))
    gvk = theirs.get("x-kubernetes-group-version-kind")
    assert (ours.gvk is not None) == bool(gvk)
    if gvk and ours.gvk is not None:
        assert dict(zip(("group", "version", "kind"), ours.gvk, strict=True)) == gvk[0]
