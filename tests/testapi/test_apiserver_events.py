"""`events.k8s.io/v1` Events on the test API server: one object seen through both Event APIs
(what a controller posts is what `kubectl describe` lists through the core API, with the field
selector kubectl 1.32 sends), the apiserver's validation, series patches, watches, discovery."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client
from testapi_support import Kubectl

from controlplane.sources.kubeclient import MERGE_PATCH, KubeApiError, request_json
from controlplane.testing.apiserver import TestApiServer

EVENTS = "/apis/events.k8s.io/v1/namespaces/default/events"
CORE_EVENTS = "/api/v1/namespaces/default/events"


def _event(name: str = "site.1", **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "contour.heptio.com/controlplane",
        "reportingInstance": "replica-1",
        "action": "Translate",
        "reason": "InvalidPath",
        "type": "Warning",
        "note": 'spec.rules[0].http.paths[0].path: "nope" does not start with "/"',
        "regarding": {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "namespace": "default",
            "name": "site",
            "uid": "uid-1",
        },
    } | fields


async def test_an_event_posted_through_events_k8s_io_is_listed_by_the_core_api(
    api: client.ApiClient,
) -> None:
    await request_json(api, "POST", EVENTS, body=_event())
    await request_json(api, "POST", EVENTS, body=_event("other.1", regarding={
        "kind": "Ingress", "namespace": "default", "name": "other", "uid": "uid-2"}))  # fmt: skip

    selector = (
        "involvedObject.name=site,involvedObject.namespace=default,"
        "involvedObject.kind=Ingress,involvedObject.uid=uid-1"
    )
    listed = await request_json(
        api, "GET", CORE_EVENTS, query=[("fieldSelector", selector), ("limit", "500")]
    )

    assert [e["metadata"]["name"] for e in listed["items"]] == ["site.1"]
    core = listed["items"][0]
    assert core["apiVersion"] == "v1"
    assert core["involvedObject"]["name"] == "site"
    assert core["message"].startswith("spec.rules[0].http.paths[0].path")
    assert core["reportingComponent"] == "contour.heptio.com/controlplane"
    assert "regarding" not in core and "note" not in core
    again = await request_json(api, "GET", f"{EVENTS}/site.1")
    assert again["apiVersion"] == "events.k8s.io/v1" and again["regarding"]["uid"] == "uid-1"
    assert again["metadata"]["resourceVersion"] == core["metadata"]["resourceVersion"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"note": "x" * 1025}, "note: Too long: may not be more than 1024 bytes"),
        ({"reportingController": ""}, "reportingController: Required value"),
        ({"eventTime": None}, "eventTime: Required value"),
        ({"type": "Error"}, 'type: Unsupported value: "Error"'),
        ({"series": {"count": 1}}, "series.count: Invalid value"),
    ],
)
async def test_events_the_apiserver_refuses_are_refused(
    api: client.ApiClient, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(KubeApiError) as refused:
        await request_json(api, "POST", EVENTS, body=_event(**change))
    assert refused.value.status == 422 and message in refused.value.message


async def test_a_note_of_exactly_1024_bytes_is_accepted(api: client.ApiClient) -> None:
    await request_json(api, "POST", EVENTS, body=_event(note="é" * 512))


async def test_a_series_patch_is_accepted_and_other_fields_are_immutable(
    api: client.ApiClient,
) -> None:
    await request_json(api, "POST", EVENTS, body=_event())
    series = {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}
    patched = await request_json(
        api, "PATCH", f"{EVENTS}/site.1", body={"series": series}, content_type=MERGE_PATCH
    )
    assert patched["series"] == series
    core = await request_json(api, "GET", f"{CORE_EVENTS}/site.1")
    assert core["series"] == series

    with pytest.raises(KubeApiError) as refused:
        await request_json(
            api, "PATCH", f"{EVENTS}/site.1", body={"note": "other"}, content_type=MERGE_PATCH
        )
    assert refused.value.status == 422 and "note: Invalid value: field is immutable" in str(
        refused.value
    )


async def test_an_event_in_a_missing_namespace_is_404(api: client.ApiClient) -> None:
    with pytest.raises(KubeApiError) as refused:
        await request_json(
            api,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/nowhere/events",
            body=_event(
                metadata={"name": "x.1", "namespace": "nowhere"},
                regarding={"kind": "Ingress", "namespace": "nowhere", "name": "x"},
            ),
        )
    assert refused.value.status == 404


async def test_watchers_of_each_api_see_the_event_in_their_form(server: TestApiServer) -> None:
    core_type = server.registry.get("", "v1", "events")
    v1_type = server.registry.get("events.k8s.io", "v1", "events")
    assert core_type is not None and v1_type is not None

    def everything(obj: Any) -> bool:
        return True

    core = server.store.watch(core_type, "default", everything, everything, None)
    v1 = server.store.watch(v1_type, "default", everything, everything, None)
    server.store.create(v1_type, "default", _event())

    kind, seen = core.queue.get_nowait()  # type: ignore[misc]
    assert kind == "ADDED" and seen["message"].startswith("spec.rules")
    kind, seen = v1.queue.get_nowait()  # type: ignore[misc]
    assert kind == "ADDED" and seen["note"].startswith("spec.rules") and "message" not in seen
    server.store.delete(v1_type, "default", "site.1")
    assert core.queue.get_nowait()[0] == "DELETED"  # type: ignore[index]


async def test_kubectl_discovers_events_k8s_io(kubectl: Kubectl) -> None:
    resources = await kubectl("api-resources", "--api-group=events.k8s.io", "-o", "name")
    assert resources.split() == ["events.events.k8s.io"]
