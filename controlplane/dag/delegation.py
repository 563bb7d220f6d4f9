"""The delegation walk: which IngressRoutes are reachable from which root, and what each serves.

Input: the objects that passed their own checks (`CompiledIngressRoute`s, see
`ingressroute_spec.py`), the ones that did not (key → reason), and the roots that will serve
(valid, in a permitted namespace, first claim to their fqdn). Output: per root, the routes and
TCP clusters its host serves; which objects were reached; which became invalid because of where
they sit in a chain; and the warnings of the objects that delegate.

The walk is a depth-first pre-order from each root, routes in spec order, so the order in which
routes are met is deterministic. At each object, before it contributes anything:

- Prefix containment. Every service route and every delegating route of a delegate must lie
  under the prefix of the route that delegated to it, by whole path segments: `/foo/bar` is
  under `/foo`, `/foobar` is not. (Contour compared characters and did not check a delegate's own
  delegations at all, so a delegate could escape its prefix one level down.) A root's delegated
  prefix is `/`, which contains everything.
- Cycles. The walk carries the chain of objects that led here. A delegation to an object already
  on that chain (the object itself included) closes a cycle, and the object whose delegation
  closes it is invalid: `route creates a delegation cycle: ns/a -> ns/b -> ns/a` (the cycle only,
  from the object it re-enters). Objects on a cycle that no root reaches are simply orphaned.

A failure of either check makes the *child* invalid (it is the child's routes that are out of
place, and the child's team that must fix them); the parent stays valid and carries a warning
`route "/blog": delegate blog/blog is invalid: <the child's description>`. A missing delegate is a
warning on the parent too: `route "/blog": delegate blog/blog not found`.

An invalid object contributes no routes at all, never a partial set, and is not walked through.
An object can be reached along several chains (two roots, two routes, a diamond) and turn out
invalid on a later one after it contributed on an earlier one. So the walk is repeated with the
newly invalid objects excluded until a walk finds nothing new; only the last walk's result is
used. The invalid set only grows, so this ends (in practice after one or two walks), and every
object the last walk reached passed both checks on every chain that reached it.

Each (root, object, delegated prefix) is expanded once per walk, which keeps diamonds from
exploding exponentially; the walk uses an explicit stack, so deep chains cannot overflow Python's
recursion limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controlplane.dag.ingressroute_spec import (
    CompiledIngressRoute,
    CompiledRoute,
    within,
)
from controlplane.dag.status import (
    StatusWarning,
    WarningReason,
    delegation_cycle,
    prefix_mismatch,
    route_where,
)
from controlplane.dag.types import PathMatch, PathMatchKind, WeightedCluster
from controlplane.model import NamespacedName

_EVERYTHING = PathMatch(PathMatchKind.PREFIX, "/")
_TCP = "tcpproxy"


def display(key: NamespacedName) -> str:
    return f"{key[0]}/{key[1]}"


@dataclass
class HostContent:
    """What one root's host serves: routes by match (first claim wins) and TCP clusters."""

    root: NamespacedName
    fqdn: str
    routes: dict[PathMatch, tuple[CompiledRoute, NamespacedName]] = field(default_factory=dict)
    tcp_clusters: tuple[WeightedCluster, ...] | None = None


@dataclass(frozen=True)
class Outcome:
    invalid: Mapping[NamespacedName, str]
    """Every invalid object and its description: those given, plus those the walk found."""
    reached: frozenset[NamespacedName]
    """Valid objects some served root reaches (roots included)."""
    warnings: Mapping[NamespacedName, tuple[StatusWarning, ...]]
    hosts: tuple[HostContent, ...]
    """One per served root, in the order the roots were given."""


def walk_delegations(
    roots: Sequence[NamespacedName],
    compiled: Mapping[NamespacedName, CompiledIngressRoute],
    invalid: Mapping[NamespacedName, str],
) -> Outcome:
    """Walk from every root until no object newly turns invalid; see the module docstring."""
    known_invalid = dict(invalid)
    while True:
        walk = _Walk(compiled, known_invalid)
        for root in roots:
            if root not in known_invalid:
                walk.root(root)
        if not walk.newly_invalid:
            return Outcome(
                invalid=known_invalid,
                reached=frozenset(walk.reached),
                warnings={key: tuple(found) for key, found in walk.warnings.items()},
                hosts=tuple(walk.hosts),
            )
        known_invalid.update(walk.newly_invalid)


class _Walk:
    def __init__(
        self,
        compiled: Mapping[NamespacedName, CompiledIngressRoute],
        invalid: Mapping[NamespacedName, str],
    ) -> None:
        self.compiled = compiled
        self.invalid = invalid
        self.newly_invalid: dict[NamespacedName, str] = {}
        self.reached: set[NamespacedName] = set()
        self.warnings: dict[NamespacedName, list[StatusWarning]] = {}
        self.hosts: list[HostContent] = []
        self._expanded: set[tuple[NamespacedName, NamespacedName, PathMatch | str]] = set()

    def root(self, key: NamespacedName) -> None:
        root = self.compiled[key]
        if root.virtual_host is None:
            return
        host = HostContent(key, root.virtual_host.fqdn)
        self.hosts.append(host)
        self._walk_routes(host)
        if root.tcp_proxy is not None:
            self._walk_tcp_proxy(host)

    def _walk_routes(self, host: HostContent) -> None:
        Frame = tuple[NamespacedName, PathMatch, str, tuple[NamespacedName, ...]]
        stack: list[Frame] = [(host.root, _EVERYTHING, "/", ())]
        while stack:
            key, prefix, prefix_text, chain = stack.pop()
            if (host.root, key, prefix) in self._expanded:
                continue
            self._expanded.add((host.root, key, prefix))
            current = self.compiled[key]
            chain = (*chain, key)
            problem = _misplaced(current, prefix, prefix_text, chain)
            if problem is not None:
                self.newly_invalid.setdefault(key, problem)
                continue
            self.reached.add(key)
            for route in current.routes:
                self._add_route(host, route, key)
            children: list[Frame] = [
                (delegation.target, delegation.match, delegation.match_text, chain)
                for delegation in current.delegations
                if self._usable(key, route_where(delegation.match_text), delegation.target)
            ]
            stack.extend(reversed(children))

    def _walk_tcp_proxy(self, host: HostContent) -> None:
        key: NamespacedName = host.root
        chain: tuple[NamespacedName, ...] = ()
        while (host.root, key, _TCP) not in self._expanded:
            self._expanded.add((host.root, key, _TCP))
            tcp_proxy = self.compiled[key].tcp_proxy
            if tcp_proxy is None:
                return
            chain = (*chain, key)
            target = tcp_proxy.delegate
            if target is not None and target in chain:
                self.newly_invalid.setdefault(key, _cycle(_TCP, chain, target))
                return
            self.reached.add(key)
            if target is None:
                host.tcp_clusters = tcp_proxy.clusters
                return
            if not self._usable(key, _TCP, target, tcp=True):
                return
            key = target

    def _usable(
        self, parent: NamespacedName, where: str, target: NamespacedName, *, tcp: bool = False
    ) -> bool:
        """Whether `target` can be walked into; if not, the parent gets a warning saying why."""
        reason = self.invalid.get(target) or self.newly_invalid.get(target)
        if reason is not None:
            self._warn(
                parent,
                WarningReason.DELEGATE_INVALID,
                f"{where}: delegate {display(target)} is invalid: {reason}",
            )
            return False
        found = self.compiled.get(target)
        if found is None:
            self._warn(
                parent,
                WarningReason.DELEGATE_NOT_FOUND,
                f"{where}: delegate {display(target)} not found",
            )
            return False
        if tcp and found.tcp_proxy is None:
            self._warn(
                parent,
                WarningReason.DELEGATE_HAS_NO_TCPPROXY,
                f"{where}: delegate {display(target)} has no tcpproxy",
            )
            return False
        return True

    def _add_route(self, host: HostContent, route: CompiledRoute, owner: NamespacedName) -> None:
        match = route.route.match
        first = host.routes.get(match)
        if first is None:
            host.routes[match] = (route, owner)
            return
        first_route, first_owner = first
        if first_owner == owner and first_route == route:
            return  # the same route, reached along a second chain
        self._warn(
            owner,
            WarningReason.ROUTE_SHADOWED,
            f"{route_where(route.match_text)}: {host.fqdn} already routes this path to "
            f"IngressRoute {display(first_owner)}; ignored",
        )

    def _warn(self, key: NamespacedName, reason: WarningReason, message: str) -> None:
        found = self.warnings.setdefault(key, [])
        warning = StatusWarning(reason, message)
        if warning not in found:
            found.append(warning)


def _misplaced(
    current: CompiledIngressRoute,
    prefix: PathMatch,
    prefix_text: str,
    chain: tuple[NamespacedName, ...],
) -> str | None:
    """Why `current` cannot serve under `prefix` at the end of `chain`, or None."""
    for route in current.routes:
        if not within(route.route.match, prefix):
            return prefix_mismatch(route.match_text, prefix_text)
    for delegation in current.delegations:
        if not within(delegation.match, prefix):
            return prefix_mismatch(delegation.match_text, prefix_text)
    for delegation in current.delegations:
        if delegation.target in chain:
            return _cycle("route", chain, delegation.target)
    return None


def _cycle(what: str, chain: tuple[NamespacedName, ...], target: NamespacedName) -> str:
    loop = chain[chain.index(target) :]
    return delegation_cycle(what, [display(key) for key in (*loop, target)])
