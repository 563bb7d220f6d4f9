"""Immutable snapshots of Envoy resources, each encoded once and versioned by content.

Design (ARCHITECTURE §4.1, §4.2):

- A :class:`Resource` is serialized exactly once, deterministically. Its ``version`` is a short
  hash of those bytes, so an unchanged object has an unchanged version no matter how many times
  the translator rebuilds it. Alongside the body it keeps ``any_field``: the resource already
  framed as one element of ``DiscoveryResponse.resources`` (field 2, an ``Any`` with this type's
  URL). Responses are then byte concatenations, and the same bytes go to every stream.
- A :class:`Snapshot` maps type URL → name → Resource. It is never mutated: ``with_changes``
  returns a copy that shares every other type's table, which is how the EDS fast path replaces a
  few ClusterLoadAssignments without touching listeners, routes or clusters.
- A type's version is an order-independent set hash: the XOR of a 64-bit hash of every
  ``(name, version)`` pair. It is stable across processes (blake2b is unsalted), equal for equal
  contents however they were built, and ``with_changes`` updates it in O(changes) instead of
  re-hashing the whole type.

Invariant: every Resource in ``snapshot.resources(t)`` has ``type_url == t`` and is stored under
its own name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol, TypeVar

from envoy.config.endpoint.v3 import endpoint_pb2

from controlplane.protowire import field_bytes, field_str
from controlplane.typeurls import CLUSTER_TYPE, ENDPOINT_TYPE

__all__ = ["Resource", "Snapshot", "empty_load_assignment", "set_hash", "version_of"]

_RESOURCES_FIELD = 2  # DiscoveryResponse.resources (and Resource.resource in delta xDS)
_ANY_TYPE_URL = 1
_ANY_VALUE = 2
# Distinct keys remembered per table before starting over: a fleet shares a few subscriptions,
# and each entry may hold a response's worth of bytes.
_DERIVED_LIMIT: Final = 8
_T = TypeVar("_T")


class _Message(Protocol):
    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


def version_of(body: bytes) -> str:
    """The content version of an encoded resource: 8 bytes of blake2b, hex."""
    return hashlib.blake2b(body, digest_size=8).hexdigest()


def _entry_hash(name: str, version: str) -> int:
    digest = hashlib.blake2b(f"{name}\0{version}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def set_hash(entries: Iterable[tuple[str, str]]) -> str:
    """Order-independent version of a set of ``(name, version)`` pairs."""
    acc = 0
    for name, version in entries:
        acc ^= _entry_hash(name, version)
    return f"{acc:016x}"


@dataclass(frozen=True, slots=True)
class Resource:
    """One encoded Envoy resource: its bytes, its content version and its response framing."""

    type_url: str
    name: str
    version: str
    body: bytes
    any_field: bytes = field(repr=False)
    eds_name: str | None = None
    """For a Cluster of type EDS: the ClusterLoadAssignment it subscribes to. The publisher
    knows it from the DAG; the server uses it to send a changed cluster's endpoints with it."""

    @classmethod
    def from_body(
        cls, type_url: str, name: str, body: bytes, *, eds_name: str | None = None
    ) -> Resource:
        any_message = field_str(_ANY_TYPE_URL, type_url) + field_bytes(_ANY_VALUE, body)
        return cls(
            type_url=type_url,
            name=name,
            version=version_of(body),
            body=body,
            any_field=field_bytes(_RESOURCES_FIELD, any_message),
            eds_name=eds_name,
        )

    @classmethod
    def encode(
        cls, type_url: str, name: str, message: _Message, *, eds_name: str | None = None
    ) -> Resource:
        return cls.from_body(
            type_url, name, message.SerializeToString(deterministic=True), eds_name=eds_name
        )


def empty_load_assignment(name: str) -> Resource:
    """A ClusterLoadAssignment with no endpoints, so an EDS cluster finishes warming."""
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    return Resource.encode(ENDPOINT_TYPE, name, cla)


class _TypeTable:
    """The resources of one type, with their set hash and lazily derived facts."""

    __slots__ = (
        "_derived",
        "_eds_names",
        "_eds_wanted",
        "_empties",
        "_encoded",
        "_versions",
        "acc",
        "resources",
        "version",
    )

    def __init__(self, resources: dict[str, Resource], acc: int) -> None:
        self.resources: Mapping[str, Resource] = MappingProxyType(resources)
        self.acc = acc
        self.version = f"{acc:016x}"
        self._eds_names: Mapping[str, str] | None = None
        self._encoded: bytes | None = None
        self._eds_wanted: frozenset[str] | None = None
        self._versions: Mapping[str, str] | None = None
        self._empties: dict[str, Resource] | None = None
        self._derived: dict[object, object] | None = None

    def derived(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        # Bounded: the keys are the few distinct subscriptions of one deployment's Envoys.
        derived = self._derived
        if derived is None:
            derived = self._derived = {}
        if key in derived:
            return derived[key]  # type: ignore[return-value]  # stored by compute() below
        if len(derived) >= _DERIVED_LIMIT:
            derived.clear()
        value = derived[key] = compute()
        return value

    def versions(self) -> Mapping[str, str]:
        if self._versions is None:
            self._versions = MappingProxyType({n: r.version for n, r in self.resources.items()})
        return self._versions

    def encoded(self) -> bytes:
        # Every wildcard stream sends the same full set: join it once per table.
        if self._encoded is None:
            self._encoded = b"".join(r.any_field for r in self.resources.values())
        return self._encoded

    def eds_names(self) -> Mapping[str, str]:
        # Once per table; only CDS tables are ever asked, and their tables are shared by every
        # snapshot until the clusters change.
        if self._eds_names is None:
            self._eds_names = MappingProxyType(
                {n: r.eds_name for n, r in self.resources.items() if r.eds_name is not None}
            )
        return self._eds_names

    def empty_assignment(self, name: str) -> Resource:
        # Shared by every stream that asks for a name this (EDS) table lacks.
        if self._empties is None:
            self._empties = {}
        resource = self._empties.get(name)
        if resource is None:
            resource = self._empties[name] = empty_load_assignment(name)
        return resource

    def eds_wanted(self) -> frozenset[str]:
        if self._eds_wanted is None:
            self._eds_wanted = frozenset(self.eds_names().values())
        return self._eds_wanted


_EMPTY = _TypeTable({}, 0)


class Snapshot:
    """An immutable mapping type URL → name → :class:`Resource`."""

    __slots__ = ("_tables",)

    def __init__(self, tables: Mapping[str, _TypeTable]) -> None:
        self._tables = dict(tables)

    @classmethod
    def build(
        cls,
        resources: Mapping[str, Iterable[Resource] | Mapping[str, Resource | bytes]],
    ) -> Snapshot:
        """A snapshot from, per type URL, Resources or a mapping name → Resource or encoded body."""
        tables: dict[str, _TypeTable] = {}
        for type_url, items in resources.items():
            values: Iterable[Resource]
            if isinstance(items, Mapping):
                values = [
                    Resource.from_body(type_url, name, item) if isinstance(item, bytes) else item
                    for name, item in items.items()
                ]
            else:
                values = items
            by_name: dict[str, Resource] = {}
            acc = 0
            for resource in values:
                _check(type_url, resource)
                if resource.name in by_name:
                    raise ValueError(f"duplicate {type_url} resource {resource.name!r}")
                by_name[resource.name] = resource
                acc ^= _entry_hash(resource.name, resource.version)
            tables[type_url] = _TypeTable(by_name, acc)
        return cls(tables)

    @property
    def type_urls(self) -> frozenset[str]:
        return frozenset(self._tables)

    def resources(self, type_url: str) -> Mapping[str, Resource]:
        return self._tables.get(type_url, _EMPTY).resources

    def version(self, type_url: str) -> str:
        return self._tables.get(type_url, _EMPTY).version

    def eds_names(self) -> Mapping[str, str]:
        """Cluster name → the EDS name it subscribes to, for the clusters of type EDS."""
        return self._tables.get(CLUSTER_TYPE, _EMPTY).eds_names()

    def versions(self, type_url: str) -> Mapping[str, str]:
        """Name → version for the type; computed once and shared by every stream."""
        return self._tables.get(type_url, _EMPTY).versions()

    def version_with(self, type_url: str, extra: Mapping[str, str]) -> str:
        """The version of the type's resources plus ``extra`` (name → version of names it lacks)."""
        acc = self._tables.get(type_url, _EMPTY).acc
        for name, version in extra.items():
            acc ^= _entry_hash(name, version)
        return f"{acc:016x}"

    def empty_assignment(self, name: str) -> Resource:
        """An empty ClusterLoadAssignment for ``name``, built once per snapshot's EDS table."""
        table = self._tables.get(ENDPOINT_TYPE)
        return table.empty_assignment(name) if table is not None else empty_load_assignment(name)

    def eds_wanted(self) -> frozenset[str]:
        """The EDS names that some cluster of this snapshot subscribes to."""
        return self._tables.get(CLUSTER_TYPE, _EMPTY).eds_wanted()

    def derived(self, type_url: str, key: Hashable, compute: Callable[[], _T]) -> _T:
        """``compute()``, remembered under ``key`` for as long as the type's resources last.

        A type's table is shared by every snapshot until that type changes, so a fact derived
        from its resources alone (what a whole subscription is answered with) is computed once
        per change, however many streams ask. ``compute`` must depend on nothing but this
        type's resources and ``key``.
        """
        table = self._tables.get(type_url)
        return compute() if table is None else table.derived(key, compute)

    def encoded_resources(self, type_url: str) -> bytes:
        """Every resource of the type framed as ``DiscoveryResponse.resources``, joined once."""
        return self._tables.get(type_url, _EMPTY).encoded()

    def with_changes(self, type_url: str, changes: Mapping[str, Resource | None]) -> Snapshot:
        """A copy with ``changes`` applied to one type (``None`` removes); other types shared."""
        old = self._tables.get(type_url, _EMPTY)
        resources = dict(old.resources)
        acc = old.acc
        for name, resource in changes.items():
            previous = resources.pop(name, None)
            if previous is not None:
                acc ^= _entry_hash(name, previous.version)
            if resource is not None:
                _check(type_url, resource)
                if resource.name != name:
                    raise ValueError(f"resource {resource.name!r} stored under {name!r}")
                resources[name] = resource
                acc ^= _entry_hash(name, resource.version)
        tables = dict(self._tables)
        tables[type_url] = _TypeTable(resources, acc)
        return Snapshot(tables)

    def changed_names(self, other: Snapshot, type_url: str) -> frozenset[str]:
        """Names of ``type_url`` whose resource differs between ``other`` and this snapshot."""
        mine, theirs = self._tables.get(type_url, _EMPTY), other._tables.get(type_url, _EMPTY)
        if mine is theirs or mine.version == theirs.version:
            return frozenset()
        new, old = mine.resources, theirs.resources
        changed = {n for n, r in new.items() if (p := old.get(n)) is None or p.version != r.version}
        changed.update(n for n in old if n not in new)
        return frozenset(changed)

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{t.rsplit('.', 1)[-1]}={len(tb.resources)}" for t, tb in self._tables.items()
        )
        return f"Snapshot({counts})"


def _check(type_url: str, resource: Resource) -> None:
    if resource.type_url != type_url:
        raise ValueError(f"{resource.type_url} resource {resource.name!r} filed under {type_url}")
