"""Issue 9 end to end: the hostile inputs of the issue's table beside a good tenant, real Envoy.

Every row of the table sits in its own namespace next to the good tenant (`good`: an
IngressRoute root with TLS, its Service and endpoints). The controller starts with all of them,
then a new Envoy connects: it must go live, route the good tenant over HTTP and HTTPS, apply a
later edit of the good tenant, and never reject an update (`update_rejected` stays 0). The
hostile objects' statuses say what is wrong with them.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cluster import ingressroute
from pipeline import Pipeline, endpoint_slice, service

from controlplane.testing.backends import Backend
from controlplane.testing.certs import self_signed, tls_secret

pytestmark = pytest.mark.e2e

GOOD = "good.example.com"
OLD = "2020-01-01T00:00:00Z"


def to(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "port": 80, **extra}


def root(name: str, namespace: str, fqdn: str, routes: list[Any], **spec: Any) -> dict[str, Any]:
    manifest = ingressroute(name, fqdn, routes, namespace=namespace)
    manifest["spec"].update(spec)
    return manifest


def mismatched_secret(name: str, namespace: str) -> dict[str, Any]:
    secret = tls_secret(name, namespace, self_signed(["x.example.com"]))
    other = self_signed(["y.example.com"])
    secret["data"]["tls.key"] = base64.b64encode(other.key_pem).decode()
    return secret


def hostile(port: int) -> list[dict[str, Any]]:
    """One namespace per row of the issue's table (and the three ownership holes)."""
    bad_breakers = service("svc", port, namespace="breakers")
    bad_breakers["metadata"]["annotations"] = {"contour.heptio.com/max-connections": "4294967296"}
    squatter_ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "squat", "namespace": "squat"},
        "spec": {
            "tls": [{"hosts": [GOOD], "secretName": "tls"}],
            "rules": [{"host": GOOD, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "svc", "port": {"number": 80}}}}]}}],
        },
    }  # fmt: skip
    return [
        bad_breakers,
        endpoint_slice("svc", port, namespace="breakers"),
        root("r", "breakers", "breakers.example.com", [{"match": "/", "services": [to("svc")]}]),
        service("svc", port, namespace="rewrite"),
        root(
            "r",
            "rewrite",
            "rewrite.example.com",
            [{"match": "/", "prefixRewrite": "/x\ny", "services": [to("svc")]}],
        ),
        service("svc", port, namespace="health"),
        root(
            "r",
            "health",
            "health.example.com",
            [{"match": "/", "services": [to("svc", healthCheck={"path": "/h\nx"})]}],
        ),
        service("svc", port, namespace="tcp"),
        service("svc2", port, namespace="tcp"),
        tls_secret("tls", "tcp", self_signed(["tcp.example.com"])),
        root(
            "r",
            "tcp",
            "tcp.example.com",
            [],
            virtualhost={"fqdn": "tcp.example.com", "tls": {"secretName": "tls"}},
            tcpproxy={"services": [to("svc", weight=3), to("svc2")]},
        ),
        service("svc", port, namespace="slices"),
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "svc-bad",
                "namespace": "slices",
                "labels": {"kubernetes.io/service-name": "svc"},
            },
            "addressType": "FQDN",
            "ports": [{"name": "http", "port": 70000}],
            "endpoints": [{"addresses": ["evil.example.com"]}],
        },
        root("r", "slices", "slices.example.com", [{"match": "/", "services": [to("svc")]}]),
        service("svc", port, namespace="keys"),
        mismatched_secret("tls", "keys"),
        root(
            "r",
            "keys",
            "keys.example.com",
            [{"match": "/", "services": [to("svc")]}],
            virtualhost={"fqdn": "keys.example.com", "tls": {"secretName": "tls"}},
        ),
        service("svc", port, namespace="match"),
        root(
            "r",
            "match",
            "match.example.com",
            [{"match": "/a b\t\r\n\x00", "services": [to("svc")]}],
        ),
        # Ownership: an Ingress in another namespace with TLS for the good host, and a later
        # root claiming the good fqdn.
        service("svc", port, namespace="squat"),
        tls_secret("tls", "squat", self_signed([GOOD])),
        squatter_ingress,
        root("late", "squat", GOOD, [{"match": "/", "services": [to("svc")]}]),
    ]


def good(home: int, cert: Any) -> list[dict[str, Any]]:
    www = root("www", "good", GOOD, [{"match": "/", "services": [to("home")]}],
               virtualhost={"fqdn": GOOD, "tls": {"secretName": "tls"}})  # fmt: skip
    www["metadata"]["creationTimestamp"] = OLD
    return [
        tls_secret("tls", "good", cert),
        service("home", home, namespace="good"),
        endpoint_slice("home", home, namespace="good"),
        www,
    ]


async def test_a_new_envoy_serves_the_good_tenant_beside_every_hostile_input(
    tmp_path: Path,
) -> None:
    cert = self_signed([GOOD])
    async with Backend("home") as home, Backend("other") as other, Backend("evil") as evil:
        (tmp_path / "good.yaml").write_text("", encoding="utf-8")
        pipe = Pipeline(tmp_path)
        pipe.write("good.yaml", *good(home.port, cert))
        pipe.write("hostile.yaml", *hostile(evil.port))
        async with pipe:
            # Plain HTTP is redirected (TLS host); HTTPS lands on the good backend, its
            # certificate verified as the good one (never the squatter's).
            await pipe.eventually(GOOD, "/", lambda a: a.status == 301)
            await pipe.eventually(
                GOOD, "/", lambda a: a.backend == "home", https=True, ca=cert.cert_pem
            )

            # The good tenant's edit still applies.
            edited = good(other.port, cert)
            edited[1] = service("home", other.port, namespace="good")
            edited[2] = endpoint_slice("home", other.port, namespace="good")
            pipe.write("good.yaml", *edited)
            await pipe.eventually(
                GOOD, "/", lambda a: a.backend == "other", https=True, ca=cert.cert_pem
            )

            assert pipe.envoy is not None
            stats = await pipe.envoy.stats()
            rejected = {k: v for k, v in stats.items() if "update_rejected" in k}
            assert rejected and all(v == 0 for v in rejected.values()), rejected

            statuses = await pipe.statuses()
            assert statuses[("good", "www")]["currentStatus"] == "valid"
            for namespace, fragment in [
                ("rewrite", "prefixRewrite"),
                ("health", "healthCheck.path"),
                ("keys", "the private key does not match the certificate"),
                ("match", "must be a URL path"),
                ("squat", f'fqdn "{GOOD}" is already used by IngressRoute good/www'),
            ]:
                name = "late" if namespace == "squat" else "r"
                status = statuses[(namespace, name)]
                assert status["currentStatus"] == "invalid", (namespace, status)
                assert fragment in status["description"], (namespace, status)
            assert statuses[("breakers", "r")]["currentStatus"] == "valid"
            assert statuses[("tcp", "r")]["currentStatus"] == "valid"
