"""`DagBuilder`: the one DAG builder, cold for `translate`, warm (build after build) for `serve`.

`DagBuilder().build(objects, options)` is the whole DAG of an ObjectSet. Run again after some
objects changed, it redoes only the work whose inputs changed (ARCHITECTURE.md §4.3: the cost of
one object changing must not grow with the number of objects), and hands back the very same DAG
values (virtual hosts, routes, clusters, statuses) for everything that did not change, which is
what the translator's identity cache keys on. `build(objects, options)` is a cold run.

The test oracle `reference.py` builds the same DAG the plain way; every table row of the DAG
tests runs through both, cold and as an edit from another state, and they must be equal.

How it knows what changed. ObjectSet objects are immutable and the store keeps an object until
it changes, so a key whose object is not the very object seen last time has changed (an equal
copy counts as a change; that costs work, never correctness). Each build diffs the ObjectSet's
mappings against the previous ones by identity, at C speed (`_changed_keys`); that diff is the
one pass over every object left, a few microseconds per thousand objects.

What is cached, and when it is thrown away:
- per Ingress: its reading (claims, problems); per host: the settled virtual hosts
  (`ingress_processor.py`);
- per host: the age of the oldest Ingress claiming it (`IngressProcessor.oldest`);
- per IngressRoute: its compilation; per fqdn: the owning root; per group of roots sharing
  objects: the delegation walk; per object: its status (`ingressroute_processor.py`).
Every cached reading sees its inputs only through a recording view (`reads.py`) and is redone
when something it read changed. The build options are part of every result: new options, new
cache.

One owner per host, across kinds: the oldest claimant of an fqdn (`age_key`: creation time,
then namespace/name; an exact tie goes to the IngressRoute) owns it on HTTP and HTTPS, valid or
not. The Ingress half keeps, per host, the age of the oldest Ingress claiming it (by a rule or
under `tls`) and reports the hosts where that changed; the IngressRoute half settles those fqdns
again with it (`settle_fqdn`): when an Ingress is older, every root claiming the fqdn is invalid
(`fqdn "x" is already used by Ingress ns/name`) and owns nothing. So the Ingress half runs first.

Then the builder tells the Ingress half which namespaces the owner of each IngressRoute-owned
host trusts (`ingress_merge.trusted_namespaces`, from the owner's spec; `set_trust`), for the
fqdns either half changed and those whose owner object changed (`_owner_of` maps owners back to
their fqdns). The Ingress half settles such a host among the trusted Ingresses and hands back
their claims, which `ingress_merge.merge_host` merges into the IngressRoute's hosts with the
Problems of what does not merge. Then the two halves are merged host by host (a host an
IngressRoute owns takes its hosts with the Ingress paths merged in; any other host takes the
Ingress hosts), only for the hosts that changed; a merged host equal to the previous one keeps
the previous object. The sorted host and status tuples are kept as sorted lists, updated by
bisection, and turned into tuples (a C-speed copy) only when something in them changed. A build
in which nothing changed returns the previous DAG itself.

The builder holds explicit state and no clock or I/O; it is as pure as a function in what it
returns, and must be fed ObjectSets of one store (or any sequence: a brand-new set only costs a
full build).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Mapping
from itertools import compress
from operator import is_not
from typing import TYPE_CHECKING, Generic, TypeVar

from controlplane.dag.ingress import host_order
from controlplane.dag.ingress_merge import merge_host, trusted_namespaces
from controlplane.dag.ingress_processor import IngressProcessor
from controlplane.dag.ingressroute_processor import IngressRouteProcessor
from controlplane.dag.options import BuildOptions
from controlplane.dag.reads import OBJECT_KINDS, in_store_order
from controlplane.dag.types import DAG, ObjectStatus, Problem, SecureVirtualHost, VirtualHost
from controlplane.dag.upstreams import ClustersAndSecrets
from controlplane.model import NamespacedName, ObjectSet

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

__all__ = ["DagBuilder", "build"]

_DAG_KINDS = tuple(kind for kind in OBJECT_KINDS if kind not in ("endpoint_slices", "endpoints"))
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

    def set_many(self, items: Iterable[tuple[K, V | None]]) -> None:
        """`set` for each pair. A batch that touches a good part of the keys (a cold build
        sets every one) is applied to the mapping, then the lists are sorted again once:
        one sort instead of a bisection and a list insertion per key."""
        items = list(items)
        if len(items) < 64 or len(items) * 4 < len(self._by_key):
            for key, value in items:
                self.set(key, value)
            return
        changed = False
        by_key = self._by_key
        for key, value in items:
            old = by_key.get(key)
            if old is value:
                continue
            changed = True
            if value is None:
                del by_key[key]
            else:
                by_key[key] = value
        if not changed:
            return
        order = self._order
        keys = sorted(by_key, key=order)
        self._keys = list(map(order, keys))
        self._values = list(map(by_key.__getitem__, keys))
        self._tuple = None

    def values(self) -> tuple[V, ...]:
        if self._tuple is None:
            self._tuple = tuple(self._values)
        return self._tuple


def _status_order(key: NamespacedName) -> NamespacedName:
    return key


def build(objects: ObjectSet, options: BuildOptions | None = None) -> DAG:
    """The DAG of `objects`: a cold run of the one builder (what `translate` does)."""
    return DagBuilder().build(objects, options)


class DagBuilder:
    """Builds DAGs one after another, redoing only what the changed objects affect."""

    def __init__(self) -> None:
        self._options: BuildOptions | None = None
        self._objects: ObjectSet | None = None
        self._dag = DAG()
        self._reset(BuildOptions())

    def _reset(self, options: BuildOptions) -> None:
        self._options = options
        self._objects = None
        self._ingresses = IngressProcessor(options)
        self._routes = IngressRouteProcessor(options)
        self._plain: _SortedValues[str, tuple[bool, str], VirtualHost] = _SortedValues(host_order)
        self._secure: _SortedValues[str, tuple[bool, str], SecureVirtualHost] = _SortedValues(
            host_order
        )
        self._statuses: _SortedValues[NamespacedName, NamespacedName, ObjectStatus] = _SortedValues(
            _status_order
        )
        self._upstreams = ClustersAndSecrets()
        self._owner_of: dict[NamespacedName, str] = {}
        """Owner of an IngressRoute-owned fqdn → that fqdn (whose trust its spec sets)."""
        self._owners: dict[str, NamespacedName] = {}
        """The inverse: fqdn → its owner, as last told to the Ingress half."""
        self._merge_problems: dict[str, tuple[Problem, ...]] = {}
        """fqdn an IngressRoute owns → the Problems of the Ingresses claiming it."""
        self._conflict_problems: tuple[Problem, ...] = ()
        self._dag = DAG()

    def build(self, objects: ObjectSet, options: BuildOptions | None = None) -> DAG:
        """The DAG of `objects`, reusing what the previous builds found."""
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
        ingress_hosts = self._ingresses.update(objects, changes)
        route_fqdns, status_keys = self._routes.update(
            objects, changes, self._ingresses.oldest, self._ingresses.oldest_changed
        )
        touched = route_fqdns | ingress_hosts
        touched |= self._update_trust(objects, touched, changes["ingress_routes"])
        conflicts_changed = self._merge(touched)
        statuses = self._routes.statuses
        self._statuses.set_many((key, statuses.get(key)) for key in status_keys)
        if conflicts_changed:
            self._conflict_problems = self._conflicts()
        self._dag = DAG.with_derived(
            self._upstreams.clusters(),
            self._upstreams.secrets(),
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

    def _update_trust(
        self,
        objects: ObjectSet,
        fqdns: Iterable[str],
        changed_routes: Iterable[NamespacedName],
    ) -> set[str]:
        """Tell the Ingress half who owns `fqdns` and the fqdns of changed owners, and which
        namespaces each owner trusts; returns the fqdns whose trust changed."""
        candidates = set(fqdns)
        candidates.update(
            fqdn for key in changed_routes if (fqdn := self._owner_of.get(key)) is not None
        )
        owners = self._routes.owners
        changed = set()
        for fqdn in in_store_order(candidates, self._routes.plain):
            owner = owners.get(fqdn)
            old = self._owners.get(fqdn)
            if old != owner:
                if old is not None:
                    del self._owner_of[old]
                    del self._owners[fqdn]
                if owner is not None:
                    self._owner_of[owner] = fqdn
                    self._owners[fqdn] = owner
            trusted = None
            if owner is not None:
                trusted = trusted_namespaces(objects.ingress_routes[owner])
            if self._ingresses.set_trust(fqdn, trusted):
                changed.add(fqdn)
        return changed

    def _merge(self, fqdns: set[str]) -> bool:
        """Merge the two halves for `fqdns`; whether the Problems of owned hosts changed.

        Ownership across kinds is settled by the IngressRoute half (`settle_fqdn`, told the age
        of the oldest Ingress claiming each fqdn): an fqdn an IngressRoute owns (its oldest
        claimant, older than every Ingress claiming it, valid or not) takes the IngressRoute's
        hosts on both listeners, even none, with the paths of the trusted Ingresses merged in
        (`ingress_merge.py`). Every other fqdn takes the Ingress hosts (the roots that claim
        it are invalid)."""
        changed = False
        owners = self._routes.owners
        plain_hosts: list[tuple[str, VirtualHost | None]] = []
        secure_hosts: list[tuple[str, SecureVirtualHost | None]] = []
        # The IngressRoute hosts were made in the store's order (`in_store_order`): so it goes.
        for fqdn in in_store_order(fqdns, self._routes.plain):
            owner = owners.get(fqdn)
            problems: tuple[Problem, ...] = ()
            if owner is None:
                plain, secure = self._ingresses.plain.get(fqdn), self._ingresses.secure.get(fqdn)
            else:
                plain, secure = self._routes.plain.get(fqdn), self._routes.secure.get(fqdn)
                claims = self._ingresses.owned.get(fqdn)
                if claims is not None:
                    trusted = self._ingresses.trust(fqdn)
                    assert trusted is not None  # told for every owned fqdn (`_update_trust`)
                    plain, secure, problems = merge_host(
                        fqdn, owner, trusted, plain, secure, claims
                    )
                    old_plain, old_secure = self._plain.get(fqdn), self._secure.get(fqdn)
                    if plain is not None and old_plain is not None and plain == old_plain:
                        plain = old_plain
                    if secure is not None and old_secure is not None and secure == old_secure:
                        secure = old_secure
            if plain is not self._plain.get(fqdn):
                plain_hosts.append((fqdn, plain))
                self._upstreams.plain_changed(fqdn, plain)
            if secure is not self._secure.get(fqdn):
                secure_hosts.append((fqdn, secure))
                self._upstreams.secure_changed(fqdn, secure)
            if self._merge_problems.get(fqdn, ()) != problems:
                changed = True
                if problems:
                    self._merge_problems[fqdn] = problems
                else:
                    del self._merge_problems[fqdn]
        self._plain.set_many(plain_hosts)  # each fqdn once: `fqdns` is a set
        self._secure.set_many(secure_hosts)
        return changed

    def _conflicts(self) -> tuple[Problem, ...]:
        return tuple(
            problem
            for fqdn in sorted(self._merge_problems, key=host_order)
            for problem in self._merge_problems[fqdn]
        )
