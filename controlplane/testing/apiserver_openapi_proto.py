"""OpenAPI v2 in the protobuf kubectl reads: gnostic's `openapi.v2.Document`.

kubectl fetches `/openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+
protobuf` and unmarshals the body as `openapi_v2.Document` (github.com/google/gnostic-models,
`openapiv2/OpenAPIv2.proto`); it has no JSON fallback. This module encodes the Swagger 2.0 JSON
of `apiserver_openapi` into that message, by hand, as the few fields involved are stable and
simple: the document's `swagger`, `info` and `definitions`, and of each schema `$ref`,
`format`, `title`, `description`, `pattern`, `required`, `enum`, `type`, `items`, `allOf`,
`properties`, `additionalProperties` and the `x-` vendor extensions. Anything else in a schema
is left out (kubectl's readers do not use it). Vendor extensions and enum values travel as YAML
text in gnostic's `Any.yaml`, which is how kube-openapi reads them back.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["ACCEPT", "CONTENT_TYPE", "encode_document"]

ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
"""What kubectl asks for."""
CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
"""What the apiserver answers with: Go's mime parser, which client-go runs on every response's
Content-Type, refuses the `@` of `ACCEPT` ("unexpected content after media subtype")."""
JSON = dict[str, Any]

# openapi.v2.Schema field numbers
_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13}
_REQUIRED = 19
_ENUM = 20
_ADDITIONAL = 21
_TYPE = 22
_ITEMS = 23
_ALL_OF = 24
_PROPERTIES = 25
_VENDOR = 31


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _bytes_field(number, text.encode())


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + _varint(int(value))


def _any(value: Any) -> bytes:
    """gnostic's `Any` with the value as YAML (field 2)."""
    return _string(2, yaml.safe_dump(value, default_flow_style=False))


def _named(name: str, payload: bytes) -> bytes:
    return _string(1, name) + _bytes_field(2, payload)


def _schema(schema: JSON) -> bytes:
    out = bytearray()
    for key, number in _SCHEMA_STRINGS.items():
        value = schema.get(key)
        if isinstance(value, str) and value:
            out += _string(number, value)
    for name in schema.get("required") or []:
        out += _string(_REQUIRED, str(name))
    for value in schema.get("enum") or []:
        out += _bytes_field(_ENUM, _any(value))
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        out += _bytes_field(_ADDITIONAL, _bytes_field(1, _schema(additional)))
    elif isinstance(additional, bool):
        out += _bytes_field(_ADDITIONAL, _bool(2, additional))
    kind = schema.get("type")
    if isinstance(kind, str):
        out += _bytes_field(_TYPE, _string(1, kind))
    items = schema.get("items")
    if isinstance(items, dict):
        out += _bytes_field(_ITEMS, _bytes_field(1, _schema(items)))
    for part in schema.get("allOf") or []:
        if isinstance(part, dict):
            out += _bytes_field(_ALL_OF, _schema(part))
    properties = schema.get("properties")
    if isinstance(properties, dict):
        named = b"".join(
            _bytes_field(1, _named(name, _schema(sub)))
            for name, sub in properties.items()
            if isinstance(sub, dict)
        )
        out += _bytes_field(_PROPERTIES, named)
    for key, value in schema.items():
        if key.startswith("x-"):
            out += _bytes_field(_VENDOR, _named(key, _any(value)))
    return bytes(out)


def encode_document(document: JSON) -> bytes:
    """The `openapi.v2.Document` encoding of a Swagger 2.0 document (see the module's note)."""
    info = document.get("info") or {}
    out = bytearray(_string(1, str(document.get("swagger", "2.0"))))
    title, version = str(info.get("title", "")), str(info.get("version", ""))
    out += _bytes_field(2, _string(1, title) + _string(2, version))
    definitions = b"".join(
        _bytes_field(1, _named(name, _schema(schema)))
        for name, schema in (document.get("definitions") or {}).items()
    )
    out += _bytes_field(9, definitions)
    return bytes(out)
