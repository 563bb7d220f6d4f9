"""`DAG.clusters()` and `DAG.secrets()`, kept up to date host by host.

`DAG.clusters()` walks every route of every host: first the plain hosts in host order, then the
secure hosts' routes, then their TCP proxies, keeping the *first* cluster met under each Envoy
name, sorted by name. (Two clusters with one name are nearly always equal, but need not be: the
name does not cover the Service's port name.) `secrets()` does the same over secure hosts by
SDS name, keeping the *last* one met.

Here every host reports what it uses when it changes: per name, the first value it uses, keyed
by where the host sits in that walk (segment, then host order). The value of a name is the one
at the smallest position, which is the one the walk meets first. Only names a changed host uses
(or used) are looked at again, and the sorted tuples are copied only when something changed,
so an unchanged result is the very same tuple as last time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Generic, TypeVar

from controlplane.dag.ingress import host_order
from controlplane.dag.types import Cluster, SecureVirtualHost, TLSSecret, VirtualHost

T = TypeVar("T", Cluster, TLSSecret)
Position = tuple[int, bool, str]
"""(segment: 0 plain routes, 1 secure routes, 2 TCP proxies; then `host_order(fqdn)`)."""


class _FirstByName(Generic[T]):
    """Per name, the value used at the smallest (`last`: largest) position; sorted by name."""

    def __init__(self, *, last: bool = False) -> None:
        self._pick = max if last else min
        self._users: dict[str, dict[Position, T]] = {}
        self._names: list[str] = []
        self._values: list[T] = []
        self._tuple: tuple[T, ...] | None = ()
        self._pending: set[str] = set()
        """Names whose users changed since `values()`: settled only then, so a value that
        leaves one host and arrives at another in one build is not seen to go and come back."""

    def update(self, position: Position, old: Iterable[tuple[str, T]], new: dict[str, T]) -> None:
        """The host at `position` used `old` (name, value) pairs and now uses `new`."""
        touched = set(new)
        for name, _ in old:
            users = self._users.get(name)
            if users is not None and users.pop(position, None) is not None:
                touched.add(name)
                if not users:
                    del self._users[name]
        for name, value in new.items():
            self._users.setdefault(name, {})[position] = value
        self._pending |= touched

    def _refresh(self, name: str) -> None:
        users = self._users.get(name)
        index = bisect_left(self._names, name)
        present = index < len(self._names) and self._names[index] == name
        if not users:
            if present:
                del self._names[index]
                del self._values[index]
                self._tuple = None
            return
        value = users[self._pick(users)]
        if not present:
            self._names.insert(index, name)
            self._values.insert(index, value)
            self._tuple = None
        elif self._values[index] is not value and self._values[index] != value:
            # An equal value is kept: the tuple stays the same object, so a consumer can tell
            # "nothing changed" by identity (and the translator's identity cache hits).
            self._values[index] = value
            self._tuple = None

    def values(self) -> tuple[T, ...]:
        for name in self._pending:
            self._refresh(name)
        self._pending.clear()
        if self._tuple is None:
            self._tuple = tuple(self._values)
        return self._tuple


def _first_clusters(weighted_lists: Iterable[Iterable[Cluster]]) -> dict[str, Cluster]:
    first: dict[str, Cluster] = {}
    for clusters in weighted_lists:
        for cluster in clusters:
            first.setdefault(cluster.name, cluster)
    return first


def plain_clusters(host: VirtualHost | None) -> dict[str, Cluster]:
    if host is None:
        return {}
    return _first_clusters((w.cluster for w in route.clusters) for route in host.routes)


def secure_route_clusters(host: SecureVirtualHost | None) -> dict[str, Cluster]:
    if host is None:
        return {}
    return _first_clusters((w.cluster for w in route.clusters) for route in host.routes)


def tcp_clusters(host: SecureVirtualHost | None) -> dict[str, Cluster]:
    if host is None or host.tcp_proxy is None:
        return {}
    return _first_clusters([[w.cluster for w in host.tcp_proxy.clusters]])


class Derived:
    """`clusters()` and `secrets()` of the merged hosts, following their changes."""

    def __init__(self) -> None:
        self._clusters: _FirstByName[Cluster] = _FirstByName()
        # secrets() keeps the last secret met under a name (a dict comprehension), not the first.
        self._secrets: _FirstByName[TLSSecret] = _FirstByName(last=True)
        self._plain: dict[str, dict[str, Cluster]] = {}
        self._secure: dict[str, tuple[dict[str, Cluster], dict[str, Cluster]]] = {}
        self._secret_of: dict[str, tuple[str, TLSSecret]] = {}

    def plain_changed(self, fqdn: str, host: VirtualHost | None) -> None:
        order = host_order(fqdn)
        new = plain_clusters(host)
        self._clusters.update((0, *order), self._plain.pop(fqdn, {}).items(), new)
        if new:
            self._plain[fqdn] = new

    def secure_changed(self, fqdn: str, host: SecureVirtualHost | None) -> None:
        order = host_order(fqdn)
        old_routes, old_tcp = self._secure.pop(fqdn, ({}, {}))
        routes, tcp = secure_route_clusters(host), tcp_clusters(host)
        self._clusters.update((1, *order), old_routes.items(), routes)
        self._clusters.update((2, *order), old_tcp.items(), tcp)
        if routes or tcp:
            self._secure[fqdn] = (routes, tcp)
        old_secret = self._secret_of.pop(fqdn, None)
        secret: dict[str, TLSSecret] = {}
        if host is not None and host.secret is not None:
            secret = {host.secret.sds_name: host.secret}
            self._secret_of[fqdn] = next(iter(secret.items()))
        self._secrets.update((1, *order), [old_secret] if old_secret else [], secret)

    def clusters(self) -> tuple[Cluster, ...]:
        return self._clusters.values()

    def secrets(self) -> tuple[TLSSecret, ...]:
        return self._secrets.values()
