"""Old Ingress API versions in files are converted to networking.k8s.io/v1 as the API server
did, and served; objects of kinds we do not read are reported, never dropped silently."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import kube_manifests
import pytest
import structlog
import yaml
from structlog.testing import capture_logs

from controlplane.cli import main
from controlplane.model import Ingress, parse_object
from controlplane.model.convert import upgrade
from controlplane.offline import translate_manifests
from controlplane.sources import FileSource
from controlplane.store import Store

OLD = {
    "apiVersion": "extensions/v1beta1",
    "kind": "Ingress",
    "metadata": {"name": "old", "namespace": "default"},
    "spec": {
        "backend": {"serviceName": "web", "servicePort": 80},
        "rules": [
            {
                "host": "old.example.com",
                "http": {
                    "paths": [
                        {"path": "/api", "backend": {"serviceName": "api", "servicePort": "http"}},
                        {"path": "/", "backend": {"serviceName": "web", "servicePort": "8080"}},
                    ]
                },
            }
        ],
    },
}


@pytest.mark.parametrize("version", ["extensions/v1beta1", "networking.k8s.io/v1beta1"])
def test_old_ingress_versions_convert_as_the_api_server_did(version: str) -> None:
    ingress = parse_object({**OLD, "apiVersion": version})
    assert isinstance(ingress, Ingress)
    default = ingress.spec.default_backend
    assert default is not None and default.service is not None
    assert (default.service.name, default.service.port.number) == ("web", 80)
    paths = ingress.spec.rules[0].http.paths  # type: ignore[union-attr]
    assert [p.path_type for p in paths] == ["ImplementationSpecific"] * 2
    ports = [(p.backend.service.name, p.backend.service.port) for p in paths]  # type: ignore[union-attr]
    assert [(n, port.number, port.name) for n, port in ports] == [
        ("api", None, "http"),
        ("web", 8080, None),
    ]


def test_conversion_never_touches_the_input_or_other_kinds() -> None:
    before = yaml.safe_dump(OLD)
    upgrade(OLD)
    assert yaml.safe_dump(OLD) == before
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    assert upgrade(service) is service


def _write(tmp_path: Path, *documents: dict[str, Any]) -> None:
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")


def test_translate_serves_an_old_ingress_and_reports_what_it_does_not_read(
    tmp_path: Path,
) -> None:
    services = [
        kube_manifests.service("web", ports=[("http", 80), ("alt", 8080)]),
        kube_manifests.service("api", ports=[("http", 80)]),
    ]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
    }
    _write(tmp_path, *services, OLD, deployment)
    result = translate_manifests([tmp_path])
    [http] = [r for r in result["routes"] if r["name"] == "ingress_http"]
    [host] = [h for h in http["virtual_hosts"] if h["name"] == "old.example.com"]
    assert len(host["routes"]) == 2  # /api to api:http, / to web:8080
    assert not [p for p in result["problems"] if p["kind"] == "Ingress"]
    [unread] = [p for p in result["problems"] if p["kind"] == "Deployment"]
    assert unread["name"] == "web"
    assert unread["reason"].startswith("apps/v1/Deployment is not read by this controller")


def test_the_file_source_serves_old_ingresses_and_logs_what_it_does_not_read(
    tmp_path: Path,
) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    _write(tmp_path, kube_manifests.service("web"), OLD, deployment)
    store = Store()
    # Another test may have configured a level that drops info events; this one reads them.
    configured = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            FileSource(tmp_path, store).load_all()
    finally:
        structlog.configure(**configured)
    assert store.get("Ingress", "default", "old") is not None
    [event] = [e for e in logs if e["event"] == "files.object_not_read"]
    assert (event["api_version"], event["kind"], event["name"]) == ("apps/v1", "Deployment", "web")


def test_objects_written_by_kubectl_create_dry_run_parse() -> None:
    """`kubectl create ingress … --dry-run=client -o yaml` writes `creationTimestamp: null` and
    `status: {loadBalancer: {}}`; such objects are read, not skipped."""
    written = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"creationTimestamp": None, "name": "web", "namespace": "default"},
        "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [{"path": "/",
                 "pathType": "Prefix", "backend": {"service": {"name": "web",
                 "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {}},
    }  # fmt: skip
    ingress = parse_object(written)
    assert isinstance(ingress, Ingress)
    assert ingress.metadata.creation_timestamp is None


def test_translate_trims_root_namespaces_as_serve_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "www", "namespace": "platform"},
        "spec": {"virtualhost": {"fqdn": "www.example.com"}, "routes": []},
    }
    _write(tmp_path, root)
    assert main(["translate", "-f", str(tmp_path), "--root-namespaces", " platform , x"]) == 0
    printed = json.loads(capsys.readouterr().out)
    [status] = printed["status"]
    assert "cannot be defined in this namespace" not in status["description"]
