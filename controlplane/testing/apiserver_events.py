"""`events.k8s.io/v1` Events, served as a view of the core `v1` Events, as the apiserver does.

The apiserver keeps one kind of Event in etcd and serves it through both APIs: an Event a
controller creates with `POST /apis/events.k8s.io/v1/...` is listed by `kubectl describe`, which
asks the core API (`GET /api/v1/namespaces/NS/events?fieldSelector=involvedObject.name=...,
involvedObject.namespace=...,involvedObject.kind=...,involvedObject.uid=...&limit=500`, measured
with kubectl 1.32). The test server does the same: the registry marks the `events.k8s.io/v1`
type as stored as core `v1` `events` (`apiserver_registry.StorageView`), the store keeps one
object and converts at the edge with the two functions here.

The field mapping is the apiserver's (`pkg/apis/events/v1` conversions): `regarding` is
`involvedObject`, `note` is `message`, `reportingController` is `reportingComponent`, and the
`deprecated*` fields are the core API's `source`, `firstTimestamp`, `lastTimestamp` and `count`;
the rest have one name in both.

`validate` holds an `events.k8s.io/v1` write to the apiserver's rules that a controller can
trip over: the required fields, `type` Normal or Warning, `note` at most 1 KiB, `series` with a
count of at least 2, `regarding` in the Event's own namespace, and, on update, every field but
`series` (and metadata) immutable.
"""

from __future__ import annotations

import copy
from typing import Any

JSON = dict[str, Any]

NOTE_LIMIT = 1024
"""Bytes of `note` the apiserver accepts (`NoteLengthLimit`)."""
_FIELD_LIMIT = 128

# events.k8s.io/v1 name -> core v1 name, for the fields whose names differ
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_BACK = {core: v1 for v1, core in _RENAMED.items()}
_IMMUTABLE = (
    "regarding",
    "related",
    "note",
    "reason",
    "type",
    "action",
    "eventTime",
    "reportingController",
    "reportingInstance",
    "deprecatedSource",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "deprecatedCount",
)


class EventInvalid(ValueError):
    """An Event the apiserver would refuse (422); the message names the field."""


def _renamed(obj: JSON, names: dict[str, str], api_version: str) -> JSON:
    out: JSON = {"apiVersion": api_version, "kind": "Event"}
    for key, value in obj.items():
        if key not in ("apiVersion", "kind"):
            out[names.get(key, key)] = copy.deepcopy(value)
    return out


def to_core(event: JSON) -> JSON:
    """An `events.k8s.io/v1` Event as the core `v1` Event it is stored as."""
    return _renamed(event, _RENAMED, "v1")


def from_core(event: JSON) -> JSON:
    """A stored core `v1` Event as `events.k8s.io/v1` serves it."""
    return _renamed(event, _BACK, "events.k8s.io/v1")


def validate(event: JSON, old: JSON | None) -> None:
    """Raise `EventInvalid` for what the apiserver refuses in an `events.k8s.io/v1` write."""
    errors: list[str] = []
    if not event.get("eventTime"):
        errors.append("eventTime: Required value")
    for field in ("reportingController", "reportingInstance", "action", "reason"):
        value = event.get(field)
        if not value:
            errors.append(f"{field}: Required value")
        elif len(str(value)) > _FIELD_LIMIT:
            errors.append(f"{field}: Too long: may not be more than {_FIELD_LIMIT} bytes")
    if event.get("type") not in ("Normal", "Warning"):
        errors.append(
            f'type: Unsupported value: "{event.get("type")}": supported values: "Normal", "Warning"'
        )
    if len(str(event.get("note") or "").encode()) > NOTE_LIMIT:
        errors.append(f"note: Too long: may not be more than {NOTE_LIMIT} bytes")
    series = event.get("series")
    if series is not None:
        if not isinstance(series, dict) or int(series.get("count") or 0) < 2:
            errors.append("series.count: Invalid value: should be at least 2")
        elif not series.get("lastObservedTime"):
            errors.append("series.lastObservedTime: Required value")
    namespace = (event.get("metadata") or {}).get("namespace")
    regarding = event.get("regarding") or {}
    if regarding.get("namespace") and regarding["namespace"] != namespace:
        errors.append("regarding.namespace: Invalid value: does not match event.namespace")
    if old is not None:
        errors += [
            f"{field}: Invalid value: field is immutable"
            for field in _IMMUTABLE
            if event.get(field) != old.get(field)
        ]
    if errors:
        raise EventInvalid(", ".join(errors))
