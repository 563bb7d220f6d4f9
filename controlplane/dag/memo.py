"""Memos of pure functions of one short string, for values most objects of a cluster share.

A 10,000-route build meets the same few `match` strings (`/`, `/blog`), port names and policies
over and over; deriving the same value from them each time (a status phrase, a `PathMatch`, a
cluster's policy hash) is most of what some build steps cost. `text_memo` remembers a function's
result per argument, like `functools.lru_cache`, with two limits that keep it a memo and never a
store of tenants' data: only strings up to `longest` characters are remembered (a hostile
64 KiB `match` is computed each time, never held), and at most `maxsize` of them (least recently
used first out). The function must be pure and its result immutable: a hit hands back the very
object an earlier call made, whichever build asked.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar

__all__ = ["text_memo"]

T = TypeVar("T")

LONGEST = 256
"""The longest argument remembered, in characters."""


def text_memo(
    maxsize: int = 4096, longest: int = LONGEST
) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Decorate a pure `str -> T` function with a bounded memo of its short arguments."""

    def decorate(function: Callable[[str], T]) -> Callable[[str], T]:
        remembered = lru_cache(maxsize=maxsize)(function)

        @wraps(function)
        def memoized(text: str) -> T:
            if type(text) is str and len(text) <= longest:
                return remembered(text)
            return function(text)

        return memoized

    return decorate
