"""What one stream knows about one resource type: subscription, nonces, what was sent, ACKed,
answered and rejected, and what changed since (`stream.py` holds the rules that use it).

Every set and map here is immutable and may be shared with other streams and the snapshot
(`sharing.py`): a stream changes its state by replacing a reference, never by mutating.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controlplane.xds.sharing import NO_NAMES, NO_VERSIONS, Versions, union

__all__ = ["TypeState"]


class TypeState:
    """One type of one stream. Every set and map here is immutable and may be shared."""

    __slots__ = (
        "acked",
        "acked_nonce",
        "acked_sig",
        "acked_version",
        "answered",
        "dirty",
        "dirty_names",
        "forced",
        "full_sets",
        "initial",
        "last_batch",
        "last_nonce",
        "last_version",
        "nacked",
        "refresh",
        "rejected",
        "requested",
        "sent",
        "sent_sig",
        "subscribed",
        "type_url",
        "unresolved",
        "wildcard",
    )

    def __init__(self, type_url: str, *, wildcard: bool) -> None:
        self.type_url = type_url
        self.wildcard = wildcard
        self.full_sets = wildcard
        """In SotW, every response carries the whole set (LDS, CDS); a wildcard EDS
        subscription still gets diffs."""
        self.requested = False
        self.initial = False
        self.subscribed: frozenset[str] = NO_NAMES  # interned in the stream's Subscriptions
        self.last_nonce = ""
        self.last_version = ""
        self.acked_nonce = ""
        self.acked_version = ""  # the version_info of the response last ACKed (debug pages)
        self.last_batch: Mapping[str, str] = NO_VERSIONS
        held = Versions(scope=None if wildcard else NO_NAMES)
        self.sent = held
        self.sent_sig: str | None = None
        self.acked = held
        self.acked_sig: str | None = None
        self.answered = held
        self.nacked: Mapping[str, str] = NO_VERSIONS
        self.dirty = False
        self.dirty_names: frozenset[str] | None = NO_NAMES  # None: look at everything
        self.forced = NO_NAMES  # send even if unchanged (new subscription)
        self.refresh = NO_NAMES  # send again unless that version was NACKed
        # A diff the client rejected, name → version, until one of them changes (see _diff).
        self.rejected: Mapping[str, str] | None = None
        self.unresolved = NO_NAMES  # delta: newly subscribed, not yet answered

    def mark(self, names: Iterable[str] | None) -> None:
        self.dirty = True
        if names is None:
            self.dirty_names = None
        elif self.dirty_names is not None:
            self.dirty_names = union(self.dirty_names, names)
