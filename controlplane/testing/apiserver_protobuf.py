"""Decode the Kubernetes protobuf encoding of the few kinds `kubectl create` sends that way.

kubectl's typed clients send `application/vnd.kubernetes.protobuf` bodies and client-go does not
fall back to JSON when a server refuses them, so the test server must read them. Measured with
kubectl 1.32 (`-v=8`), these send protobuf: `kubectl create namespace`, `secret
generic|tls|docker-registry`, `configmap` and `serviceaccount` (v1), `kubectl create ingress`
(networking.k8s.io/v1 Ingress), `kubectl create service clusterip|nodeport|loadbalancer|
externalname` (v1 Service), `kubectl auth can-i` (authorization.k8s.io/v1
SelfSubjectAccessReview, or SelfSubjectRulesReview with `--list`) and `kubectl auth whoami`
(authentication.k8s.io/v1 SelfSubjectReview). The answers may be JSON: kubectl accepts either.

The encoding is the magic `k8s\\0` followed by a `runtime.Unknown` whose `raw` field holds the
typed object in the protobuf of k8s.io/api's generated.proto (proto2). We decode the fields
listed below into the object's JSON form; unknown fields are skipped, as protobuf allows, and a
kind with no schema here raises `UnsupportedKind` (the server answers 415).

Go's generated marshallers write every non-pointer field, zero or not (`nodePort: 0`,
`generateName: ""`), where the JSON form omits it (`omitempty`). So a `string`, `int` or `bool`
field that holds its zero value is left out of the JSON, and a pointer field (`*bool`, written
only when set) is kept whatever its value.
"""

from __future__ import annotations

import base64
from typing import Any

JSON = dict[str, Any]
MAGIC = b"k8s\x00"

# field number -> (JSON name, type). Types: "string", "bytes", "int", "bool" (left out when zero),
# "*bool" (a pointer: always kept), a message name, "map:string" / "map:bytes" (map<string,
# string|bytes>), and a "[]" prefix for repeated fields. "inline:NAME" is a message whose fields
# the JSON form lifts into the enclosing object (Go's embedded structs).
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
        5: ("immutable", "*bool"),
    },
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:string"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "*bool"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        3: ("imagePullSecrets", "[]LocalObjectReference"),
        4: ("automountServiceAccountToken", "*bool"),
    },
    # k8s.io/api/core/v1
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec")},
    "ServiceSpec": {
        1: ("ports", "[]ServicePort"),
        2: ("selector", "map:string"),
        3: ("clusterIP", "string"),
        4: ("type", "string"),
        5: ("externalIPs", "[]string"),
        7: ("sessionAffinity", "string"),
        8: ("loadBalancerIP", "string"),
        9: ("loadBalancerSourceRanges", "[]string"),
        10: ("externalName", "string"),
        11: ("externalTrafficPolicy", "string"),
        12: ("healthCheckNodePort", "int"),
        13: ("publishNotReadyAddresses", "bool"),
        18: ("clusterIPs", "[]string"),
        19: ("ipFamilies", "[]string"),
        17: ("ipFamilyPolicy", "string"),
        20: ("allocateLoadBalancerNodePorts", "*bool"),
        21: ("loadBalancerClass", "string"),
        22: ("internalTrafficPolicy", "string"),
    },
    "ServicePort": {
        1: ("name", "string"),
        2: ("protocol", "string"),
        3: ("port", "int"),
        4: ("targetPort", "IntOrString"),
        5: ("nodePort", "int"),
        6: ("appProtocol", "string"),
    },
    "IntOrString": {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "string")},
    "TypedLocalObjectReference": {
        1: ("apiGroup", "string"),
        2: ("kind", "string"),
        3: ("name", "string"),
    },
    # k8s.io/api/networking/v1
    "Ingress": {1: ("metadata", "ObjectMeta"), 2: ("spec", "IngressSpec")},
    "IngressSpec": {
        1: ("defaultBackend", "IngressBackend"),
        2: ("tls", "[]IngressTLS"),
        3: ("rules", "[]IngressRule"),
        4: ("ingressClassName", "string"),
    },
    "IngressBackend": {
        3: ("resource", "TypedLocalObjectReference"),
        4: ("service", "IngressServiceBackend"),
    },
    "IngressServiceBackend": {1: ("name", "string"), 2: ("port", "ServiceBackendPort")},
    "ServiceBackendPort": {1: ("name", "string"), 2: ("number", "int")},
    "IngressTLS": {1: ("hosts", "[]string"), 2: ("secretName", "string")},
    "IngressRule": {1: ("host", "string"), 2: ("", "inline:IngressRuleValue")},
    "IngressRuleValue": {1: ("http", "HTTPIngressRuleValue")},
    "HTTPIngressRuleValue": {1: ("paths", "[]HTTPIngressPath")},
    "HTTPIngressPath": {
        1: ("path", "string"),
        2: ("backend", "IngressBackend"),
        3: ("pathType", "string"),
    },
    # k8s.io/api/authorization/v1 and authentication/v1
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectAccessReviewSpec"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: ("namespace", "string"),
        2: ("verb", "string"),
        3: ("group", "string"),
        4: ("version", "string"),
        5: ("resource", "string"),
        6: ("subresource", "string"),
        7: ("name", "string"),
    },
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SelfSubjectRulesReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectRulesReviewSpec"),
    },
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string")},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta")},
}
SUPPORTED = {
    ("v1", "Namespace"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "Ingress"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"),
}
_ZERO: dict[str, Any] = {"string": "", "int": 0, "bool": False}


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
    if kind == "IntOrString" and isinstance(value, bytes):
        parts = _message(kind, value)
        return parts.get("strVal", "") if parts.get("type") == 1 else parts.get("intVal", 0)
    if kind == "string" and isinstance(value, bytes):
        return value.decode()
    if kind == "bytes" and isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if kind == "rawbytes":
        return value
    if kind == "int" and isinstance(value, int):
        return value
    if kind in ("bool", "*bool") and isinstance(value, int):
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
        if kind.startswith("inline:"):
            out.update(_message(kind[len("inline:") :], value if isinstance(value, bytes) else b""))
        elif kind.startswith("map:"):
            entry = dict(_fields(value if isinstance(value, bytes) else b""))
            key = entry.get(1, b"")
            out.setdefault(field, {})[_scalar("string", key)] = _scalar(kind[4:], entry.get(2, b""))
        elif kind.startswith("[]"):
            out.setdefault(field, []).append(_scalar(kind[2:], value))
        else:
            decoded = _scalar(kind, value)
            if kind not in _ZERO or decoded != _ZERO[kind]:
                out[field] = decoded
    return out


def decode(body: bytes) -> JSON:
    """The JSON form of a `k8s\\0`-framed protobuf object of a supported kind."""
    if not body.startswith(MAGIC):
        raise UnsupportedKind("a Kubernetes protobuf body starts with k8s\\0")
    unknown = _message("Unknown", body[len(MAGIC) :])
    type_meta = unknown.get("typeMeta", {})
    kind, api_version = type_meta.get("kind", ""), type_meta.get("apiVersion", "")
    if (api_version, kind) not in SUPPORTED:
        known = ", ".join(f"{a} {k}" for a, k in sorted(SUPPORTED))
        raise UnsupportedKind(
            f"this test server reads protobuf {api_version} {kind} bodies only for {known}"
        )
    obj = _message(kind, unknown.get("raw", b""))
    return {"apiVersion": api_version, "kind": kind, **obj}
