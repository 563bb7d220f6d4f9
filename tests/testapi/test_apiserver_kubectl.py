"""The real kubectl against the test API server: apply, get (server-side printing), edit,
status, delete, discovery and watch, as a user would run them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from testapi_support import FIXTURES, FakeClock, Kubectl
from waiting import eventually

from controlplane.testing.apiserver import TestApiServer

ROUTE = str(FIXTURES / "ingressroute.yaml")
APP = str(FIXTURES / "app.yaml")
CRDS = str(FIXTURES / "crds.yaml")


def _rows(text: str) -> list[list[str]]:
    """A kubectl table split on its column boundaries (cells may contain single spaces)."""
    lines = text.rstrip("\n").splitlines()
    header = lines[0]
    # A column starts after two or more spaces: kubectl pads columns with at least three.
    starts = [0] + [
        i for i in range(2, len(header)) if header[i - 2 : i] == "  " and header[i] != " "
    ]
    ends = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, ends, strict=True)] for line in lines]


async def _apply_all(kubectl: Kubectl) -> None:
    await kubectl("apply", "-f", APP)
    await kubectl("apply", "-f", CRDS)
    await kubectl("apply", "-f", ROUTE)


async def test_apply_and_get_custom_resource_prints_printer_columns(
    kubectl: Kubectl, server: TestApiServer, clock: FakeClock
) -> None:
    await _apply_all(kubectl)
    route = server.get_object("contour.heptio.com/v1beta1", "IngressRoute", "root", "demo")
    route["status"] = {"currentStatus": "valid", "description": "valid IngressRoute"}
    server.put_object(route)
    clock.advance(200)

    rows = _rows(await kubectl("get", "ingressroute", "-n", "demo"))

    assert rows == [
        ["NAME", "FQDN", "TLS SECRET", "FIRST ROUTE", "STATUS", "STATUS DESCRIPTION", "AGE"],
        ["root", "demo.example.com", "", "/", "valid", "valid IngressRoute", "3m20s"],
    ]
    short = _rows(await kubectl("get", "ir", "-A"))
    assert short[0][:2] == ["NAMESPACE", "NAME"]
    assert short[1][:3] == ["demo", "root", "demo.example.com"]


async def test_get_services_across_namespaces(kubectl: Kubectl, clock: FakeClock) -> None:
    await kubectl("apply", "-f", APP)
    clock.advance(3 * 86400 + 5 * 3600)

    rows = _rows(await kubectl("get", "svc", "-A"))

    assert rows[0] == ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert rows[1][:3] == ["demo", "web", "ClusterIP"]
    assert rows[1][3].startswith("10.96.")
    assert rows[1][4:] == ["<none>", "80/TCP", "3d5h"]
    wide = _rows(await kubectl("get", "svc", "-n", "demo", "-o", "wide", "-l", "app=web"))
    assert wide[0][-2:] == ["AGE", "SELECTOR"] and wide[1][-1] == "app=web"
    assert "No resources found" in (await kubectl.run("get", "svc", "-A", "-l", "app=db")).err


async def test_apply_again_after_an_edit_patches_and_bumps_generation(
    kubectl: Kubectl, server: TestApiServer, tmp_path: Path
) -> None:
    await _apply_all(kubectl)
    edited = tmp_path / "ingressroute.yaml"
    edited.write_text((FIXTURES / "ingressroute.yaml").read_text().replace("demo.", "www."))
    server.reset_request_counts()

    first = await kubectl("apply", "-f", str(edited))
    again = await kubectl("apply", "-f", str(edited))

    assert first.strip() == "ingressroute.contour.heptio.com/root configured"
    assert again.strip() == "ingressroute.contour.heptio.com/root unchanged"
    assert server.request_count(verb="patch", resource="ingressroutes") == 1
    obj = json.loads(await kubectl("get", "ir", "root", "-n", "demo", "-o", "json"))
    assert obj["metadata"]["generation"] == 2
    assert obj["spec"]["virtualhost"]["fqdn"] == "www.example.com"


async def test_apply_service_edit_uses_strategic_merge_on_ports(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    await kubectl("apply", "-f", APP)
    edited = tmp_path / "app.yaml"
    https = "targetPort: 8080\n  - name: https\n    port: 443"
    edited.write_text((FIXTURES / "app.yaml").read_text().replace("targetPort: 8080", https))

    assert "service/web configured" in await kubectl("apply", "-f", str(edited))

    svc = json.loads(await kubectl("get", "svc", "web", "-n", "demo", "-o", "json"))
    ports = [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]]
    assert ports == [("http", 80, 8080), ("https", 443, 443)]


async def test_status_subresource_patch_leaves_spec_and_generation(kubectl: Kubectl) -> None:
    await _apply_all(kubectl)

    await kubectl(
        "patch", "ir", "root", "-n", "demo", "--subresource=status", "--type=merge",
        "-p", '{"status": {"currentStatus": "valid"}, "spec": {"virtualhost": {"fqdn": "x"}}}',
    )  # fmt: skip

    obj = json.loads(await kubectl("get", "ir", "root", "-n", "demo", "-o", "json"))
    assert obj["status"] == {"currentStatus": "valid"}
    assert obj["spec"]["virtualhost"]["fqdn"] == "demo.example.com"
    assert obj["metadata"]["generation"] == 1


async def test_delete_manifests_including_their_namespace(kubectl: Kubectl) -> None:
    await _apply_all(kubectl)

    out = await kubectl("delete", "-f", ROUTE, "-f", APP)

    assert 'namespace "demo" deleted' in out and 'service "web" deleted' in out
    assert "demo" not in await kubectl("get", "ns")
    missing = await kubectl.run("get", "svc", "web", "-n", "demo", check=False)
    assert missing.code == 1 and 'namespaces "demo" not found' in missing.err


async def test_api_resources_lists_crds_and_follows_their_deletion(kubectl: Kubectl) -> None:
    await kubectl("apply", "-f", CRDS)
    await kubectl("wait", "--for=condition=Established", "crd/ingressroutes.contour.heptio.com")

    listed = _rows(await kubectl("api-resources", "--api-group=contour.heptio.com"))

    group = "contour.heptio.com/v1beta1"
    assert listed[1:] == [
        ["ingressroutes", "ir", group, "true", "IngressRoute"],
        ["tlscertificatedelegations", "tlscerts", group, "true", "TLSCertificateDelegation"],
    ]
    await kubectl("delete", "-f", CRDS)
    gone = await kubectl.run("get", "ir", check=False)
    # kubectl's cached discovery still knows the type; the server no longer serves it.
    assert gone.code == 1 and "NotFound" in gone.err


async def test_errors_are_status_objects_kubectl_understands(kubectl: Kubectl) -> None:
    no_crd = await kubectl.run("apply", "-f", ROUTE, check=False)
    assert no_crd.code == 1 and 'no matches for kind "IngressRoute"' in no_crd.err

    await kubectl("apply", "-f", CRDS)
    no_namespace = await kubectl.run("apply", "-f", ROUTE, check=False)
    assert no_namespace.code == 1 and 'namespaces "demo" not found' in no_namespace.err

    await kubectl("create", "namespace", "demo")
    exists = await kubectl.run("create", "namespace", "demo", check=False)
    assert 'namespaces "demo" already exists' in exists.err


async def test_get_watch_prints_changes(kubectl: Kubectl, server: TestApiServer) -> None:
    await kubectl("apply", "-f", APP)
    watching = asyncio.create_task(
        kubectl.run("get", "svc", "web", "-n", "demo", "-w", "-o", "name", check=False)
    )
    await eventually(lambda: server.request_count(verb="watch", resource="services") == 1)

    await kubectl("label", "svc", "web", "-n", "demo", "tier=front")
    # The label's MODIFIED event was queued to the watch before kubectl's PATCH was answered; a
    # graceful drop is queued behind it, so the stream sends the event, then ends.
    server.drop_watches(graceful=True)

    result = await watching
    assert result.out.splitlines() == ["service/web", "service/web"]


async def test_server_side_apply_and_server_dry_run(
    kubectl: Kubectl, server: TestApiServer
) -> None:
    await kubectl("apply", "--server-side", "-f", APP)
    await kubectl("apply", "--server-side", "-f", CRDS)
    created = await kubectl("apply", "--server-side", "-f", ROUTE)
    before = server.resource_version

    again = await kubectl("apply", "--server-side", "-f", ROUTE)
    dry = await kubectl("delete", "ir", "root", "-n", "demo", "--dry-run=server")

    assert (
        created.strip()
        == again.strip()
        == "ingressroute.contour.heptio.com/root serverside-applied"
    )
    assert "(server dry run)" in dry
    assert server.resource_version == before
    assert server.request_count(verb="patch", resource="ingressroutes") == 2
