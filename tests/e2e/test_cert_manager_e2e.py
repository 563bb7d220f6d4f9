"""cert-manager's HTTP-01 challenge on an IngressRoute host, through a real Envoy (issue 10).

The IngressRoute owns www.example.com and forces TLS (no `permitInsecure`: plain HTTP is
redirected). cert-manager proves control of the host by creating a solver Ingress for
`/.well-known/acme-challenge/<token>` (no TLS) and having the CA fetch it over plain HTTP. The
solver's path merges into the IngressRoute's host (docs/ingressroute.md, "Ingress paths on an
IngressRoute host") and answers on plain HTTP while everything else still redirects, both before
the first certificate exists (the IngressRoute is invalid then, and serves nothing) and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cluster import ingressroute
from pipeline import Pipeline, endpoint_slice, service

from controlplane.testing.backends import Backend
from controlplane.testing.certs import self_signed, tls_secret

pytestmark = pytest.mark.e2e

WWW = "www.example.com"
TOKEN = "/.well-known/acme-challenge/gVJl5NWL2owUqZekjHkt_bo3OHYC2XNDURRRgLI5JTk"


def solver_ingress() -> dict[str, Any]:
    """The Ingress cert-manager (v1.x) creates for an HTTP-01 challenge with class contour."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "cm-acme-http-solver-x7k2p",
            "namespace": "default",
            "labels": {"acme.cert-manager.io/http01-solver": "true"},
            "annotations": {
                "kubernetes.io/ingress.class": "contour",
                "nginx.ingress.kubernetes.io/whitelist-source-range": "0.0.0.0/0,::/0",
            },
        },
        "spec": {
            "rules": [
                {
                    "host": WWW,
                    "http": {
                        "paths": [
                            {
                                "path": TOKEN,
                                "pathType": "ImplementationSpecific",
                                "backend": {"service": {"name": "solver", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


async def test_the_acme_challenge_answers_on_plain_http_while_the_host_forces_tls(
    tmp_path: Path,
) -> None:
    cert = self_signed([WWW])
    root = ingressroute("www", WWW, [{"match": "/", "services": [{"name": "home", "port": 80}]}])
    root["spec"]["virtualhost"]["tls"] = {"secretName": "www-tls"}
    async with Backend("home") as home, Backend("solver") as solver:
        (tmp_path / "site.yaml").write_text("", encoding="utf-8")
        async with Pipeline(tmp_path) as pipe:
            site = (
                root,
                service("home", home.port),
                endpoint_slice("home", home.port),
                service("solver", solver.port),
                endpoint_slice("solver", solver.port),
                solver_ingress(),
            )
            # The first certificate: the Secret the IngressRoute names does not exist yet.
            pipe.write("site.yaml", *site)
            got = await pipe.eventually(WWW, TOKEN, lambda a: a.backend == "solver")
            assert (got.status, got.body["path"]) == (200, TOKEN)
            assert (await pipe.statuses())[("default", "www")]["currentStatus"] == "invalid"
            assert (await pipe.get(WWW, "/")).status == 404  # the invalid root serves nothing

            # Issued: the IngressRoute serves, forces TLS, and the challenge still answers.
            pipe.write("site.yaml", *site, tls_secret("www-tls", "default", cert))
            redirect = await pipe.eventually(WWW, "/", lambda a: a.status == 301)
            assert redirect.headers["location"] == f"https://{WWW}/"
            got = await pipe.get(WWW, TOKEN)
            assert (got.status, got.backend, got.body["path"]) == (200, "solver", TOKEN)
            # The HTTPS listener (a new filter chain, its secret over SDS) may warm a moment
            # after the plain routes changed.
            secure = await pipe.eventually(WWW, "/", lambda a: a.ok, https=True, ca=cert.cert_pem)
            assert (secure.status, secure.backend) == (200, "home")
            secure = await pipe.get(WWW, TOKEN, https=True, ca=cert.cert_pem)
            assert (secure.status, secure.backend) == (200, "solver")

            # The challenge is over: cert-manager deletes its Ingress; the path redirects too.
            pipe.write("site.yaml", *site[:-1], tls_secret("www-tls", "default", cert))
            gone = await pipe.eventually(WWW, TOKEN, lambda a: a.status == 301)
            assert gone.headers["location"] == f"https://{WWW}{TOKEN}"
