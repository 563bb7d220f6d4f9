"""`status_changes`: what the build listeners must look at, from two reports' statuses.

Table-driven on hand-made statuses (same objects, equal rebuilt values, changed values, objects
added, gone or swapped at the same length), then through the real warm DAG builder: editing one
of many IngressRoutes changes exactly its status, and the rest keep their very objects, which is
what makes the identity pass find it.
"""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.dag import DagBuilder, ObjectStatus
from controlplane.model import IngressRouteStatus, ObjectSet, parse_object
from controlplane.publisher import NO_STATUS_CHANGES, StatusChanges, status_changes


def status(name: str, current: str = "valid", description: str = "ok") -> ObjectStatus:
    return ObjectStatus(
        "IngressRoute",
        "default",
        name,
        IngressRouteStatus(current_status=current, description=description),
    )


A, B, C, D = status("a"), status("b"), status("c"), status("d")
B_INVALID = status("b", "invalid", "Service [s:80] is invalid or missing")


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param((A, B, C), None, NO_STATUS_CHANGES, id="the very same tuple"),
        pytest.param((A, B, C), (A, B, C), NO_STATUS_CHANGES, id="the same objects"),
        pytest.param((A, B, C), (A, status("b"), C), NO_STATUS_CHANGES, id="rebuilt equal"),
        pytest.param((A, B, C), (A, B_INVALID, C), StatusChanges((B_INVALID,)), id="one changed"),
        pytest.param((), (A, B), StatusChanges((A, B)), id="first report: all"),
        pytest.param((A, C), (A, B, C), StatusChanges((B,)), id="one added"),
        pytest.param(
            (A, B, C), (A, C), StatusChanges((), (("IngressRoute", "default", "b"),)), id="gone"
        ),
        pytest.param(
            (A, B, C),
            (A, C, D),
            StatusChanges((D,), (("IngressRoute", "default", "b"),)),
            id="one gone, one added: the same length",
        ),
        pytest.param(
            (A, B, C, D),
            (A, C, D),
            StatusChanges((), (B.key,)),
            id="gone between a head and a tail",
        ),
        pytest.param((A, B), (A, B, C), StatusChanges((C,)), id="added at the end"),
        pytest.param((B, C), (A, B, C), StatusChanges((A,)), id="added at the start"),
        pytest.param((A, B, C), (B, C), StatusChanges((), (A.key,)), id="gone from the start"),
        pytest.param(
            (A, B, C, D),
            (A, B_INVALID, D),
            StatusChanges((B_INVALID,), (C.key,)),
            id="changed and gone between a head and a tail",
        ),
        pytest.param(
            (A, B, C),
            (A, B_INVALID, D),
            StatusChanges((B_INVALID, D), (("IngressRoute", "default", "c"),)),
            id="changed, gone and added",
        ),
    ],
)
def test_status_changes(
    before: tuple[ObjectStatus, ...],
    after: tuple[ObjectStatus, ...] | None,
    expected: StatusChanges,
) -> None:
    found = status_changes(before, before if after is None else after)
    assert found == expected
    assert bool(found) == bool(expected.changed or expected.removed)


def root(name: str, service: str, generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default", "generation": generation},
        "spec": {
            "virtualhost": {"fqdn": f"{name}.example.com"},
            "routes": [{"match": "/", "services": [{"name": service, "port": 80}]}],
        },
    }


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"ports": [{"port": 80}]},
}


def test_one_edit_among_many_is_one_change_through_the_warm_builder() -> None:
    raws = [SERVICE, *(root(f"r{i}", "web") for i in range(200))]
    builder = DagBuilder()
    first = builder.build(ObjectSet.from_objects(parse_object(raw) for raw in raws)).statuses
    assert len(first) == 200 and {s.current_status for s in first} == {"valid"}

    raws[1 + 7] = root("r7", "missing", generation=2)  # its Service is not there: invalid
    second = builder.build(ObjectSet.from_objects(parse_object(raw) for raw in raws)).statuses

    changes = status_changes(first, second)
    assert [(s.name, s.current_status) for s in changes.changed] == [("r7", "invalid")]
    assert changes.removed == ()
    assert sum(old is not new for old, new in zip(first, second, strict=True)) == 1
