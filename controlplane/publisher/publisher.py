"""`Publisher`: the one owner of what is published to Envoys.

It owns, and nobody else keeps a copy of:
- the translator (`envoy.IncrementalTranslator`): DAG values → encoded resources, cached;
- the published tables: per type, name → `xds.Resource` (bytes, content version, framing);
- the snapshot last published, and the diff to it: a new build's resources are compared with
  the published tables by identity (the translator hands back the very same bytes object for
  what it did not re-translate, and the very same mapping for a type in which nothing changed),
  so only changed names reach `Snapshot.with_changes` and a type with no change keeps its table;
- the EDS topology (`EdsTopology`, computed once per set of clusters by the translator): which
  Service's endpoints feed which ClusterLoadAssignments (the fast path) and which cluster
  subscribes to which EDS name (attached to cluster resources for the server's ordering);
- the EDS fast path: an endpoint change re-encodes that Service's ClusterLoadAssignments only
  and publishes them at once, without a DAG build;
- the endpoints currently refused (`envoy.RefusedEndpoint`, by Service): the translator decides,
  as values, which endpoints it leaves out (invalid, or in a refused network); the publisher
  logs each one (`endpoint.refused`) and counts it (`controlplane_endpoints_refused_total`)
  when it is newly refused, by a build or by the fast path, and never again while it stays
  refused. One that goes away and comes back is reported again.

- the ClusterLoadAssignments streams ask for by name that no route references
  (`on_demand.py`): the cache asks the publisher (its `Resolver`) when a stream first
  subscribes to a name the snapshot lacks, and each build keeps those some subscription still
  holds; they join the endpoint table and the fast path like the referenced ones. A wildcard
  EDS subscription (see `xds/stream.py`) gets the whole endpoint table: every referenced
  Service port and the on-demand ones, not every Service of the cluster (which would make every
  endpoint change anywhere a push to it, for Services no Envoy routes to).

- the quarantine (`quarantine.py`): what an Envoy rejected although the translator's checks
  passed it. The publisher is the cache's verdict listener: each NACK record (and, while a
  RouteConfiguration or listener is being bisected, each ACK of its type) goes to the
  quarantine, which decides what to leave out; every build, every republish and the EDS fast
  path publish the translation with it applied, and `report` names each unit left out on its
  owner's status (like a rejection) and in `PublishReport.quarantined`. A verdict that changes
  what is published calls `on_change` (the runtime republishes at once, without a DAG build,
  and hands the new report to the status writers).

`sequence` counts publishes (builds and endpoint updates that changed something): tests wait for
"sequence > n" instead of sleeping, as Contour's tests wait on its event handler's sequence.

`translate(dag, objects)` is the same work without publishing to a cache: what `controlplane
translate` prints is exactly what `serve` would stream.

Threads. Everything here runs on the event loop, except `prepare(dag, objects)`, which the
runtime runs in its build thread (`runtime.py`) before it publishes the same DAG on the loop. It
does the expensive part of a build's publish: the translation (which fills the translator's
caches, so the loop's `publish` finds every value translated and only applies the quarantine)
and the framing of each new resource (`Resource.from_body`: a version hash and the response
framing, handed to `publish` as `Prepared.frames`). It touches the translator alone, and reads
`_encoded` (the last translation, to frame only what changed); so, while it runs, nothing on the
loop may translate: the runtime defers a republish until the build has published, and every
other loop-side path (the EDS fast path, `resolve`, the verdicts) leaves the translator alone.
It never applies the quarantine (that mutates it): the loop's `publish` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from controlplane.dag import DAG, ObjectStatus, Origin, Problem, with_rejections
from controlplane.envoy import (
    EdsTopology,
    Encoded,
    IncrementalTranslator,
    RefusedEndpoint,
    Rejections,
    TranslateOptions,
    cluster_load_assignment,
    owner_of,
)
from controlplane.metrics import PipelineMetrics, pipeline_metrics
from controlplane.model import Endpoints, EndpointSlice, NamespacedName, ObjectSet
from controlplane.publisher.on_demand import EndpointInputs, OnDemandAssignments
from controlplane.publisher.quarantine import Quarantine, Quarantined, Unit
from controlplane.typeurls import CLUSTER_TYPE, ENDPOINT_TYPE, SECRET_TYPE, TYPE_NAMES
from controlplane.xds import NackRecord, Resource, Snapshot, SnapshotCache

log = structlog.get_logger(__name__)

__all__ = ["Prepared", "PublishReport", "Publisher"]


@dataclass(frozen=True)
class PublishReport:
    """What one publish of a build did, for logs, tests, the status writers and debug pages.

    `statuses` and `problems` are the DAG's, plus what was left out because Envoy would reject
    it (`rejections`) or did reject it (`quarantined`): those are what users and operators are
    told.
    """

    dag: DAG
    sequence: int
    duration_ms: float
    versions: Mapping[str, str] = field(default_factory=dict)
    rejections: Rejections = ()
    statuses: tuple[ObjectStatus, ...] = ()
    problems: tuple[Problem, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """What `Publisher.prepare` did off the loop for one DAG: the resources it framed.

    `frames`: type URL → name → `Resource` for each body the translation produced anew (not the
    very bytes object of the last translation); `publish` takes a frame when the body it
    publishes is that very object with the same EDS name, and frames the rest itself.
    `snapshot`: before the first publish, the snapshot of exactly the frames, which `publish`
    takes if what it assembles is exactly that (nothing left out, nothing asked for on
    demand): a first snapshot's set hashes are a third of its publish."""

    dag: DAG
    frames: Mapping[str, Mapping[str, Resource]]
    snapshot: Snapshot | None = None


class Publisher:
    """Translates DAGs into snapshots and publishes them; see the module docstring."""

    def __init__(
        self,
        options: TranslateOptions,
        cache: SnapshotCache | None = None,
        metrics: PipelineMetrics | None = None,
        *,
        quarantine: Quarantine | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.translator = IncrementalTranslator(options)
        self.cache = cache
        self.metrics = metrics if metrics is not None else pipeline_metrics()
        self.quarantine = quarantine if quarantine is not None else Quarantine()
        self.on_change = on_change
        """Called when a verdict changed what must be published; None: republish soon."""
        self.snapshot: Snapshot | None = None
        self.sequence = 0
        self.last: PublishReport | None = None
        self._published: dict[str, dict[str, Resource]] = {}
        self._translated: dict[str, Mapping[str, bytes]] = {}
        self._encoded: Encoded = {}
        self._dag: DAG | None = None
        self._objects: ObjectSet | None = None
        self._topology = EdsTopology()
        self._counted: Rejections = ()
        self._counted_held: frozenset[Unit] = frozenset()
        self._refused: dict[NamespacedName, frozenset[RefusedEndpoint]] = {}
        self._republishing = False
        self._on_demand = OnDemandAssignments()
        self._with_on_demand: tuple[object, object, Mapping[str, bytes]] | None = None
        """(translator's endpoints, on-demand bodies, both joined) of the last build."""
        self._latest: dict[NamespacedName, EndpointInputs] = {}
        """Endpoints of the Services the fast path saw change since the last build's objects."""
        self._frames: Mapping[str, Mapping[str, Resource]] = {}
        """During `publish` of a prepared DAG: the resources `prepare` framed (see Prepared)."""
        self._prebuilt: Snapshot | None = None
        """During `publish` of a prepared DAG: `Prepared.snapshot`."""
        if cache is not None:
            cache.listen(self)
            cache.resolve_with(self)

    @property
    def options(self) -> TranslateOptions:
        return self.translator.options

    @property
    def refused_endpoints(self) -> tuple[RefusedEndpoint, ...]:
        """The endpoints left out of what is published now, in a stable order."""
        return tuple(sorted((r for rs in self._refused.values() for r in rs), key=_refusal_order))

    # -- the rebuild path --------------------------------------------------------------------

    def translate(self, dag: DAG, objects: ObjectSet) -> Snapshot:
        """The snapshot `dag` and `objects` make, as a diff to the last one; not published."""
        encoded = self._translate(dag, objects)
        self._topology = self.translator.eds_topology(dag)
        self._dag, self._objects = dag, objects
        self._latest = {}
        if self.cache is not None:
            extra = self._on_demand.refresh(
                self.cache.held(ENDPOINT_TYPE),
                objects,
                self._topology,
                self.options.refused_endpoint_networks,
            )
            if extra:
                encoded[ENDPOINT_TYPE] = self._join(encoded.get(ENDPOINT_TYPE, {}), extra)
        for type_url in self._translated.keys() - encoded.keys():
            del self._translated[type_url]
        return self._assemble(encoded.keys())

    def _translate(self, dag: DAG, objects: ObjectSet) -> Encoded:
        # Secrets are the one type the quarantine acts on inside the translation: a chain whose
        # certificate is left out must go too (it would keep the HTTPS listener warming).
        encoded = self.translator.translate(dag, objects, secret_filter=self._secret_filter)
        self._encoded = encoded
        return encoded

    def _join(
        self, referenced: Mapping[str, bytes], extra: Mapping[str, bytes]
    ) -> Mapping[str, bytes]:
        """The translator's assignments and the on-demand ones; the same mapping as last time
        when neither changed (what `_assemble` skips on)."""
        last = self._with_on_demand
        if last is not None and last[0] is referenced and last[1] is extra:
            return last[2]
        joined = {**extra, **referenced}
        self._with_on_demand = (referenced, extra, joined)
        return joined

    def _secret_filter(self, secrets: Mapping[str, bytes]) -> Mapping[str, bytes]:
        return self.quarantine.apply(SECRET_TYPE, secrets)

    def _assemble(self, type_urls: Iterable[str]) -> Snapshot:
        """The last translation of these types with the quarantine applied, as a diff to the
        last snapshot."""
        snapshot = self.snapshot
        for type_url in type_urls:
            bodies = self._encoded[type_url]
            if type_url != SECRET_TYPE:  # already applied by the translation
                bodies = self.quarantine.apply(type_url, bodies)
            if bodies is self._translated.get(type_url):
                continue  # the translator hands back the same mapping when nothing changed
            self._translated[type_url] = bodies
            previous = self._published.get(type_url, {})
            changes = self._changes(type_url, previous, bodies)
            if not changes and snapshot is not None:
                continue
            table = dict(previous)
            for name, resource in changes.items():
                if resource is None:
                    del table[name]
                else:
                    table[name] = resource
                    self.quarantine.remember(resource)
            self._published[type_url] = table
            if snapshot is not None:
                snapshot = snapshot.with_changes(type_url, changes)
        if snapshot is None:
            prebuilt = self._prebuilt
            if prebuilt is not None and _same_tables(prebuilt, self._published):
                snapshot = prebuilt
            else:
                snapshot = Snapshot.build(self._published)
        self.snapshot = snapshot
        return snapshot

    def _changes(
        self, type_url: str, previous: Mapping[str, Resource], bodies: Mapping[str, bytes]
    ) -> dict[str, Resource | None]:
        eds_of = self._topology.by_cluster if type_url == CLUSTER_TYPE else {}
        frames = self._frames.get(type_url, {})
        changes: dict[str, Resource | None] = {
            name: _framed(frames, type_url, name, body, eds_of.get(name))
            for name, body in bodies.items()
            if (old := previous.get(name)) is None
            or old.body is not body
            or old.eds_name != eds_of.get(name)
        }
        changes.update(dict.fromkeys(previous.keys() - bodies.keys()))
        return changes

    def prepare(self, dag: DAG, objects: ObjectSet) -> Prepared:
        """Translate `dag` and frame what is new, without publishing: the one method that may
        run off the event loop (see the module docstring). `publish(dag, objects, prepared)`
        on the loop then finds it all done, for objects whose endpoints may be newer."""
        previous, first = self._encoded, self.snapshot is None
        encoded = self.translator.translate(dag, objects)
        eds_of = self.translator.eds_topology(dag).by_cluster
        frames: dict[str, dict[str, Resource]] = {}
        for type_url, bodies in encoded.items():
            last = previous.get(type_url, {})
            if bodies is last:
                continue
            eds = eds_of if type_url == CLUSTER_TYPE else {}
            frames[type_url] = {
                name: Resource.from_body(type_url, name, body, eds_name=eds.get(name))
                for name, body in bodies.items()
                if last.get(name) is not body
            }
        return Prepared(dag, frames, Snapshot.build(frames) if first else None)

    def publish(
        self, dag: DAG, objects: ObjectSet, prepared: Prepared | None = None
    ) -> PublishReport:
        """Translate `dag` and publish the result (only what changed reaches the streams).

        With `prepared` (from `prepare(dag, ...)`), the translation finds its caches warm and
        the resources framed; `objects` may then differ from those `dag` was prepared with in
        their endpoints only (the DAG reads none), which are translated as they are now."""
        started = time.perf_counter()
        if prepared is not None and prepared.dag is dag:
            self._frames, self._prebuilt = prepared.frames, prepared.snapshot
        try:
            snapshot = self.translate(dag, objects)
        finally:
            self._frames, self._prebuilt = {}, None
        if self.cache is not None:
            self.cache.publish(snapshot)
        refused = self._on_demand.refused()
        for refusals in self.translator.endpoint_refusals.values():
            for refusal in refusals:
                refused.setdefault((refusal.namespace, refusal.service), set()).add(refusal)
        self._report_refused({service: frozenset(rs) for service, rs in refused.items()})
        self.sequence += 1
        self.last = self.report(dag, snapshot, round((time.perf_counter() - started) * 1000, 2))
        return self.last

    def report(self, dag: DAG, snapshot: Snapshot, duration_ms: float = 0.0) -> PublishReport:
        """What publishing `snapshot` (translated from `dag`) tells users and operators."""
        rejections = self.translator.rejections()
        if rejections != self._counted:
            for rejection in set(rejections) - set(self._counted):
                self.metrics.rejected.labels(type=TYPE_NAMES[rejection.type_url]).inc()
            self._counted = rejections
        quarantined = self.quarantine.entries()
        statuses, problems = dag.statuses, dag.problems
        if rejections or quarantined:
            by_origin: dict[Origin, list[str]] = {}
            for rejection in rejections:
                origin = rejection.origin or Origin("Envoy", "", rejection.resource)
                by_origin.setdefault(origin, []).append(rejection.describe())
            for entry in quarantined:
                origin = entry.owner or Origin("Envoy", "", entry.unit.name)
                by_origin.setdefault(origin, []).append(entry.describe())
            statuses, rejected = with_rejections(statuses, by_origin)
            problems = (*problems, *rejected)
        return PublishReport(
            dag,
            self.sequence,
            duration_ms,
            {t: snapshot.version(t) for t in sorted(snapshot.type_urls)},
            rejections,
            tuple(statuses),
            tuple(problems),
            quarantined,
        )

    # -- NACK containment (the cache's verdict listener) -------------------------------------

    @property
    def ack_types(self) -> frozenset[str]:
        """The types whose ACKs the quarantine needs (those being bisected)."""
        return self.quarantine.ack_types

    def nacked(self, record: NackRecord) -> None:
        """An Envoy rejected a response: let the quarantine find what, and contain it."""
        published = self._published.get(record.type_url, {})
        if self.quarantine.nacked(record, published, self._owner):
            self._quarantine_changed()

    def acked(self, node_id: str, type_url: str, resources: Mapping[str, str]) -> None:
        """An Envoy accepted a response of a type being bisected: a verdict on a probe."""
        published = self._published.get(type_url, {})
        if self.quarantine.acked(type_url, resources, published, self._owner):
            self._quarantine_changed()

    def _owner(self, unit: Unit) -> Origin | None:
        if self._dag is None:
            return None
        return owner_of(self._dag, self._topology, unit.type_url, unit.name, unit.part)

    def _quarantine_changed(self) -> None:
        held = frozenset(self.quarantine.held)
        for unit in held - self._counted_held:
            self.metrics.quarantined.labels(type=TYPE_NAMES.get(unit.type_url, "")).inc()
        self._counted_held = held
        if self.on_change is not None:
            self.on_change()
        elif not self._republishing:
            # Not from inside the cache's dispatch of this very verdict: once it has returned.
            self._republishing = True
            asyncio.get_running_loop().call_soon(self._republish_soon)

    def _republish_soon(self) -> None:
        self._republishing = False
        self.republish()

    def republish(self) -> PublishReport | None:
        """Publish the last build again with the quarantine as it is now: no DAG build, and the
        translator hands back what it cached. What a verdict changed reaches Envoys at once."""
        if self._dag is None or self._objects is None:
            return None
        started = time.perf_counter()
        # The same DAG and objects: the translator hands back what it cached, except where the
        # quarantine's secrets changed. Endpoints are not re-assembled: the fast path may have
        # published newer assignments than the last translation holds (a held one is removed).
        encoded = self._translate(self._dag, self._objects)
        snapshot = self._assemble(t for t in encoded if t != ENDPOINT_TYPE)
        published = self._published.get(ENDPOINT_TYPE, {})
        gone: dict[str, Resource | None] = {}
        for unit in [u for u in self.quarantine.held if u.type_url == ENDPOINT_TYPE]:
            resource = published.get(unit.name)
            if resource is not None and not self.quarantine.admits(
                ENDPOINT_TYPE, unit.name, resource.version
            ):
                gone[unit.name] = None
        if gone:
            for name in gone:
                del published[name]
            snapshot = self.snapshot = snapshot.with_changes(ENDPOINT_TYPE, gone)
        if self.cache is not None:
            self.cache.publish(snapshot)
        self.sequence += 1
        self.last = self.report(
            self._dag, snapshot, round((time.perf_counter() - started) * 1000, 2)
        )
        return self.last

    # -- the EDS fast path -------------------------------------------------------------------

    def publish_endpoints(
        self,
        service: NamespacedName,
        slices: Sequence[EndpointSlice],
        endpoints: Endpoints | None,
    ) -> int:
        """Re-encode and publish the ClusterLoadAssignments of one Service; how many changed."""
        if self.snapshot is None:
            return 0
        self._latest[service] = (tuple(slices), endpoints)
        names = [*self._topology.by_service.get(service, ()), *self._on_demand.names_of(service)]
        if not names:
            return 0
        published = self._published.setdefault(ENDPOINT_TYPE, {})
        networks = self.options.refused_endpoint_networks
        changes: dict[str, Resource | None] = {}
        refused: set[RefusedEndpoint] = set()
        encoded: dict[str, tuple[bytes, tuple[RefusedEndpoint, ...]]] = {}
        for eds_name, port_name in names:
            assignment = cluster_load_assignment(eds_name, port_name, slices, endpoints, networks)
            refused.update(assignment.refused)
            resource = Resource.encode(ENDPOINT_TYPE, eds_name, assignment.message)
            encoded[eds_name] = (resource.body, assignment.refused)
            old = published.get(eds_name)
            if not self.quarantine.admits(ENDPOINT_TYPE, eds_name, resource.version):
                if old is not None:  # an Envoy rejected exactly this: left out (see quarantine)
                    changes[eds_name] = None
                    del published[eds_name]
                continue
            if old is None or old.version != resource.version:
                changes[eds_name] = resource
                published[eds_name] = resource
        self._on_demand.reencoded(service, (tuple(slices), endpoints), encoded)
        self._report_refused({service: frozenset(refused)}, only=service)
        return self._publish_endpoint_changes(changes)

    def _publish_endpoint_changes(self, changes: Mapping[str, Resource | None]) -> int:
        if not changes or self.snapshot is None:
            return 0
        if self.cache is not None:
            self.cache.update(ENDPOINT_TYPE, changes)
            self.snapshot = self.cache.current
        else:
            self.snapshot = self.snapshot.with_changes(ENDPOINT_TYPE, changes)
        self.sequence += 1
        return len(changes)

    # -- EDS names no route references (the cache's resolver) --------------------------------

    def resolve(self, type_url: str, names: frozenset[str]) -> None:
        """Streams subscribed to `names`, which the snapshot lacks: publish the assignments of
        those that stand for a Service port (see `on_demand.py`), at once."""
        if type_url != ENDPOINT_TYPE or self._objects is None or self.snapshot is None:
            return
        added = self._on_demand.add(
            sorted(names),
            self._objects,
            self._topology,
            self._latest,
            self.options.refused_endpoint_networks,
        )
        published = self._published.setdefault(ENDPOINT_TYPE, {})
        changes: dict[str, Resource | None] = {}
        for name, body in added.items():
            resource = Resource.from_body(ENDPOINT_TYPE, name, body)
            if self.quarantine.admits(ENDPOINT_TYPE, name, resource.version):
                changes[name] = published[name] = resource
        refused = self._on_demand.refused()
        for service in sorted({self._on_demand.service_of(name) for name in added}):
            self._report_refused({service: frozenset(refused.get(service, ()))}, only=service)
        if self._publish_endpoint_changes(changes):
            log.info("endpoints.on_demand", names=sorted(changes))

    # -- refused endpoints -------------------------------------------------------------------

    def _report_refused(
        self,
        current: Mapping[NamespacedName, frozenset[RefusedEndpoint]],
        *,
        only: NamespacedName | None = None,
    ) -> None:
        """Log and count what `current` refuses that was not refused before; remember it.

        `current` covers every Service (a build), or only the Service `only` (the fast path)."""
        services = current.keys() | (self._refused.keys() if only is None else {only})
        for service in sorted(services):
            now = current.get(service, frozenset())
            before = self._refused.get(service, frozenset())
            if now == before:
                continue
            for refusal in sorted(now - before, key=_refusal_order):
                log.warning(
                    "endpoint.refused",
                    namespace=refusal.namespace,
                    service=refusal.service,
                    address=refusal.address,
                    port=refusal.port,
                    reason=refusal.reason.value,
                    detail=refusal.detail,
                    source=refusal.source,
                )
                self.metrics.endpoints_refused.labels(reason=refusal.reason.value).inc()
            if now:
                self._refused[service] = now
            else:
                del self._refused[service]


def _same_tables(snapshot: Snapshot, tables: Mapping[str, Mapping[str, Resource]]) -> bool:
    """Whether `snapshot` holds exactly `tables`: the same Resources, in the same order."""
    return snapshot.type_urls == tables.keys() and all(
        list(snapshot.resources(type_url).items()) == list(table.items())
        for type_url, table in tables.items()
    )


def _framed(
    frames: Mapping[str, Resource], type_url: str, name: str, body: bytes, eds_name: str | None
) -> Resource:
    """The resource for `body`: framed by `prepare` if it framed these very bytes, else now."""
    frame = frames.get(name)
    if frame is not None and frame.body is body and frame.eds_name == eds_name:
        return frame
    return Resource.from_body(type_url, name, body, eds_name=eds_name)


def _refusal_order(refusal: RefusedEndpoint) -> tuple[str, str, str, str, int, str]:
    return (
        refusal.namespace,
        refusal.service,
        refusal.source,
        refusal.address,
        refusal.port or 0,
        refusal.reason.value,
    )
