"""The Kubernetes protobuf bodies kubectl's typed clients send: through the real kubectl
(`create namespace|secret|configmap|serviceaccount|ingress|service`), and the decoder on
hand-encoded bytes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from testapi_support import Kubectl

from controlplane.testing.apiserver_protobuf import UnsupportedKind, decode
from controlplane.testing.certs import self_signed


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


def _varint_field(number: int, value: int) -> bytes:
    key = number << 3
    assert value < 128 and key < 16384
    return (bytes([key]) if key < 128 else bytes([key & 0x7F | 0x80, key >> 7])) + bytes([value])


def test_zero_values_are_left_out_and_pointers_kept() -> None:
    """Go writes every non-pointer field; the JSON form omits the zero ones (`omitempty`)."""
    meta = _field(1, b"web") + _field(2, b"") + _varint_field(7, 0)
    target = _varint_field(1, 1) + _varint_field(2, 0) + _field(3, b"http")
    port = _field(1, b"") + _varint_field(3, 80) + _field(4, target) + _varint_field(5, 0)
    spec = _field(1, port) + _field(3, b"") + _varint_field(13, 0) + _varint_field(20, 0)
    type_meta = _field(1, b"v1") + _field(2, b"Service")
    body = b"k8s\x00" + _field(1, type_meta) + _field(2, _field(1, meta) + _field(2, spec))

    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "ports": [{"port": 80, "targetPort": "http"}],
            "allocateLoadBalancerNodePorts": False,
        },
    }


async def test_kubectl_create_ingress(kubectl: Kubectl) -> None:
    await kubectl("create", "namespace", "demo")

    out = await kubectl(
        "create", "ingress", "web", "-n", "demo", "--class=contour",
        "--rule=foo.com/bar=svc1:8080", "--rule=foo.com/*=svc2:http,tls=foo-tls",
        "--default-backend=fallback:80", "--annotation=team=blue",
    )  # fmt: skip

    assert out.strip() == "ingress.networking.k8s.io/web created"
    ingress = json.loads(await kubectl("get", "ingress", "web", "-n", "demo", "-o", "json"))
    assert ingress["metadata"]["annotations"] == {"team": "blue"}
    assert ingress["spec"] == {
        "ingressClassName": "contour",
        "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
        "tls": [{"hosts": ["foo.com"], "secretName": "foo-tls"}],
        "rules": [
            {
                "host": "foo.com",
                "http": {
                    "paths": [
                        {
                            "path": "/bar",
                            "pathType": "Exact",
                            "backend": {"service": {"name": "svc1", "port": {"number": 8080}}},
                        },
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "svc2", "port": {"name": "http"}}},
                        },
                    ]
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("args", "spec"),
    [
        (
            ["clusterip", "web", "--tcp=80:8080", "--tcp=443:https"],
            {
                "type": "ClusterIP",
                "ports": [
                    {"name": "80-8080", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "443-https", "port": 443, "targetPort": "https", "protocol": "TCP"},
                ],
                "selector": {"app": "web"},
            },
        ),
        (
            ["clusterip", "web", "--clusterip=None"],
            {"type": "ClusterIP", "clusterIP": "None", "selector": {"app": "web"}},
        ),
        (
            ["nodeport", "web", "--tcp=80:8080", "--node-port=30080"],
            {
                "type": "NodePort",
                "ports": [
                    {
                        "name": "80-8080",
                        "port": 80,
                        "targetPort": 8080,
                        "protocol": "TCP",
                        "nodePort": 30080,
                    }
                ],
                "selector": {"app": "web"},
            },
        ),
        (
            ["externalname", "web", "--external-name=db.example.com"],
            {"type": "ExternalName", "externalName": "db.example.com", "selector": {"app": "web"}},
        ),
    ],
)
async def test_kubectl_create_service(
    kubectl: Kubectl, args: list[str], spec: dict[str, object]
) -> None:
    out = await kubectl("create", "service", *args)

    assert out.strip() == "service/web created"
    service = json.loads(await kubectl("get", "service", "web", "-o", "json"))
    got = {k: v for k, v in service["spec"].items() if k not in ("clusterIPs",)}
    if spec.get("clusterIP") != "None" and spec["type"] != "ExternalName":
        assert got.pop("clusterIP").startswith("10.96.")
    assert got == spec


async def test_kubectl_create_secret_tls(kubectl: Kubectl, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    pair = self_signed(["demo.example.com"])
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)

    out = await kubectl("create", "secret", "tls", "demo-tls", f"--cert={cert}", f"--key={key}")

    assert out.strip() == "secret/demo-tls created"
    secret = json.loads(await kubectl("get", "secret", "demo-tls", "-o", "json"))
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == pair.cert_pem
    assert base64.b64decode(secret["data"]["tls.key"]) == pair.key_pem
    assert set(secret["metadata"]) == {
        "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp"
    }  # fmt: skip
