"""The delegation walk: which IngressRoutes are reachable from which root, and what each serves.

Input: the objects that passed their own checks (`CompiledIngressRoute`s, see
`ingressroute_spec.py`), the ones that did not (key → reason), and the roots that will serve
(valid, in a permitted namespace, first claim to their fqdn). Output: per root, the routes and
TCP clusters its host serves; which objects were reached; and the warnings the walk found (on
the objects that delegate, and on the roots whose hosts ignore a route).

The walk is a depth-first pre-order from each root, routes in spec order, so the order in which
routes are met is deterministic. Each delegation is checked before the walk follows it:

- Prefix containment. Every service route and every delegating route of the delegate must lie
  under the prefix of the delegating route, by whole path segments: `/foo/bar` is under `/foo`,
  `/foobar` is not. (Contour compared characters and did not check a delegate's own delegations
  at all, so a delegate could escape its prefix one level down.) A root serves under `/`, which
  contains everything.
- Cycles. The walk carries the chain of objects that led here, from the root. A delegation to an
  object already on that chain (the delegating object itself included) closes a cycle, reported
  from the root with the full path, as Contour did:
  `route creates a delegation cycle: ns/root -> ns/a -> ns/b -> ns/a` (so the path says which
  root's walk met it, and where it re-enters). Objects on a cycle that no root reaches are simply
  orphaned.

A failure of either check counts against the delegating *edge*, never the delegate: the walk does
not follow that delegation, and the object that made it stays valid and carries a warning
`route "/news": delegate good/blog is invalid under this route: <why>` (`DelegateInvalid`; for a
tcpproxy, `tcpproxy: ... is invalid under this tcpproxy: ...`). Whether a delegate fits is a
property of the delegating route (any root, in any namespace, may delegate to any IngressRoute,
so a delegate cannot answer for where others put it), and the delegate is served wherever a
root reaches it in place. One no root reaches in place is orphaned; an object is invalid only
for its own faults (settled before the walk, passed in as `invalid`), and then contributes no
routes at all, never a partial set: its parent gets `route "/blog": delegate blog/blog is
invalid: <its description>`. A missing delegate is a warning on the parent too:
`route "/blog": delegate blog/blog not found`. Which delegation closes a cycle depends on where
a root enters it, so a cycle's warning lands on an object of the cycle, whichever root finds it.

A route whose host already routes its path (met earlier in the walk) is ignored, and the *root*
of that host is told (`route "/a" of IngressRoute ns/c: www.example.com already routes this path
to IngressRoute ns/root; ignored`), never the delegate, which may serve other roots' hosts.

Since nothing turns invalid during the walk, one walk settles everything; roots share only
`reached` (a union) and the warnings of shared objects (in walk order, deduplicated). Each
(root, object, delegated prefix) is expanded once per walk, which keeps diamonds from exploding
exponentially; the walk uses an explicit stack, so deep chains cannot overflow Python's
recursion limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controlplane.dag.ingressroute_spec import (
    CompiledIngressRoute,
    CompiledRoute,
    Delegation,
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
_Frame = tuple[NamespacedName, PathMatch, tuple[NamespacedName, ...]]
"""(object, the prefix delegated to it, the chain of objects from the root before it)."""
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
    """Every invalid object and its description (those given: the walk finds none)."""
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
    """Walk from every root, in order; see the module docstring."""
    walk = _Walk(compiled, invalid)
    for root in roots:
        if root not in invalid:
            walk.root(root)
    return Outcome(
        invalid=dict(invalid),
        reached=frozenset(walk.reached),
        warnings={key: tuple(found) for key, found in walk.warnings.items()},
        hosts=tuple(walk.hosts),
    )


class _Walk:
    def __init__(
        self,
        compiled: Mapping[NamespacedName, CompiledIngressRoute],
        invalid: Mapping[NamespacedName, str],
    ) -> None:
        self.compiled = compiled
        self.invalid = invalid
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
        stack: list[_Frame] = [(host.root, _EVERYTHING, ())]
        expanded = self._expanded
        while stack:
            key, prefix, chain = stack.pop()
            expansion = (host.root, key, prefix)
            if expansion in expanded:
                continue
            expanded.add(expansion)
            current = self.compiled[key]
            chain = (*chain, key)
            self.reached.add(key)
            for route in current.routes:
                self._add_route(host, route, key)
            children: list[_Frame] = []
            for delegation in current.delegations:
                target = delegation.target
                if not self._usable(key, delegation.match_text, target):
                    continue
                where = route_where(delegation.match_text)
                problem = _misplaced(self.compiled[target], delegation, chain)
                if problem is not None:
                    self._warn(
                        key,
                        WarningReason.DELEGATE_INVALID,
                        f"{where}: delegate {display(target)} is invalid under this route: "
                        f"{problem}",
                    )
                    continue
                children.append((target, delegation.match, chain))
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
            self.reached.add(key)
            target = tcp_proxy.delegate
            if target is None:
                host.tcp_clusters = tcp_proxy.clusters
                return
            if not self._usable(key, "", target, tcp=True):
                return
            if target in chain:
                self._warn(
                    key,
                    WarningReason.DELEGATE_INVALID,
                    f"{_TCP}: delegate {display(target)} is invalid under this tcpproxy: "
                    f"{_cycle(_TCP, chain, target)}",
                )
                return
            key = target

    def _usable(
        self, parent: NamespacedName, match: str, target: NamespacedName, *, tcp: bool = False
    ) -> bool:
        """Whether `target` can be walked into; if not, the parent gets a warning saying why.
        `match`: the delegating route's (or `tcpproxy`), named in the warning."""
        reason = self.invalid.get(target)
        found = self.compiled.get(target)
        if reason is None and found is not None and (not tcp or found.tcp_proxy is not None):
            return True
        where = _TCP if tcp else route_where(match)
        if reason is not None:
            self._warn(
                parent,
                WarningReason.DELEGATE_INVALID,
                f"{where}: delegate {display(target)} is invalid: {reason}",
            )
            return False
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
        # The root of the host is told, never the delegate: the delegate may serve other roots
        # too, and what one root's host already routes is none of its business.
        where = route_where(route.match_text)
        if owner != host.root:
            where += f" of IngressRoute {display(owner)}"
        self._warn(
            host.root,
            WarningReason.ROUTE_SHADOWED,
            f"{where}: {host.fqdn} already routes this path to IngressRoute "
            f"{display(first_owner)}; ignored",
        )

    def _warn(self, key: NamespacedName, reason: WarningReason, message: str) -> None:
        found = self.warnings.setdefault(key, [])
        warning = StatusWarning(reason, message)
        if warning not in found:
            found.append(warning)


def _misplaced(
    child: CompiledIngressRoute, delegation: Delegation, chain: tuple[NamespacedName, ...]
) -> str | None:
    """Why `child` cannot serve under `delegation`, made by the last object of `chain`, or
    None: the delegation closes a cycle, or the child's paths leave the delegated prefix."""
    if delegation.target in chain:
        return _cycle("route", chain, delegation.target)
    prefix, prefix_text = delegation.match, delegation.match_text
    for route in child.routes:
        if not within(route.route.match, prefix):
            return prefix_mismatch(route.match_text, prefix_text)
    for own in child.delegations:
        if not within(own.match, prefix):
            return prefix_mismatch(own.match_text, prefix_text)
    return None


def _cycle(what: str, chain: tuple[NamespacedName, ...], target: NamespacedName) -> str:
    """The path from the root (`chain[0]`) to the delegation that re-enters `target`."""
    return delegation_cycle(what, [display(key) for key in (*chain, target)])
