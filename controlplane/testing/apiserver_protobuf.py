"""Decode the Kubernetes protobuf encoding of the few kinds `kubectl create` sends that way.

kubectl's typed clients (`kubectl create namespace|secret|configmap|serviceaccount`) send
`application/vnd.kubernetes.protobuf` bodies and client-go does not fall back to JSON when a
server refuses them, so the test server must read them. The encoding is the magic `k8s\\0`
followed by a `runtime.Unknown` whose `raw` field holds the typed object in the protobuf of
k8s.io/api's generated.proto. We decode only the fields listed below (the ones those commands
set) into the object's JSON form; unknown fields are skipped, as protobuf allows, and a kind
with no schema here raises `UnsupportedKind` (the server answers 415).
"""

from __future__ import annotations

import base64
from typing import Any

JSON = dict[str, Any]
MAGIC = b"k8s\x00"

# field number -> (JSON name, type). Types: "string", "bytes", "int", "bool", a message name,
# "map:string" / "map:bytes" (map<string, string|bytes>), and a "[]" prefix for repeated fields.
_Schema = dict[int, tuple[str, str]]
_MESSAGES: dict[str, _Schema] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "rawbytes")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        11: ("labels", "map:string"),
        12: ("annotations", "map:string"),
        13: ("ownerReferences", "[]OwnerReference"),
        14: ("finalizers", "[]string"),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool"),
        7: ("blockOwnerDeletion", "bool"),
    },
    "LocalObjectReference": {1: ("name", "string")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:bytes"),
        3: ("type", "string"),
        4: ("stringData", "map:string"),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:string"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        3: ("imagePullSecrets", "[]LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool"),
    },
}
SUPPORTED_KINDS = ("Namespace", "Secret", "ConfigMap", "ServiceAccount")


class UnsupportedKind(ValueError):
    """A protobuf body this server cannot read; the message is user-facing."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise UnsupportedKind("truncated protobuf varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a message: ints for varints, bytes otherwise."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise UnsupportedKind(f"unsupported protobuf wire type {wire}")
    return out


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == "string" and isinstance(value, bytes):
        return value.decode()
    if kind == "bytes" and isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if kind == "rawbytes":
        return value
    if kind == "int" and isinstance(value, int):
        return value
    if kind == "bool" and isinstance(value, int):
        return bool(value)
    if isinstance(value, bytes) and kind in _MESSAGES:
        return _message(kind, value)
    raise UnsupportedKind(f"protobuf field of type {kind} has the wrong wire type")


def _message(name: str, data: bytes) -> JSON:
    schema = _MESSAGES[name]
    out: JSON = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        field, kind = schema[number]
        if kind.startswith("map:"):
            entry = dict(_fields(value if isinstance(value, bytes) else b""))
            key = entry.get(1, b"")
            out.setdefault(field, {})[_scalar("string", key)] = _scalar(kind[4:], entry.get(2, b""))
        elif kind.startswith("[]"):
            out.setdefault(field, []).append(_scalar(kind[2:], value))
        else:
            out[field] = _scalar(kind, value)
    return out


def decode(body: bytes) -> JSON:
    """The JSON form of a `k8s\\0`-framed protobuf object of a supported kind."""
    if not body.startswith(MAGIC):
        raise UnsupportedKind("a Kubernetes protobuf body starts with k8s\\0")
    unknown = _message("Unknown", body[len(MAGIC) :])
    type_meta = unknown.get("typeMeta", {})
    kind, api_version = type_meta.get("kind", ""), type_meta.get("apiVersion", "")
    if kind not in SUPPORTED_KINDS or api_version != "v1":
        raise UnsupportedKind(
            f"this test server reads protobuf only for v1 {', '.join(SUPPORTED_KINDS)}"
        )
    obj = _message(kind, unknown.get("raw", b""))
    return {"apiVersion": api_version, "kind": kind, **obj}
