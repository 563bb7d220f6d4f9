"""RE2 patterns that reach Envoy: checked here with Google's own RE2, never with Python's `re`.

Envoy compiles every `safe_regex` (route matches, header matches, `regex_rewrite`) with RE2 and
rejects the whole route configuration when one pattern does not compile or its compiled program
is larger than `re2.max_program_size.error_level` (100 by default). Python's `re` accepts
patterns RE2 refuses (backreferences, lookaround) and says nothing about program size, so a
pattern a tenant wrote is checked by the `google-re2` binding, which is the same library Envoy
links. A pattern that fails is reported and left out by the caller; it never reaches Envoy.
"""

from __future__ import annotations

import re2

MAX_PROGRAM_SIZE = 100
"""Envoy's default `re2.max_program_size.error_level`: larger programs are rejected."""

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


def re2_problem(pattern: str) -> str | None:
    """Why Envoy would refuse `pattern`, or None when it compiles within the program size."""
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        return f"is not a valid RE2 pattern ({detail})"
    size: int = compiled.programsize
    if size > MAX_PROGRAM_SIZE:
        return (
            f"compiles to an RE2 program of size {size}, over Envoy's limit of {MAX_PROGRAM_SIZE}"
        )
    return None


def re2_fullmatch(pattern: str, text: str) -> bool:
    """Whether `pattern` matches the whole of `text`, as Envoy's `safe_regex` does."""
    return re2.compile(pattern, _OPTIONS).fullmatch(text) is not None
