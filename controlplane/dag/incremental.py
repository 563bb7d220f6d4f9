"""`IncrementalBuilder`: `build()` again after a few objects changed, at the cost of the change.

ARCHITECTURE.md §4.3: the cost of one object changing must not grow with the number of objects.
`IncrementalBuilder().build(objects, options)` always returns a DAG equal (`==`) to
`builder.build(objects, options)`; it only avoids redoing work whose inputs did not change, and
hands back the very same DAG values (virtual hosts, routes, clusters, statuses) for everything
that did not change, which is what the translator's identity cache keys on.

How it knows what changed. ObjectSet objects are immutable and the store keeps an object until
it changes, so a key whose object is not the very object seen last time has changed (an equal
copy counts as a change; that costs work, never correctness). Each build diffs the ObjectSet's
mappings against the previous ones by identity, at C speed (`_changed_keys`); that diff is the
one pass over every object left, a few microseconds per thousand objects.

What is cached, and when it is thrown away:
- per Ingress: its reading (claims, problems); per host: the settled virtual hosts
  (`incremental_ingress.py`);
- per IngressRoute: its compilation; per fqdn: the owning root; per group of roots sharing
  objects: the delegation walk; per object: its status (`incremental_ingressroute.py`).
Every cached reading records the keys it read from the ObjectSet (`reads.py`) and is redone
when one of them changed. The build options are part of every result: new options, new cache.

Then the two halves are merged host by host as `builder.build` merges them (an IngressRoute
host wins; the Ingress's loss is a Problem), only for the hosts either half changed; the
sorted host and status tuples are kept as sorted lists, updated by bisection, and turned into
tuples (a C-speed copy) only when something in them changed. A build in which nothing changed
returns the previous DAG itself.

The builder holds explicit state and no clock or I/O; it is as pure as `build` in what it
returns, and must be fed ObjectSets of one store (or any sequence: a brand-new set only costs a
full build).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Mapping
from itertools import compress
from operator import is_not
from typing import TYPE_CHECKING, Generic, TypeVar

from controlplane.dag.incremental_derived import Derived
from controlplane.dag.incremental_ingress import IngressPart
from controlplane.dag.incremental_ingressroute import IngressRoutePart
from controlplane.dag.ingress import host_order
from controlplane.dag.options import BuildOptions
from controlplane.dag.reads import KINDS, RecordingObjectSet
from controlplane.dag.types import DAG, ObjectStatus, Problem, SecureVirtualHost, VirtualHost
from controlplane.model import ObjectSet
from controlplane.model.objects import NamespacedName

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

__all__ = ["IncrementalBuilder"]

_DAG_KINDS = tuple(kind for kind in KINDS if kind not in ("endpoint_slices", "endpoints"))
"""The ObjectSet fields a DAG build reads (endpoints are the translator's business)."""

K = TypeVar("K", bound=Hashable)
S = TypeVar("S", bound="SupportsRichComparison")
V = TypeVar("V")


def _changed_keys(old: Mapping[K, object] | None, new: Mapping[K, object]) -> set[K]:
    """Keys added, deleted, or bound to another object in `new` than in `old`.

    The store changes an object in place in its dict, so the keys of two successive sets are
    usually the same, in the same order: then the values are compared by position, which
    (like the key lists' comparison, thanks to the identity shortcut) runs at C speed.
    """
    if old is new:
        return set()
    if old is None:
        return set(new)
    if len(old) == len(new):
        keys = list(new)
        if keys == list(old):
            return set(compress(keys, map(is_not, new.values(), old.values())))
    changed = {key for key, value in new.items() if old.get(key) is not value}
    changed.update(key for key in old if key not in new)
    return changed


class _SortedValues(Generic[K, S, V]):
    """Values by key, also kept as a list sorted by `order(key)`; `values()` is a cached tuple."""

    def __init__(self, order: Callable[[K], S]) -> None:
        self._order = order
        self._keys: list[S] = []
        self._values: list[V] = []
        self._by_key: dict[K, V] = {}
        self._tuple: tuple[V, ...] | None = ()

    def get(self, key: K) -> V | None:
        return self._by_key.get(key)

    def set(self, key: K, value: V | None) -> None:
        old = self._by_key.get(key)
        if old is value:
            return
        self._tuple = None
        position = bisect_left(self._keys, self._order(key))
        if value is None:
            del self._by_key[key]
            del self._keys[position]
            del self._values[position]
        elif old is None:
            self._by_key[key] = value
            self._keys.insert(position, self._order(key))
            self._values.insert(position, value)
        else:
            self._by_key[key] = value
            self._values[position] = value

    def values(self) -> tuple[V, ...]:
        if self._tuple is None:
            self._tuple = tuple(self._values)
        return self._tuple


def _status_order(key: NamespacedName) -> NamespacedName:
    return key


class IncrementalBuilder:
    """Builds DAGs one after another, redoing only what the changed objects affect."""

    def __init__(self) -> None:
        self._options: BuildOptions | None = None
        self._objects: ObjectSet | None = None
        self._dag = DAG()
        self._reset(BuildOptions())

    def _reset(self, options: BuildOptions) -> None:
        self._options = options
        self._objects = None
        self._ingresses = IngressPart(options)
        self._routes = IngressRoutePart(options)
        self._plain: _SortedValues[str, tuple[bool, str], VirtualHost] = _SortedValues(host_order)
        self._secure: _SortedValues[str, tuple[bool, str], SecureVirtualHost] = _SortedValues(
            host_order
        )
        self._statuses: _SortedValues[NamespacedName, NamespacedName, ObjectStatus] = _SortedValues(
            _status_order
        )
        self._derived = Derived()
        self._conflicts: dict[str, set[str]] = {"HTTP": set(), "HTTPS": set()}
        self._conflict_problems: tuple[Problem, ...] = ()
        self._dag = DAG()

    def build(self, objects: ObjectSet, options: BuildOptions | None = None) -> DAG:
        """The DAG `builder.build(objects, options)` returns, reusing the previous builds."""
        options = options or BuildOptions()
        if options != self._options:
            self._reset(options)
        previous, self._objects = self._objects, objects
        changes = {
            kind: _changed_keys(
                getattr(previous, kind) if previous is not None else None, getattr(objects, kind)
            )
            for kind in _DAG_KINDS
        }
        if not any(changes.values()):
            return self._dag
        recording = RecordingObjectSet(objects)
        route_fqdns, status_keys = self._routes.update(objects, recording, changes)
        ingress_hosts = self._ingresses.update(objects, recording, changes)
        touched = route_fqdns | ingress_hosts
        conflicts_changed = self._merge(touched)
        for key in status_keys:
            self._statuses.set(key, self._routes.statuses.get(key))
        if conflicts_changed:
            self._conflict_problems = self._merge_problems()
        self._dag = DAG.with_derived(
            self._derived.clusters(),
            self._derived.secrets(),
            virtual_hosts=self._plain.values(),
            secure_virtual_hosts=self._secure.values(),
            statuses=self._statuses.values(),
            problems=(
                *self._routes.problems(),
                *self._ingresses.problems(),
                *self._conflict_problems,
            ),
        )
        return self._dag

    def _merge(self, fqdns: Iterable[str]) -> bool:
        """Merge the two halves for `fqdns`; whether the set of contested hosts changed."""
        changed = False
        for fqdn in fqdns:
            before = self._plain.get(fqdn)
            changed |= _merge_host(
                fqdn,
                self._routes.plain,
                self._ingresses.plain,
                self._plain,
                self._conflicts["HTTP"],
            )
            after = self._plain.get(fqdn)
            if after is not before:
                self._derived.plain_changed(fqdn, after)
            secure_before = self._secure.get(fqdn)
            changed |= _merge_host(
                fqdn,
                self._routes.secure,
                self._ingresses.secure,
                self._secure,
                self._conflicts["HTTPS"],
            )
            secure_after = self._secure.get(fqdn)
            if secure_after is not secure_before:
                self._derived.secure_changed(fqdn, secure_after)
        return changed

    def _merge_problems(self) -> tuple[Problem, ...]:
        return tuple(
            Problem(
                "Ingress",
                "",
                "",
                "spec.rules[].host",
                f'host "{fqdn}" on {listener} is served by an IngressRoute; '
                "the Ingress rules for it are ignored",
            )
            for listener in ("HTTP", "HTTPS")
            for fqdn in sorted(self._conflicts[listener], key=host_order)
        )


H = TypeVar("H", VirtualHost, SecureVirtualHost)


def _merge_host(
    fqdn: str,
    preferred: Mapping[str, H],
    other: Mapping[str, H],
    merged: _SortedValues[str, tuple[bool, str], H],
    contested: set[str],
) -> bool:
    """Merge one host of one listener (the IngressRoute's wins); whether `contested` changed."""
    mine, theirs = preferred.get(fqdn), other.get(fqdn)
    merged.set(fqdn, mine if mine is not None else theirs)
    if (mine is not None and theirs is not None) == (fqdn in contested):
        return False
    contested.symmetric_difference_update((fqdn,))
    return True
