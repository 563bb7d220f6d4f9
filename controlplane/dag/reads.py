"""What one unit of a build may read, and the record of what it did read.

The builder (`builder.py`) caches the result of reading one object (an Ingress turned into
claims, an IngressRoute compiled) and must know when to throw it away. Rather than trusting every
reading function to declare what it looks at, a unit gets its inputs only as `BuildInputs`: the
ObjectSet plus the facts derived from it across objects (which IngressRoutes are roots, who may
use which certificate). `RecordingInputs` wraps *every* mapping of a `BuildInputs`, generically
over the dataclass fields, so each key asked for (`get`, `[]`, `in`) is noted under the field's
name, and a whole field is noted as read when a unit iterates it or asks its size (the Ingress
certificate delegation check scans every TLSCertificateDelegation). A missing key is recorded
like a present one: the unit must be read again when that key appears.

Recording is exhaustive by construction: a reading function only ever sees the inputs it is
given, and a field that is not a mapping cannot be wrapped, so `RecordingInputs` refuses it
(tests/unit/test_dag_reads.py adds a field and watches it fail). A new cross-object fact is a
new mapping field of `BuildInputs`, and the builder reports its changed keys like any other
kind. One `RecordingInputs` serves a whole build; `start()` begins the record of the next unit
and `stop()` hands it back.
"""

from __future__ import annotations

from collections.abc import (
    Collection,
    Hashable,
    ItemsView,
    Iterator,
    KeysView,
    Mapping,
    ValuesView,
)
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from controlplane.dag.types import SecureVirtualHost, VirtualHost
from controlplane.model import IngressRoute, NamespacedName, ObjectSet

V = TypeVar("V")

OBJECT_KINDS = tuple(f.name for f in fields(ObjectSet))
"""The mapping fields of `ObjectSet`, which are also the kind names used in `Reads`."""


@dataclass(frozen=True, slots=True)
class BuildInputs:
    """Everything one unit of a build may read: the objects, and facts across them.

    Every field but `objects` is a mapping keyed by (namespace, name); `objects`' fields are too.
    """

    objects: ObjectSet
    roots: Mapping[NamespacedName, IngressRoute] = field(default_factory=dict)
    """IngressRoutes of our class that are roots (a delegation to one is refused)."""
    certificate_targets: Mapping[NamespacedName, frozenset[str]] = field(default_factory=dict)
    """(namespace, secret name) → namespaces TLSCertificateDelegations share it with (or `*`)."""


FACT_KINDS = tuple(f.name for f in fields(BuildInputs) if f.name != "objects")
"""The derived facts of `BuildInputs`, recorded under their field names."""


def certificate_targets(objects: ObjectSet) -> dict[NamespacedName, frozenset[str]]:
    """Who may use which Secret, from every TLSCertificateDelegation."""
    targets: dict[NamespacedName, set[str]] = {}
    for (namespace, _), delegation in sorted(objects.certificate_delegations.items()):
        for entry in delegation.spec.delegations:
            found = targets.setdefault((namespace, entry.secret_name), set())
            found.update(entry.target_namespaces)
    return {key: frozenset(value) for key, value in targets.items()}


@dataclass(slots=True)
class Reads:
    """The keys one unit read, per input kind, and the kinds it read whole."""

    keys: dict[str, set[NamespacedName]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)

    def key(self, kind: str, key: NamespacedName) -> None:
        found = self.keys.get(kind)
        if found is None:
            self.keys[kind] = {key}
        else:
            found.add(key)


class _Recorder:
    """The record being written; shared by the mappings of one RecordingInputs."""

    __slots__ = ("reads",)

    def __init__(self) -> None:
        self.reads = Reads()


class RecordingMapping(Mapping[NamespacedName, V]):
    """A read-only mapping that notes every read in its recorder, under `kind`."""

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


def _recording(value: object, kind: str, recorder: _Recorder) -> RecordingMapping[Any]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"BuildInputs.{kind} is a {type(value).__name__}, not a mapping: its reads could "
            "not be recorded, so the builder would miss changes to it"
        )
    return RecordingMapping(value, kind, recorder)


class RecordingInputs:
    """A `BuildInputs` view (`view`) that records what is read from it, unit by unit."""

    __slots__ = ("_recorder", "view")

    def __init__(self, inputs: BuildInputs) -> None:
        self._recorder = _Recorder()
        recorder = self._recorder
        objects = ObjectSet(
            **{
                kind: _recording(getattr(inputs.objects, kind), kind, recorder)
                for kind in OBJECT_KINDS
            }
        )
        facts = {
            f.name: _recording(getattr(inputs, f.name), f.name, recorder)
            for f in fields(inputs)
            if f.name != "objects"
        }
        self.view = type(inputs)(objects, **facts)

    def start(self) -> None:
        self._recorder.reads = Reads()

    def stop(self) -> Reads:
        reads, self._recorder.reads = self._recorder.reads, Reads()
        return reads


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
        if not self._reads:  # nothing recorded yet (a cold build): nothing to look up
            return units
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


def in_store_order(keys: Collection[K], store: Mapping[K, object]) -> Collection[K]:
    """`keys` (a set, in hash order) in the order of `store` instead, then those not in it,
    when they are a good part of it (a cold build: all of it). Every step of a build is the
    same in any order; the store's is the order objects were parsed, so objects read together
    (a root, its delegate, their Service) sit together in memory, and a walk in hash order over
    100,000s of them pays a cache miss for nearly every object it touches first."""
    if len(keys) < 256 or len(keys) * 2 < len(store):
        return keys
    ordered = [key for key in store if key in keys]
    if len(ordered) < len(keys):
        ordered += [key for key in keys if key not in store]
    return ordered


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
