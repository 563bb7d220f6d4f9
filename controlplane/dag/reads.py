"""What one unit of a build read from the ObjectSet: the dependencies of a cached result.

The incremental builder (`incremental.py`) caches the result of reading one object (an Ingress
turned into claims, an IngressRoute compiled) and must know when to throw it away. Rather than
trusting every reading function to declare what it looks at, the unit reads through a
`RecordingObjectSet`: an ObjectSet whose mappings note each key asked for (`get`, `[]`, `in`),
and note a whole kind as read when a unit iterates it or asks its size (the Ingress certificate
delegation check scans every TLSCertificateDelegation). A missing key is recorded like a present
one: the unit must be read again when that object appears.

Recording is exhaustive by construction: a reading function only ever sees the ObjectSet it is
given, so nothing it depends on can escape the record. One `RecordingObjectSet` serves a whole
build; `start()` begins the record of the next unit and `stop()` hands it back.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from controlplane.dag.types import SecureVirtualHost, VirtualHost
from controlplane.model import ObjectSet
from controlplane.model.objects import NamespacedName

V = TypeVar("V")

KINDS = (
    "services",
    "secrets",
    "ingresses",
    "ingress_classes",
    "ingress_routes",
    "certificate_delegations",
    "endpoint_slices",
    "endpoints",
)
"""The mapping fields of `ObjectSet`, which are also the kind names used in `Reads`."""


@dataclass(slots=True)
class Reads:
    """The keys one unit read, per ObjectSet field, and the fields it read whole."""

    keys: dict[str, set[NamespacedName]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)

    def key(self, kind: str, key: NamespacedName) -> None:
        found = self.keys.get(kind)
        if found is None:
            self.keys[kind] = {key}
        else:
            found.add(key)


class _Recorder:
    """The record being written; shared by the mappings of one RecordingObjectSet."""

    __slots__ = ("reads",)

    def __init__(self) -> None:
        self.reads = Reads()


class _RecordingMapping(Mapping[NamespacedName, V]):
    __slots__ = ("_kind", "_mapping", "_recorder")

    def __init__(self, mapping: Mapping[NamespacedName, V], kind: str, recorder: _Recorder):
        self._mapping = mapping
        self._kind = kind
        self._recorder = recorder

    def __getitem__(self, key: NamespacedName) -> V:
        self._recorder.reads.key(self._kind, key)
        return self._mapping[key]

    def get(self, key: NamespacedName, default: Any = None) -> Any:
        self._recorder.reads.key(self._kind, key)
        return self._mapping.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple):
            self._recorder.reads.key(self._kind, key)
        else:
            self._recorder.reads.whole.add(self._kind)
        return key in self._mapping

    def _whole(self) -> Mapping[NamespacedName, V]:
        self._recorder.reads.whole.add(self._kind)
        return self._mapping

    def __iter__(self) -> Iterator[NamespacedName]:
        return iter(self._whole())

    def __len__(self) -> int:
        return len(self._whole())

    def keys(self) -> KeysView[NamespacedName]:
        return self._whole().keys()

    def items(self) -> ItemsView[NamespacedName, V]:
        return self._whole().items()

    def values(self) -> ValuesView[V]:
        return self._whole().values()


class RecordingObjectSet:
    """An ObjectSet view (`view`) that records what is read from it, unit by unit."""

    __slots__ = ("_recorder", "view")

    def __init__(self, objects: ObjectSet) -> None:
        self._recorder = _Recorder()
        recorder = self._recorder
        self.view = ObjectSet(
            **{kind: _RecordingMapping(getattr(objects, kind), kind, recorder) for kind in KINDS}
        )

    def start(self) -> None:
        self._recorder.reads = Reads()

    def stop(self) -> Reads:
        reads, self._recorder.reads = self._recorder.reads, Reads()
        return reads

    def wrap(self, mapping: Mapping[NamespacedName, V], kind: str) -> Mapping[NamespacedName, V]:
        """`mapping` (something derived from the objects) recording its reads as `kind`."""
        return _RecordingMapping(mapping, kind, self._recorder)


U = TypeVar("U", bound=Hashable)


class Dependents(Generic[U]):
    """Reverse index of `Reads`: which units read an object (or a whole kind).

    `affected(changes)` is the set of units to read again after the objects in `changes`
    (kind → keys added, modified or deleted) changed; its cost follows the changes and the
    units that read them, never the number of objects.
    """

    __slots__ = ("_by_key", "_by_kind", "_reads")

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, NamespacedName], set[U]] = {}
        self._by_kind: dict[str, set[U]] = {}
        self._reads: dict[U, Reads] = {}

    def record(self, unit: U, reads: Reads) -> None:
        """`unit` now depends on `reads` (and no longer on what it read before)."""
        self.forget(unit)
        self._reads[unit] = reads
        for kind, keys in reads.keys.items():
            for key in keys:
                self._by_key.setdefault((kind, key), set()).add(unit)
        for kind in reads.whole:
            self._by_kind.setdefault(kind, set()).add(unit)

    def forget(self, unit: U) -> None:
        reads = self._reads.pop(unit, None)
        if reads is None:
            return
        for kind, keys in reads.keys.items():
            for key in keys:
                _discard(self._by_key, (kind, key), unit)
        for kind in reads.whole:
            _discard(self._by_kind, kind, unit)

    def affected(self, changes: Mapping[str, Collection[NamespacedName]]) -> set[U]:
        units: set[U] = set()
        for kind, keys in changes.items():
            if not keys:
                continue
            units.update(self._by_kind.get(kind, ()))
            for key in keys:
                found = self._by_key.get((kind, key))
                if found:
                    units.update(found)
        return units


K = TypeVar("K", bound=Hashable)


def _discard(index: dict[K, set[U]], key: K, unit: U) -> None:
    found = index.get(key)
    if found is not None:
        found.discard(unit)
        if not found:
            del index[key]


H = TypeVar("H", VirtualHost, SecureVirtualHost)


def replace_host(values: dict[str, H], host: str, value: H | None) -> bool:
    """Store `value` for `host` unless an equal value is there (which is kept); changed?"""
    old = values.get(host)
    if value is None:
        if old is None:
            return False
        del values[host]
        return True
    if old is not None and (old is value or old == value):
        return False
    values[host] = value
    return True


def discard(index: dict[K, set[NamespacedName]], key: K, value: NamespacedName) -> None:
    """Remove `value` from the set under `key`, and the key once its set is empty."""
    found = index.get(key)
    if found is not None:
        found.discard(value)
        if not found:
            del index[key]
