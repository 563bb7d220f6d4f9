"""What changed between the statuses of two publish reports: the build listeners' work list.

After each publish the status writer and the Event recorder look at IngressRoute statuses. At
20,000 IngressRoutes one pass over all of them holds the event loop for tens of milliseconds,
whatever changed; a one-object edit changes one status. `status_changes(before, after)` says
which statuses are new or differ, and which keys are no longer reported, so the listeners look
only at those.

It is cheap because the DAG builder keeps the very same `ObjectStatus` (and the very same
statuses tuple, when none changed) for what a build did not touch:

- `before is after`: nothing changed, no pass at all.
- The same length: one identity pass in C (`map(is_not, ...)`), then the few pairs that are not
  the same object are compared by key and value (a status rebuilt equal, e.g. one carrying an
  Envoy rejection, which the publisher makes anew for each report, is not a change).
- Otherwise (objects added or gone), or if the keys do not line up: the common head and tail
  (the same objects at the same places, found by identity passes in C) are skipped, and only
  what lies between them is matched by key: one object added or gone among 20,000 costs a
  fraction of a millisecond, not a dict of all of them.

Pure: it reads two sequences of frozen values and returns a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import is_not

from controlplane.dag import ObjectStatus

__all__ = ["NO_STATUS_CHANGES", "StatusChanges", "status_changes"]

StatusKey = tuple[str, str, str]
"""kind, namespace, name (`ObjectStatus.key`)."""


@dataclass(frozen=True, slots=True)
class StatusChanges:
    """Statuses new or different since the last report (in the report's order), and the keys
    of statuses it no longer has (the object is gone, or no longer ours)."""

    changed: tuple[ObjectStatus, ...] = ()
    removed: tuple[StatusKey, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed)


NO_STATUS_CHANGES = StatusChanges()


def status_changes(before: Sequence[ObjectStatus], after: Sequence[ObjectStatus]) -> StatusChanges:
    """What a listener that saw `before` must look at to know `after` (see the docstring)."""
    if before is after:
        return NO_STATUS_CHANGES
    if not before:
        return StatusChanges(tuple(after))
    if len(before) == len(after):
        changed: list[ObjectStatus] = []
        for old, new in compress(zip(before, after, strict=True), map(is_not, before, after)):
            if old.key != new.key:
                break  # one object gone and another added: match them by key instead
            if old != new:
                changed.append(new)
        else:
            return StatusChanges(tuple(changed)) if changed else NO_STATUS_CHANGES
    shortest = min(len(before), len(after))
    head = _same_for(before, after, shortest)
    tail = _same_for(before[::-1], after[::-1], shortest - head)
    before = before[head : len(before) - tail]
    by_key = {status.key: status for status in before}
    changed = []
    for new in after[head : len(after) - tail]:
        was = by_key.pop(new.key, None)
        if was is None or (was is not new and was != new):
            changed.append(new)
    return StatusChanges(tuple(changed), tuple(by_key))


def _same_for(before: Sequence[ObjectStatus], after: Sequence[ObjectStatus], most: int) -> int:
    """How many leading places (at most `most`) hold the very same object in both."""
    differing = compress(range(most), map(is_not, before, after))
    return next(differing, most)
