"""The object store of the test API server: etcd's revisions and the apiserver's watch cache.

Objects live in one dict per resource type, keyed by (namespace, name). Every successful write
takes the next value of one global counter as its `resourceVersion` (etcd's revision), appends a
`WatchEvent` to the history and hands it, synchronously, to every open `Watcher`. Because the
append and the hand-off happen with no `await` in between, a watcher registered at revision R
and fed the history after R sees every later event exactly once and in order. What a watcher
selects and how it reports an event (and the selectors of a list) live in `apiserver_watch`; the
`ApiError` every write raises lives in `apiserver_errors` (both re-exported here).

Invariants:

- `resourceVersion` is strictly increasing across all types; a list's `resourceVersion` is the
  current revision, so a watch started from it misses nothing.
- The history keeps the last `history_limit` events. Every event with a revision greater than
  `floor` is in it; a watch from a revision below `floor` is answered with 410 Expired.
  `compact()` raises `floor` to the current revision (a forced compaction).
- A write that changes nothing (after server-side defaulting) is not a write: no new revision,
  no event, as in the apiserver.
- `metadata.generation` starts at 1 and grows only when something other than `metadata` changes
  (and other than `status` when the type has a status subresource). Writes to the main resource
  keep the stored `.status` when the type has a status subresource; writes to `/status` change
  only `.status`.
- A namespaced object can be created only in an existing, not Terminating, Namespace. Deleting
  a Namespace marks it Terminating; `finalize_namespace` (which the server calls shortly after)
  deletes what is in it and then the Namespace, so `kubectl delete -f` of a namespace and its
  contents succeeds as on a cluster. Creating a CRD registers its types; deleting it removes
  them and their objects.
- A type with a `view` (`events.k8s.io/v1` Events) reads and writes the objects of the type
  it is stored as, converted at the edge and validated by the view: one object, one revision
  and one watch event, whichever API wrote it, and each API's watchers see it in their form.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from controlplane.testing.apiserver_errors import ApiError, not_found, status_object
from controlplane.testing.apiserver_registry import CRDError, Registry, ResourceType, types_from_crd
from controlplane.testing.apiserver_watch import (
    Dropped,
    Predicate,
    Watcher,
    WatchEvent,
    everything,
    field_selector,
    label_selector,
)

__all__ = [
    "ApiError",
    "Clock",
    "Dropped",
    "Predicate",
    "Store",
    "WatchEvent",
    "Watcher",
    "field_selector",
    "label_selector",
    "not_found",
    "rfc3339",
    "status_object",
]

JSON = dict[str, Any]
Clock = Callable[[], datetime]
CRD_KEY = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NAMESPACE_KEY = ("", "v1", "namespaces")
SERVICE_KEY = ("", "v1", "services")
SECRET_KEY = ("", "v1", "secrets")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- store -----------------------------------------------------------------------------------


def _without(obj: JSON, *keys: str) -> JSON:
    return {k: v for k, v in obj.items() if k not in keys}


def _without_nulls(value: Any, schema: JSON | None) -> Any:
    """A copy of a written object without its `null` fields, as the apiserver stores it: a
    built-in kind's `null` decodes to the Go zero value, which the JSON form omits
    (`creationTimestamp: null`, `labels: null`, `spec: null` are as good as absent), and a custom
    resource's `null` is pruned unless its schema says `nullable: true`."""
    if isinstance(value, list):
        items = (schema or {}).get("items")
        return [_without_nulls(v, items if isinstance(items, dict) else None) for v in value]
    if not isinstance(value, dict):
        return value
    properties = (schema or {}).get("properties") or {}
    additional = (schema or {}).get("additionalProperties")
    out: JSON = {}
    for key, item in value.items():
        sub = properties.get(key, additional if isinstance(additional, dict) else None)
        if item is None and not (sub or {}).get("nullable"):
            continue
        out[key] = _without_nulls(item, sub)
    return out


class Store:
    """Objects by type and (namespace, name), one revision counter, the event history, watchers."""

    def __init__(self, registry: Registry, *, history_limit: int, clock: Clock) -> None:
        self.registry, self.history_limit, self.clock = registry, history_limit, clock
        self.revision = 0
        self.floor = 0
        self._objects: dict[tuple[str, str, str], dict[tuple[str, str], JSON]] = {}
        self._sorted: dict[tuple[str, str, str], list[JSON]] = {}
        """Each type's objects in key order, kept until the type changes: a paged list of N
        objects would sort N objects per page otherwise."""
        self._history: deque[WatchEvent] = deque()
        self._watchers: set[Watcher] = set()
        self._next_ip = 1
        ns_type = registry.get(*NAMESPACE_KEY)
        assert ns_type is not None
        for name in INITIAL_NAMESPACES:
            self.create(ns_type, None, {"metadata": {"name": name}})

    # reads

    def _bucket(self, rtype: ResourceType) -> dict[tuple[str, str], JSON]:
        return self._objects.setdefault(rtype.key, {})

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> JSON:
        if rtype.view is not None:
            try:
                stored = self.get(self._type(rtype.view.stored_as), namespace, name)
            except ApiError as e:
                raise not_found(rtype, name) if e.code == 404 else e from None
            return rtype.view.from_stored(stored)
        obj = self._bucket(rtype).get((namespace or "", name))
        if obj is None:
            raise not_found(rtype, name)
        return copy.deepcopy(obj)

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        labels: Predicate,
        fields: Predicate,
        *,
        copied: bool = True,
    ) -> list[JSON]:
        """The matching objects in key order: copies, or (`copied=False`, for a caller that
        copies only the page it serves) the stored objects themselves, not to be changed."""
        if rtype.view is not None:
            stored = self.list(self._type(rtype.view.stored_as), namespace, everything, everything)
            viewed = [rtype.view.from_stored(obj) for obj in stored]
            return [obj for obj in viewed if labels(obj) and fields(obj)]
        ordered = self._sorted.get(rtype.key)
        if ordered is None:
            bucket = self._bucket(rtype)
            ordered = self._sorted[rtype.key] = [bucket[key] for key in sorted(bucket)]
        if namespace is None and labels is everything and fields is everything and not copied:
            return list(ordered)
        return [
            copy.deepcopy(obj) if copied else obj
            for obj in ordered
            if (namespace is None or obj["metadata"].get("namespace", "") == namespace)
            and labels(obj)
            and fields(obj)
        ]

    def _check_namespace_open(self, name: str) -> None:
        namespace = self._bucket(self._type(NAMESPACE_KEY)).get(("", name))
        if namespace is None:
            details = {"name": name, "kind": "namespaces"}
            raise ApiError(404, "NotFound", f'namespaces "{name}" not found', details)
        if "deletionTimestamp" in namespace["metadata"]:
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {name} because it is being terminated",
            )

    def _type(self, key: tuple[str, str, str]) -> ResourceType:
        rtype = self.registry.get(*key)
        assert rtype is not None
        return rtype

    # writes

    def _commit(self, rtype: ResourceType, event_type: str, obj: JSON, old: JSON | None) -> JSON:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        if event_type == "DELETED":
            self._bucket(rtype).pop((ns, name), None)
        else:
            self._bucket(rtype)[(ns, name)] = obj
        self._sorted.pop(rtype.key, None)
        event = WatchEvent(self.revision, event_type, rtype.key, copy.deepcopy(obj), old)
        self._history.append(event)
        while len(self._history) > self.history_limit:
            self.floor = self._history.popleft().revision
        for watcher in self._watchers:
            watcher.offer(event)
        return copy.deepcopy(obj)

    def _check_identity(self, rtype: ResourceType, namespace: str | None, obj: JSON) -> JSON:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        obj = _without_nulls(obj, rtype.schema)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        if rtype.namespaced:
            if (meta.get("namespace") or namespace) != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match "
                    "the namespace sent on the request",
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _validate(self, rtype: ResourceType, obj: JSON, old: JSON | None) -> None:
        assert rtype.view is not None
        try:
            rtype.view.validate(obj, old)
        except ValueError as e:
            name = obj["metadata"].get("name", "")
            raise ApiError(
                422, "Invalid", f'{rtype.kind}.{rtype.group} "{name}" is invalid: {e}'
            ) from None

    def create(
        self, rtype: ResourceType, namespace: str | None, body: JSON, *, dry_run: bool = False
    ) -> JSON:
        obj = self._check_identity(rtype, namespace, body)
        if rtype.view is not None:
            self._validate(rtype, obj, None)
            stored = self._type(rtype.view.stored_as)
            created = self.create(stored, namespace, rtype.view.to_stored(obj), dry_run=dry_run)
            return rtype.view.from_stored(created)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(
                422,
                "Invalid",
                f"{rtype.kind}.{rtype.group} is invalid: metadata.name: Required value",
            )
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > 253:
            raise ApiError(
                422, "Invalid", f'{rtype.kind} "{name}" is invalid: metadata.name: Invalid value'
            )
        if rtype.namespaced:
            self._check_namespace_open(namespace or "")
        if (meta.get("namespace", ""), name) in self._bucket(rtype):
            details = {"name": name, "group": rtype.group, "kind": rtype.plural}
            raise ApiError(
                409, "AlreadyExists", f'{rtype.group_resource} "{name}" already exists', details
            )
        meta.pop("resourceVersion", None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=rfc3339(self.clock()), generation=1)
        if rtype.has_status:
            obj.pop("status", None)
        self._default(rtype, obj, None)
        if dry_run:
            return obj
        created = self._commit(rtype, "ADDED", obj, None)
        if rtype.key == CRD_KEY:
            self.registry.add(types_from_crd(created))
        return created

    def update(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: JSON,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> JSON:
        old = self.get(rtype, namespace, name)
        obj = self._check_identity(rtype, namespace, body)
        if rtype.view is not None:
            self._validate(rtype, obj, old)
            updated = self.update(
                self._type(rtype.view.stored_as),
                namespace,
                name,
                rtype.view.to_stored(obj),
                subresource=subresource,
                dry_run=dry_run,
            )
            return rtype.view.from_stored(updated)
        meta = obj["metadata"]
        if meta.get("name", name) != name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        given = meta.get("resourceVersion")
        if given and given != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": '
                "the object has been modified; "
                "please apply your changes to the latest version and try again",
                {"name": name, "group": rtype.group, "kind": rtype.plural},
            )
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        else:
            new = obj
            for key in (
                "uid",
                "creationTimestamp",
                "generation",
                "resourceVersion",
                "deletionTimestamp",
            ):
                if key in old["metadata"]:
                    new["metadata"][key] = old["metadata"][key]
                else:
                    new["metadata"].pop(key, None)
            new["metadata"]["name"] = name
            if rtype.has_status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = old["status"]
        self._default(rtype, new, old)
        ignored = ("metadata", "status") if rtype.has_status else ("metadata",)
        if _without(new, *ignored) != _without(old, *ignored):
            new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        if new == old or dry_run:
            return new
        updated = self._commit(rtype, "MODIFIED", new, old)
        if rtype.key == CRD_KEY:
            self.registry.remove_crd(name)
            self.registry.add(types_from_crd(updated))
        return updated

    def delete(
        self, rtype: ResourceType, namespace: str | None, name: str, *, dry_run: bool = False
    ) -> JSON:
        """Delete an object. A Namespace is only marked Terminating here (as the apiserver
        does); `finalize_namespace` deletes what is in it and then the Namespace itself."""
        if rtype.view is not None:
            stored = self._type(rtype.view.stored_as)
            return rtype.view.from_stored(self.delete(stored, namespace, name, dry_run=dry_run))
        old = self.get(rtype, namespace, name)
        if dry_run:
            return old
        if rtype.key == NAMESPACE_KEY:
            if "deletionTimestamp" in old["metadata"]:
                return old
            terminating = copy.deepcopy(old)
            terminating["metadata"]["deletionTimestamp"] = rfc3339(self.clock())
            terminating["status"] = {"phase": "Terminating"}
            return self._commit(rtype, "MODIFIED", terminating, old)
        if rtype.key == CRD_KEY:
            for inner in self.registry.remove_crd(name):
                for obj in list(self._bucket(inner).values()):
                    self._commit(inner, "DELETED", copy.deepcopy(obj), obj)
                self._objects.pop(inner.key, None)
                self._sorted.pop(inner.key, None)
        return self._commit(rtype, "DELETED", copy.deepcopy(old), old)

    def finalize_namespace(self, name: str) -> None:
        """Delete every object in a Terminating namespace, then the namespace."""
        ns_type = self._type(NAMESPACE_KEY)
        namespace = self._bucket(ns_type).get(("", name))
        if namespace is None or "deletionTimestamp" not in namespace["metadata"]:
            return
        for key in list(self._objects):
            inner = self.registry.get(*key)
            if inner is not None and inner.namespaced:
                for obj in [o for (ns, _), o in self._objects[key].items() if ns == name]:
                    self._commit(inner, "DELETED", copy.deepcopy(obj), obj)
        self._commit(ns_type, "DELETED", copy.deepcopy(namespace), namespace)

    def _default(self, rtype: ResourceType, obj: JSON, old: JSON | None) -> None:
        """Server-side defaulting and the derived state of a few types."""
        if rtype.key == NAMESPACE_KEY:
            name = obj["metadata"]["name"]
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            terminating = "deletionTimestamp" in obj["metadata"]
            obj["status"] = {"phase": "Terminating" if terminating else "Active"}
        elif rtype.key == SECRET_KEY:
            obj["type"] = obj.get("type") or "Opaque"
        elif rtype.key == SERVICE_KEY:
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
            if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
                old_ip = (old or {}).get("spec", {}).get("clusterIP")
                spec["clusterIP"] = old_ip or self._allocate_ip()
            if spec.get("clusterIP"):
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
        elif rtype.key == CRD_KEY:
            try:
                types_from_crd(obj)
            except CRDError as e:
                name = obj["metadata"]["name"]
                raise ApiError(
                    422,
                    "Invalid",
                    f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: {e}',
                ) from None
            names = obj["spec"]["names"]
            accepted = {
                "singular": names["kind"].lower(),
                "listKind": names["kind"] + "List",
            } | names
            when = (
                (old or {}).get("status", {}).get("conditions", [{}])[0].get("lastTransitionTime")
            )
            when = when or obj["metadata"]["creationTimestamp"]
            obj["status"] = {
                "acceptedNames": accepted,
                "storedVersions": [v["name"] for v in obj["spec"]["versions"] if v.get("storage")],
                "conditions": [
                    {
                        "type": t,
                        "status": "True",
                        "reason": r,
                        "message": m,
                        "lastTransitionTime": when,
                    }
                    for t, r, m in (
                        ("NamesAccepted", "NoConflicts", "no conflicts found"),
                        (
                            "Established",
                            "InitialNamesAccepted",
                            "the initial names have been accepted",
                        ),
                    )
                ],
            }

    def _allocate_ip(self) -> str:
        ip = ipaddress.IPv4Address("10.96.0.0") + self._next_ip
        self._next_ip += 1
        return str(ip)

    # watch

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        labels: Predicate,
        fields: Predicate,
        since: int | None,
    ) -> Watcher:
        """Open a watch. From `since` (a revision) it replays the history after it; with no
        revision it starts with an ADDED for every current object, as the apiserver does for
        `resourceVersion` unset or "0". Raises `ApiError` 410 when `since` is compacted."""
        if since is not None and since < self.floor:
            raise ApiError(410, "Expired", f"too old resource version: {since} ({self.floor})")
        if rtype.view is not None:
            key, convert = rtype.view.stored_as, rtype.view.from_stored
            watcher = Watcher(key, namespace, labels, fields, convert)
        else:
            watcher = Watcher(rtype.key, namespace, labels, fields)
        if since is None:
            for obj in self.list(rtype, namespace, labels, fields):
                watcher.queue.put_nowait(("ADDED", obj))
        else:
            for event in self._events_after(since):
                watcher.offer(event)
        self._watchers.add(watcher)
        return watcher

    def _events_after(self, since: int) -> Iterator[WatchEvent]:
        return (e for e in self._history if e.revision > since)

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    @property
    def watch_count(self) -> int:
        return len(self._watchers)

    def drop_watches(self, *, graceful: bool = False) -> int:
        watchers = list(self._watchers)
        for watcher in watchers:
            watcher.queue.put_nowait(Dropped(graceful))
            self._watchers.discard(watcher)
        return len(watchers)

    def compact(self) -> None:
        """Forget the whole history: a watch from any revision before now gets 410 Expired."""
        self._history.clear()
        self.floor = self.revision
