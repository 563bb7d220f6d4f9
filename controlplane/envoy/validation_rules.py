"""protoc-gen-validate's rules for one value: numbers, strings, bytes, enums, durations, times.

`controlplane.envoy.validation` walks messages; this module turns one `validate.FieldRules`
into a predicate `value -> message | None` for a single (non-message, or well-known) value. The
semantics are those of PGV's C++ templates, because that is the code Envoy runs:

- Rules apply to the value as it is, default values included (`min_len: 1` rejects `""`), unless
  `ignore_empty` is set; presence (oneof members, wrappers, `optional`) is the caller's business.
- The first failing rule wins, in PGV's order (const, in/not_in, lengths, prefix, suffix,
  contains, not_contains, pattern, well-known formats); Envoy reports one problem per value too.
- `lt`/`lte` with `gt`/`gte` mean "inside the range" when the upper bound is the larger, and
  "outside the range" otherwise (PGV's exclusive-range form).
- String lengths count code points (`len`, `min_len`, `max_len`) or UTF-8 bytes (`*_bytes`).
  `pattern` is RE2 run with `FullMatch` in C++; Python's `re.fullmatch` agrees on every pattern
  in Envoy's API. A pattern `re` cannot compile is skipped rather than guessed at.
- `well_known_regex` is a fixed pattern chosen at generation time. `HTTP_HEADER_NAME` with
  `strict` (the default) is `^:?[0-9a-zA-Z!#$%&'*+-.^_|~\\x60]+$` (note `+-.` is a range, so a
  comma passes: PGV's definition, kept as it is); `HTTP_HEADER_VALUE` strict forbids every
  control character but tab; either with `strict: false` forbids only NUL, LF and CR (and an
  empty name passes). Messages name the offending character instead of printing the pattern.
- C++ leaves `email`, `uri`, `uri_ref` and bytes `pattern` unimplemented (Envoy cannot use them);
  they are skipped here too. Timestamp `lt_now`/`gt_now`/`within` need a clock, which this pure
  layer does not read; Envoy uses none of them.

Messages are Envoy's own wording (e.g. `value length must be at least 1 characters`), so a
status line reads like the NACK it prevents.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor

Predicate = Callable[[Any], str | None]
"""A check of one value: None when it passes, else Envoy's reason."""

# Envoy's own rule for every google.protobuf.Duration (MessageUtil::validateDurationFields: in
# milliseconds, so that nanoseconds fit in an int64). 9223372035s + 999999999ns is the largest
# Envoy 1.40 loads; 9223372036s is refused.
MAX_DURATION_SECONDS: Final = 9_223_372_035
_NANOS_PER_SECOND: Final = 1_000_000_000

_HEADER_NAME = re.compile(r":?[0-9a-zA-Z!#$%&'*+-.^_|~`]+")
_HEADER_NAME_CHARS = re.compile(r"[^0-9a-zA-Z!#$%&'*+-.^_|~`]")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_LOOSE_BAD = re.compile(r"[\x00\x0a\x0d]")

_HTTP_HEADER_NAME: Final = 1
_HTTP_HEADER_VALUE: Final = 2

_INT_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_NUMERIC_RULES = frozenset(
    {
        "float",
        "double",
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
    }
)


def first_failure(checks: Iterable[Predicate]) -> Predicate | None:
    """One predicate running `checks` in order and returning the first failure."""
    ordered = tuple(checks)
    if not ordered:
        return None
    if len(ordered) == 1:
        return ordered[0]

    def check(value: Any) -> str | None:
        for one in ordered:
            reason = one(value)
            if reason is not None:
                return reason
        return None

    return check


def scalar_predicate(rules: Any, field: FieldDescriptor) -> Predicate | None:
    """The predicate for `rules` (a `validate.FieldRules`) on one value of `field`'s type.

    For wrapper-typed fields (`UInt32Value`, ...) the predicate takes the unwrapped value.
    None when the rules hold nothing to check for this type.
    """
    kind = rules.WhichOneof("type")
    if kind is None:
        return None
    typed = getattr(rules, kind)
    if kind in _NUMERIC_RULES:
        return _number(typed)
    if kind == "bool":
        return _const(typed, _fmt_bool)
    if kind == "string":
        return _string(typed)
    if kind == "bytes":
        return _bytes(typed)
    if kind == "enum":
        return _enum(typed, field)
    if kind == "duration":
        return duration_predicate(typed)
    if kind == "timestamp":
        return _timestamp(typed)
    return None


# -- numbers -------------------------------------------------------------------------------------


def _fmt_number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _fmt_bool(value: bool) -> str:
    return "true" if value else "false"


def _const(rules: Any, fmt: Callable[[Any], str]) -> Predicate | None:
    if not rules.HasField("const"):
        return None
    expected = rules.const
    reason = f"value must equal {fmt(expected)}"
    return lambda value: None if value == expected else reason


def _membership(
    rules: Any, fmt: Callable[[Any], str], key: Callable[[Any], Any] = lambda v: v
) -> list[Predicate]:
    checks: list[Predicate] = []
    if len(getattr(rules, "in")):
        allowed = frozenset(key(v) for v in getattr(rules, "in"))
        listed = ", ".join(fmt(v) for v in getattr(rules, "in"))
        reason = f"value must be in list [{listed}]"
        checks.append(lambda value: None if key(value) in allowed else reason)
    elif len(rules.not_in):
        denied = frozenset(key(v) for v in rules.not_in)
        listed = ", ".join(fmt(v) for v in rules.not_in)
        reason = f"value must not be in list [{listed}]"
        checks.append(lambda value: reason if key(value) in denied else None)
    return checks


def range_check(
    rules: Any, fmt: Callable[[Any], str], key: Callable[[Any], Any] = lambda v: v
) -> Predicate | None:
    """PGV's lt/lte/gt/gte, including the exclusive-range ("outside") forms."""
    has = rules.HasField
    low_name = "gt" if has("gt") else "gte" if has("gte") else None
    high_name = "lt" if has("lt") else "lte" if has("lte") else None
    if low_name is None and high_name is None:
        return None
    low: Any = key(getattr(rules, low_name)) if low_name else None
    high: Any = key(getattr(rules, high_name)) if high_name else None
    low_text = fmt(getattr(rules, low_name)) if low_name else ""
    high_text = fmt(getattr(rules, high_name)) if high_name else ""
    if low_name is None:
        if high_name == "lt":
            reason = f"value must be less than {high_text}"
            return lambda value: None if key(value) < high else reason
        reason = f"value must be less than or equal to {high_text}"
        return lambda value: None if key(value) <= high else reason
    if high_name is None:
        if low_name == "gt":
            reason = f"value must be greater than {low_text}"
            return lambda value: None if key(value) > low else reason
        reason = f"value must be greater than or equal to {low_text}"
        return lambda value: None if key(value) >= low else reason
    open_low, open_high = low_name == "gt", high_name == "lt"
    left = "(" if open_low else "["
    right = ")" if open_high else "]"

    def above_low(v: Any) -> bool:
        return bool(v > low if open_low else v >= low)

    def below_high(v: Any) -> bool:
        return bool(v < high if open_high else v <= high)

    if high > low:
        reason = f"value must be inside range {left}{low_text}, {high_text}{right}"
        return lambda value: None if above_low(k := key(value)) and below_high(k) else reason
    # The bounds are crossed: PGV reads this as "outside [high, low]", with each end open or
    # closed as the opposite rule says (lt/gt exclude their bound from the valid set).
    out_left = "[" if open_high else "("
    out_right = "]" if open_low else ")"
    reason = f"value must be outside range {out_left}{high_text}, {low_text}{out_right}"
    return lambda value: None if above_low(k := key(value)) or below_high(k) else reason


def _number(rules: Any) -> Predicate | None:
    checks = [c for c in (_const(rules, _fmt_number), range_check(rules, _fmt_number)) if c]
    checks += _membership(rules, _fmt_number)
    check = first_failure(checks)
    if check is None or not rules.ignore_empty:
        return check
    inner = check
    return lambda value: None if value == 0 else inner(value)


# -- strings and bytes ---------------------------------------------------------------------------


def _quote(text: str | bytes) -> str:
    if isinstance(text, bytes):
        return repr(text)[1:].replace("'", '"')
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def _lengths(
    rules: Any,
    measure: Callable[[Any], int],
    unit: str,
    exact_unit: str,
    names: tuple[str, str, str],
) -> Predicate | None:
    exact_name, min_name, max_name = names
    has = rules.HasField
    minimum = getattr(rules, min_name) if has(min_name) else None
    maximum = getattr(rules, max_name) if has(max_name) else None
    exact = getattr(rules, exact_name) if has(exact_name) else None
    if exact is None and minimum is not None and minimum == maximum:
        exact = minimum
    if exact is not None:
        reason = f"value length must be {exact} {exact_unit}"
        return lambda value: None if measure(value) == exact else reason
    if minimum is not None and maximum is not None:
        reason = f"value length must be between {minimum} and {maximum} {unit}, inclusive"
        return lambda value: None if minimum <= measure(value) <= maximum else reason
    if minimum is not None:
        reason = f"value length must be at least {minimum} {unit}"
        return lambda value: None if measure(value) >= minimum else reason
    if maximum is not None:
        reason = f"value length must be at most {maximum} {unit}"
        return lambda value: None if measure(value) <= maximum else reason
    return None


def _utf8_len(value: str) -> int:
    return len(value.encode("utf-8"))


def _affixes(rules: Any, names: tuple[str, ...]) -> list[Predicate]:
    has = rules.HasField
    return [
        _affix(name, getattr(rules, name))
        for name in ("prefix", "suffix", "contains", "not_contains")
        if name in names and has(name)
    ]


def _affix(name: str, part: Any) -> Predicate:
    if name == "prefix":
        reason = f"value does not have prefix {_quote(part)}"
        return lambda value: None if value.startswith(part) else reason
    if name == "suffix":
        reason = f"value does not have suffix {_quote(part)}"
        return lambda value: None if value.endswith(part) else reason
    if name == "contains":
        reason = f"value does not contain substring {_quote(part)}"
        return lambda value: None if part in value else reason
    reason = f"value contains substring {_quote(part)}"
    return lambda value: reason if part in value else None


def _pattern(pattern: str) -> Predicate | None:
    try:
        compiled = re.compile(pattern)
    except re.error:
        return None  # RE2 syntax Python lacks: better unchecked than wrongly rejected
    reason = f"value does not match regex pattern {_quote(pattern)}"
    return lambda value: None if compiled.fullmatch(value) else reason


def _bad_character(found: re.Match[str] | None, what: str) -> str | None:
    if found is None:
        return None
    return (
        f"value contains a character not allowed in an HTTP header {what}: "
        f"{found.group()!r} at index {found.start()}"
    )


def _header_name_strict(value: str) -> str | None:
    if _HEADER_NAME.fullmatch(value):
        return None
    if not value or value == ":":
        return "value must be a non-empty HTTP header name"
    return _bad_character(_HEADER_NAME_CHARS.search(value, 1 if value[0] == ":" else 0), "name")


def _header_value_strict(value: str) -> str | None:
    return _bad_character(_HEADER_VALUE_BAD.search(value), "value")


def _well_known_regex(rules: Any) -> Predicate | None:
    known = rules.well_known_regex
    if known not in (_HTTP_HEADER_NAME, _HTTP_HEADER_VALUE):
        return None
    what = "name" if known == _HTTP_HEADER_NAME else "value"
    if rules.HasField("strict") and not rules.strict:
        return lambda value: _bad_character(_HEADER_LOOSE_BAD.search(value), what)
    return _header_name_strict if known == _HTTP_HEADER_NAME else _header_value_strict


def is_ip(value: str, families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6)) -> bool:
    """inet_pton's verdict, which PGV's C++ `IsIp` and Envoy's address parser share."""
    for family in families:
        try:
            socket.inet_pton(family, value)
        except (OSError, ValueError):
            continue
        return True
    return False


def is_hostname(value: str) -> bool:
    """PGV's hostname rule: ≤ 253 characters, dot-separated labels of 1-63 [A-Za-z0-9-],
    no label starting or ending with '-'; one trailing dot allowed."""
    if len(value) > 253:
        return False
    labels = value.removesuffix(".").split(".")
    for label in labels:
        if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isascii() and (c.isalnum() or c == "-") for c in label):
            return False
    return True


def _is_uuid(value: str) -> bool:
    if len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return all(value[i] == "-" for i in (8, 13, 18, 23))


def _well_known_string(rules: Any) -> Predicate | None:
    kind = rules.WhichOneof("well_known")
    if kind is None or not getattr(rules, kind):
        return None
    if kind == "well_known_regex":
        return _well_known_regex(rules)
    formats: dict[str, tuple[Callable[[str], bool], str]] = {
        "ip": (is_ip, "value must be a valid IP Address"),
        "ipv4": (lambda v: is_ip(v, (socket.AF_INET,)), "value must be a valid IPv4 Address"),
        "ipv6": (lambda v: is_ip(v, (socket.AF_INET6,)), "value must be a valid IPv6 Address"),
        "hostname": (is_hostname, "value must be a valid hostname"),
        "address": (
            lambda v: is_hostname(v) or is_ip(v),
            "value must be an ip address, or a hostname.",
        ),
        "uuid": (_is_uuid, "value must be a valid UUID"),
    }
    if kind not in formats:  # email, uri, uri_ref: unimplemented in PGV's C++, so never in Envoy
        return None
    valid, reason = formats[kind]
    return lambda value: None if valid(value) else reason


def _string(rules: Any) -> Predicate | None:
    checks = [c for c in (_const(rules, _quote),) if c]
    checks += _membership(rules, _quote)
    lengths = (
        _lengths(rules, len, "characters", "characters", ("len", "min_len", "max_len")),
        _lengths(rules, _utf8_len, "bytes", "bytes", ("len_bytes", "min_bytes", "max_bytes")),
    )
    checks += [c for c in lengths if c]
    checks += _affixes(rules, ("prefix", "suffix", "contains", "not_contains"))
    if rules.HasField("pattern"):
        pattern = _pattern(rules.pattern)
        if pattern is not None:
            checks.append(pattern)
    known = _well_known_string(rules)
    if known is not None:
        checks.append(known)
    check = first_failure(checks)
    if check is None or not rules.ignore_empty:
        return check
    inner = check
    return lambda value: None if value == "" else inner(value)


def _bytes(rules: Any) -> Predicate | None:
    checks = [c for c in (_const(rules, _quote),) if c]
    checks += _membership(rules, _quote)
    length = _lengths(rules, len, "bytes", "bytes", ("len", "min_len", "max_len"))
    if length is not None:
        checks.append(length)
    checks += _affixes(rules, ("prefix", "suffix", "contains"))
    kind = rules.WhichOneof("well_known")
    if kind is not None and getattr(rules, kind):
        sizes, family = {"ip": ((4, 16), "IP"), "ipv4": ((4,), "IPv4"), "ipv6": ((16,), "IPv6")}[
            kind
        ]
        reason = f"value must be a valid {family} address"
        checks.append(lambda value: None if len(value) in sizes else reason)
    check = first_failure(checks)
    if check is None or not rules.ignore_empty:
        return check
    inner = check
    return lambda value: None if value == b"" else inner(value)


# -- enums ---------------------------------------------------------------------------------------


def _enum(rules: Any, field: FieldDescriptor) -> Predicate | None:
    enum_type = field.enum_type
    names = enum_type.values_by_number if enum_type is not None else {}

    def fmt(number: int) -> str:
        value = names.get(number)
        return value.name if value is not None else str(number)

    checks = [c for c in (_const(rules, fmt),) if c]
    checks += _membership(rules, fmt)
    if rules.defined_only:
        defined = frozenset(names)
        reason = "value must be one of the defined enum values"
        checks.append(lambda value: None if value in defined else reason)
    return first_failure(checks)


# -- durations and timestamps --------------------------------------------------------------------


def _nanos(value: Any) -> int:
    return int(value.seconds) * _NANOS_PER_SECOND + int(value.nanos)


def go_duration(value: Any) -> str:
    """A Duration as Go's `time.Duration.String()` prints it (PGV's messages use that)."""
    total = _nanos(value)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < _NANOS_PER_SECOND:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if total >= size:
                return sign + _fraction(total, size) + unit
    hours, rest = divmod(total, 3600 * _NANOS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * _NANOS_PER_SECOND)
    text = _fraction(rest, _NANOS_PER_SECOND) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _fraction(amount: int, unit: int) -> str:
    whole, rest = divmod(amount, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def envoy_duration_problem(value: Any) -> str | None:
    """Envoy's check of every Duration in a configuration, PGV rules or not."""
    seconds, nanos = int(value.seconds), int(value.nanos)
    if seconds < 0 or nanos < 0:
        return "duration must not be negative"
    if nanos > 999_999_999:
        return "duration nanos must be at most 999999999"
    if seconds > MAX_DURATION_SECONDS:
        return f"duration must be at most {MAX_DURATION_SECONDS}s"
    return None


def duration_predicate(rules: Any) -> Predicate | None:
    """PGV's DurationRules (presence and `required` are the caller's)."""
    return _time_predicate(rules, go_duration, membership=True)


def _timestamp_text(value: Any) -> str:
    return f"{int(value.seconds)}.{int(value.nanos):09d}s since the epoch"


def _timestamp(rules: Any) -> Predicate | None:
    return _time_predicate(rules, _timestamp_text, membership=False)


def _time_predicate(
    rules: Any, text: Callable[[Any], str], *, membership: bool
) -> Predicate | None:
    """Duration and Timestamp rules: `const`, the ranges, and (durations only) `in`/`not_in`,
    all compared in nanoseconds."""
    checks: list[Predicate] = []
    if rules.HasField("const"):
        expected = _nanos(rules.const)
        reason = f"value must equal {text(rules.const)}"
        checks.append(lambda value: None if _nanos(value) == expected else reason)
    ranged = range_check(rules, text, _nanos)
    if ranged is not None:
        checks.append(ranged)
    if membership:
        checks += _membership(rules, text, _nanos)
    return first_failure(checks)


def is_int_field(field: FieldDescriptor) -> bool:
    return field.type in _INT_TYPES
