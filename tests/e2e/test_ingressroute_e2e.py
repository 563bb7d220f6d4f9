"""Issue 3 end to end: IngressRoutes through a real Envoy, as the teams using them see it."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cluster import ingressroute, namespace
from pipeline import Pipeline, endpoint_slice, service

from controlplane.testing.backends import Backend
from controlplane.testing.certs import self_signed, tls_secret, write_cert_key

pytestmark = pytest.mark.e2e


def to(name: str, weight: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "port": 80}
    if weight is not None:
        entry["weight"] = weight
    return entry


def with_tls(obj: dict[str, Any], secret: str, **tls: Any) -> dict[str, Any]:
    obj["spec"]["virtualhost"]["tls"] = {"secretName": secret, **tls}
    return obj


async def test_delegation_rewrite_redirect_and_sni_across_team_namespaces(tmp_path: Path) -> None:
    cert = self_signed(["www.example.com"])
    async with Backend("home") as home, Backend("blog") as blog:
        (tmp_path / "teams.yaml").write_text("", encoding="utf-8")
        async with Pipeline(tmp_path) as pipe:
            root = ingressroute(
                "www",
                "www.example.com",
                [
                    {"match": "/", "services": [to("home")]},
                    {"match": "/.well-known", "permitInsecure": True, "services": [to("home")]},
                    {"match": "/blog", "delegate": {"name": "blog", "namespace": "blog"}},
                ],
                namespace="platform",
            )
            child = ingressroute(
                "blog",
                None,
                [{"match": "/blog", "prefixRewrite": "/", "services": [to("blog")]}],
                namespace="blog",
            )
            pipe.write(
                "teams.yaml",
                namespace("platform"),
                namespace("blog"),
                tls_secret("www-tls", "platform", cert),
                with_tls(root, "www-tls"),
                service("home", home.port, namespace="platform"),
                endpoint_slice("home", home.port, namespace="platform"),
                child,
                service("blog", blog.port, namespace="blog"),
                endpoint_slice("blog", blog.port, namespace="blog"),
            )
            # The child team's backend serves under the platform team's host, over TLS (SNI).
            answer = await pipe.eventually(
                "www.example.com",
                "/blog/2024/hello?x=1",
                lambda a: a.backend == "blog",
                https=True,
                ca=cert.cert_pem,
            )
            # Prefix rewrite as the backend sees it, segment-wise, original path kept.
            assert answer.body["path"] == "/2024/hello?x=1"
            assert answer.body["headers"]["x-envoy-original-path"] == "/blog/2024/hello?x=1"
            # As Contour: when Envoy took the request, in seconds with milliseconds.
            assert re.fullmatch(r"t=\d{10}\.\d{3}", answer.body["headers"]["x-request-start"])
            for path, seen in (("/blog", "/"), ("/blog/", "/")):
                got = await pipe.get("www.example.com", path, https=True, ca=cert.cert_pem)
                assert (got.backend, got.body["path"]) == ("blog", seen)
            # Segments, not strings: /blogroll is not under /blog.
            got = await pipe.get("www.example.com", "/blogroll", https=True, ca=cert.cert_pem)
            assert got.backend == "home"
            # Plain HTTP: redirected, except the route that permits it.
            redirect = await pipe.get("www.example.com", "/blog/x")
            assert redirect.status == 301
            assert redirect.headers["location"] == "https://www.example.com/blog/x"
            insecure = await pipe.get("www.example.com", "/.well-known/acme-challenge/t")
            assert (insecure.status, insecure.backend) == (200, "home")


async def test_tls_passthrough_reaches_a_tls_backend_by_sni(tmp_path: Path) -> None:
    backend_cert = self_signed(["secure.example.com"])
    crt, key = write_cert_key(backend_cert, tmp_path / "certs")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    async with (
        Backend("tls-backend", tls_cert=crt, tls_key=key) as secure,
        Pipeline(manifests) as pipe,
    ):
        root = ingressroute("secure", "secure.example.com", [])
        root["spec"]["virtualhost"]["tls"] = {"passthrough": True}
        root["spec"]["tcpproxy"] = {"services": [to("secure")]}
        pipe.write(
            "passthrough.yaml",
            root,
            service("secure", secure.port),
            endpoint_slice("secure", secure.port),
        )
        # The client sees the backend's own certificate: Envoy did not terminate TLS.
        answer = await pipe.eventually(
            "secure.example.com",
            "/hello",
            lambda a: a.backend == "tls-backend",
            https=True,
            ca=backend_cert.cert_pem,
        )
        assert answer.body["tls"] is True
        assert answer.body["path"] == "/hello"


async def test_weighted_split_is_within_ten_percent_over_a_thousand_requests(
    tmp_path: Path,
) -> None:
    async with Backend("a") as a, Backend("b") as b:
        (tmp_path / "split.yaml").write_text("", encoding="utf-8")
        async with Pipeline(tmp_path) as pipe:
            pipe.write(
                "split.yaml",
                ingressroute("split", "split.example.com", [
                    {"match": "/", "services": [to("a", 30), to("b", 70)]}]),
                service("a", a.port),
                endpoint_slice("a", a.port),
                service("b", b.port),
                endpoint_slice("b", b.port),
            )  # fmt: skip
            await pipe.eventually("split.example.com", "/", lambda x: x.backend == "b")
            await pipe.eventually("split.example.com", "/", lambda x: x.backend == "a")
            counts: Counter[str | None] = Counter()
            for _ in range(20):
                answers = await asyncio.gather(
                    *(pipe.get("split.example.com", "/") for _ in range(50))
                )
                counts.update(answer.backend for answer in answers)
            assert sum(counts.values()) == 1000
            assert 200 <= counts["a"] <= 400, counts  # 30% ± 10 points
            assert 600 <= counts["b"] <= 800, counts
