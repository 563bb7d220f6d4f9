"""Delegation trees: each root IngressRoute, what it delegates to, and every status on the way.

    forest = delegation_forest(objects, dag.statuses)      # pure: ObjectSet + statuses in
    forest.roots, forest.orphans, forest.summary           # what `controlplane status` prints

What `controlplane status` and `kubectl ingressroute tree` show. The statuses are whatever the
caller has: the DAG's, built from manifests, or the `.status` a cluster's IngressRoutes hold
(`statuses_of`). No I/O, no clocks, deterministic order.

Edges are read from the specs as the DAG reads them (dag/delegation.py): a route's `delegate`
(its namespace defaults to the delegating object's) and the tcpproxy's `delegate`. The tree
shows every edge a spec declares, not only those the DAG's walk followed: a delegation the walk
refused (a delegate whose paths leave the prefix, a cycle) still appears, and the statuses say
why (the delegate is `orphaned` or `invalid`, the parent carries a warning).

Invariants:

- A root is an IngressRoute with `spec.virtualhost` (valid or not). Each root is a tree of its
  own, so an object two roots reach appears under both.
- Within one tree an object is expanded once. Met again on another branch (a diamond) it is a
  leaf marked `repeated`; met on its own chain it is a leaf marked `cycle`. A delegate that does
  not exist is a leaf marked `missing`. So every tree is finite and at most as large as the
  number of edges, whatever the input. Below `MAX_DEPTH` delegations a node is a leaf marked
  `truncated` (real chains are a few levels deep; this keeps hostile ones printable).
- Orphans are the IngressRoutes no root's tree contains. They form trees of their own, each from
  an orphan that no other orphan delegates to (or, for a cycle of orphans only, from its
  smallest namespace/name); those trees expand only through orphans.
- Order: roots and orphan tops by namespace/name; children in spec order (routes, then the
  tcpproxy).
- `namespace` restricts the tops (roots, orphan tops) and the summary to one namespace; the
  trees still follow delegations into other namespaces, as traffic does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from controlplane.dag import ObjectStatus, StatusKind
from controlplane.model import IngressRoute, NamespacedName, ObjectSet

__all__ = [
    "MAX_DEPTH",
    "NO_STATUS",
    "DelegationForest",
    "DelegationNode",
    "Mark",
    "delegation_forest",
    "statuses_of",
]

KIND = "IngressRoute"
TCP_PROXY = "tcpproxy"
NO_STATUS = ""
"""The status of an IngressRoute nobody has judged yet (a cluster without a controller)."""
MAX_DEPTH = 100


class Mark(StrEnum):
    """Why a node is a leaf although its object may delegate further."""

    NONE = ""
    MISSING = "missing"
    """No IngressRoute of that namespace/name exists."""
    CYCLE = "cycle"
    """The object is already on the chain that leads here."""
    REPEATED = "repeated"
    """The object is expanded elsewhere in this tree."""
    TRUNCATED = "truncated"
    """The chain is deeper than `MAX_DEPTH`."""


@dataclass(frozen=True)
class DelegationNode:
    """One IngressRoute in a tree (or a missing one, `mark` says)."""

    namespace: str
    name: str
    via: str = ""
    """The match of the route that delegates here (`/blog`), or `tcpproxy`; empty at a top."""
    fqdn: str = ""
    status: str = NO_STATUS
    description: str = ""
    warnings: tuple[str, ...] = ()
    stale: bool = False
    """The status is for an older generation of the spec (a cluster's controller is behind)."""
    mark: Mark = Mark.NONE
    children: tuple[DelegationNode, ...] = ()

    def walk(self) -> Iterator[DelegationNode]:
        """This node and every node below it, depth first, in order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "via": self.via,
            "fqdn": self.fqdn,
            "status": self.status,
            "description": self.description,
            "warnings": list(self.warnings),
            "stale": self.stale,
            "mark": str(self.mark),
            "children": [child.to_json() for child in self.children],
        }


@dataclass(frozen=True)
class DelegationForest:
    """Every root's tree, then the orphans' trees, and how many IngressRoutes have each status."""

    roots: tuple[DelegationNode, ...] = ()
    orphans: tuple[DelegationNode, ...] = ()
    summary: Mapping[str, int] = field(default_factory=dict)
    """IngressRoutes (in the namespace asked for) by status: `valid`, `invalid`, `orphaned`,
    and `""` for none yet."""

    def to_json(self) -> dict[str, Any]:
        return {
            "roots": [root.to_json() for root in self.roots],
            "orphans": [orphan.to_json() for orphan in self.orphans],
            "summary": dict(self.summary),
        }


def statuses_of(routes: Iterable[IngressRoute]) -> tuple[ObjectStatus, ...]:
    """The statuses IngressRoutes hold in their `.status` (as a cluster stores them), in the
    DAG's terms; objects without one are left out (they show as `NO_STATUS`)."""
    return tuple(
        ObjectStatus(KIND, route.namespace, route.name, route.status)
        for route in routes
        if route.status.current_status
    )


def _edges(route: IngressRoute) -> list[tuple[str, NamespacedName]]:
    """(via, target) for every delegation the spec declares, in spec order."""
    namespace = route.namespace
    out = [
        (r.match, (r.delegate.namespace or namespace, r.delegate.name))
        for r in route.spec.routes
        if r.delegate is not None
    ]
    tcp = route.spec.tcpproxy
    if tcp is not None and tcp.delegate is not None:
        out.append((TCP_PROXY, (tcp.delegate.namespace or namespace, tcp.delegate.name)))
    return out


class _Trees:
    def __init__(self, objects: ObjectSet, statuses: Iterable[ObjectStatus]) -> None:
        self.routes = objects.ingress_routes
        self.statuses = {(s.namespace, s.name): s for s in statuses if s.kind == KIND}

    def node(self, key: NamespacedName, via: str, mark: Mark = Mark.NONE) -> DelegationNode:
        route = self.routes.get(key)
        if route is None:
            return DelegationNode(*key, via=via, mark=Mark.MISSING)
        status = self.statuses.get(key)
        vhost = route.spec.virtualhost
        observed = status.observed_generation if status is not None else 0
        return DelegationNode(
            *key,
            via=via,
            fqdn=(vhost.fqdn or "") if vhost is not None else "",
            status=str(status.current_status) if status is not None else NO_STATUS,
            description=status.description if status is not None else "",
            warnings=tuple(c.message for c in status.conditions if c.type == "Warning")
            if status is not None
            else (),
            stale=0 < observed < route.metadata.generation,
            mark=mark,
        )

    def tree(
        self, top: NamespacedName, allowed: frozenset[NamespacedName] | None = None
    ) -> DelegationNode:
        """The tree from `top`, expanding each object once; with `allowed`, only through those
        (an edge to any other object is left out)."""
        expanded: set[NamespacedName] = {top}

        def build(key: NamespacedName, via: str, chain: tuple[NamespacedName, ...]) -> Any:
            children = []
            for child_via, target in _edges(self.routes[key]):
                if allowed is not None and target not in allowed:
                    continue
                if target in chain or target == key:
                    children.append(self.node(target, child_via, Mark.CYCLE))
                elif target not in self.routes:
                    children.append(self.node(target, child_via))
                elif target in expanded:
                    children.append(self.node(target, child_via, Mark.REPEATED))
                elif len(chain) + 1 >= MAX_DEPTH:
                    children.append(self.node(target, child_via, Mark.TRUNCATED))
                else:
                    expanded.add(target)
                    children.append(build(target, child_via, (*chain, key)))
            return replace(self.node(key, via), children=tuple(children))

        result: DelegationNode = build(top, "", ())
        return result


def delegation_forest(
    objects: ObjectSet, statuses: Iterable[ObjectStatus], *, namespace: str | None = None
) -> DelegationForest:
    """Every root's delegation tree and the orphans'; see the module docstring."""
    trees = _Trees(objects, statuses)
    routes = trees.routes
    roots = sorted(key for key, r in routes.items() if r.spec.virtualhost is not None)
    root_trees = [trees.tree(key) for key in roots]
    reached = {(n.namespace, n.name) for tree in root_trees for n in tree.walk()}
    orphaned = frozenset(key for key in routes if key not in reached)
    delegated = {target for key in orphaned for _, target in _edges(routes[key]) if target != key}
    orphan_trees: list[DelegationNode] = []
    covered: set[NamespacedName] = set()
    tops = [key for key in sorted(orphaned) if key not in delegated]
    for top in tops + sorted(orphaned):  # then whatever only cycles reach
        if top in covered:
            continue
        tree = trees.tree(top, allowed=orphaned)
        covered |= {(n.namespace, n.name) for n in tree.walk()}
        orphan_trees.append(tree)

    def here(node: DelegationNode) -> bool:
        return namespace is None or node.namespace == namespace

    summary: dict[str, int] = {str(kind): 0 for kind in StatusKind}
    for key in sorted(routes):
        if namespace is None or key[0] == namespace:
            status = trees.statuses.get(key)
            name = str(status.current_status) if status is not None else NO_STATUS
            summary[name] = summary.get(name, 0) + 1
    return DelegationForest(
        roots=tuple(tree for tree in root_trees if here(tree)),
        orphans=tuple(tree for tree in orphan_trees if here(tree)),
        summary=summary,
    )
