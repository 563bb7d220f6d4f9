"""A directory of YAML manifests as a source of objects, watched for changes.

`controlplane serve --manifests DIR` (and `make demo`) run with no cluster: every `*.yaml`, `*.yml`
and `*.json` file under DIR (recursively; multi-document files too) is loaded into the store, and
the directory is watched with `watchfiles`: a file edited, added or removed becomes add, update or
delete events within a second.

Invariants:
- Each file owns the objects it declared. Re-reading a file applies what it declares now and
  deletes what it declared before but no longer does; removing the file deletes them all.
- A file that is not valid YAML keeps its last good objects (logged with the file and the reason):
  a half-saved edit never takes routes down. A malformed object is logged and skipped alone.
- Kinds we do not read (Namespace, Deployment, ...) are skipped quietly, so whole application
  manifests can live in the directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog
import yaml
from watchfiles import Change as FileChange
from watchfiles import awatch

from controlplane.model import ObjectKey, model_type_for
from controlplane.store import Store

log = structlog.get_logger(__name__)

SUFFIXES = frozenset({".yaml", ".yml", ".json"})


def manifest_files(directory: Path) -> list[Path]:
    """Every YAML or JSON manifest under `directory`, sorted by path."""
    return sorted(
        path
        for path in directory.rglob("*")
        if path.suffix in SUFFIXES and path.is_file() and not path.name.startswith(".")
    )


def read_documents(path: Path) -> list[Mapping[str, Any]]:
    """Every object in a YAML/JSON file, `List` kinds unpacked. Raises yaml.YAMLError/OSError."""
    documents: list[Mapping[str, Any]] = []
    with path.open(encoding="utf-8") as stream:
        for document in yaml.safe_load_all(stream):
            documents.extend(_unpack(document))
    return documents


def _unpack(document: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(document, Mapping):
        return
    if str(document.get("kind", "")).endswith("List") and isinstance(document.get("items"), list):
        for item in document["items"]:
            yield from _unpack(item)
    else:
        yield document


class FileSource:
    """A directory of manifests, loaded into the store and followed for edits (see above)."""

    def __init__(self, directory: str | Path, store: Store) -> None:
        self.directory = Path(directory)
        self._store = store
        self._owned: dict[Path, set[ObjectKey]] = {}

    def load_all(self) -> None:
        """Read every manifest once (the initial list)."""
        for path in manifest_files(self.directory):
            self.reload(path)
        log.info("files.loaded", directory=str(self.directory), objects=len(self._store))

    def reload(self, path: Path) -> None:
        """Bring the store in line with what `path` declares now (nothing, if it is gone)."""
        if path.exists():
            try:
                documents = read_documents(path)
            except (yaml.YAMLError, OSError, UnicodeDecodeError) as error:
                log.warning("files.unreadable", file=str(path), reason=str(error).splitlines()[0])
                return
        else:
            documents = []
        declared: set[ObjectKey] = set()
        for raw in documents:
            api_version, kind = str(raw.get("apiVersion", "")), str(raw.get("kind", ""))
            if model_type_for(api_version, kind) is None:
                # Reported, never dropped silently (a Deployment beside the routes is common).
                log.info(
                    "files.object_not_read",
                    file=str(path),
                    api_version=api_version,
                    kind=kind,
                    name=str(meta.get("name", ""))
                    if isinstance(meta := raw.get("metadata"), Mapping)
                    else "",
                )
                continue
            obj = self._store.parse(raw, source=str(path))
            if obj is None:
                continue
            declared.add(ObjectKey.of(obj))
            self._store.apply(obj)
        for key in self._owned.get(path, set()) - declared:
            self._store.delete(key.kind, key.namespace, key.name)
        if declared:
            self._owned[path] = declared
        else:
            self._owned.pop(path, None)

    async def run(self, synced: asyncio.Event, *, stop: asyncio.Event | None = None) -> None:
        """Load everything, signal `synced`, then follow the directory until cancelled."""
        self.load_all()
        synced.set()
        # A change is handed on after 10 ms without another (`step`; 50 ms cost every edit
        # 60 ms, issue 13), a burst after at most 100 ms (`debounce`); a half-saved file keeps
        # its last good objects, so an editor's several writes need no longer wait.
        async for changes in awatch(
            self.directory, debounce=100, step=10, stop_event=stop, recursive=True
        ):
            for path in sorted({Path(name) for _, name in changes}):
                if path.suffix not in SUFFIXES or path.name.startswith("."):
                    continue
                kinds = {kind for kind, name in changes if Path(name) == path}
                log.info(
                    "files.changed",
                    file=str(path),
                    change=",".join(sorted(FileChange(k).name for k in kinds)),
                )
                self.reload(path)
