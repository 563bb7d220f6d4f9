"""kubernetes-asyncio against the test API server: list and watch from a resourceVersion,
bookmarks, 410 after compaction, the status subresource, dropped watches, refused connections,
conflicts and selectors, the way the informers and the status writer will use them."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException
from testapi_support import FIXTURES
from waiting import eventually

from controlplane.testing.apiserver import TestApiServer

GROUP, VERSION, PLURAL = "contour.heptio.com", "v1beta1", "ingressroutes"


def _service(name: str, labels: dict[str, str] | None = None) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
    )


def _install_crds(server: TestApiServer) -> None:
    for crd in yaml.safe_load_all((FIXTURES / "crds.yaml").read_text()):
        server.put_object(crd)


def _route(name: str, fqdn: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IngressRoute",
        "metadata": {"name": name},
        "spec": {"virtualhost": {"fqdn": fqdn}, "routes": [{"match": "/"}]},
    }


async def test_watch_from_list_version_replays_later_events_and_bookmarks(
    api: client.ApiClient, server: TestApiServer
) -> None:
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_service("default")
    await core.create_namespaced_service("default", _service("a"))
    await core.patch_namespaced_service("a", "default", {"metadata": {"labels": {"x": "y"}}})

    seen = []
    async with watch.Watch() as w:
        async for event in w.stream(
            core.list_namespaced_service,
            "default",
            resource_version=listed.metadata.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=5,
        ):
            seen.append((event["type"], event["raw_object"]["metadata"]["resourceVersion"]))
            if event["type"] == "BOOKMARK":
                break

    current = str(server.resource_version)
    assert [t for t, _ in seen] == ["ADDED", "MODIFIED", "BOOKMARK"]
    assert seen[1][1] == seen[2][1] == current
    assert int(seen[0][1]) > int(listed.metadata.resource_version)


async def test_watch_without_version_starts_with_current_objects(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    async with watch.Watch() as w:
        names = [
            e["object"].metadata.name
            async for e in w.stream(core.list_namespace, timeout_seconds=0.3)
        ]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]


async def test_watch_from_compacted_version_raises_410(
    api: client.ApiClient, server: TestApiServer
) -> None:
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_service("default")
    await core.create_namespaced_service("default", _service("a"))
    server.compact()

    with pytest.raises(ApiException) as raised:
        async with watch.Watch() as w:
            async for _ in w.stream(
                core.list_namespaced_service,
                "default",
                resource_version=listed.metadata.resource_version,
            ):
                pass

    assert raised.value.status == 410
    # A fresh list gives a version the watch accepts again.
    relisted = await core.list_namespaced_service("default")
    async with watch.Watch() as w:
        stream = w.stream(
            core.list_namespaced_service,
            "default",
            resource_version=relisted.metadata.resource_version,
            allow_watch_bookmarks=True,
        )
        assert (await stream.__anext__())["type"] == "BOOKMARK"


async def test_history_limit_expires_old_versions(api: client.ApiClient, clock: Any) -> None:
    small = TestApiServer(history_limit=3, clock=clock)
    await small.start()
    try:
        start = small.resource_version
        for name in "abcd":
            small.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        api.configuration.host = small.url
        core = client.CoreV1Api(api)
        async with watch.Watch() as w:
            fresh = [
                e["object"].metadata.name
                async for e in w.stream(
                    core.list_namespaced_config_map,
                    "default",
                    resource_version=str(start + 1),
                    timeout_seconds=0.3,
                )
            ]
            assert fresh == ["b", "c", "d"]
            with pytest.raises(ApiException) as raised:
                async for _ in w.stream(
                    core.list_namespaced_config_map,
                    "default",
                    resource_version=str(start),
                    timeout_seconds=1,
                ):
                    pass
        assert raised.value.status == 410
    finally:
        await small.stop()


async def test_status_merge_patch_changes_only_status_and_is_counted(
    api: client.ApiClient, server: TestApiServer
) -> None:
    _install_crds(server)
    custom = client.CustomObjectsApi(api)
    created = await custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, _route("root", "a.example.com")
    )
    server.reset_request_counts()
    body = {
        "status": {"currentStatus": "valid", "description": "valid IngressRoute"},
        "spec": {"virtualhost": {"fqdn": "ignored.example.com"}},
    }

    patched = await custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "root",
        body,
        _content_type="application/merge-patch+json",
    )
    again = await custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "root",
        body,
        _content_type="application/merge-patch+json",
    )

    assert patched["status"] == body["status"]
    assert patched["spec"]["virtualhost"]["fqdn"] == "a.example.com"
    assert patched["metadata"]["generation"] == created["metadata"]["generation"] == 1
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert again["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]  # no-op
    assert server.request_count(verb="patch", resource=PLURAL, subresource="status") == 2
    assert server.request_count(verb="patch", subresource="") == 0


async def test_spec_writes_bump_generation_and_keep_status(
    api: client.ApiClient, server: TestApiServer
) -> None:
    _install_crds(server)
    custom = client.CustomObjectsApi(api)
    route = _route("root", "a.example.com") | {"status": {"currentStatus": "valid"}}
    created = await custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, route)
    assert "status" not in created  # status is dropped on create when it is a subresource
    await custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "root", {"status": {"currentStatus": "valid"}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip

    labelled = await custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "root", {"metadata": {"labels": {"a": "b"}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    moved = await custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "root",
        [{"op": "replace", "path": "/spec/virtualhost/fqdn", "value": "b.example.com"},
         {"op": "remove", "path": "/status"}],
    )  # fmt: skip

    assert labelled["metadata"]["generation"] == 1
    assert moved["metadata"]["generation"] == 2
    assert moved["spec"]["virtualhost"]["fqdn"] == "b.example.com"
    assert moved["status"] == {"currentStatus": "valid"}


async def test_update_with_stale_resource_version_conflicts(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = await core.create_namespaced_service("default", _service("a"))
    created.metadata.labels = {"v": "1"}
    await core.replace_namespaced_service("a", "default", created)

    created.metadata.labels = {"v": "2"}
    with pytest.raises(ApiException) as raised:
        await core.replace_namespaced_service("a", "default", created)

    assert raised.value.status == 409
    assert '"reason": "Conflict"' in raised.value.body
    with pytest.raises(ApiException) as duplicate:
        await core.create_namespaced_service("default", _service("a"))
    assert duplicate.value.status == 409 and "AlreadyExists" in duplicate.value.body
    with pytest.raises(ApiException) as missing:
        await core.create_namespaced_service("nowhere", _service("a"))
    assert (
        missing.value.status == 404 and 'namespaces \\"nowhere\\" not found' in missing.value.body
    )


async def test_selectors_on_list_and_watch(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_service("default", _service("a", {"tier": "front"}))
    await core.create_namespaced_service("default", _service("b", {"tier": "back"}))
    listed = await core.list_service_for_all_namespaces(label_selector="tier in (front,side)")
    assert [s.metadata.name for s in listed.items] == ["a"]
    by_name = await core.list_namespaced_service("default", field_selector="metadata.name=b")
    assert [s.metadata.name for s in by_name.items] == ["b"]

    async with watch.Watch() as w:
        stream = w.stream(
            core.list_namespaced_service,
            "default",
            label_selector="tier=front",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        )
        await core.patch_namespaced_service(
            "b", "default", {"metadata": {"labels": {"tier": "front"}}}
        )
        await core.patch_namespaced_service(
            "a", "default", {"metadata": {"labels": {"tier": "gone"}}}
        )
        seen = [
            (e["type"], e["object"].metadata.name) for e in [await stream.__anext__() for _ in "ab"]
        ]
    assert seen == [("ADDED", "b"), ("DELETED", "a")]


async def test_abruptly_dropped_watch_resumes_from_last_version_without_loss(
    api: client.ApiClient, server: TestApiServer
) -> None:
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_service("default")
    last = listed.metadata.resource_version
    for name in "abc":
        await core.create_namespaced_service("default", _service(name))

    names = []
    async with watch.Watch() as w:
        stream = w.stream(core.list_namespaced_service, "default", resource_version=last)
        for _ in "abc":
            event = await stream.__anext__()
            names.append(event["object"].metadata.name)
            last = event["object"].metadata.resource_version
        assert server.drop_watches() == 1
        for name in "def":
            await core.create_namespaced_service("default", _service(name))
        with pytest.raises(aiohttp.ClientPayloadError):
            await stream.__anext__()

    async with watch.Watch() as w:
        stream = w.stream(core.list_namespaced_service, "default", resource_version=last)
        names += [(await stream.__anext__())["object"].metadata.name for _ in "def"]
    assert names == list("abcdef")


async def test_gracefully_dropped_watch_is_resumed_by_the_client_itself(
    api: client.ApiClient, server: TestApiServer
) -> None:
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_service("default")
    async with watch.Watch() as w:
        stream = w.stream(
            core.list_namespaced_service,
            "default",
            resource_version=listed.metadata.resource_version,
        )
        await core.create_namespaced_service("default", _service("a"))
        first = await stream.__anext__()
        server.drop_watches(graceful=True)
        await core.create_namespaced_service("default", _service("b"))
        second = await stream.__anext__()
    assert [first["object"].metadata.name, second["object"].metadata.name] == ["a", "b"]
    assert server.request_count(verb="watch", resource="services") == 2


async def test_refused_connections_then_recovery_on_the_same_port(
    api: client.ApiClient, server: TestApiServer
) -> None:
    core = client.CoreV1Api(api)
    await core.list_namespace()
    port = server.port

    await server.refuse_connections(0.3)

    with pytest.raises(aiohttp.ClientConnectionError):
        await core.list_namespace()
    with pytest.raises(aiohttp.ClientConnectorError):
        await core.list_namespace()
    await server.listening()
    names = [ns.metadata.name for ns in (await core.list_namespace()).items]
    assert "default" in names and server.port == port


async def test_table_answers_for_server_side_printing(server: TestApiServer, clock: Any) -> None:
    _install_crds(server)
    server.put_object(
        _route("root", "a.example.com") | {"metadata": {"name": "root", "namespace": "default"}}
    )
    clock.advance(90)
    table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    url = f"{server.url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Accept": table_accept}) as response:
            table = await response.json()
        async with session.get(
            f"{url}/root?includeObject=None", headers={"Accept": table_accept}
        ) as response:
            single = await response.json()
        async with session.get(url) as response:
            plain = await response.json()

    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "FQDN"]
    assert table["rows"][0]["cells"] == ["root", "a.example.com", None, "/", None, None, "90s"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["metadata"]["resourceVersion"] == str(server.resource_version)
    assert "object" not in single["rows"][0]
    assert plain["kind"] == "IngressRouteList" and plain["items"][0]["metadata"]["name"] == "root"


async def test_pagination_with_limit_and_continue(
    api: client.ApiClient, server: TestApiServer
) -> None:
    for name in "abcde":
        server.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    core = client.CoreV1Api(api)
    first = await core.list_namespaced_config_map("default", limit=2)
    rest = await core.list_namespaced_config_map(
        "default", limit=10, _continue=first.metadata._continue
    )
    assert [c.metadata.name for c in first.items + rest.items] == list("abcde")
    assert first.metadata.remaining_item_count == 3 and rest.metadata._continue is None


async def test_namespace_deletion_takes_its_contents(
    api: client.ApiClient, server: TestApiServer
) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="doomed")))
    await core.create_namespaced_service("doomed", _service("a"))

    await core.delete_namespace("doomed")
    assert server.get_object("v1", "Namespace", "doomed")["status"]["phase"] == "Terminating"
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_service("doomed", _service("b"))
    assert refused.value.status == 403

    def gone() -> bool:
        try:
            server.get_object("v1", "Namespace", "doomed")
        except Exception:
            return True
        return False

    await eventually(gone)
    assert (await core.list_service_for_all_namespaces()).items == []


async def test_delete_collection_by_label(api: client.ApiClient, server: TestApiServer) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        labels = {"tier": tier}
        server.put_object(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}
        )
    core = client.CoreV1Api(api)
    await core.delete_collection_namespaced_config_map("default", label_selector="tier=x")
    remaining = await core.list_namespaced_config_map("default")
    assert [c.metadata.name for c in remaining.items] == ["c"]
