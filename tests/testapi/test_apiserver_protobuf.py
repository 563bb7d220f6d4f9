"""The Kubernetes protobuf bodies kubectl's typed clients send: through the real kubectl, and
the decoder on hand-encoded bytes."""

from __future__ import annotations

import base64
import json

import pytest
from testapi_support import Kubectl

from controlplane.testing.apiserver_protobuf import UnsupportedKind, decode


def _field(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def _entry(number: int, key: str, value: bytes) -> bytes:
    return _field(number, _field(1, key.encode()) + _field(2, value))


def test_decode_a_secret() -> None:
    meta = _field(1, b"s") + _field(3, b"ns") + _entry(11, "app", b"web")
    secret = _field(1, meta) + _entry(2, "tls.crt", b"\x00\x01") + _field(3, b"kubernetes.io/tls")
    type_meta = _field(1, b"v1") + _field(2, b"Secret")
    body = b"k8s\x00" + _field(1, type_meta) + _field(2, secret)

    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns", "labels": {"app": "web"}},
        "data": {"tls.crt": base64.b64encode(b"\x00\x01").decode()},
        "type": "kubernetes.io/tls",
    }


def test_unsupported_kinds_are_refused() -> None:
    body = b"k8s\x00" + _field(1, _field(1, b"apps/v1") + _field(2, b"Deployment"))
    with pytest.raises(UnsupportedKind):
        decode(body)
    with pytest.raises(UnsupportedKind):
        decode(b"{}")


async def test_kubectl_create_commands(kubectl: Kubectl) -> None:
    await kubectl("create", "namespace", "demo")
    await kubectl("create", "secret", "generic", "creds", "-n", "demo", "--from-literal=user=me")
    await kubectl("create", "configmap", "conf", "-n", "demo", "--from-literal=k=v")
    await kubectl("create", "serviceaccount", "bot", "-n", "demo")

    secret = json.loads(await kubectl("get", "secret", "creds", "-n", "demo", "-o", "json"))
    conf = json.loads(await kubectl("get", "configmap", "conf", "-n", "demo", "-o", "json"))
    assert secret["type"] == "Opaque" and base64.b64decode(secret["data"]["user"]) == b"me"
    assert conf["data"] == {"k": "v"}
    assert "bot" in await kubectl("get", "sa", "-n", "demo", "-o", "name")
