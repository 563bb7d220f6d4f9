"""Manifest builders and DAG summaries shared by the IngressRoute DAG tests.

Objects are written as the manifests users apply (camelCase dicts) and parsed with
`parse_object`, so the tests go through the same model the controller uses. Summaries turn a DAG
into short strings (`"/foo -> default/home:80"`) so a table row can state its expected hosts.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from functools import cache
from typing import Any

import kube_manifests
from dag_support import build_every_way

from controlplane.dag.options import BuildOptions
from controlplane.dag.types import DAG, Route, WeightedCluster
from controlplane.model import ObjectSet, parse_object
from controlplane.testing import certs

JSON = dict[str, Any]
CREATED = "2024-01-01T00:00:00Z"


@cache
def _pair() -> certs.CertKey:
    return certs.self_signed(["www.example.com"])


@cache
def _ca() -> certs.CertKey:
    return certs.make_ca()


def ingressroute(
    name: str,
    namespace: str = "default",
    *,
    fqdn: str | None = None,
    tls: JSON | None = None,
    routes: Iterable[JSON] = (),
    tcpproxy: JSON | None = None,
    annotations: dict[str, str] | None = None,
    created: str = CREATED,
    generation: int = 1,
) -> JSON:
    spec: JSON = {}
    if fqdn is not None or tls is not None:
        spec["virtualhost"] = {"fqdn": fqdn} if fqdn is not None else {}
        if tls is not None:
            spec["virtualhost"]["tls"] = tls
    routes = list(routes)
    if routes:
        spec["routes"] = routes
    if tcpproxy is not None:
        spec["tcpproxy"] = tcpproxy
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": generation,
            "creationTimestamp": created,
            "annotations": annotations or {},
        },
        "spec": spec,
    }


def route(match: str, *services: JSON, delegate: JSON | None = None, **extra: Any) -> JSON:
    body: JSON = {"match": match, **extra}
    if services:
        body["services"] = list(services)
    if delegate is not None:
        body["delegate"] = delegate
    return body


def to(name: str, port: int = 80, **extra: Any) -> JSON:
    """A `services[]` entry."""
    return {"name": name, "port": port, **extra}


def delegate(name: str, namespace: str | None = None) -> JSON:
    return {"name": name} if namespace is None else {"name": name, "namespace": namespace}


def service(
    name: str,
    namespace: str = "default",
    ports: Iterable[int] = (80,),
    *,
    annotations: dict[str, str] | None = None,
    external_name: str | None = None,
) -> JSON:
    return kube_manifests.service(
        name,
        namespace,
        [(f"p{port}", port) for port in ports],
        annotations=annotations or {},
        external_name=external_name,
    )


def tls_secret(name: str, namespace: str = "default") -> JSON:
    return certs.tls_secret(name, namespace, _pair())


def malformed_secret(name: str, namespace: str = "default") -> JSON:
    junk = base64.b64encode(b"not a certificate").decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": junk, "tls.key": junk},
    }


def mismatched_secret(name: str, namespace: str = "default") -> JSON:
    """A TLS Secret whose key belongs to another certificate (Envoy refuses the pair)."""
    other = certs.self_signed(["other.example.com"])
    return certs.tls_secret(name, namespace, certs.CertKey(_pair().cert_pem, other.key_pem))


def ca_secret(name: str, namespace: str = "default") -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"ca.crt": base64.b64encode(_ca().cert_pem).decode()},
    }


def ca_bundle() -> bytes:
    return _ca().cert_pem


def certificate_delegation(name: str, namespace: str, secret: str, targets: Iterable[str]) -> JSON:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "TLSCertificateDelegation",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"delegations": [{"secretName": secret, "targetNamespaces": list(targets)}]},
    }


def build(manifests: Iterable[JSON], options: BuildOptions | None = None) -> DAG:
    objects = ObjectSet.from_objects(parse_object(raw) for raw in manifests)
    return build_every_way(objects, options or BuildOptions())


def describe_cluster(weighted: WeightedCluster, with_weight: bool) -> str:
    cluster = weighted.cluster
    text = f"{cluster.namespace}/{cluster.service}:{cluster.port}"
    return f"{text}={weighted.weight}" if with_weight else text


def describe_route(route: Route) -> str:
    if route.https_redirect:
        return f"{route.match.value} -> https"
    many = len(route.clusters) > 1
    return f"{route.match.value} -> " + ", ".join(
        describe_cluster(weighted, many) for weighted in route.clusters
    )


def http_hosts(dag: DAG) -> dict[str, list[str]]:
    return {host.fqdn: [describe_route(r) for r in host.routes] for host in dag.virtual_hosts}


def https_hosts(dag: DAG) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for host in dag.secure_virtual_hosts:
        if host.secret is None:
            head = "passthrough"
        else:
            head = (
                f"secret {host.secret.namespace}/{host.secret.name} tls{host.minimum_tls_version}"
            )
        lines = [head, *(describe_route(r) for r in host.routes)]
        if host.tcp_proxy is not None:
            many = len(host.tcp_proxy.clusters) > 1
            lines.append(
                "tcp -> " + ", ".join(describe_cluster(w, many) for w in host.tcp_proxy.clusters)
            )
        found[host.fqdn] = lines
    return found


def statuses(dag: DAG) -> dict[str, tuple[str, str]]:
    return {
        f"{s.namespace}/{s.name}": (s.current_status.value, s.description) for s in dag.statuses
    }
