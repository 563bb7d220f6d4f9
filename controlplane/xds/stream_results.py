"""What the per-stream state machine (`stream.py`) hands its caller: the framing of a stream,
what a request did (a NACK, a stale nonce, a changed subscription), and encoded responses."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = ["Framing", "Nack", "Outgoing", "RequestResult"]

_NOTHING: Final[Mapping[str, str]] = MappingProxyType({})


def _nothing() -> Mapping[str, str]:
    return _NOTHING


class Framing(enum.Enum):
    SOTW = "sotw"
    DELTA = "delta"


@dataclass(frozen=True, slots=True)
class Nack:
    """The client rejected the response it was sent with ``nonce`` (version ``version``)."""

    type_url: str
    version: str
    nonce: str
    message: str
    code: int
    resources: Mapping[str, str] = field(default_factory=_nothing, compare=False)
    """Name → version of every resource the rejected response carried (shared, not copied)."""
    accepted: Mapping[str, str] = field(default_factory=_nothing, compare=False)
    """Name → version of what the client had accepted of this type before it (shared)."""


@dataclass(frozen=True, slots=True)
class RequestResult:
    """What a request did, for the caller to log, count and re-index."""

    type_url: str
    stale: bool = False
    ignored: bool = False
    nack: Nack | None = None
    interest_changed: bool = False
    acked: Mapping[str, str] | None = None
    """On an ACK: name → version of every resource of the accepted response (shared)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One encoded response, ready to be written to the stream as it is."""

    type_url: str
    nonce: str
    version: str
    payload: bytes
    resources: tuple[str, ...]
    removed: tuple[str, ...] = ()
