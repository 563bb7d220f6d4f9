"""The delegation graph: which IngressRoute delegates to which, as the objects say it.

Nodes are the IngressRoutes of our class (those a build gave a status) and the delegates they
name that are not among them (`missing`: not found, or of another ingress class). Edges come from
the spec as written: each `routes[].delegate`, labelled with the route's match, and
`tcpproxy.delegate`, labelled `tcpproxy`; a delegate's namespace defaults to the delegating
object's. Several routes of one object to the same delegate make one edge listing their matches.

The graph shows what the objects say, not only what the delegation walk followed: an edge into
an invalid delegate, or one the walk refused (a cycle, a prefix that does not fit), is there
too, and the node colours (the statuses) say what came of it. That is what an operator needs to
see why an object is orphaned. Nothing here decides validity: `dag/delegation.py` does, and its
verdict arrives as the statuses.

`walk(starts)`: a depth-first search from each start in turn, edges in spec order. An edge into
an object on the current path is a *back edge*: it closes a cycle. Layers are the longest path
from the starts over every other edge, so every edge but a back edge points to a later layer;
within a layer, objects keep the order in which the search met them. The search is iterative
(a chain of thousands cannot overflow the stack) and deterministic: the same objects always
give the same picture.

`serving_roots()`: for every object, the first root (in name order) that reaches it through
valid objects only, which is how the walk can reach it; Contour's `vhost` label and the page
use the fqdn of that root.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from controlplane.dag import ObjectStatus
from controlplane.model import IngressRoute, NamespacedName, ObjectSet, shown

__all__ = [
    "DelegationGraph",
    "Edge",
    "Node",
    "NodeState",
    "Traversal",
    "delegation_graph",
]

KIND = "IngressRoute"
TCPPROXY = "tcpproxy"
NOT_FOUND = "not found (or not of this controller's ingress class)"

_HOSTNAME = re.compile(
    r"(?=.{1,253}$)(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*"
    r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.?",
    re.IGNORECASE,
)


class NodeState(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    ORPHANED = "orphaned"
    MISSING = "missing"
    """Named as a delegate, but no IngressRoute of ours has that name."""


_STATES = {state.value: state for state in NodeState}


@dataclass(frozen=True, slots=True)
class Node:
    """One IngressRoute (or a delegate that is missing)."""

    namespace: str
    name: str
    state: NodeState
    description: str
    fqdn: str = ""
    """`spec.virtualhost.fqdn` of a root (as written, quoted for display); "" otherwise."""
    root: bool = False

    @property
    def key(self) -> NamespacedName:
        return (self.namespace, self.name)

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Edge:
    """`source` delegates to `target` from the routes (matches) or tcpproxy in `label`."""

    source: NamespacedName
    target: NamespacedName
    label: str


@dataclass(frozen=True)
class Traversal:
    """What `DelegationGraph.walk` found: see the module docstring."""

    order: tuple[NamespacedName, ...]
    """Every node reached, in the order the search met it."""
    layers: Mapping[NamespacedName, int]
    edges: tuple[Edge, ...]
    """Every edge between nodes reached, in search order."""
    back: frozenset[tuple[NamespacedName, NamespacedName]]
    """(source, target) of the edges that close a cycle."""


@dataclass(frozen=True)
class DelegationGraph:
    """Nodes by key (sorted), edges (by source, in spec order) and the roots (sorted)."""

    nodes: Mapping[NamespacedName, Node] = field(default_factory=dict)
    edges: tuple[Edge, ...] = ()

    @cached_property
    def roots(self) -> tuple[NamespacedName, ...]:
        return tuple(key for key, node in self.nodes.items() if node.root)

    @cached_property
    def out(self) -> Mapping[NamespacedName, tuple[Edge, ...]]:
        found: dict[NamespacedName, list[Edge]] = {}
        for edge in self.edges:
            found.setdefault(edge.source, []).append(edge)
        return {key: tuple(edges) for key, edges in found.items()}

    def around(self, namespace: str) -> DelegationGraph:
        """The objects of `namespace`, every edge touching them and the objects at its ends."""
        edges = tuple(e for e in self.edges if namespace in (e.source[0], e.target[0]))
        keep = {key for key in self.nodes if key[0] == namespace}
        keep.update(edge.source for edge in edges)
        keep.update(edge.target for edge in edges)
        return DelegationGraph({k: n for k, n in self.nodes.items() if k in keep}, edges)

    def walk(self, starts: Iterable[NamespacedName], limit: int | None = None) -> Traversal:
        """Depth-first from each start not yet reached; at most `limit` nodes."""
        order: list[NamespacedName] = []
        seen: set[NamespacedName] = set()
        back: set[tuple[NamespacedName, NamespacedName]] = set()
        for start in starts:
            if start in seen or start not in self.nodes:
                continue
            if limit is not None and len(order) >= limit:
                break
            self._search(start, order, seen, back, limit)
        reached = set(order)
        edges = tuple(
            edge for key in order for edge in self.out.get(key, ()) if edge.target in reached
        )
        return Traversal(tuple(order), _layers(order, edges, back), edges, frozenset(back))

    def _search(
        self,
        start: NamespacedName,
        order: list[NamespacedName],
        seen: set[NamespacedName],
        back: set[tuple[NamespacedName, NamespacedName]],
        limit: int | None,
    ) -> None:
        on_path: set[NamespacedName] = {start}
        seen.add(start)
        order.append(start)
        stack: list[tuple[NamespacedName, int]] = [(start, 0)]
        while stack:
            key, index = stack[-1]
            edges = self.out.get(key, ())
            if index == len(edges):
                stack.pop()
                on_path.discard(key)
                continue
            stack[-1] = (key, index + 1)
            target = edges[index].target
            if target in on_path:
                back.add((key, target))
            elif target not in seen and (limit is None or len(order) < limit):
                seen.add(target)
                order.append(target)
                on_path.add(target)
                stack.append((target, 0))

    def serving_roots(self) -> dict[NamespacedName, NamespacedName]:
        """Object → the first root (by name) that reaches it through valid objects."""
        found: dict[NamespacedName, NamespacedName] = {}
        for root in self.roots:
            if self.nodes[root].state is not NodeState.VALID:
                found.setdefault(root, root)
                continue
            queue = deque([root])
            visited = {root}
            while queue:
                key = queue.popleft()
                found.setdefault(key, root)
                if self.nodes[key].state is not NodeState.VALID:
                    continue  # the walk does not go through an invalid object
                for edge in self.out.get(key, ()):
                    if edge.target not in visited:
                        visited.add(edge.target)
                        queue.append(edge.target)
        return found

    def vhost(self, key: NamespacedName, roots: Mapping[NamespacedName, NamespacedName]) -> str:
        """The fqdn of the root serving `key` (or its own, for a root), if it is a hostname."""
        root = roots.get(key, key)
        fqdn = self.nodes[root].fqdn if root in self.nodes else ""
        return fqdn if _HOSTNAME.fullmatch(fqdn) else ""


def delegation_graph(objects: ObjectSet, statuses: Iterable[ObjectStatus]) -> DelegationGraph:
    """The delegation graph of the IngressRoutes `statuses` speak of (see the module docstring)."""
    ours = sorted(
        (((s.namespace, s.name), s) for s in statuses if s.kind == KIND), key=lambda p: p[0]
    )
    nodes: dict[NamespacedName, Node] = {}
    edges: list[Edge] = []
    for key, status in ours:
        route = objects.ingress_routes.get(key)
        fqdn = ""
        if route is not None and route.spec.virtualhost is not None:
            fqdn = shown(route.spec.virtualhost.fqdn or "")
        nodes[key] = Node(
            key[0],
            key[1],
            _STATES[status.status.current_status or NodeState.INVALID.value],
            status.description,
            fqdn,
            root=route is not None and route.is_root,
        )
        if route is not None:
            edges.extend(_edges(key, route))
    for edge in edges:
        if edge.target not in nodes:
            nodes[edge.target] = Node(*edge.target, NodeState.MISSING, NOT_FOUND)
    return DelegationGraph(dict(sorted(nodes.items())), tuple(edges))


def _edges(key: NamespacedName, route: IngressRoute) -> list[Edge]:
    labels: dict[NamespacedName, list[str]] = {}
    namespace = key[0]
    for spec_route in route.spec.routes:
        if spec_route.delegate is not None:
            target = (spec_route.delegate.namespace or namespace, spec_route.delegate.name)
            labels.setdefault(target, []).append(shown(spec_route.match))
    tcp = route.spec.tcpproxy
    if tcp is not None and tcp.delegate is not None:
        target = (tcp.delegate.namespace or namespace, tcp.delegate.name)
        labels.setdefault(target, []).append(TCPPROXY)
    return [Edge(key, target, ", ".join(dict.fromkeys(found))) for target, found in labels.items()]


def _layers(
    order: Sequence[NamespacedName],
    edges: Sequence[Edge],
    back: set[tuple[NamespacedName, NamespacedName]],
) -> dict[NamespacedName, int]:
    """Longest path from the starts over the edges that are not back edges (a DAG)."""
    forward: dict[NamespacedName, list[NamespacedName]] = {}
    incoming = dict.fromkeys(order, 0)
    for edge in edges:
        if (edge.source, edge.target) in back:
            continue
        forward.setdefault(edge.source, []).append(edge.target)
        incoming[edge.target] += 1
    layers = dict.fromkeys(order, 0)
    ready = [key for key in order if incoming[key] == 0]
    while ready:  # Kahn's order: every predecessor is settled before its successors
        key = ready.pop()
        for target in forward.get(key, ()):
            layers[target] = max(layers[target], layers[key] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return layers
