"""The answer to a whole named subscription from a stream that holds nothing yet.

Every Envoy of a deployment asks EDS for the same cluster names, and after a controller restart
a thousand of them ask at once. Their first answers are identical but for the nonce: the
subscription's resources in name order, an empty ClusterLoadAssignment for every EDS name the
snapshot lacks, and the same resulting "sent" versions. :func:`whole_answer` computes that once
per subscription and type table (``Snapshot.derived``), so each stream pays only its nonce and
the response's framing instead of a pass over its thousand names.

It computes exactly what ``StreamState._diff`` computes for such a stream (dirty everything,
nothing held, nothing forced that is not also new, no rejected diff, SotW, a named type other
than CDS); ``tests/xds/test_xds_whole_answer.py`` holds the two side by side.

Pure: no I/O; the result is immutable and shared by every stream with the same subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from controlplane.typeurls import ENDPOINT_TYPE
from controlplane.xds.sharing import Versions
from controlplane.xds.snapshot import Snapshot

__all__ = ["WholeAnswer", "whole_answer"]

_UNKNOWN_NAMES_REMEMBERED: Final = 1024


@dataclass(frozen=True, slots=True)
class WholeAnswer:
    """What a stream holding nothing is sent for a whole subscription."""

    names: tuple[str, ...]
    """The resources sent, in name order (the order ``_diff`` sends them in)."""
    fields: bytes
    """Their ``DiscoveryResponse.resources`` fields, joined."""
    sent: Versions
    """What the stream holds afterwards, over the snapshot's shared versions."""
    complete: bool
    """Whether every subscribed name was sent (the batch is then the subscription itself)."""


def whole_answer(snapshot: Snapshot, type_url: str, subscribed: frozenset[str]) -> WholeAnswer:
    """The shared answer to ``subscribed`` of ``type_url`` from ``snapshot``.

    A subscription naming far more than the snapshot holds (a broken or hostile client asking
    for a million names) is answered without being remembered: the memo holds what a fleet
    shares, not what one client makes up.
    """
    if len(subscribed) > len(snapshot.resources(type_url)) + _UNKNOWN_NAMES_REMEMBERED:
        return _compute(snapshot, type_url, subscribed)
    return snapshot.derived(type_url, subscribed, lambda: _compute(snapshot, type_url, subscribed))


def _compute(snapshot: Snapshot, type_url: str, subscribed: frozenset[str]) -> WholeAnswer:
    current = snapshot.resources(type_url)
    endpoints = type_url == ENDPOINT_TYPE
    names: list[str] = []
    fields: list[bytes] = []
    overlay: dict[str, str | None] = {}
    for name in sorted(subscribed):
        resource = current.get(name)
        if resource is None:
            if not endpoints:
                continue  # a name the snapshot lacks is not answered (SotW cannot say so)
            resource = snapshot.empty_assignment(name)
            overlay[name] = resource.version  # not in the shared versions: held per stream
        names.append(name)
        fields.append(resource.any_field)
    sent = Versions(snapshot.versions(type_url), subscribed, overlay, floor=len(overlay))
    return WholeAnswer(tuple(names), b"".join(fields), sent, len(names) == len(subscribed))
