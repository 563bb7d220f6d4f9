"""The OpenAPI documents of the test API server: v3 per group-version, and v2 for everything.

What kubectl reads, as measured with kubectl 1.32 (`-v=8`):

- `kubectl explain KIND[.FIELD...]` reads `/openapi/v3` (an index of group-versions, each
  addressed with a content hash) and then the group-version's document, and finds the kind among
  `components.schemas` by its `x-kubernetes-group-version-kind`. Fields are followed through
  `properties`, `items`, `additionalProperties` and `$ref` (wrapped in a one-element `allOf`
  where the field has its own description, as the apiserver writes them). Without a schema for
  the kind it fails ("GVK ... not found in OpenAPI schema").
- `kubectl explain --output=plaintext-openapiv2`, and kubectl's fallbacks when v3 does not know a
  kind, read `/openapi/v2`. kubectl asks for it with
  `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` only and decodes the body
  as that protobuf whatever the response's content type, so JSON is no use to kubectl
  (`apiserver_openapi_proto` encodes it); other clients get JSON.
- `kubectl apply|create|replace` look in the v3 document of the kind for a PATCH operation that
  takes `fieldValidation` and then leave validation to the server (which does not validate).
  No PATCH operation lists a strategic merge request body and the v2 document has no paths, so
  kubectl computes apply patches from its compiled-in types (built-ins) or as JSON merge patches
  (custom resources), as before these documents had schemas.

Schemas: the built-in kinds' come from `apiserver_schemas` (compact: fields, types, first
sentences); a custom resource's is its CRD's `openAPIV3Schema`, with `apiVersion`, `kind` and
`metadata` (a reference to ObjectMeta) described as the apiserver describes them, named
`com.heptio.contour.v1beta1.IngressRoute` (the group reversed). A group-version's v3 document
holds its kinds' schemas and every definition they reference; the v2 document holds them all,
converted: references point into `definitions`, and what v2 cannot say (`nullable`, `anyOf`,
`oneOf`, `not`, an array without `items`) is left out, as the apiserver's v2 conversion does.

Documents are computed from the registry and kept until its `generation` changes, so a CRD's
schema is served by the next request after the CRD is stored, and an unchanged registry is not
described again for every kubectl command.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from controlplane.testing.apiserver_openapi_proto import encode_document
from controlplane.testing.apiserver_registry import Registry, ResourceType
from controlplane.testing.apiserver_schema_notation import ObjectSchema, full_name
from controlplane.testing.apiserver_schemas import SCHEMAS

__all__ = ["OpenApiDocuments", "builtin_definitions", "crd_definition", "definition_name"]

JSON = dict[str, Any]
V3_REF = "#/components/schemas/"
V2_REF = "#/definitions/"
OBJECT_META = full_name("meta.v1.ObjectMeta")
_PRIMITIVES = ("string", "integer", "number", "boolean", "object")
_API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object."
)
_KIND_DESCRIPTION = "Kind is a string value representing the REST resource this object represents."
_METADATA_DESCRIPTION = "Standard object's metadata."


def _type(expr: str) -> JSON:
    """The schema of one type expression of `apiserver_schemas`' notation."""
    if expr.startswith("[]"):
        return {"type": "array", "items": _type(expr[2:])}
    if expr.startswith("map[string]"):
        return {"type": "object", "additionalProperties": _type(expr[len("map[string]") :])}
    base, _, fmt = expr.partition(":")
    if base in _PRIMITIVES:
        return {"type": base, "format": fmt} if fmt else {"type": base}
    return {"$ref": V3_REF + full_name(expr)}


def _property(text: str) -> tuple[JSON, bool]:
    """A field's schema and whether it is required, from `"TYPE[!] description"`."""
    expr, _, description = text.partition(" ")
    required = expr.endswith("!")
    schema = _type(expr.rstrip("!"))
    if "$ref" in schema:
        return {"allOf": [schema], "description": description}, required
    return {**schema, "description": description}, required


def _gvk(group: str, version: str, kind: str) -> list[JSON]:
    return [{"group": group, "version": version, "kind": kind}]


def builtin_definitions() -> dict[str, JSON]:
    """Every definition of `apiserver_schemas`, as OpenAPI v3 schemas by their full names."""
    out: dict[str, JSON] = {}
    for short, entry in SCHEMAS.items():
        if not isinstance(entry, ObjectSchema):
            out[full_name(short)] = {**_type(entry.type), "description": entry.description}
            continue
        properties: JSON = {}
        required: list[str] = []
        for name, text in entry.fields.items():
            properties[name], needed = _property(text)
            if needed:
                required.append(name)
        schema: JSON = {
            "description": entry.description,
            "type": "object",
            "properties": properties,
        }
        if required:
            schema["required"] = required
        if entry.gvk is not None:
            schema["x-kubernetes-group-version-kind"] = _gvk(*entry.gvk)
        out[full_name(short)] = schema
    return out


def definition_name(rtype: ResourceType) -> str:
    """How the apiserver names a custom resource's schema: the group reversed, the version and
    the kind (`com.heptio.contour.v1beta1.IngressRoute`)."""
    return ".".join([*reversed(rtype.group.split(".")), rtype.version, rtype.kind])


def crd_definition(rtype: ResourceType) -> JSON | None:
    """A custom resource's schema as the apiserver publishes it, or None without one."""
    if rtype.schema is None:
        return None
    schema = copy.deepcopy(rtype.schema)
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string", "description": _API_VERSION_DESCRIPTION}
    properties["kind"] = {"type": "string", "description": _KIND_DESCRIPTION}
    properties["metadata"] = {
        "allOf": [{"$ref": V3_REF + OBJECT_META}],
        "description": _METADATA_DESCRIPTION,
    }
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = _gvk(rtype.group, rtype.version, rtype.kind)
    return schema


def _references(schema: Any) -> set[str]:
    """The definitions a schema refers to directly (`$ref`s anywhere inside it)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(V3_REF):
            found.add(ref[len(V3_REF) :])
        for value in schema.values():
            found |= _references(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _references(value)
    return found


def _closure(roots: dict[str, JSON], library: dict[str, JSON]) -> dict[str, JSON]:
    """`roots` and every definition of `library` they reach, sorted by name."""
    out = dict(roots)
    pending = [ref for schema in roots.values() for ref in _references(schema)]
    while pending:
        name = pending.pop()
        if name in out or name not in library:
            continue
        out[name] = library[name]
        pending.extend(_references(library[name]))
    return dict(sorted(out.items()))


def _to_v2(schema: Any) -> Any:
    """A v3 schema as OpenAPI v2 (Swagger 2.0) can say it."""
    if isinstance(schema, list):
        return [_to_v2(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: JSON = {}
    for key, value in schema.items():
        if key in ("nullable", "anyOf", "oneOf", "not"):
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = V2_REF + value.removeprefix(V3_REF)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _to_v2(s) for name, s in value.items()}
        elif key in ("items", "additionalProperties", "allOf"):
            out[key] = _to_v2(value)
        else:
            out[key] = copy.deepcopy(value)
    all_of = out.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        del out["allOf"]
        out["$ref"] = all_of[0]["$ref"]
    if out.get("type") == "array" and not isinstance(out.get("items"), dict):
        del out["type"]  # v2 readers insist on exactly one item schema
    return out


def _gv_path(rtype: ResourceType) -> str:
    return f"apis/{rtype.group}/{rtype.version}" if rtype.group else f"api/{rtype.version}"


def _patch_operation(rtype: ResourceType) -> JSON:
    """The PATCH operation kubectl looks for before it leaves validation to the server."""
    return {
        "patch": {
            "operationId": f"patch{rtype.kind}",
            "x-kubernetes-group-version-kind": _gvk(rtype.group, rtype.version, rtype.kind)[0],
            "x-kubernetes-action": "patch",
            "parameters": [
                {
                    "name": "fieldValidation",
                    "in": "query",
                    "schema": {"type": "string", "uniqueItems": True},
                }
            ],
            "responses": {"200": {"description": "OK"}},
        }
    }


class OpenApiDocuments:
    """The documents of one registry, recomputed when its `generation` changes."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._builtins = builtin_definitions()
        self._builtin_kinds = {
            (g["group"], g["version"], g["kind"]): name
            for name, schema in self._builtins.items()
            for g in schema.get("x-kubernetes-group-version-kind", [])
        }
        self._generation = -1
        self._v3: dict[str, JSON] = {}
        self._v3_index: JSON = {}
        self._v2: JSON = {}
        self._v2_protobuf = b""

    def _kind_definitions(self, types: list[ResourceType]) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for t in types:
            builtin = self._builtin_kinds.get((t.group, t.version, t.kind))
            if builtin is not None:
                out[builtin] = self._builtins[builtin]
            elif (schema := crd_definition(t)) is not None:
                out[definition_name(t)] = schema
        return out

    def _refresh(self) -> None:
        if self._generation == self.registry.generation:
            return
        by_gv: dict[str, list[ResourceType]] = {}
        for t in self.registry.types():
            by_gv.setdefault(_gv_path(t), []).append(t)
        self._v3 = {}
        every: dict[str, JSON] = {}
        for gv_path, types in sorted(by_gv.items()):
            kinds = self._kind_definitions(types)
            every.update(kinds)
            prefix = f"/{gv_path}"
            paths = {
                (
                    f"{prefix}/namespaces/{{namespace}}/{t.plural}/{{name}}"
                    if t.namespaced
                    else f"{prefix}/{t.plural}/{{name}}"
                ): _patch_operation(t)
                for t in types
                if t.review is None
            }
            self._v3[gv_path] = {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths,
                "components": {"schemas": _closure(kinds, self._builtins)},
            }
        self._v3_index = {
            "paths": {
                gv_path: {"serverRelativeURL": f"/openapi/v3/{gv_path}?hash={_digest(doc)}"}
                for gv_path, doc in self._v3.items()
            }
        }
        definitions = _closure(every, self._builtins)
        self._v2 = {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": {},
            "definitions": {name: _to_v2(schema) for name, schema in definitions.items()},
        }
        self._v2_protobuf = encode_document(self._v2)
        self._generation = self.registry.generation

    def v3_index(self) -> JSON:
        """`/openapi/v3`: each group-version's document, addressed with a hash of its content
        so kubectl's disk cache never serves a stale one after a CRD changes."""
        self._refresh()
        return self._v3_index

    def v3(self, gv_path: str) -> JSON | None:
        """`/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`; None for an unknown one."""
        self._refresh()
        return self._v3.get(gv_path)

    def v2(self) -> JSON:
        """`/openapi/v2` as JSON (Swagger 2.0): every definition, no paths."""
        self._refresh()
        return self._v2

    def v2_protobuf(self) -> bytes:
        """`/openapi/v2` as kubectl reads it (`apiserver_openapi_proto`)."""
        self._refresh()
        return self._v2_protobuf


def _digest(doc: JSON) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
