"""What a list or a watch of the test API server selects, and how an open watch sees each write.

- `label_selector` and `field_selector` turn the query's selectors into predicates over
  objects (a malformed selector is a 400 `ApiError`); an empty selector is `everything`, which
  `Store.list` recognises by identity to skip filtering.
- `WatchEvent` is one write as the store's history keeps it; a `Watcher` is one open watch: it
  filters the events by type, namespace and selectors, converts them to its API's form (a
  view such as `events.k8s.io/v1` Events) and queues them for its HTTP handler, reporting an
  update that moves an object into or out of its selection as ADDED or DELETED. `Dropped` on
  the queue ends the stream.

Pure but for the watcher's queue; the store decides what is offered and in which order.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.testing.apiserver_errors import ApiError

__all__ = [
    "Dropped",
    "Predicate",
    "WatchEvent",
    "Watcher",
    "everything",
    "field_selector",
    "label_selector",
]

JSON = dict[str, Any]

# --- selectors -------------------------------------------------------------------------------

Predicate = Callable[[JSON], bool]


def everything(obj: JSON) -> bool:
    """The predicate of an empty selector; `Store.list` recognises it by identity."""
    return True


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET_REQ = re.compile(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ_REQ = re.compile(r"^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$")
_EXISTS_REQ = re.compile(r"^(!?)\s*([\w./-]+)$")


def _requirement_holds(labels: dict[str, str], key: str, op: str, values: frozenset[str]) -> bool:
    if op in ("in", "=", "=="):
        return labels.get(key) in values
    if op in ("notin", "!="):
        return labels.get(key) not in values
    return (key in labels) == (op == "exists")


def label_selector(text: str | None) -> Predicate:
    """A predicate over objects for a label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`)."""
    requirements: list[tuple[str, str, frozenset[str]]] = []
    for part in _split_top_level(text or ""):
        if m := _SET_REQ.match(part):
            values = frozenset(v.strip() for v in m[3].split(",") if v.strip())
            requirements.append((m[1], m[2], values))
        elif m := _EQ_REQ.match(part):
            requirements.append((m[1], m[2], frozenset([m[3]])))
        elif m := _EXISTS_REQ.match(part):
            requirements.append((m[2], "absent" if m[1] else "exists", frozenset()))
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
    if not requirements:
        return everything

    def match(obj: JSON) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(_requirement_holds(labels, *r) for r in requirements)

    return match


def _field_value(obj: JSON, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def field_selector(text: str | None) -> Predicate:
    """A predicate for a field selector (`metadata.name=x,metadata.namespace!=y`); any dotted
    path is accepted, where the apiserver allows only a few per type."""
    requirements: list[tuple[str, bool, str]] = []
    for part in _split_top_level(text or ""):
        m = re.match(r"^([\w.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {part!r}")
        requirements.append((m[1], m[2] != "!=", m[3].strip()))
    if not requirements:
        return everything

    def match(obj: JSON) -> bool:
        return all(
            (_field_value(obj, path) == value) == equal for path, equal, value in requirements
        )

    return match


# --- watch -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchEvent:
    """One write, as the history keeps it: the object after it and, for a change, before it."""

    revision: int
    type: str
    key: tuple[str, str, str]
    object: JSON
    old: JSON | None


@dataclass(frozen=True)
class Dropped:
    """Queued to a watcher to end its stream: abruptly (connection reset) or like a timeout."""

    graceful: bool


class Watcher:
    """One open watch: a filter over the event stream and a queue its HTTP handler drains."""

    def __init__(
        self,
        key: tuple[str, str, str],
        namespace: str | None,
        labels: Predicate,
        fields: Predicate,
        convert: Callable[[JSON], JSON] | None = None,
    ) -> None:
        self.key, self.namespace, self._labels, self._fields = key, namespace, labels, fields
        self._convert = convert
        self.queue: asyncio.Queue[tuple[str, JSON] | Dropped] = asyncio.Queue()

    def matches(self, obj: JSON | None) -> bool:
        if obj is None:
            return False
        if (
            self.namespace is not None
            and obj.get("metadata", {}).get("namespace") != self.namespace
        ):
            return False
        return self._labels(obj) and self._fields(obj)

    def offer(self, event: WatchEvent) -> None:
        """Queue the event as this watcher sees it: an update that moves an object into or out
        of the selection is an ADDED or DELETED, as the apiserver reports it."""
        if event.key != self.key:
            return
        obj, old = event.object, event.old
        if self._convert is not None:
            obj, old = self._convert(obj), (None if old is None else self._convert(old))
        now, before = self.matches(obj), self.matches(old)
        if event.type == "MODIFIED":
            kind = {(True, True): "MODIFIED", (True, False): "ADDED", (False, True): "DELETED"}.get(
                (now, before)
            )
        else:
            kind = event.type if now else None
        if kind is not None:
            self.queue.put_nowait((kind, obj))
