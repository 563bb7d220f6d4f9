"""`DAG.clusters()` and `DAG.secrets()`, kept up to date host by host.

`DAG.clusters()` is every cluster some route or TCP proxy of some host uses, once, sorted by
Envoy name; `DAG.secrets()` every secret a secure host serves, sorted by SDS name. A cluster's
name is a value: it hashes every field of it (the port name and the whole policy), so which host
a cluster was met in first does not matter, and the builder only has to count users. A secret's
name is its Secret's `namespace/name` (stable across renewals, see `TLSSecret`): the value
under it changes when the Secret's material does, and every host using it is rebuilt with the
new value, so the newest value a host brings replaces the listed one.

`ClustersAndSecrets` is told, for each host that changed, what it used before and what it uses
now. Per name it keeps the value and the set of (listener, fqdn) users; a name is listed while
it has users. Only names a changed host uses (or used) are looked at again, and the sorted tuples
are copied only when a name came or went, so an unchanged result is the very same tuple as last
time (the translator's identity check skips the whole type then).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Generic, TypeVar

from controlplane.dag.types import Cluster, SecureVirtualHost, TLSSecret, VirtualHost

T = TypeVar("T", Cluster, TLSSecret)
User = tuple[str, str]
"""(listener segment: `http`, `https` or `tcp`; fqdn)."""


class _UsedByName(Generic[T]):
    """Values by name while some user uses them; `values()` sorted by name, cached.

    Names whose users changed are settled only in `values()`, so a value that leaves one host
    and arrives at another in one build is never seen to go and come back: the tuple stays the
    very same object, and the translator skips the whole type.

    `replaceable`: a name's value may change while the name stays (a secret's material); a
    user bringing a value unequal to the listed one replaces it. Without it (clusters, whose
    name is their value) values are never compared.
    """

    def __init__(self, *, replaceable: bool = False) -> None:
        self._replaceable = replaceable
        self._users: dict[str, set[User]] = {}
        self._latest: dict[str, T] = {}
        self._listed: dict[str, T] = {}
        self._names: list[str] = []
        self._values: list[T] = []
        self._tuple: tuple[T, ...] | None = ()
        self._pending: set[str] = set()

    def update(self, user: User, old: Iterable[str], new: dict[str, T]) -> None:
        """`user` used the names `old` and now uses the values `new` (by name)."""
        for name in old:
            if name in new:
                continue
            users = self._users.get(name)
            if users is not None:
                users.discard(user)
                if not users:
                    del self._users[name]
                    self._pending.add(name)
        for name, value in new.items():
            users = self._users.get(name)
            if users is None:
                self._users[name] = {user}
                self._latest[name] = value
                self._pending.add(name)
                continue
            users.add(user)
            if self._replaceable:
                latest = self._latest[name]
                if latest is not value and latest != value:
                    self._latest[name] = value
                    self._pending.add(name)

    def values(self) -> tuple[T, ...]:
        if len(self._pending) >= 64 and len(self._pending) * 4 >= len(self._listed):
            self._settle_all()
        for name in self._pending:
            listed = name in self._listed
            if name in self._users:
                if not listed:
                    self._insert(name, self._latest[name])
                elif self._listed[name] is not self._latest[name]:
                    self._replace(name, self._latest[name])
            else:
                self._latest.pop(name, None)
                if listed:
                    self._remove(name)
        self._pending.clear()
        if self._tuple is None:
            self._tuple = tuple(self._values)
        return self._tuple

    def _settle_all(self) -> None:
        """`values()` for a batch touching a good part of the names (a cold build: all of
        them): the listing made again and sorted once, not a bisection and an insertion per
        name."""
        changed = False
        listed = self._listed
        for name in self._pending:
            if name in self._users:
                latest = self._latest[name]
                if listed.get(name) is not latest:
                    listed[name] = latest
                    changed = True
            else:
                self._latest.pop(name, None)
                if listed.pop(name, None) is not None:
                    changed = True
        self._pending.clear()
        if changed:  # else the very same tuple stays (the translator skips on identity)
            self._names = sorted(listed)
            self._values = [listed[name] for name in self._names]
            self._tuple = None

    def _insert(self, name: str, value: T) -> None:
        index = bisect_left(self._names, name)
        self._names.insert(index, name)
        self._values.insert(index, value)
        self._listed[name] = value
        self._tuple = None

    def _replace(self, name: str, value: T) -> None:
        self._values[bisect_left(self._names, name)] = value
        self._listed[name] = value
        self._tuple = None

    def _remove(self, name: str) -> None:
        index = bisect_left(self._names, name)
        del self._names[index]
        del self._values[index]
        del self._listed[name]
        self._tuple = None


def route_clusters(host: VirtualHost | SecureVirtualHost | None) -> dict[str, Cluster]:
    """The clusters the routes of `host` use (with the members of aggregates), by name."""
    if host is None:
        return {}
    return {
        c.name: c for route in host.routes for w in route.clusters for c in w.cluster.envoy_clusters
    }


def tcp_clusters(host: SecureVirtualHost | None) -> dict[str, Cluster]:
    if host is None or host.tcp_proxy is None:
        return {}
    return {c.name: c for w in host.tcp_proxy.clusters for c in w.cluster.envoy_clusters}


class ClustersAndSecrets:
    """`clusters()` and `secrets()` of the merged hosts, following their changes."""

    def __init__(self) -> None:
        self._clusters: _UsedByName[Cluster] = _UsedByName()
        self._secrets: _UsedByName[TLSSecret] = _UsedByName(replaceable=True)
        self._used: dict[User, tuple[str, ...]] = {}
        self._secret_of: dict[str, str] = {}

    def _use(self, user: User, clusters: dict[str, Cluster]) -> None:
        self._clusters.update(user, self._used.pop(user, ()), clusters)
        if clusters:
            self._used[user] = tuple(clusters)

    def plain_changed(self, fqdn: str, host: VirtualHost | None) -> None:
        self._use(("http", fqdn), route_clusters(host))

    def secure_changed(self, fqdn: str, host: SecureVirtualHost | None) -> None:
        self._use(("https", fqdn), route_clusters(host))
        self._use(("tcp", fqdn), tcp_clusters(host))
        old_secret = self._secret_of.pop(fqdn, None)
        secret: dict[str, TLSSecret] = {}
        if host is not None and host.secret is not None:
            secret = {host.secret.sds_name: host.secret}
            self._secret_of[fqdn] = host.secret.sds_name
        self._secrets.update(("https", fqdn), [old_secret] if old_secret else [], secret)

    def clusters(self) -> tuple[Cluster, ...]:
        return self._clusters.values()

    def secrets(self) -> tuple[TLSSecret, ...]:
        return self._secrets.values()
