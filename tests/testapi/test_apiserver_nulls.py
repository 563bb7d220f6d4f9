"""Manifests written by `kubectl create --dry-run=client -o yaml` carry `creationTimestamp: null`
(and `status: {loadBalancer: {}}`): every way of writing them to the test API server stores the
server's own timestamp, and `null` fields anywhere are as good as absent, as on a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from testapi_support import FIXTURES, Kubectl

from controlplane.testing.apiserver import TestApiServer
from controlplane.testing.certs import self_signed

ROUTE = {
    "apiVersion": "contour.heptio.com/v1beta1",
    "kind": "IngressRoute",
    "metadata": {"name": "root", "namespace": "default", "creationTimestamp": None},
    "spec": {"virtualhost": {"fqdn": "demo.example.com"}, "routes": [{"match": "/"}]},
}


async def _dry_run_manifests(kubectl: Kubectl, directory: Path) -> Path:
    """What a user pipes from `kubectl create ... --dry-run=client -o yaml` into a file."""
    pair = self_signed(["demo.example.com"])
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    commands = [
        ["ingress", "web", "--rule=demo.example.com/=web:80"],
        ["service", "clusterip", "web", "--tcp=80:8080"],
        ["secret", "tls", "web-tls", f"--cert={cert}", f"--key={key}"],
        ["configmap", "settings", "--from-literal=a=b"],
    ]
    documents = [
        await kubectl("create", *args, "--dry-run=client", "-o", "yaml") for args in commands
    ]
    documents.append(yaml.safe_dump(ROUTE))
    path = directory / "dry-run.yaml"
    path.write_text("---\n".join(documents))
    assert path.read_text().count("creationTimestamp: null") == 5
    return path


def _stored(server: TestApiServer) -> dict[str, dict[str, Any]]:
    return {
        kind: server.get_object(api_version, kind, name, "default")["metadata"]
        for api_version, kind, name in (
            ("networking.k8s.io/v1", "Ingress", "web"),
            ("v1", "Service", "web"),
            ("v1", "Secret", "web-tls"),
            ("v1", "ConfigMap", "settings"),
            ("contour.heptio.com/v1beta1", "IngressRoute", "root"),
        )
    }


@pytest.mark.parametrize(
    "verbs",
    [
        [["create"]],
        [["apply"]],
        [["apply", "--server-side"]],
        [["create"], ["replace"]],
        [["apply"], ["apply"]],
        [["create", "--dry-run=server"], ["create"]],
    ],
    ids=lambda verbs: " then ".join(" ".join(v) for v in verbs),
)
async def test_dry_run_manifests_are_stored_with_the_servers_timestamp(
    kubectl: Kubectl, server: TestApiServer, tmp_path: Path, verbs: list[list[str]]
) -> None:
    await kubectl("apply", "-f", str(FIXTURES / "crds.yaml"))
    manifests = await _dry_run_manifests(kubectl, tmp_path)

    for verb in verbs:
        await kubectl(*verb, "-f", str(manifests))

    for kind, meta in _stored(server).items():
        assert meta["creationTimestamp"] == "2026-01-01T00:00:00Z", kind
    listed = json.loads(await kubectl("get", "ingress,service,secret,configmap", "-o", "json"))
    assert all(i["metadata"]["creationTimestamp"] for i in listed["items"])


async def test_null_fields_are_as_good_as_absent(server: TestApiServer) -> None:
    base = f"{server.url}/api/v1/namespaces/default/services"
    created_body = {"metadata": {"name": "web", "labels": None, "creationTimestamp": None}}
    async with aiohttp.ClientSession() as http:
        async with http.post(base, json={**created_body, "spec": None, "status": None}) as r:
            created = (r.status, await r.json())
        replace = {"metadata": {"name": "web", "creationTimestamp": None}, "spec": {"ports": None}}
        async with http.put(f"{base}/web", json=replace) as r:
            replaced = (r.status, await r.json())
        patch = {"metadata": {"creationTimestamp": None, "annotations": {"a": "b"}}}
        headers = {"Content-Type": "application/merge-patch+json"}
        async with http.patch(f"{base}/web", data=json.dumps(patch), headers=headers) as r:
            patched = (r.status, await r.json())

    assert created[0] == 201 and replaced[0] == 200 and patched[0] == 200
    assert created[1]["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert "labels" not in created[1]["metadata"]
    assert created[1]["spec"]["type"] == "ClusterIP"
    assert "ports" not in replaced[1]["spec"]
    assert replaced[1]["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert patched[1]["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert patched[1]["metadata"]["annotations"] == {"a": "b"}
