"""What the status page, its JSON endpoints and the per-object gauges show, as plain values.

`ClusterView` holds what one build knew (the objects, the statuses and problems the publisher
reported, which Ingresses are ours) and derives, once each and only when asked, the delegation
graph, the table rows and the `ObjectCounts` behind the per-object gauges. The runtime keeps one
per build, so a page load or a Prometheus scrape costs one pass over the last build at most, and
the build itself pays nothing for them.

Rows: every IngressRoute of our class with its status and description, and every Ingress of our
class, `valid` when nothing about it was reported and `warning` (with the problems, field by
field) when something was left out; a bug's traceback stays in the log.

`envoy_rows` reads the xDS server's open streams (structurally: `SessionView`, so this package
needs nothing private of `xds`): one row per node id, with the version each type last ACKed,
whether that is the version served now, and the last NACK that node sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Protocol

from controlplane.dag import INTERNAL_ERROR, ObjectStatus, Problem, StatusKind
from controlplane.metrics import ObjectCounts
from controlplane.model import Ingress, NamespacedName, ObjectSet, shown
from controlplane.typeurls import PUSH_ORDER, TYPE_NAMES
from controlplane.web.graph import DelegationGraph, NodeState, delegation_graph
from controlplane.web.reasons import problem_class, reason_class
from controlplane.xds import NackRecord, Snapshot

__all__ = [
    "ClusterView",
    "EnvoyRow",
    "NackView",
    "ObjectRow",
    "SessionView",
    "TypeVersion",
    "envoy_rows",
]

INGRESS_VALID = "valid Ingress"
INTERNAL = "internal error while building this object; the controller's log has the details"


@dataclass(frozen=True, slots=True)
class ObjectRow:
    """One line of the objects table (and of `/api/objects`)."""

    kind: str
    namespace: str
    name: str
    host: str
    status: str
    description: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class ClusterView:
    """One build's objects and verdicts, and what the page and gauges derive from them."""

    objects: ObjectSet = field(default_factory=ObjectSet)
    statuses: tuple[ObjectStatus, ...] = ()
    problems: tuple[Problem, ...] = ()
    ingresses: tuple[NamespacedName, ...] = ()
    """The Ingresses of our class."""
    sequence: int = 0
    """The publisher's sequence number of the build."""

    @cached_property
    def graph(self) -> DelegationGraph:
        return delegation_graph(self.objects, self.statuses)

    @cached_property
    def rows(self) -> tuple[ObjectRow, ...]:
        rows = [
            ObjectRow(
                s.kind,
                s.namespace,
                s.name,
                self.graph.nodes[(s.namespace, s.name)].fqdn,
                s.current_status.value,
                s.description,
            )
            for s in self.statuses
            if s.kind == "IngressRoute"
        ]
        problems = self._problems_by_object("Ingress")
        for key in self.ingresses:
            ingress = self.objects.ingresses.get(key)
            if ingress is None:
                continue
            found = problems.get(key, [])
            description = "; ".join(_problem_text(p) for p in found) or INGRESS_VALID
            status = "warning" if found else "valid"
            rows.append(ObjectRow("Ingress", *key, _hosts(ingress), status, description))
        return tuple(sorted(rows, key=lambda r: (r.namespace, r.kind, r.name)))

    @cached_property
    def namespaces(self) -> tuple[str, ...]:
        names = {row.namespace for row in self.rows}
        names.update(key[0] for key in self.graph.nodes)
        return tuple(sorted(names))

    @cached_property
    def counts(self) -> ObjectCounts:
        """The per-object gauges: Contour's IngressRoute counts and invalid objects by reason."""
        graph = self.graph
        roots = graph.serving_roots()
        total: Counter[str] = Counter()
        root_total: Counter[str] = Counter()
        orphaned: Counter[str] = Counter()
        valid: Counter[tuple[str, str]] = Counter()
        invalid: Counter[tuple[str, str]] = Counter()
        by_reason: Counter[tuple[str, str]] = Counter()
        for key, node in graph.nodes.items():
            if node.state is NodeState.MISSING:
                continue
            namespace = key[0]
            total[namespace] += 1
            if node.root:
                root_total[namespace] += 1
            if node.state is NodeState.ORPHANED:
                orphaned[namespace] += 1
            elif node.state is NodeState.VALID:
                valid[(namespace, graph.vhost(key, roots))] += 1
            else:
                invalid[(namespace, graph.vhost(key, roots))] += 1
                route = self.objects.ingress_routes.get(key)
                unparsable = route is not None and route.parse_error is not None
                reason = reason_class(node.description, unparsable=unparsable)
                by_reason[("IngressRoute", reason)] += 1
        classes = {(p.kind, p.namespace, p.name, problem_class(p)) for p in self.problems}
        for kind, _, _, reason in classes:
            by_reason[(kind, reason)] += 1
        return ObjectCounts(
            total=dict(total),
            roots=dict(root_total),
            orphaned=dict(orphaned),
            valid=dict(valid),
            invalid=dict(invalid),
            invalid_by_reason=dict(by_reason),
        )

    def summary(self) -> dict[str, int]:
        """How many IngressRoutes are valid, invalid and orphaned; Ingresses with warnings."""
        found = Counter(s.current_status.value for s in self.statuses if s.kind == "IngressRoute")
        result = {kind.value: found.get(kind.value, 0) for kind in StatusKind}
        result["ingresses"] = len(self.ingresses)
        result["warnings"] = sum(1 for r in self.rows if r.status == "warning")
        return result

    def _problems_by_object(self, kind: str) -> dict[NamespacedName, list[Problem]]:
        found: dict[NamespacedName, list[Problem]] = {}
        for problem in self.problems:
            if problem.kind == kind:
                found.setdefault((problem.namespace, problem.name), []).append(problem)
        return found


def _problem_text(problem: Problem) -> str:
    if problem.field == INTERNAL_ERROR:
        return INTERNAL
    return f"{problem.field}: {problem.reason}" if problem.field else problem.reason


def _hosts(ingress: Ingress) -> str:
    hosts = list(dict.fromkeys(rule.host or "*" for rule in ingress.spec.rules))
    if not hosts and ingress.spec.default_backend is not None:
        hosts = ["*"]
    shown_hosts = [shown(host) for host in hosts[:3]]
    if len(hosts) > 3:
        shown_hosts.append(f"+{len(hosts) - 3} more")
    return ", ".join(shown_hosts)


# -- Envoys ---------------------------------------------------------------------------------


class StreamView(Protocol):
    """What the page reads of an xDS stream's state (`xds.stream.StreamState`)."""

    @property
    def node_id(self) -> str: ...

    @property
    def node(self) -> Any: ...

    def acked_versions(self) -> Mapping[str, str]: ...


class SessionView(Protocol):
    """What the page reads of an open xDS stream (`xds.session.Session`)."""

    @property
    def state(self) -> StreamView: ...


@dataclass(frozen=True, slots=True)
class TypeVersion:
    """The version of one type an Envoy last ACKed, and whether it is what is served now."""

    type: str
    acked: str
    current: bool


@dataclass(frozen=True, slots=True)
class NackView:
    type: str
    version: str
    message: str
    time: float


@dataclass(frozen=True)
class EnvoyRow:
    """One connected Envoy (node id), over all its streams."""

    node_id: str
    cluster: str
    streams: int
    types: tuple[TypeVersion, ...]
    last_nack: NackView | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "cluster": self.cluster,
            "streams": self.streams,
            "types": [asdict(t) for t in self.types],
            "last_nack": None if self.last_nack is None else asdict(self.last_nack),
        }


def envoy_rows(
    sessions: Iterable[SessionView], nacks: Iterable[NackRecord], snapshot: Snapshot | None
) -> tuple[EnvoyRow, ...]:
    """One row per node id of the open streams, sorted (see the module docstring)."""
    streams: dict[str, list[StreamView]] = {}
    for session in sessions:
        streams.setdefault(session.state.node_id, []).append(session.state)
    last: dict[str, NackRecord] = {}
    for nacked in nacks:
        if nacked.node_id in streams:
            last[nacked.node_id] = nacked  # oldest first: the last one wins
    rank = {t: i for i, t in enumerate(PUSH_ORDER)}
    rows = []
    for node_id in sorted(streams):
        acked: dict[str, str] = {}
        cluster = ""
        for state in streams[node_id]:
            acked.update(state.acked_versions())
            if state.node is not None and not cluster:
                cluster = str(state.node.cluster)
        types = tuple(
            TypeVersion(
                TYPE_NAMES.get(type_url, type_url),
                version,
                snapshot is not None and snapshot.version(type_url) == version,
            )
            for type_url, version in sorted(acked.items(), key=lambda i: rank.get(i[0], 99))
        )
        record = last.get(node_id)
        nack = None
        if record is not None:
            type_name = TYPE_NAMES.get(record.type_url, record.type_url)
            nack = NackView(type_name, record.version, record.message, record.time)
        rows.append(EnvoyRow(node_id, cluster, len(streams[node_id]), types, nack))
    return tuple(rows)
