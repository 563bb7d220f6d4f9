"""Build one ObjectSet every way production and the oracle can, and insist they agree.

`build_every_way(objects, options)` runs the production builder (`DagBuilder`) cold, and warm as
an edit from two other prior states of the same store (half of the objects, then all; the other
half, then all), and the test oracle `reference_build`; every result must be equal (hosts,
routes, clusters, secrets, statuses, problems). Table rows call it instead of one builder, so each
row holds the incremental bookkeeping to the plain semantics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from controlplane.dag.builder import DagBuilder
from controlplane.dag.options import BuildOptions
from controlplane.dag.reference import reference_build
from controlplane.dag.types import DAG
from controlplane.model import KubeObject, ObjectSet, parse_object


def _half(objects: ObjectSet, keep: int) -> ObjectSet:
    """Every other object of each kind (by key), starting at `keep` (0 or 1)."""
    kept: dict[str, Mapping[Any, Any]] = {}
    for f in fields(ObjectSet):
        mapping: Mapping[Any, Any] = getattr(objects, f.name)
        kept[f.name] = {key: mapping[key] for key in sorted(mapping)[keep::2]}
    return ObjectSet(**kept)


def build_every_way(objects: ObjectSet, options: BuildOptions | None = None) -> DAG:
    """The DAG of `objects`, asserting that cold, warm and reference builds agree."""
    options = options or BuildOptions()
    expected = reference_build(objects, options)
    cold = DagBuilder().build(objects, options)
    assert cold == expected, "the cold build differs from the reference build"
    assert cold.clusters() == expected.clusters()
    assert cold.secrets() == expected.secrets()
    for keep in (0, 1):
        builder = DagBuilder()
        builder.build(_half(objects, keep), options)
        warm = builder.build(objects, options)
        assert warm == expected, f"an edit from half {keep} differs from the reference build"
        assert warm.clusters() == expected.clusters()
        assert warm.secrets() == expected.secrets()
    return cold


def build_manifests(
    manifests: Iterable[Mapping[str, Any]], options: BuildOptions | None = None
) -> DAG:
    """`build_every_way` of the objects the manifests (dicts) describe."""
    objects: list[KubeObject] = [parse_object(dict(raw)) for raw in manifests]
    return build_every_way(ObjectSet.from_objects(objects), options)
