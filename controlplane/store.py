"""The informer cache: every object we read, by (kind, namespace, name), and its change events.

Sources (informers, the file watcher) put objects in; the runtime reads an immutable `ObjectSet`
out for each build and listens to `Change` events to decide between the debounced rebuild and the
endpoint fast path.

Invariants:
- A change that the DAG cannot see is not a change: an update that differs only in
  `resourceVersion` or `.status` (our own status write coming back through the watch) emits
  nothing, so it never triggers a rebuild.
- Such an update that changes `.status` is told to the status listeners instead
  (`subscribe_status`), with the object as stored now: the status writer puts back a status
  someone else wrote, for that one object, without a rebuild and without looking at the others.
  They hear nothing else (an added, deleted or DAG-visibly changed object is a `Change`).
- Malformed raw objects are logged with their name and the reason and skipped; they never stop
  the others (`apply_raw`).
- `replace_kind` (a re-list after 410 Gone, a re-read file) emits deletes for objects that
  vanished meanwhile, so no stale object survives a missed watch event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

import structlog

from controlplane.model import (
    UNSTAMPED,
    Endpoints,
    EndpointSlice,
    Ingress,
    IngressClass,
    IngressRoute,
    KubeObject,
    ModelError,
    ObjectKey,
    ObjectSet,
    Secret,
    Service,
    TLSCertificateDelegation,
    parse_object,
)

log = structlog.get_logger(__name__)

NamespacedName = tuple[str, str]
ENDPOINT_KINDS = frozenset({EndpointSlice.KIND, Endpoints.KIND})


class ChangeType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class Change:
    type: ChangeType
    key: ObjectKey
    old: KubeObject | None
    new: KubeObject | None

    @property
    def object(self) -> KubeObject:
        found = self.new if self.new is not None else self.old
        assert found is not None  # a Change always carries one side
        return found

    @property
    def is_endpoint_change(self) -> bool:
        return self.key.kind in ENDPOINT_KINDS

    @property
    def service(self) -> NamespacedName | None:
        """For endpoint kinds: the (namespace, service) whose endpoints changed."""
        obj = self.object
        if isinstance(obj, EndpointSlice):
            return (obj.namespace, obj.service_name) if obj.service_name else None
        if isinstance(obj, Endpoints):
            return (obj.namespace, obj.name)
        return None


Listener = Callable[[Change], None]
StatusListener = Callable[[KubeObject], None]
"""Told the object as stored now, when an update changed its `.status` and nothing the DAG sees."""


def _dag_visible(obj: KubeObject) -> Any:
    """What of an object the DAG can see: everything but resourceVersion and status."""
    return obj.model_dump(exclude={"status": True, "metadata": {"resource_version"}})


def _status(obj: KubeObject) -> Any:
    """An object's `.status` (None for kinds without one)."""
    return getattr(obj, "status", None)


class Store:
    def __init__(self) -> None:
        self._objects: dict[str, dict[NamespacedName, KubeObject]] = {}
        self._slices: dict[NamespacedName, dict[str, EndpointSlice]] = {}
        self._slice_tuples: dict[NamespacedName, tuple[EndpointSlice, ...]] = {}
        """Sorted slices per Service, rebuilt only for Services whose slices changed."""
        self._listeners: list[Listener] = []
        self._status_listeners: list[StatusListener] = []
        self._arrivals: dict[tuple[str, NamespacedName], int] = {}
        """Objects without a creationTimestamp → the order this store first saw them."""
        self._next_arrival = 0
        self.endpoint_generation = 0
        """Counts every store and removal of an endpoint kind (see `with_current_endpoints`)."""

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def subscribe_status(self, listener: StatusListener) -> None:
        """Hear of updates that change only `.status` (and `resourceVersion`): no `Change`."""
        self._status_listeners.append(listener)

    def _emit(self, change: Change) -> Change:
        for listener in self._listeners:
            listener(change)
        return change

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        return self._objects.get(kind, {}).get((namespace, name))

    def keys(self, kind: str) -> list[ObjectKey]:
        return [ObjectKey(kind, ns, name) for ns, name in self._objects.get(kind, {})]

    def __len__(self) -> int:
        return sum(len(objects) for objects in self._objects.values())

    def apply(self, obj: KubeObject) -> Change | None:
        """Add or update an object; returns the change, or None when the DAG would not see one."""
        bucket = self._objects.setdefault(obj.KIND, {})
        key = (obj.metadata.namespace, obj.metadata.name)
        if obj.metadata.creation_timestamp is None:
            obj = self._stamped(obj, key)
        old = bucket.get(key)
        bucket[key] = obj
        if obj.KIND in ENDPOINT_KINDS:
            self.endpoint_generation += 1
        if isinstance(obj, EndpointSlice):
            self._index_slice(old, obj)
        if old is not None and (old == obj or _dag_visible(old) == _dag_visible(obj)):
            if old is not obj and _status(old) != _status(obj):
                for listener in self._status_listeners:
                    listener(obj)
            return None
        kind = ChangeType.ADDED if old is None else ChangeType.MODIFIED
        return self._emit(Change(kind, ObjectKey.of(obj), old, obj))

    def _stamped(self, obj: KubeObject, key: NamespacedName) -> KubeObject:
        """`obj` with a creation time standing for when this store first saw it.

        Manifest files carry no creationTimestamp, and "the oldest claimant keeps a host" must
        not fall back to namespace/name order (a tenant could pick a name that sorts first).
        Such objects are younger than every object with a timestamp and, among themselves, the
        first one seen is the oldest (files in path order, documents in file order; an object
        added later is younger). The time stays with the key until the object is deleted.
        """
        arrival = self._arrivals.get((obj.KIND, key))
        if arrival is None:
            arrival = self._arrivals[(obj.KIND, key)] = self._next_arrival
            self._next_arrival += 1
        created = UNSTAMPED + timedelta(microseconds=arrival)
        metadata = obj.metadata.model_copy(update={"creation_timestamp": created})
        return obj.model_copy(update={"metadata": metadata})

    @staticmethod
    def parse(raw: Mapping[str, Any], *, source: str = "") -> KubeObject | None:
        """Parse a raw object; a malformed one is logged with its name and reason, and skipped."""
        try:
            return parse_object(raw)
        except ModelError as error:
            log.warning(
                "object.skipped",
                kind=error.kind,
                namespace=error.namespace,
                name=error.name,
                reason=error.reason,
                source=source,
            )
            return None

    def apply_raw(self, raw: Mapping[str, Any], *, source: str = "") -> Change | None:
        """Parse and apply a raw object; a malformed one is logged and skipped."""
        obj = self.parse(raw, source=source)
        return None if obj is None else self.apply(obj)

    def delete(self, kind: str, namespace: str, name: str) -> Change | None:
        old = self._objects.get(kind, {}).pop((namespace, name), None)
        if old is None:
            return None
        self._arrivals.pop((kind, (namespace, name)), None)
        if kind in ENDPOINT_KINDS:
            self.endpoint_generation += 1
        if isinstance(old, EndpointSlice):
            self._index_slice(old, None)
        return self._emit(Change(ChangeType.DELETED, ObjectKey.of(old), old, None))

    def replace_kind(
        self, kind: str, objects: Iterable[KubeObject], *, namespace: str | None = None
    ) -> list[Change]:
        """Make the store hold exactly `objects` of `kind` (within `namespace` when given)."""
        changes: list[Change] = []
        seen: set[NamespacedName] = set()
        for obj in objects:
            seen.add((obj.metadata.namespace, obj.metadata.name))
            change = self.apply(obj)
            if change is not None:
                changes.append(change)
        for ns, name in list(self._objects.get(kind, {})):
            if (ns, name) not in seen and (namespace is None or ns == namespace):
                change = self.delete(kind, ns, name)
                if change is not None:
                    changes.append(change)
        return changes

    def _index_slice(self, old: KubeObject | None, new: EndpointSlice | None) -> None:
        touched: list[NamespacedName] = []
        if isinstance(old, EndpointSlice) and old.service_name:
            service = (old.namespace, old.service_name)
            self._slices.get(service, {}).pop(old.name, None)
            touched.append(service)
        if new is not None and new.service_name:
            service = (new.namespace, new.service_name)
            self._slices.setdefault(service, {})[new.name] = new
            touched.append(service)
        for service in touched:
            by_name = self._slices.get(service, {})
            if by_name:
                self._slice_tuples[service] = tuple(by_name[name] for name in sorted(by_name))
            else:
                self._slices.pop(service, None)
                self._slice_tuples.pop(service, None)

    def slices_for(self, namespace: str, service: str) -> tuple[EndpointSlice, ...]:
        return self._slice_tuples.get((namespace, service), ())

    def endpoints_for(self, namespace: str, service: str) -> Endpoints | None:
        found = self.get(Endpoints.KIND, namespace, service)
        return found if isinstance(found, Endpoints) else None

    def object_set(self) -> ObjectSet:
        """An immutable copy of what a build reads (copies the maps, shares the objects)."""

        def kind(name: str) -> dict[NamespacedName, Any]:
            return dict(self._objects.get(name, {}))

        return ObjectSet(
            services=kind(Service.KIND),
            secrets=kind(Secret.KIND),
            ingresses=kind(Ingress.KIND),
            ingress_classes=kind(IngressClass.KIND),
            ingress_routes=kind(IngressRoute.KIND),
            certificate_delegations=kind(TLSCertificateDelegation.KIND),
            endpoint_slices=dict(self._slice_tuples),
            endpoints=kind(Endpoints.KIND),
        )

    def with_current_endpoints(self, objects: ObjectSet) -> ObjectSet:
        """`objects` with the endpoints (EndpointSlices, Endpoints) as the store holds them now.

        A build reads a copy taken when it started (`object_set`); endpoints that changed while
        it ran were published by the fast path meanwhile, and publishing the build must not
        bring their older version back. The DAG reads no endpoints, so this set and the DAG
        built from `objects` still agree. (`endpoint_generation` unchanged since `objects` was
        taken: they are current already.)"""
        endpoints: dict[NamespacedName, Any] = dict(self._objects.get(Endpoints.KIND, {}))
        return replace(objects, endpoint_slices=dict(self._slice_tuples), endpoints=endpoints)
