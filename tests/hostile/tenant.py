"""The good tenant every hostile set is thrown at, and what no other tenant can touch of it.

Namespace `good` holds a root IngressRoute for good.example.com (TLS from a valid Secret, `/` to
Service web, `/blog` delegated to IngressRoute blog), the delegate (Service blog, with a health
check, a timeout and retries), each Service with a normal EndpointSlice, and an Ingress for
shop.good.example.com. Everything is older than anything hostile (created in 2000), so the
root owns its fqdn.

What a hostile object never is, because no other tenant can create it: one of these objects
(same kind, namespace and name), or endpoints of these Services (an EndpointSlice or Endpoints in
namespace `good` for web or blog). `collides_with_good_tenant` says which objects are.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from controlplane.testing import certs

JSON = dict[str, Any]

GOOD_NAMESPACE = "good"
GOOD_FQDN = "good.example.com"
GOOD_INGRESS_HOST = "shop.good.example.com"
GOOD_CREATED = "2000-01-01T00:00:00Z"
GOOD_SERVICES = ("web", "blog")
CONTOUR = "contour.heptio.com/v1beta1"


@cache
def good_pair() -> certs.CertKey:
    return certs.self_signed([GOOD_FQDN])


def good_tenant() -> list[JSON]:
    """Namespace `good`: a root IngressRoute for good.example.com with TLS from a valid Secret,
    `/` to Service web and `/blog` delegated to IngressRoute blog (Service blog, with a health
    check, a timeout and retries), each Service with a normal EndpointSlice, and an Ingress for
    shop.good.example.com. Everything is older than anything hostile."""
    meta = {"namespace": GOOD_NAMESPACE, "creationTimestamp": GOOD_CREATED, "generation": 1}
    secret = certs.tls_secret("tls", GOOD_NAMESPACE, good_pair())
    secret["metadata"].update(meta)
    objects: list[JSON] = [secret]
    for index, name in enumerate(GOOD_SERVICES):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, **meta},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            }
        )
        objects.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-abcde",
                    **meta,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": [f"10.1.{index}.{n}"], "conditions": {"ready": True}}
                    for n in (1, 2)
                ],
            }
        )
    objects += [
        {
            "apiVersion": CONTOUR,
            "kind": "IngressRoute",
            "metadata": {"name": "root", **meta},
            "spec": {
                "virtualhost": {"fqdn": GOOD_FQDN, "tls": {"secretName": "tls"}},
                "routes": [
                    {"match": "/", "services": [{"name": "web", "port": 80}]},
                    {"match": "/blog", "delegate": {"name": "blog"}},
                ],
            },
        },
        {
            "apiVersion": CONTOUR,
            "kind": "IngressRoute",
            "metadata": {"name": "blog", **meta},
            "spec": {
                "routes": [
                    {
                        "match": "/blog",
                        "services": [
                            {"name": "blog", "port": 80, "healthCheck": {"path": "/healthz"}}
                        ],
                        "timeoutPolicy": {"request": "30s"},
                        "retryPolicy": {"count": 2, "perTryTimeout": "5s"},
                    }
                ]
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "shop", **meta},
            "spec": {
                "rules": [
                    {
                        "host": GOOD_INGRESS_HOST,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
    ]
    return objects


def _key(raw: JSON) -> tuple[str, str, str] | None:
    metadata = raw.get("metadata")
    if not isinstance(metadata, dict):
        return None
    namespace = metadata.get("namespace") or "default"
    return (str(raw.get("kind")), str(namespace), str(metadata.get("name")))


@cache
def _good_keys() -> frozenset[tuple[str, str, str] | None]:
    return frozenset(_key(raw) for raw in good_tenant())


def collides_with_good_tenant(raw: JSON) -> bool:
    """Whether `raw` is something no other tenant can create: one of the good tenant's own
    objects, endpoints of its Services (which only its namespace holds), or an Ingress in its
    namespace (which may add paths to its host by design: docs/security.md, cert-manager's
    HTTP-01 solver)."""
    key = _key(raw)
    if key is None:
        return False
    kind, namespace, name = key
    if key in _good_keys():
        return True
    if namespace != GOOD_NAMESPACE:
        return False
    if kind == "Ingress":
        return True
    if kind == "Endpoints":
        return name in GOOD_SERVICES
    if kind == "EndpointSlice":
        labels = raw["metadata"].get("labels")
        return isinstance(labels, dict) and labels.get("kubernetes.io/service-name") in (
            *GOOD_SERVICES,
        )
    return False
