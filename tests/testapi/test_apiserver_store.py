"""The store on its own: revisions, generation rules, status isolation, history, selectors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controlplane.testing.apiserver_registry import Registry, builtin_types, types_from_crd
from controlplane.testing.apiserver_store import (
    ApiError,
    Dropped,
    Store,
    field_selector,
    label_selector,
)

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Cluster",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True}],
    },
}


def _store(history_limit: int = 100) -> Store:
    return Store(
        Registry(builtin_types()),
        history_limit=history_limit,
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )


def _type(store: Store, group: str, version: str, plural: str) -> Any:
    rtype = store.registry.get(group, version, plural)
    assert rtype is not None
    return rtype


def test_revisions_increase_and_noop_writes_are_not_writes() -> None:
    store = _store()
    cm = _type(store, "", "v1", "configmaps")
    start = store.revision
    created = store.create(cm, "default", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    same = store.update(cm, "default", "a", created)
    changed = store.update(cm, "default", "a", {**created, "data": {"k": "w"}})

    assert created["metadata"]["resourceVersion"] == str(start + 1)
    assert same["metadata"]["resourceVersion"] == str(start + 1)
    assert changed["metadata"]["resourceVersion"] == str(start + 2)


def test_generation_and_status_isolation_with_status_subresource() -> None:
    store = _store()
    ing = _type(store, "networking.k8s.io", "v1", "ingresses")
    obj = store.create(
        ing, "default", {"metadata": {"name": "i"}, "spec": {"a": 1}, "status": {"x": 1}}
    )
    assert "status" not in obj and obj["metadata"]["generation"] == 1

    with_status = store.update(
        ing, "default", "i", {**obj, "status": {"y": 2}}, subresource="status"
    )
    labelled = store.update(
        ing, "default", "i", {**with_status, "metadata": {"labels": {"l": "v"}}}
    )
    respec = store.update(ing, "default", "i", {**labelled, "spec": {"a": 2}, "status": {"z": 3}})

    assert with_status["metadata"]["generation"] == 1 and with_status["status"] == {"y": 2}
    assert labelled["metadata"]["generation"] == 1 and labelled["metadata"]["labels"] == {"l": "v"}
    assert respec["metadata"]["generation"] == 2 and respec["status"] == {"y": 2}


def test_without_status_subresource_status_changes_bump_generation() -> None:
    store = _store()
    crds = _type(store, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
    store.create(crds, None, CRD)
    widgets = _type(store, "example.com", "v1", "widgets")
    obj = store.create(widgets, None, {"metadata": {"name": "w"}, "status": {"a": 1}})
    updated = store.update(widgets, None, "w", {**obj, "status": {"a": 2}})
    assert obj["status"] == {"a": 1} and updated["metadata"]["generation"] == 2


def test_stale_resource_version_conflicts() -> None:
    store = _store()
    cm = _type(store, "", "v1", "configmaps")
    created = store.create(cm, "default", {"metadata": {"name": "a"}})
    store.update(cm, "default", "a", {**created, "data": {"k": "v"}})
    with pytest.raises(ApiError) as raised:
        store.update(cm, "default", "a", {**created, "data": {"k": "w"}})
    assert raised.value.code == 409 and raised.value.reason == "Conflict"


def test_crd_lifecycle_registers_types_and_status() -> None:
    store = _store()
    crds = _type(store, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
    created = store.create(crds, None, CRD)
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    widgets = _type(store, "example.com", "v1", "widgets")
    assert not widgets.namespaced and widgets.singular == "widget"
    store.create(widgets, None, {"metadata": {"name": "w"}})

    store.delete(crds, None, "widgets.example.com")

    assert store.registry.get("example.com", "v1", "widgets") is None
    with pytest.raises(ApiError):
        store.create(crds, None, {**CRD, "metadata": {"name": "wrong.example.com"}})


def test_history_floor_and_compaction() -> None:
    store = _store(history_limit=2)
    cm = _type(store, "", "v1", "configmaps")
    accept, select = label_selector(""), field_selector("")
    for name in "abc":
        store.create(cm, "default", {"metadata": {"name": name}})
    with pytest.raises(ApiError) as raised:
        store.watch(cm, "default", accept, select, store.revision - 3)
    assert raised.value.code == 410

    watcher = store.watch(cm, "default", accept, select, store.revision - 2)
    assert [obj["metadata"]["name"] for _, obj in _drain(watcher.queue)] == ["b", "c"]
    store.compact()
    with pytest.raises(ApiError):
        store.watch(cm, "default", accept, select, store.revision - 1)
    store.watch(cm, "default", accept, select, store.revision)
    assert store.drop_watches() == 2 and isinstance(watcher.queue.get_nowait(), Dropped)


def _drain(queue: Any) -> list[Any]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


LABELS = [
    ("", {"a": "1"}, True),
    ("a=1", {"a": "1"}, True),
    ("a==1,b!=2", {"a": "1", "b": "3"}, True),
    ("a!=1", {}, True),
    ("a in (1, 2),c notin (x)", {"a": "2"}, True),
    ("a notin (1)", {"a": "1"}, False),
    ("a", {"a": ""}, True),
    ("!a", {"a": ""}, False),
    ("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True),
]


@pytest.mark.parametrize(("selector", "labels", "matches"), LABELS)
def test_label_selector(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert label_selector(selector)({"metadata": {"labels": labels}}) is matches


def test_field_selector_and_bad_selectors() -> None:
    obj = {"metadata": {"name": "a", "namespace": "ns"}, "type": "kubernetes.io/tls"}
    assert field_selector("metadata.name=a,metadata.namespace==ns")(obj)
    assert not field_selector("metadata.name!=a")(obj)
    assert field_selector("type=kubernetes.io/tls")(obj)
    for bad in (lambda: label_selector("a in 1"), lambda: field_selector("nonsense")):
        with pytest.raises(ApiError):
            bad()


def test_types_from_crd_reads_columns_and_subresources() -> None:
    crd = {**CRD, "spec": {**CRD["spec"], "versions": [
        {"name": "v1", "served": True, "subresources": {"status": {}},
         "additionalPrinterColumns": [
             {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}]},
        {"name": "v0", "served": False},
    ]}}  # fmt: skip
    (widget,) = types_from_crd(crd)
    assert widget.has_status and [c.name for c in widget.columns] == ["Phase"]
    (default,) = types_from_crd(CRD)
    assert [(c.name, c.type) for c in default.columns] == [("Age", "date")]
