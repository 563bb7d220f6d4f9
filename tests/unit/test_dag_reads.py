"""What a unit of the builder reads is recorded by construction, and nothing escapes it."""

from __future__ import annotations

from dataclasses import field, fields, make_dataclass
from typing import Any

import pytest

from controlplane.dag.reads import (
    FACT_KINDS,
    OBJECT_KINDS,
    BuildInputs,
    Dependents,
    RecordingInputs,
    RecordingMapping,
)
from controlplane.model import ObjectSet


def test_every_input_of_a_unit_is_a_recording_mapping() -> None:
    view = RecordingInputs(BuildInputs(ObjectSet())).view
    assert set(OBJECT_KINDS) == {f.name for f in fields(ObjectSet)}
    assert set(FACT_KINDS) == {f.name for f in fields(BuildInputs)} - {"objects"}
    for kind in OBJECT_KINDS:
        assert isinstance(getattr(view.objects, kind), RecordingMapping), kind
    for kind in FACT_KINDS:
        assert isinstance(getattr(view, kind), RecordingMapping), kind


@pytest.mark.parametrize("kind", [*OBJECT_KINDS, *FACT_KINDS])
def test_every_way_of_reading_is_recorded(kind: str) -> None:
    key = ("ns", "name")
    inputs = BuildInputs(
        ObjectSet(**{k: ({key: object()} if k == kind else {}) for k in OBJECT_KINDS}),
        **{k: ({key: object()} if k == kind else {}) for k in FACT_KINDS},
    )
    recording = RecordingInputs(inputs)
    mapping = (
        getattr(recording.view.objects, kind)
        if kind in OBJECT_KINDS
        else getattr(recording.view, kind)
    )
    for read in (
        lambda m: m.get(key),
        lambda m: m[key],
        lambda m: key in m,
        lambda m: m.get(("other", "missing")),
    ):
        recording.start()
        read(mapping)
        reads = recording.stop()
        assert reads.keys.get(kind), f"{kind}: a keyed read was not recorded"
        dependents: Dependents[str] = Dependents()
        dependents.record("unit", reads)
        changed = {kind: [next(iter(reads.keys[kind]))]}
        assert dependents.affected(changed) == {"unit"}
    for read_whole in (list, len, lambda m: list(m.items()), lambda m: list(m.values())):
        recording.start()
        read_whole(mapping)
        assert recording.stop().whole == {kind}


def test_a_new_input_that_is_not_a_mapping_cannot_be_recorded() -> None:
    """Adding a cross-object fact the recording view cannot wrap (a callable, as `is_root` once
    was) fails: the builder would otherwise miss its changes."""
    extended: Any = make_dataclass(
        "ExtendedInputs",
        [("is_root", Any, field(default=lambda key: False))],
        bases=(BuildInputs,),
        frozen=True,
    )
    with pytest.raises(TypeError, match="is_root"):
        RecordingInputs(extended(ObjectSet()))
