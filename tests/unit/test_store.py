"""The store: change events users' edits cause, and the ones they must not cause."""

from __future__ import annotations

from typing import Any

import kube_manifests
import pytest
from structlog.testing import capture_logs

from controlplane.model import ObjectKey
from controlplane.store import Change, ChangeType, Store


def service(name: str = "web", port: int = 80, **meta: Any) -> dict[str, Any]:
    return kube_manifests.service(name, ports=[("http", port)], metadata=meta)


def ingressroute(status: str | None = None, rv: str = "1") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "r", "namespace": "default", "resourceVersion": rv, "generation": 1},
        "spec": {"virtualhost": {"fqdn": "a.example.com"}, "routes": []},
    }
    if status:
        obj["status"] = {"currentStatus": status, "description": "x"}
    return obj


def recorded(store: Store) -> list[Change]:
    changes: list[Change] = []
    store.subscribe(changes.append)
    return changes


def test_add_update_delete_emit_one_change_each() -> None:
    store = Store()
    changes = recorded(store)
    store.apply_raw(service(port=80))
    store.apply_raw(service(port=81))
    store.delete("Service", "default", "web")
    assert [c.type for c in changes] == [ChangeType.ADDED, ChangeType.MODIFIED, ChangeType.DELETED]
    assert changes[0].key == ObjectKey("Service", "default", "web")
    assert store.get("Service", "default", "web") is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(ingressroute(rv="1"), ingressroute(rv="2"), id="resourceVersion only"),
        pytest.param(ingressroute(), ingressroute(status="valid", rv="3"), id="our status write"),
        pytest.param(service(), service(), id="identical"),
    ],
)
def test_changes_the_dag_cannot_see_emit_nothing(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    store = Store()
    store.apply_raw(first)
    changes = recorded(store)
    assert store.apply_raw(second) is None
    assert changes == []


def ingressroute_spec(fqdn: str, rv: str) -> dict[str, Any]:
    obj = ingressroute("valid", rv=rv)
    obj["spec"]["virtualhost"]["fqdn"] = fqdn
    return obj


@pytest.mark.parametrize(
    ("second", "told"),
    [
        pytest.param(ingressroute(status="invalid", rv="2"), ["invalid"], id="status only: told"),
        pytest.param(ingressroute(status="valid", rv="2"), [], id="resourceVersion only"),
        pytest.param(ingressroute(status="valid"), [], id="identical"),
        pytest.param(ingressroute_spec("b.example.com", "2"), [], id="spec: a Change instead"),
        pytest.param(
            ingressroute_spec("b.example.com", "2") | {"status": {"currentStatus": "invalid"}},
            [],
            id="spec and status: a Change instead",
        ),
    ],
)
def test_status_listeners_hear_status_only_updates_and_nothing_else(
    second: dict[str, Any], told: list[str]
) -> None:
    """The status writer puts back a status someone else wrote without a rebuild: the store
    tells it of that update (which emits no Change), with the object as stored now."""
    store = Store()
    heard: list[Any] = []
    store.subscribe_status(heard.append)
    store.apply_raw(ingressroute(status="valid"))  # added: a Change, not a status update
    changes = recorded(store)
    store.apply_raw(second)
    assert [obj.status.current_status for obj in heard] == told
    assert all(obj is store.get("IngressRoute", "default", "r") for obj in heard)
    assert len(changes) == (0 if told or second["spec"] == ingressroute()["spec"] else 1)
    store.delete("IngressRoute", "default", "r")
    assert len(heard) == len(told)  # a delete is a Change too


def test_malformed_object_is_logged_with_its_name_and_skipped() -> None:
    store = Store()
    broken = service()
    broken["spec"]["ports"] = "eighty"
    with capture_logs() as logs:
        assert store.apply_raw(broken) is None
        store.apply_raw(service("other"))
    assert logs[0]["event"] == "object.skipped"
    assert logs[0]["name"] == "web"
    assert "spec.ports" in logs[0]["reason"]
    assert store.get("Service", "default", "other") is not None


def test_replace_kind_deletes_what_vanished_and_keeps_the_rest_quiet() -> None:
    store = Store()
    for name in ("a", "b", "c"):
        store.apply_raw(service(name))
    changes = recorded(store)
    from controlplane.model import parse_object

    kept = [parse_object(service("a")), parse_object(service("b", port=90))]
    store.replace_kind("Service", kept)
    assert [(c.type, c.key.name) for c in changes] == [
        (ChangeType.MODIFIED, "b"),
        (ChangeType.DELETED, "c"),
    ]


def test_endpoint_slices_are_indexed_by_service() -> None:
    store = Store()
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-abc",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"]}],
        "ports": [{"name": "http", "port": 8080}],
    }
    changes = recorded(store)
    store.apply_raw(slice_)
    assert changes[0].is_endpoint_change and changes[0].service == ("default", "web")
    assert [s.name for s in store.slices_for("default", "web")] == ["web-abc"]
    assert list(store.object_set().endpoint_slices) == [("default", "web")]
    store.delete("EndpointSlice", "default", "web-abc")
    assert store.slices_for("default", "web") == ()
    assert store.object_set().endpoint_slices == {}


def test_objects_without_a_creation_time_are_younger_and_ordered_by_arrival() -> None:
    """Manifest files carry no creationTimestamp: "oldest wins" must not fall back to names
    (a tenant could pick one that sorts first). First seen is oldest; all are younger than any
    object with a timestamp; the order survives updates and is not reused after a delete."""
    store = Store()
    stamped = service("a", creationTimestamp="2024-01-01T00:00:00Z")
    for raw in (service("z"), service("b"), stamped, {**service("m"), "metadata": {
            "name": "m", "namespace": "default", "creationTimestamp": None}}):  # fmt: skip
        store.apply_raw(raw)

    def age(name: str) -> Any:
        obj = store.get("Service", "default", name)
        assert obj is not None
        return obj.age_key

    assert sorted(["z", "b", "a", "m"], key=age) == ["a", "z", "b", "m"]
    store.apply_raw(service("z", port=81))  # an update keeps its place
    assert sorted(["z", "b"], key=age) == ["z", "b"]
    store.delete("Service", "default", "z")
    store.apply_raw(service("z"))  # back again: now the youngest
    assert sorted(["z", "b", "m"], key=age) == ["b", "m", "z"]
