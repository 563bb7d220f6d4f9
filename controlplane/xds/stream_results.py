"""What the per-stream state machine (`stream.py`) hands its caller: the framing of a stream,
what a request did (a NACK, a stale nonce, a changed subscription), and encoded responses."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Framing", "Nack", "Outgoing", "RequestResult"]


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


@dataclass(frozen=True, slots=True)
class RequestResult:
    """What a request did, for the caller to log, count and re-index."""

    type_url: str
    stale: bool = False
    ignored: bool = False
    nack: Nack | None = None
    interest_changed: bool = False


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One encoded response, ready to be written to the stream as it is."""

    type_url: str
    nonce: str
    version: str
    payload: bytes
    resources: tuple[str, ...]
    removed: tuple[str, ...] = ()
