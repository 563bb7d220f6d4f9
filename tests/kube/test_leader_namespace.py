"""Leader election out of the box: the Lease lives in the controller's own namespace, a Lease
that cannot be taken is one warning that says how to fix it, and `/debug/leader` and the
`controlplane_leader` gauge say whether this replica writes status.

The elector tests run on looptime's fast-forwarded loop clock against the Kubernetes API test
server (or, for RBAC, a server that forbids everything), with the production retry period, so
"logged once" is asserted over many retries without waiting for them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
import yaml
from aiohttp import web
from kube_support import install_crds, namespace
from kubernetes_asyncio import client
from structlog.testing import capture_logs
from waiting import eventually

from controlplane.config import ServeSettings
from controlplane.runtime import serve
from controlplane.sources import Leadership, lease_namespace, make_api_client
from controlplane.sources.leader import LeaderElector
from controlplane.testing.apiserver import TestApiServer
from controlplane.testing.envoy import free_port

RETRY = 2.0


def kubeconfig_with(path: Path, context_namespace: str | None) -> Path:
    context: dict[str, Any] = {"cluster": "c", "user": "u"}
    if context_namespace is not None:
        context["namespace"] = context_namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "other", "context": {**context, "namespace": "not-current"}},
                     {"name": "mine", "context": context}],
        "current-context": "mine",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("environ", "service_account", "context", "expected"),
    [
        ({"POD_NAMESPACE": "ops"}, "sa-ns", "ctx-ns", ("ops", "$POD_NAMESPACE")),
        ({"POD_NAMESPACE": " "}, "sa-ns\n", "ctx-ns", ("sa-ns", "the service account")),
        ({}, None, "ctx-ns", ("ctx-ns", "the current context")),
        ({}, "", None, ("projectcontour", "the default")),
    ],
    ids=["pod namespace", "service account", "kubeconfig context", "default"],
)
def test_the_lease_namespace_is_the_controllers_own(
    tmp_path: Path,
    environ: Mapping[str, str],
    service_account: str | None,
    context: str | None,
    expected: tuple[str, str],
) -> None:
    account = tmp_path / "namespace"
    if service_account is not None:
        account.write_text(service_account)
    kubeconfig = kubeconfig_with(tmp_path / "kubeconfig", context)
    found, origin = lease_namespace(kubeconfig, environ=environ, service_account=account)
    assert found == expected[0]
    assert origin.startswith(expected[1])
    assert lease_namespace(None, environ={}, service_account=account)[0] == (
        service_account.strip() if service_account else "projectcontour"
    )


def elector(api: client.ApiClient, lease_namespace: str, **kwargs: Any) -> LeaderElector:
    return LeaderElector(
        api, namespace=lease_namespace, name="controlplane-leader", identity="me",
        namespace_origin="the current context of kubeconfig", **kwargs,
    )  # fmt: skip


async def elect(candidate: LeaderElector) -> asyncio.Task[None]:
    return asyncio.create_task(candidate.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
def every_level() -> Iterator[None]:
    """Log events of every level reach `capture_logs` (another test may have configured a
    higher level for the process)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


def lease_warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "leader.lease_unavailable"]


@pytest.mark.looptime
@pytest.mark.usefixtures("every_level")
async def test_a_missing_namespace_is_one_warning_with_the_fix_until_it_exists(
    api: client.ApiClient, server: TestApiServer
) -> None:
    leadership = Leadership()
    candidate = elector(api, "ops", leadership=leadership)
    with capture_logs() as logs:
        task = await elect(candidate)
        await eventually(lambda: server.request_count(verb="create", resource="leases") >= 5,
                         within=10 * RETRY)  # fmt: skip
        assert not candidate.is_leader
        (warning,) = lease_warnings(logs)  # five failed attempts, one warning
        assert warning["log_level"] == "warning"
        assert warning["cause"] == "namespace_missing"
        assert warning["message"] == (
            'cannot create the Lease: namespaces "ops" not found; create namespace ops (from the '
            "current context of kubeconfig) or set --leader-election-namespace (or "
            "POD_NAMESPACE) to the controller's own namespace"
        )
        assert leadership.as_dict() == {
            "writesStatus": False, "mode": "elected", "lease": "ops/controlplane-leader",
            "identity": "me", "holder": None, "problem": warning["message"],
        }  # fmt: skip

        server.put_object(namespace("ops"))
        await eventually(lambda: candidate.is_leader, within=2 * RETRY)
        await stop(task)
    assert len(lease_warnings(logs)) == 1
    (available,) = [entry for entry in logs if entry["event"] == "leader.lease_available"]
    assert available["previously"] == "namespace_missing"
    assert leadership.problem is None and not leadership.writes_status  # released on the way out


@pytest.fixture
async def forbidding(tmp_path: Path) -> AsyncIterator[client.ApiClient]:
    """An API client for a server that answers every request 403, as RBAC without the Role."""

    async def forbid(request: web.Request) -> web.Response:
        message = (
            'leases.coordination.k8s.io "controlplane-leader" is forbidden: User '
            '"system:serviceaccount:ops:controlplane" cannot get resource "leases"'
        )
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                  "message": message, "reason": "Forbidden", "code": 403}  # fmt: skip
        return web.json_response(status, status=403)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forbid)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    kubeconfig = kubeconfig_with(tmp_path / "kubeconfig", "ops")
    kubeconfig.write_text(kubeconfig.read_text().replace("127.0.0.1:1", f"127.0.0.1:{port}"))
    api = await make_api_client(kubeconfig)
    yield api
    await api.close()
    await runner.cleanup()


@pytest.mark.looptime
@pytest.mark.usefixtures("every_level")
async def test_rbac_that_forbids_the_lease_is_one_warning_naming_the_grant(
    forbidding: client.ApiClient,
) -> None:
    leadership = Leadership()
    candidate = elector(forbidding, "ops", leadership=leadership)
    with capture_logs() as logs:
        task = await elect(candidate)
        await asyncio.sleep(10 * RETRY)  # loop time: ten retries, fast-forwarded
        await stop(task)
    (warning,) = lease_warnings(logs)
    assert warning["cause"] == "forbidden"
    assert warning["message"].startswith(
        'forbidden: leases.coordination.k8s.io "controlplane-leader" is forbidden: User '
        '"system:serviceaccount:ops:controlplane" cannot get resource "leases"; grant get, '
        "create and update on leases (coordination.k8s.io) in namespace ops (from the current "
        "context of kubeconfig) to this controller's identity, as the Role in "
        "manifests/03-rbac.yaml does"
    )
    assert not leadership.writes_status and leadership.problem == warning["message"]
    assert not [entry for entry in logs if entry["event"] == "leader.attempt_failed"]


async def test_serve_elects_itself_in_its_own_namespace_and_says_it_writes_status(
    server: TestApiServer, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve --kubeconfig` with no Lease namespace: the kubeconfig context's (`default`, which
    exists), not `projectcontour` (which does not)."""
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    install_crds(server)
    health = f"127.0.0.1:{free_port()}"
    settings = ServeSettings(
        kubeconfig=kubeconfig, xds_address="127.0.0.1:0", health_address=health,
        log_level="warning", log_json=True,
    )  # fmt: skip
    assert settings.leader_election and settings.leader_election_namespace is None
    stop_serving = asyncio.Event()
    serving = asyncio.create_task(serve(settings, stop=stop_serving))
    try:
        async with aiohttp.ClientSession() as session:

            async def leader() -> dict[str, Any]:
                assert not serving.done(), serving
                try:
                    async with session.get(f"http://{health}/debug/leader") as response:
                        return dict(await response.json())
                except aiohttp.ClientError:
                    return {}

            async def writes_status() -> bool:
                return bool((await leader()).get("writesStatus"))

            await eventually(writes_status, within=10, message="leading", interval=0.05)
            shown = await leader()
            assert shown["mode"] == "elected" and shown["problem"] is None
            assert shown["lease"] == "default/controlplane-leader"
            assert shown["holder"] == shown["identity"]
            lease = server.get_object(
                "coordination.k8s.io/v1", "Lease", "controlplane-leader", "default"
            )
            assert lease["spec"]["holderIdentity"] == shown["identity"]
            async with session.get(f"http://{health}/metrics") as response:
                metrics = await response.text()
            assert "\ncontrolplane_leader 1.0\n" in metrics
    finally:
        stop_serving.set()
        await asyncio.wait_for(serving, 10)
    assert "POD_NAMESPACE" not in os.environ
