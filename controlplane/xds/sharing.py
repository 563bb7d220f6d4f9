"""What streams share, so that a stream costs the size of its differences, not of its names.

The Envoys of one deployment subscribe to the same names and hold the same versions. A stream
that keeps its own set of 1,000 EDS names and its own maps of 1,000 versions (sent, ACKed, last
batch) costs hundreds of KB; two thousand of them cost a gigabyte. Shared, a stream costs a few
pointers and a small map of what is peculiar to it. Two structures make the sharing explicit:

- :class:`Subscriptions` interns subscriptions: each distinct set of names exists once, as one
  frozenset that every stream with that subscription, and the cache's watch index, refers to.
  Entries are counted by the streams holding them (``acquire``/``release``) and dropped at zero,
  so a subscription nobody holds any more is freed. ``by_encoding`` finds the set a request
  names from the request's encoded names alone: an Envoy repeats its whole EDS subscription in
  every ACK, and turning a thousand names into Python strings and a set costs more than encoding
  them once more in C and looking the bytes up.
- :class:`Versions` is an immutable map name → version that a client holds: a *base* mapping
  shared by every stream (a snapshot's versions), limited to a *scope* (the stream's
  subscription; ``None``: the whole base), plus a small per-stream *overlay* of differences, where
  ``None`` means "not held". Sending a few resources or forgetting a few names builds a new
  Versions with a slightly different overlay; an ACK keeps a reference and copies nothing. Once
  the overlay has grown, ``rebased`` moves it onto a newer base (one pass over the scope), after
  which it is empty again for a stream that is up to date.

Both are plain data: no I/O, no clock. All use must be from the event loop's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["NO_NAMES", "NO_VERSIONS", "Subscriptions", "Versions", "union"]

NO_NAMES: Final[frozenset[str]] = frozenset()
NO_VERSIONS: Final[Mapping[str, str]] = MappingProxyType({})

# Rebase once the overlay holds more than this many entries beyond what it held after the last
# rebase (names that differ from every base, e.g. empty assignments, stay in the overlay).
_REBASE_SLACK: Final = 16
_ABSENT: Final = object()
_ENCODINGS_REMEMBERED: Final = 32
_ENCODING_REMEMBERED_BYTES: Final = 1 << 20  # ~30,000 names


def union(held: frozenset[str], more: Iterable[str]) -> frozenset[str]:
    """``held | more``, returning one of the operands when it already is the union.

    Keeps shared frozensets shared: marking a stream with the names the cache reports, or forcing
    its whole subscription, stores a reference instead of a copy.
    """
    extra = more if isinstance(more, frozenset) else frozenset(more)
    if extra is held or not extra:
        return held
    if not held:
        return extra
    if extra <= held:
        return held
    return held | extra


class _Entry:
    __slots__ = ("count", "names")

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.count = 0


class Subscriptions:
    """Interned subscriptions: one frozenset per distinct set of names, counted by its holders."""

    __slots__ = ("_by_encoding", "_entries")

    def __init__(self) -> None:
        self._entries: dict[frozenset[str], _Entry] = {}
        self._by_encoding: dict[bytes, frozenset[str]] = {}

    def by_encoding(self, encoded: bytes, names: Callable[[], Iterable[str]]) -> frozenset[str]:
        """The set of ``names()``, looked up by ``encoded`` (those names encoded, in order).

        Equal encodings name equal sets, so the lookup is exact. The set returned is the
        interned one while some stream holds it. Bounded: a few distinct subscriptions are
        remembered at a time, as a deployment's Envoys share theirs.
        """
        known = self._by_encoding.get(encoded)
        if known is not None:
            return known
        result = frozenset(names())
        if len(encoded) > _ENCODING_REMEMBERED_BYTES:
            return result  # not remembered: 32 such keys could hold gigabytes
        entry = self._entries.get(result)
        if entry is not None:
            result = entry.names
        if len(self._by_encoding) >= _ENCODINGS_REMEMBERED:
            self._by_encoding.clear()
        self._by_encoding[encoded] = result
        return result

    def acquire(self, names: Iterable[str]) -> frozenset[str]:
        """The shared frozenset equal to ``names``; the caller must ``release`` it when done."""
        key = names if isinstance(names, frozenset) else frozenset(names)
        if not key:
            return NO_NAMES
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(key)
        entry.count += 1
        return entry.names

    def release(self, names: frozenset[str]) -> None:
        if not names:
            return
        entry = self._entries.get(names)
        if entry is None:
            raise KeyError("release of a subscription that was not acquired")
        entry.count -= 1
        if entry.count <= 0:
            del self._entries[names]

    def holders(self, names: frozenset[str]) -> int:
        """How many holders share ``names`` (for tests and debugging)."""
        entry = self._entries.get(names)
        return entry.count if entry is not None else 0

    def __len__(self) -> int:
        return len(self._entries)


class Versions(Mapping[str, str]):
    """An immutable name → version map: a shared base within a scope, plus a small overlay."""

    __slots__ = ("_base", "_covers", "_floor", "_overlay", "_scope")

    def __init__(
        self,
        base: Mapping[str, str] = NO_VERSIONS,
        scope: frozenset[str] | None = None,
        overlay: Mapping[str, str | None] = NO_VERSIONS,
        *,
        floor: int = 0,
    ) -> None:
        self._base = base
        self._scope = scope
        self._overlay = overlay
        self._floor = floor
        self._covers: tuple[object, bool] | None = None

    @property
    def base(self) -> Mapping[str, str]:
        return self._base

    @property
    def overlay(self) -> Mapping[str, str | None]:
        return self._overlay

    # -- lookups ------------------------------------------------------------------------------

    def version(self, name: str) -> str | None:
        """The version held for ``name``, or ``None`` if none is."""
        value = self._overlay.get(name, _ABSENT)
        if value is _ABSENT:
            scope = self._scope
            if scope is not None and name not in scope:
                return None
            return self._base.get(name)
        return value  # type: ignore[return-value]  # a str or None, never _ABSENT here

    def __getitem__(self, name: str) -> str:
        value = self.version(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.version(name) is not None

    def __iter__(self) -> Iterator[str]:
        overlay, base, scope = self._overlay, self._base, self._scope
        for name, value in overlay.items():
            if value is not None:
                yield name
        for name in base if scope is None else scope:
            if name not in overlay and name in base:
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def getter(self) -> Mapping[str, str]:
        """A plain mapping with the same contents when there is one (the base), else ``self``.

        For loops over many names: a dict lookup costs a fraction of a ``version`` call.
        """
        if not self._overlay and self._scope is None:
            return self._base
        return self

    def covers(self, names: Collection[str]) -> bool:
        """Is a version held for every one of ``names``? Remembered for the last ``names`` seen.

        Callers pass the same shared collection (a snapshot's cluster versions, its EDS names)
        until the snapshot changes, so a stream pays one pass per change, not one per question.
        """
        memo = self._covers
        if memo is not None and memo[0] is names:
            return memo[1]
        overlay, base, scope = self._overlay, self._base, self._scope
        if names is base and scope is None:
            result = None not in overlay.values()
        elif (scope is None or scope.issuperset(names)) and all(map(base.__contains__, names)):
            # Every name is in the base and the scope (both checks run in C): only an overlay
            # entry saying "not held" can spoil it.
            result = not any(v is None and n in names for n, v in overlay.items())
        else:
            result = all(name in self for name in names)
        self._covers = (names, result)
        return result

    def outside(self, reference: Mapping[str, object]) -> list[str]:
        """The names held for which ``reference`` has no entry."""
        overlay, base, scope = self._overlay, self._base, self._scope
        out = [n for n, v in overlay.items() if v is not None and n not in reference]
        if base is not reference and base:
            out.extend(
                name
                for name in base.keys() - reference.keys()
                if (scope is None or name in scope) and name not in overlay
            )
        return out

    # -- new values ---------------------------------------------------------------------------

    def _in_base(self, name: str) -> str | None:
        scope = self._scope
        if scope is not None and name not in scope:
            return None
        return self._base.get(name)

    def updated(self, changes: Mapping[str, str | None]) -> Versions:
        """A copy with ``changes`` applied (``None``: no longer held)."""
        if not changes:
            return self
        overlay = dict(self._overlay)
        for name, value in changes.items():
            if value == self._in_base(name):
                overlay.pop(name, None)
            else:
                overlay[name] = value
        return Versions(self._base, self._scope, overlay, floor=self._floor)

    def forgetting(self, names: Iterable[str]) -> Versions:
        """A copy that holds nothing for ``names``."""
        gone = {name: None for name in names if name in self}
        return self.updated(gone) if gone else self

    def within(self, scope: frozenset[str]) -> Versions:
        """The same holdings after the subscription became ``scope``.

        Names that left the scope are forgotten; names that entered it are not held yet (unless
        the overlay says otherwise, as a delta client's ``initial_resource_versions`` do).
        """
        old = self._scope
        if old is scope:
            return self
        base = self._base
        overlay = dict(self._overlay)
        if old is not None:
            for name in old - scope:
                overlay.pop(name, None)
        if base:
            entering = scope if old is None else scope - old
            for name in entering:
                if name in base and name not in overlay:
                    overlay[name] = None
        return Versions(base, scope, overlay, floor=self._floor)

    def wants_rebase(self) -> bool:
        return len(self._overlay) > self._floor + _REBASE_SLACK

    def rebased(self, base: Mapping[str, str]) -> Versions:
        """The same holdings expressed over ``base`` (a newer shared map): one pass."""
        scope = self._scope
        overlay: dict[str, str | None] = {}
        if scope is not None:
            for name in scope:
                value = self.version(name)
                if value != base.get(name):
                    overlay[name] = value
            # Names held outside the scope (a delta client's initial versions) stay as they are.
            for name, held in self._overlay.items():
                if name not in scope and held is not None:
                    overlay[name] = held
        else:
            for name in self._overlay.keys() | self._base.keys() | base.keys():
                value = self.version(name)
                if value != base.get(name):
                    overlay[name] = value
        return Versions(base, scope, overlay, floor=len(overlay))

    def __repr__(self) -> str:
        return f"Versions({len(self)} held, {len(self._overlay)} in overlay)"
