"""Helpers for the informer, status and leader tests: objects to create and a polling wait on the
event loop's clock (these tests run on looptime's fast-forwarded loop clock, see conftest.py)."""

from __future__ import annotations

from typing import Any

import kube_manifests

from controlplane.testing.apiserver import TestApiServer

GROUP, VERSION = "contour.heptio.com", "v1beta1"

JSON = dict[str, Any]


def crd(plural: str, kind: str, *, status: bool) -> JSON:
    version: JSON = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [version],
        },
    }


def install_crds(server: TestApiServer) -> None:
    server.put_object(crd("ingressroutes", "IngressRoute", status=True))
    server.put_object(crd("tlscertificatedelegations", "TLSCertificateDelegation", status=False))


def namespace(name: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service(name: str, namespace: str = "default", port: int = 80, **extra: Any) -> JSON:
    """A Service with one unnamed port; `extra` replaces top-level fields (`spec`, `status`)."""
    return {**kube_manifests.service(name, namespace, [port]), **extra}


def secret(name: str, namespace: str = "default", **data: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": data,
    }


def ingress_route(name: str, fqdn: str, namespace: str = "default") -> JSON:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "virtualhost": {"fqdn": fqdn},
            "routes": [{"match": "/", "services": [{"name": "s", "port": 80}]}],
        },
    }


def ingress(name: str, namespace: str = "default") -> JSON:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "ingressClassName": "contour",
            "defaultBackend": {"service": {"name": "s", "port": {"number": 80}}},
        },
    }
