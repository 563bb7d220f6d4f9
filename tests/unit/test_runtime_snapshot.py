"""The runtime publishes, after any sequence of edits, exactly what a from-scratch build and
translation of the same objects would: the incremental paths (DAG, translator, snapshot diff,
EDS fast path) only save work, never change the result."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from waiting import eventually

from controlplane.dag.options import BuildOptions
from controlplane.dag.reference import reference_build
from controlplane.envoy.incremental import IncrementalTranslator
from controlplane.envoy.translate import TranslateOptions
from controlplane.runtime import Runtime
from controlplane.sources.files import FileSource, manifest_files, read_documents
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.snapshot import Snapshot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Raw = dict[str, Any]


def raw_objects() -> dict[tuple[str, str, str], Raw]:
    found = {}
    for path in manifest_files(EXAMPLES):
        for raw in read_documents(path):
            meta = raw.get("metadata", {})
            found[(raw["kind"], meta.get("namespace", "default"), meta["name"])] = dict(raw)
    return found


def versions(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    return {t: dict(snapshot.versions(t)) for t in sorted(snapshot.type_urls)}


def from_scratch(runtime: Runtime) -> dict[str, dict[str, str]]:
    objects = runtime.store.object_set()
    dag = reference_build(objects, runtime.build_options)
    translated = IncrementalTranslator(TranslateOptions()).translate(dag, objects)
    return versions(Snapshot.build(translated))


def edit(kind: str, namespace: str, name: str, change: Callable[[Raw], None]) -> Any:
    def apply(runtime: Runtime, objects: dict[tuple[str, str, str], Raw]) -> None:
        raw = copy.deepcopy(objects[(kind, namespace, name)])
        change(raw)
        objects[(kind, namespace, name)] = raw
        runtime.store.apply_raw(raw)

    return apply


def delete(kind: str, namespace: str, name: str) -> Any:
    def apply(runtime: Runtime, objects: dict[tuple[str, str, str], Raw]) -> None:
        runtime.store.delete(kind, namespace, name)

    return apply


def set_port(port: int) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        raw["ports"][0]["port"] = port

    return change


def not_ready(raw: Raw) -> None:
    raw["endpoints"][0]["conditions"]["ready"] = False


def retarget_kuard(raw: Raw) -> None:
    raw["spec"]["routes"][0]["services"][0]["name"] = "echo"


def rename_host(raw: Raw) -> None:
    raw["spec"]["rules"][0]["host"] = "renamed.local"


STEPS = [
    edit("EndpointSlice", "default", "kuard-1", set_port(9111)),  # EDS fast path
    edit("IngressRoute", "default", "kuard", retarget_kuard),
    edit("Ingress", "default", "kuard", rename_host),
    edit("EndpointSlice", "blog", "blog-1", not_ready),
    delete("Secret", "platform", "www-tls"),  # the root turns invalid: its hosts go
    delete("Service", "default", "echo"),
    delete("IngressRoute", "shop", "shop"),
]


@pytest.mark.parametrize("steps", [STEPS, list(reversed(STEPS))], ids=["forward", "reverse"])
async def test_every_published_snapshot_equals_a_from_scratch_build(steps: list[Any]) -> None:
    runtime = Runtime(
        build_options=BuildOptions(), translate_options=TranslateOptions(), cache=SnapshotCache()
    )
    FileSource(EXAMPLES, runtime.store).load_all()
    runtime.source_synced_event().set()
    await eventually(lambda: runtime.synced)  # endpoint edits take the fast path from now on
    await runtime.rebuild()
    objects = raw_objects()
    assert objects, "the examples are the starting point"
    assert runtime.cache.current is not None
    assert versions(runtime.cache.current) == from_scratch(runtime)
    for step in steps:
        step(runtime, objects)
        await runtime.rebuild()
        assert versions(runtime.cache.current) == from_scratch(runtime)
