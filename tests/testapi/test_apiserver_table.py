"""Server-side printing pieces: the AGE format and the JSONPath subset of printer columns."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controlplane.testing.apiserver_table import human_duration, json_path

AGES = [
    (timedelta(seconds=-5), "<invalid>"),
    (timedelta(seconds=-1), "0s"),
    (timedelta(seconds=0), "0s"),
    (timedelta(seconds=119), "119s"),
    (timedelta(minutes=2), "2m"),
    (timedelta(minutes=3, seconds=20), "3m20s"),
    (timedelta(minutes=10, seconds=20), "10m"),
    (timedelta(hours=2, minutes=59), "179m"),
    (timedelta(hours=3), "3h"),
    (timedelta(hours=7, minutes=30), "7h30m"),
    (timedelta(hours=8, minutes=30), "8h"),
    (timedelta(hours=47), "47h"),
    (timedelta(days=2), "2d"),
    (timedelta(days=3, hours=5), "3d5h"),
    (timedelta(days=8, hours=5), "8d"),
    (timedelta(days=730), "2y"),
    (timedelta(days=800), "2y70d"),
    (timedelta(days=365 * 9), "9y"),
]


@pytest.mark.parametrize(("age", "text"), AGES)
def test_human_duration(age: timedelta, text: str) -> None:
    assert human_duration(age) == text


OBJ = {
    "metadata": {"name": "n", "annotations": {"a.b/c": "v"}},
    "spec": {"routes": [{"match": "/"}, {"match": "/api"}], "virtualhost": {"fqdn": "x"}},
}
PATHS = [
    (".spec.virtualhost.fqdn", ["x"]),
    (".spec.routes[0].match", ["/"]),
    ("{.spec.routes[1].match}", ["/api"]),
    (".spec.routes[*].match", ["/", "/api"]),
    (".spec.routes[5].match", []),
    (".status.currentStatus", []),
    (".metadata.annotations['a.b/c']", ["v"]),
    ("garbage", []),
]


@pytest.mark.parametrize(("path", "found"), PATHS)
def test_json_path(path: str, found: list[Any]) -> None:
    assert json_path(OBJ, path) == found
