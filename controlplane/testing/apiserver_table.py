"""Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the cells as it
receives them, so everything a user reads is decided here: the NAME column first, then the type's
printer columns (a CRD's `additionalPrinterColumns`, evaluated as simple JSONPaths, or a built-in's
cell functions), with AGE for built-ins. A CRD's columns are exactly its `additionalPrinterColumns`
(Age is there only when declared, or by default when none are), as on a cluster. Dates are
shown as ages, formatted like apimachinery's `duration.HumanDuration` (`5s`, `3m20s`, `2d4h`),
relative to the server's injectable clock.

Each row carries `object`: the `PartialObjectMetadata` of the object (`includeObject=Metadata`,
the default), the whole object (`Object`) or nothing (`None`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from controlplane.testing.apiserver_registry import PrinterColumn, ResourceType

JSON = dict[str, Any]

_NAME_COLUMN = PrinterColumn(
    name="Name",
    format="name",
    description="Name must be unique within a namespace.",
    cell=lambda obj: obj.get("metadata", {}).get("name", ""),
)
_AGE_COLUMN = PrinterColumn(
    name="Age",
    type="string",
    description="CreationTimestamp is the server time when this object was created.",
    json_path=".metadata.creationTimestamp",
)
_TOKEN = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]|\['([^']*)'\]")


def human_duration(delta: timedelta) -> str:
    """apimachinery's `duration.HumanDuration`, which kubectl shows in the AGE column."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def json_path(obj: Any, path: str) -> list[Any]:
    """Evaluate a simple JSONPath (`.a.b`, `.a[0].b`, `.a[*].b`, `.a['x.y']`, optionally in
    `{...}`); the result is every value found, in order."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    results = [obj]
    position = 0
    while position < len(path):
        m = _TOKEN.match(path, position)
        if not m:
            return []
        position = m.end()
        step: list[Any] = []
        for value in results:
            if m[1] is not None or m[3] is not None:
                key = m[1] if m[1] is not None else m[3]
                if isinstance(value, dict) and key in value:
                    step.append(value[key])
            elif isinstance(value, list):
                if m[2] == "*":
                    step.extend(value)
                elif int(m[2]) < len(value):
                    step.append(value[int(m[2])])
        results = step
    return results


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _cell(column: PrinterColumn, obj: JSON, now: datetime) -> Any:
    if column.cell is not None:
        value = column.cell(obj)
        return (
            human_duration(now - when)
            if column.type == "date" and (when := _parse_time(value))
            else value
        )
    found = json_path(obj, column.json_path)
    if not found or found[0] is None:
        return None
    value = found[0]
    if column.type == "date" or column is _AGE_COLUMN:
        when = _parse_time(value)
        return human_duration(now - when) if when else None
    if column.type == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if column.type == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return (
        json.dumps(value, separators=(",", ":"))
        if isinstance(value, dict | list)
        else json.dumps(value)
    )


def columns_for(rtype: ResourceType) -> list[PrinterColumn]:
    """NAME, the type's columns, and for built-ins AGE before the `-o wide` (priority) ones."""
    if rtype.crd_name or rtype.plural == "customresourcedefinitions":
        return [_NAME_COLUMN, *rtype.columns]
    normal = [c for c in rtype.columns if c.priority == 0]
    wide = [c for c in rtype.columns if c.priority != 0]
    return [_NAME_COLUMN, *normal, _AGE_COLUMN, *wide]


def partial_metadata(obj: JSON) -> JSON:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(
    rtype: ResourceType,
    objects: Iterable[JSON],
    *,
    now: datetime,
    include_object: str = "Metadata",
    list_meta: JSON | None = None,
) -> JSON:
    columns = columns_for(rtype)
    rows = []
    for obj in objects:
        row: JSON = {"cells": [_cell(c, obj, now) for c in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": [c.definition() for c in columns],
        "rows": rows,
    }
