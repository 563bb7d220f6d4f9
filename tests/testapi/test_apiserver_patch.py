"""The patch formats, table-driven: one row = document, patch, expected result."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.testing.apiserver_patch import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)

MERGE = [
    ({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}, {"a": 1, "b": {"c": 2, "d": 3}}),
    ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": {"b": 1}}, {"a": "x"}, {"a": "x"}),
    ({}, {"a": {"b": None}}, {"a": {}}),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), MERGE)
def test_merge_patch(doc: Any, patch: Any, expected: Any) -> None:
    before = repr(doc)
    assert merge_patch(doc, patch) == expected
    assert repr(doc) == before


SVC = {"spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}}
POD = {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}
STRATEGIC = [
    pytest.param(SVC, {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}},
                 {"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                                     {"name": "https", "port": 443}]}}, id="ports merge by port"),
    pytest.param(SVC, {"spec": {"ports": [{"port": 443, "$patch": "delete"}]}},
                 {"spec": {"ports": [{"name": "http", "port": 80}]}}, id="delete directive"),
    pytest.param(SVC, {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                                "ports": [{"port": 80, "name": "web"}]}},
                 {"spec": {"ports": [{"name": "https", "port": 443}, {"name": "web", "port": 80}]}},
                 id="set element order"),
    pytest.param(POD, {"spec": {"containers": [{"name": "b", "image": "b:2"},
                                               {"name": "c", "image": "c:1"}]}},
                 {"spec": {"containers": [{"name": "a", "image": "a:1"},
                                          {"name": "b", "image": "b:2"},
                                          {"name": "c", "image": "c:1"}]}},
                 id="containers merge by name"),
    pytest.param({"spec": {"args": ["x", "y"]}}, {"spec": {"args": ["z"]}},
                 {"spec": {"args": ["z"]}}, id="lists without merge key are replaced"),
    pytest.param({"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}},
                 {"spec": {"c": 3}}, id="replace directive"),
    pytest.param({"spec": {"a": 1, "b": 2}}, {"spec": {"$retainKeys": ["b", "c"], "c": 3}},
                 {"spec": {"b": 2, "c": 3}}, id="retain keys"),
    pytest.param({"f": ["a", "b"]}, {"$deleteFromPrimitiveList/f": ["a"]}, {"f": ["b"]},
                 id="delete from primitive list"),
    pytest.param({"metadata": {"labels": {"a": "1"}}}, {"metadata": {"labels": {"a": None}}},
                 {"metadata": {"labels": {}}}, id="null deletes"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "patch", "expected"), STRATEGIC)
def test_strategic_merge_patch(doc: Any, patch: Any, expected: Any) -> None:
    assert strategic_merge_patch(doc, patch) == expected


DOC = {"a": {"b": [1, 2, 3]}, "c": "x", "d/e": 1}
JSON_PATCH = [
    ([{"op": "add", "path": "/a/b/1", "value": 9}], {**DOC, "a": {"b": [1, 9, 2, 3]}}),
    ([{"op": "add", "path": "/a/b/-", "value": 9}], {**DOC, "a": {"b": [1, 2, 3, 9]}}),
    ([{"op": "remove", "path": "/a/b/0"}], {**DOC, "a": {"b": [2, 3]}}),
    ([{"op": "replace", "path": "/c", "value": "y"}], {**DOC, "c": "y"}),
    ([{"op": "replace", "path": "/a/b/2", "value": 0}], {**DOC, "a": {"b": [1, 2, 0]}}),
    ([{"op": "move", "from": "/c", "path": "/z"}], {"a": {"b": [1, 2, 3]}, "d/e": 1, "z": "x"}),
    ([{"op": "copy", "from": "/c", "path": "/a/c"}], {**DOC, "a": {"b": [1, 2, 3], "c": "x"}}),
    ([{"op": "test", "path": "/d~1e", "value": 1}], DOC),
    ([{"op": "add", "path": "/n", "value": {"m": 1}}, {"op": "add", "path": "/n/k", "value": 2}],
     {**DOC, "n": {"m": 1, "k": 2}}),
]  # fmt: skip


@pytest.mark.parametrize(("ops", "expected"), JSON_PATCH)
def test_json_patch(ops: list[Any], expected: Any) -> None:
    assert json_patch(DOC, ops) == expected
    assert DOC == {"a": {"b": [1, 2, 3]}, "c": "x", "d/e": 1}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/c", "value": "nope"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "add", "path": "/a/b/7", "value": 1}],
        [{"op": "add", "path": "/x/y", "value": 1}],
        [{"op": "frobnicate", "path": "/c"}],
        [{"path": "/c"}],
        {"op": "add"},
    ],
)
def test_json_patch_errors(ops: Any) -> None:
    with pytest.raises(PatchError):
        json_patch(DOC, ops)
