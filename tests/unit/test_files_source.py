"""The file source: edits, additions and removals of manifests become store changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controlplane.sources.files import FileSource
from controlplane.store import Change, ChangeType, Store

SERVICE = """
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{name: http, port: {port}}}]
"""
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_initial_load_reads_multi_document_files_and_skips_other_kinds(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", NAMESPACE + "---" + SERVICE.format(name="a", port=80))
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "b.yml", SERVICE.format(name="b", port=81))
    write(tmp_path / "notes.txt", "not a manifest")
    store = Store()
    FileSource(tmp_path, store).load_all()
    assert sorted(k.name for k in store.keys("Service")) == ["a", "b"]


def test_reload_applies_edits_and_deletes_what_a_file_no_longer_declares(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    write(path, SERVICE.format(name="a", port=80) + "---" + SERVICE.format(name="b", port=80))
    store = Store()
    source = FileSource(tmp_path, store)
    source.load_all()
    changes: list[Change] = []
    store.subscribe(changes.append)
    write(path, SERVICE.format(name="a", port=90))
    source.reload(path)
    assert [(c.type, c.key.name) for c in changes] == [
        (ChangeType.MODIFIED, "a"),
        (ChangeType.DELETED, "b"),
    ]
    path.unlink()
    source.reload(path)
    assert store.keys("Service") == []


def test_a_half_saved_file_keeps_its_last_good_objects(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    write(path, SERVICE.format(name="a", port=80))
    store = Store()
    source = FileSource(tmp_path, store)
    source.load_all()
    write(path, "apiVersion: v1\nkind: Service\nmetadata: {name: [unclosed\n")
    source.reload(path)
    assert [k.name for k in store.keys("Service")] == ["a"]


async def test_watching_turns_file_edits_into_events_within_a_second(tmp_path: Path) -> None:
    store = Store()
    changes: asyncio.Queue[Change] = asyncio.Queue()
    store.subscribe(changes.put_nowait)
    synced, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(FileSource(tmp_path, store).run(synced, stop=stop))
    await asyncio.wait_for(synced.wait(), 5)
    await asyncio.sleep(0.2)  # let the watcher start before the first edit
    write(tmp_path / "new.yaml", SERVICE.format(name="fresh", port=80))
    added = await asyncio.wait_for(changes.get(), 1.0)
    (tmp_path / "new.yaml").unlink()
    deleted = await asyncio.wait_for(changes.get(), 1.0)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (added.type, added.key.name) == (ChangeType.ADDED, "fresh")
    assert (deleted.type, deleted.key.name) == (ChangeType.DELETED, "fresh")
