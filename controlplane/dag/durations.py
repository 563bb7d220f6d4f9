"""Durations as users write them in annotations and IngressRoutes: Go syntax, plus `infinity`.

`parse_duration("1m30s") == 90.0`; `"infinity"` (and Contour's `"infinite"`) give `INFINITE`.
Anything else raises `ValueError` with a message fit for a status or a log line, including
durations longer than Envoy's maximum (9,223,372,035 s, about 292 years; a second less than
Go's), which would not fit an Envoy `Duration`.
"""

from __future__ import annotations

import re

from controlplane.dag.types import INFINITE

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_INFINITE_WORDS = frozenset({"infinity", "infinite"})
_MAX_SECONDS = 9_223_372_035
"""Envoy's largest Duration (its `seconds` must fit, with nanos, in an int64 of nanoseconds);
Go's limit is a second longer. Compared after float conversion, so the last second may round
up and be refused too, never the other way round."""


def parse_duration(text: str) -> float:
    value = text.strip()
    if value.lower() in _INFINITE_WORDS:
        return INFINITE
    if value == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(value) or not value:
        raise ValueError(f'"{text}" is not a duration (examples: 500ms, 10s, 1m30s, infinity)')
    if total > _MAX_SECONDS:
        raise ValueError(f'"{text}" is too long a duration (at most {_MAX_SECONDS} s)')
    return total
