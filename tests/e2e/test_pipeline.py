"""Issue 2 end to end: manifests → controller → a real Envoy → where requests land."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pipeline import Answer, Pipeline, endpoint_slice, ingress, service

from controlplane.testing.backends import Backend
from controlplane.testing.certs import self_signed, tls_secret

pytestmark = pytest.mark.e2e


def landed(name: str) -> object:
    return lambda answer: answer.status == 200 and answer.backend == name


def apps(kuard: Backend, echo: Backend, *ingresses: dict[str, Any]) -> list[dict[str, Any]]:
    """Both backends as Services with their endpoints, plus the given Ingresses."""
    return [
        service("kuard", kuard.port),
        endpoint_slice("kuard", kuard.port),
        service("echo", echo.port),
        endpoint_slice("echo", echo.port),
        *ingresses,
    ]


@pytest.fixture
async def backends() -> AsyncIterator[tuple[Backend, Backend]]:
    async with Backend("kuard") as kuard, Backend("echo") as echo:
        yield kuard, echo


async def test_requests_reach_the_backend_by_host_and_path_and_follow_file_edits(
    tmp_path: Path, backends: tuple[Backend, Backend]
) -> None:
    kuard, echo = backends
    (tmp_path / "apps.yaml").write_text("", encoding="utf-8")
    async with Pipeline(tmp_path) as pipe:
        pipe.write(
            "apps.yaml",
            *apps(
                kuard,
                echo,
                ingress("kuard", "kuard.local", [("/", "Prefix", "kuard")]),
                ingress(
                    "echo", "echo.local", [("/api", "Prefix", "echo"), ("/", "Prefix", "kuard")]
                ),
            ),
        )
        await pipe.eventually("kuard.local", "/", landed("kuard"))
        answer = await pipe.eventually("echo.local", "/api/users?x=1", landed("echo"))
        assert answer.body["path"] == "/api/users?x=1"
        # Prefix is segment-aware: /apix is not under /api.
        assert (await pipe.get("echo.local", "/apix")).backend == "kuard"
        assert (await pipe.get("kuard.local:8080", "/")).backend == "kuard"  # port in Host
        assert (await pipe.get("unknown.local", "/")).status == 404

        # Edit the manifest: kuard.local now goes to echo, with no restart.
        pipe.write(
            "apps.yaml",
            *apps(kuard, echo, ingress("kuard", "kuard.local", [("/", "Prefix", "echo")])),
        )
        await pipe.eventually("kuard.local", "/", landed("echo"))
        await pipe.eventually("echo.local", "/api", lambda a: a.status == 404)


async def test_removing_the_endpoint_removes_it_from_envoy(
    tmp_path: Path, backends: tuple[Backend, Backend]
) -> None:
    kuard, _ = backends
    (tmp_path / "app.yaml").write_text("", encoding="utf-8")
    async with Pipeline(tmp_path) as pipe:
        pipe.write(
            "app.yaml",
            service("kuard", kuard.port),
            ingress("kuard", "kuard.local", [("/", "Prefix", "kuard")]),
        )
        pipe.write("endpoints.yaml", endpoint_slice("kuard", kuard.port))
        await pipe.eventually("kuard.local", "/", landed("kuard"))
        pipe.write("endpoints.yaml", endpoint_slice("kuard", kuard.port, ready=False))
        await pipe.eventually("kuard.local", "/", lambda a: a.status == 503)
        (tmp_path / "endpoints.yaml").unlink()
        await pipe.eventually("kuard.local", "/", lambda a: a.status == 503)
        pipe.write("endpoints.yaml", endpoint_slice("kuard", kuard.port))
        await pipe.eventually("kuard.local", "/", landed("kuard"))


async def test_https_with_sni_serves_the_certificate_of_the_host(
    tmp_path: Path, backends: tuple[Backend, Backend]
) -> None:
    kuard, echo = backends
    secure = self_signed(["secure.local"])
    other = self_signed(["other.local"])
    (tmp_path / "tls.yaml").write_text("", encoding="utf-8")
    async with Pipeline(tmp_path) as pipe:
        pipe.write(
            "tls.yaml",
            tls_secret("secure-tls", "default", secure),
            tls_secret("other-tls", "default", other),
            service("kuard", kuard.port),
            endpoint_slice("kuard", kuard.port),
            service("echo", echo.port),
            endpoint_slice("echo", echo.port),
            ingress(
                "secure",
                "secure.local",
                [("/", "Prefix", "kuard")],
                tls_secret="secure-tls",
                annotations={"ingress.kubernetes.io/force-ssl-redirect": "true"},
            ),
            ingress("other", "other.local", [("/", "Prefix", "echo")], tls_secret="other-tls"),
        )

        def over_tls(name: str) -> object:
            return lambda a: isinstance(a, Answer) and a.status == 200 and a.backend == name

        await pipe.eventually(
            "secure.local", "/", over_tls("kuard"), https=True, ca=secure.cert_pem
        )
        await pipe.eventually("other.local", "/", over_tls("echo"), https=True, ca=other.cert_pem)
        redirect = await pipe.get("secure.local", "/x")
        assert redirect.status == 301
        assert redirect.headers["location"] == "https://secure.local/x"
        # Without force-ssl-redirect the host is still served on plain HTTP (Contour's default).
        assert (await pipe.get("other.local", "/")).backend == "echo"


@pytest.mark.parametrize("mode", ["delta", "separate"])
async def test_envoys_bootstrapped_for_delta_or_per_type_xds_are_served_too(
    tmp_path: Path, backends: tuple[Backend, Backend], mode: str
) -> None:
    kuard, echo = backends
    (tmp_path / "app.yaml").write_text("", encoding="utf-8")
    async with Pipeline(tmp_path, xds_mode=mode) as pipe:
        pipe.write(
            "app.yaml",
            *apps(kuard, echo, ingress("kuard", "kuard.local", [("/", "Prefix", "kuard")])),
        )
        await pipe.eventually("kuard.local", "/", landed("kuard"))
        pipe.write(
            "app.yaml",
            *apps(kuard, echo, ingress("kuard", "kuard.local", [("/", "Prefix", "echo")])),
        )
        await pipe.eventually("kuard.local", "/", landed("echo"))
