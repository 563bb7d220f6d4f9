"""Check an Envoy v3 resource against what Envoy itself enforces, before it is published.

    problems = violations(route_configuration)
    # [Violation(path="virtual_hosts[3].routes[0].route.regex_rewrite.substitution",
    #            message="value contains a character not allowed in an HTTP header value: ...")]

Envoy rejects a whole resource (a RouteConfiguration with every virtual host in it, a listener
with every filter chain) when one value breaks a rule, so the publisher checks each changed
resource first and attributes what fails to the object it came from. Two sources of rules:

- the protoc-gen-validate annotations carried in the xds-protos descriptors (`validate.rules`
  on fields, `validate.required` on oneofs, `validate.disabled`/`ignored` on messages), with the
  C++ semantics Envoy runs (`validation_rules` documents them), recursing into sub-messages and
  into `google.protobuf.Any` payloads whose type is known (`typed_config<HttpConnectionManager>`
  in a path is the payload of that Any). PGV itself stops at an Any; Envoy validates the payload
  when it builds the filter or socket, with the same result;
- the load-time checks Envoy makes outside PGV (`validation_semantic`), its rule for every
  `Duration` (non-negative, at most 9223372035 s), and its refusal of deprecated fields and enum
  values annotated `envoy.annotations.disallowed_by_default(_enum)`.

Design, for speed (the publisher calls this on every changed resource):

- One checker is compiled per message type and kept: a table of the fields that need a look
  (a rule of their own, or one somewhere below them), by field descriptor. A message is walked
  with `ListFields()`, so unset fields cost nothing; the few rules that fail on a default value
  (`min_len: 1`, `message.required`, a required oneof) are checked directly. Each type's check
  is a generated function with those checks written out (a Python call or loop per node is the
  walk's main cost); names and reasons enter its source only through repr().
- Message types with no rule anywhere below them (a fixed point over the type graph, so
  recursive types work) are never entered.
- Paths are built only for failures: checkers return problems with their path segments and each
  caller on the way up appends its own, so a clean resource allocates no strings.
- Any payloads are decoded once per distinct (type, bytes): 1,000 filter chains sharing one
  HttpConnectionManager decode and check it once.
- A few small types that recur unchanged in every resource (`HeaderValueOption`: the
  `x-request-start` header of every route; `ConfigSource`: the ADS source of every cluster)
  remember the encodings that passed, and skip the check of an encoding seen passing (five
  times cheaper than checking it). Failures are never remembered.

The caches hold compiled checkers of immutable descriptors (and results for immutable bytes), so
they are memos of a pure function: results never depend on what was checked before.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from controlplane.envoy import validation_semantic
from controlplane.envoy.validation_descriptors import (
    disallowed,
    disallowed_values,
    field_rules,
    is_map,
    is_required,
    refuse_deprecated,
    refuse_values,
    required_oneofs,
    rule_kind,
    skipped,
    switched_off,
)
from controlplane.envoy.validation_rules import (
    Predicate,
    duration_predicate,
    envoy_duration_problem,
    first_failure,
    scalar_predicate,
)

__all__ = ["Violation", "violations"]

_DURATION: Final = "google.protobuf.Duration"
_TIMESTAMP: Final = "google.protobuf.Timestamp"
_ANY: Final = "google.protobuf.Any"
_WRAPPERS: Final = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_VALUE_TYPES: Final = _WRAPPERS | {_DURATION, _TIMESTAMP}
_ANY_CACHE_MAX_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Violation:
    """One value Envoy would reject: where it is in the resource, and why."""

    path: str
    """Field path from the resource, e.g. `virtual_hosts[3].routes[0].route.prefix_rewrite`;
    an Any payload shows its type, e.g. `filters[0].typed_config<HttpConnectionManager>.…`."""
    message: str


def violations(message: Message) -> list[Violation]:
    """Every value in `message` (and the Any payloads in it) that Envoy would reject."""
    check = _COMPILER.resource_check(message.DESCRIPTOR)
    problems = check(message) if check is not None else None
    return [Violation(problem.path(), problem.message) for problem in problems or ()]


class _Problem:
    """A violation on its way up: path segments innermost first, joined at the top."""

    __slots__ = ("message", "segments")

    def __init__(self, segment: str, message: str) -> None:
        self.segments = [segment] if segment else []
        self.message = message

    def joined(self) -> str:
        return "".join(reversed(self.segments))

    def path(self) -> str:
        return self.joined().removeprefix(".")


Problems = list[_Problem] | None
Check = Callable[[Any], Problems]
"""Checks one value (a message, a scalar, a container); None or [] when it passes."""


def _add(found: Problems, problems: Problems, segment: str) -> Problems:
    if not problems:
        return found
    for problem in problems:
        problem.segments.append(segment)
    if found is None:
        return problems
    found.extend(problems)
    return found


_ALWAYS, _ALWAYS_SCALAR, _REQUIRED, _ONEOF, _SEMANTIC = range(5)


class _MessageChecker:
    """The compiled checks of one message type; `finish()` turns them into `check`.

    `check` is one generated function per type, straight-line code with the names and reasons
    as constants: a Python call or loop per node is the walk's main cost, so the checks a type
    always makes (a required field, a required oneof) are written out rather than looped over.
    """

    __slots__ = ("by_field", "check", "tail")

    def __init__(self) -> None:
        self.by_field: dict[FieldDescriptor, tuple[str, Callable[[Any], Any], bool]] = {}
        """Fields checked when set (`ListFields`): segment, check, and whether the check is a
        scalar predicate (returns a reason) rather than a `Check` (returns problems)."""
        self.tail: list[tuple[int, str, str, Any]] = []
        """(kind, field or oneof name, segment, argument) of checks made on every message:
        _ALWAYS/_ALWAYS_SCALAR (a field without presence whose default value fails; argument:
        its Check or predicate), _REQUIRED (a field with presence that must be set), _ONEOF (a
        oneof that must have a member set; argument: the reason), _SEMANTIC (argument: a
        validation_semantic check)."""
        self.check: Check = self._unfinished

    def _unfinished(self, message: Any) -> Problems:
        raise RuntimeError("checker used before it was compiled")

    def finish(self) -> None:
        namespace: dict[str, Any] = {"get": self.by_field.get, "add": _add, "problem": _Problem}
        lines = ["def check(message, get=get, add=add, problem=problem):", "    found = None"]
        if self.by_field:
            lines += [
                "    for field, value in message.ListFields():",
                "        entry = get(field)",
                "        if entry is None:",
                "            continue",
                "        if entry[2]:",
                "            reason = entry[1](value)",
                "            if reason is not None:",
                "                found = add(found, [problem('', reason)], entry[0])",
                "        else:",
                "            problems = entry[1](value)",
                "            if problems:",
                "                found = add(found, problems, entry[0])",
            ]
        for index, (kind, name, segment, argument) in enumerate(self.tail):
            add = f"found = add(found, {{}}, {segment!r})"
            if kind == _REQUIRED:
                lines.append(f"    if not message.HasField({name!r}):")
                lines.append("        " + add.format("[problem('', 'value is required')]"))
            elif kind == _ONEOF:
                lines.append(f"    if message.WhichOneof({name!r}) is None:")
                lines.append("        " + add.format(f"[problem('', {argument!r})]"))
            elif kind == _ALWAYS_SCALAR:
                namespace[f"check_{index}"] = argument
                lines.append(f"    reason = check_{index}(getattr(message, {name!r}))")
                lines.append("    if reason is not None:")
                lines.append("        " + add.format("[problem('', reason)]"))
            elif kind == _ALWAYS:
                namespace[f"check_{index}"] = argument
                lines.append(f"    problems = check_{index}(getattr(message, {name!r}))")
                lines.append("    if problems:")
                lines.append("        " + add.format("problems"))
            else:
                namespace[f"check_{index}"] = argument
                lines.append(f"    semantic = [problem(p, r) for p, r in check_{index}(message)]")
                lines.append("    " + add.format("semantic"))
        lines.append("    return found")
        # Names and reasons enter the source only through repr(), so any text is safe there.
        # Defaults make the helpers locals of `check`, the fastest lookup Python has.
        exec("\n".join(lines), namespace)
        self.check = namespace["check"]


_REMEMBERED: Final = frozenset(
    {"envoy.config.core.v3.HeaderValueOption", "envoy.config.core.v3.ConfigSource"}
)
"""Types whose clean values are remembered by their bytes: the same small value in every
route (the `x-request-start` header) or cluster (the ADS config source), where checking it
again costs five times its serialization."""
_REMEMBERED_MAX: Final = 1024
_REMEMBERED_MAX_BYTES: Final = 512


def _remember_clean(check: Check) -> Check:
    """`check`, skipped for a value whose encoding passed it before. Only passes are kept (a
    failure's problems are mutated on their way up), at most `_REMEMBERED_MAX` of them, none
    longer than `_REMEMBERED_MAX_BYTES`: a memo of a pure function of the bytes (deterministic
    encoding: equal bytes, equal value), so what passed once passes again whoever asks."""
    clean: set[bytes] = set()

    def remembered(message: Any) -> Problems:
        data = message.SerializeToString(deterministic=True)
        if data in clean:
            return None
        found = check(message)
        if not found and len(data) <= _REMEMBERED_MAX_BYTES:
            if len(clean) >= _REMEMBERED_MAX:
                clean.clear()
            clean.add(data)
        return found

    return remembered


def _as_check(predicate: Predicate) -> Check:
    return lambda value: None if (reason := predicate(value)) is None else [_Problem("", reason)]


def _unwrapped(predicate: Predicate) -> Predicate:
    return lambda wrapper: predicate(wrapper.value)


class _Compiler:
    """Compiles and keeps one checker per message type (see the module docstring)."""

    def __init__(self) -> None:
        self._checkers: dict[str, _MessageChecker | None] = {}
        self._needs: dict[str, bool] = {}
        self._resources: dict[Descriptor, Check | None] = {}

    def resource_check(self, descriptor: Descriptor) -> Check | None:
        """The check of a whole resource: its type's checker plus the top-level-only checks."""
        try:
            return self._resources[descriptor]
        except KeyError:
            pass
        checker = self.checker(descriptor)
        message_check = checker.check if checker is not None else None
        top_level = validation_semantic.TOP_LEVEL.get(descriptor.full_name)
        check = message_check
        if top_level is not None:

            def check(message: Any) -> Problems:
                found = message_check(message) if message_check is not None else None
                extra = [_Problem(path, reason) for path, reason in top_level(message)]
                return _add(found, extra, "")

        self._resources[descriptor] = check
        return check

    # -- which types need a look ---------------------------------------------------------------

    def needs(self, descriptor: Descriptor) -> bool:
        """Whether any value of this type, or below it, can break a rule."""
        known = self._needs.get(descriptor.full_name)
        if known is not None:
            return known
        graph: dict[str, tuple[bool, list[str]]] = {}
        pending = [descriptor]
        while pending:
            current = pending.pop()
            name = current.full_name
            if name in graph or name in self._needs:
                continue
            if switched_off(current):
                graph[name] = (False, [])
                continue
            children = [
                field.message_type for field in current.fields if field.message_type is not None
            ]
            graph[name] = (self._has_own_rules(current), [c.full_name for c in children])
            pending.extend(children)
        result = {name: own for name, (own, _) in graph.items()}
        changed = True
        while changed:
            changed = False
            for name, (_, children) in graph.items():
                if not result[name] and any(
                    result[c] if c in result else self._needs[c] for c in children
                ):
                    result[name] = changed = True
        self._needs.update(result)
        return result[descriptor.full_name]

    @staticmethod
    def _has_own_rules(descriptor: Descriptor) -> bool:
        name = descriptor.full_name
        if name in (_DURATION, _ANY) or name in validation_semantic.BY_MESSAGE:
            return True
        if any(True for _ in required_oneofs(descriptor)):
            return True
        return any(
            field_rules(field) is not None or disallowed(field) or disallowed_values(field)
            for field in descriptor.fields
        )

    # -- compiling -----------------------------------------------------------------------------

    def checker(self, descriptor: Descriptor) -> _MessageChecker | None:
        name = descriptor.full_name
        if name in self._checkers:
            return self._checkers[name]
        if not self.needs(descriptor):
            self._checkers[name] = None
            return None
        checker = _MessageChecker()
        # Registered before its fields compile, so recursive types find it.
        self._checkers[name] = checker
        for field in descriptor.fields:
            self._compile_field(checker, field)
        for oneof in required_oneofs(descriptor):
            members = [member.name for member in oneof.fields]
            listed = (
                ", ".join(members[:-1]) + f" or {members[-1]}" if len(members) > 1 else members[0]
            )
            reason = f"one of {listed} must be set"
            checker.tail.append((_ONEOF, oneof.name, "." + oneof.name, reason))
        semantic = validation_semantic.BY_MESSAGE.get(name)
        if semantic is not None:
            checker.tail.append((_SEMANTIC, "", "", semantic))
        checker.finish()
        if name in _REMEMBERED:
            checker.check = _remember_clean(checker.check)
        return checker

    def _compile_field(self, checker: _MessageChecker, field: FieldDescriptor) -> None:
        rules = field_rules(field)
        segment = "." + field.name
        # A oneof member (or proto3 `optional`) is checked only when set, as PGV renders it
        # inside the oneof's switch: `required` on it can never fail.
        if field.has_presence and field.containing_oneof is None and is_required(rules):
            checker.tail.append((_REQUIRED, field.name, segment, None))
        scalar = False
        if is_map(field):
            check: Callable[[Any], Any] | None = self._map(field, rules)
            default: Any = {}
        elif field.is_repeated:
            check = self._repeated(field, rules)
            default = ()
        else:
            predicate = self._predicate(field, rules)
            scalar = predicate is not None
            check = predicate or self._message(field, rules)
            default = field.default_value
        if disallowed(field):
            # Set at all, it is refused: nothing else about its value matters.
            check, scalar = refuse_deprecated(field), True
        if check is None:
            return
        if not field.has_presence and check(default):
            checker.tail.append((_ALWAYS_SCALAR if scalar else _ALWAYS, field.name, segment, check))
        else:
            checker.by_field[field] = (segment, check, scalar)

    def _predicate(self, field: FieldDescriptor, rules: Any) -> Predicate | None:
        """The predicate for one value of `field` if it is a scalar, a wrapper, a Duration or
        a Timestamp (a value checked on its own); None for other messages."""
        message_type = field.message_type
        if message_type is None:
            predicate = scalar_predicate(rules, field) if rules else None
            banned = disallowed_values(field)
            if banned:  # Envoy refuses such a value even as an unset field's default
                predicate = first_failure(p for p in (refuse_values(banned), predicate) if p)
            return predicate
        name = message_type.full_name
        if name in _WRAPPERS:
            value_field = message_type.fields_by_name["value"]
            predicate = scalar_predicate(rules, value_field) if rules else None
            return _unwrapped(predicate) if predicate is not None else None
        if name == _DURATION:
            return _duration_predicate(rules)
        if name == _TIMESTAMP:
            return scalar_predicate(rules, field) if rules else None
        return None

    def _message(self, field: FieldDescriptor, rules: Any) -> Check | None:
        """The check of one message value of `field` (an Any, or a message with rules)."""
        message_type = field.message_type
        if message_type is None or message_type.full_name in _VALUE_TYPES:
            return None
        if message_type.full_name == _ANY:
            return _any_check(rules)
        if skipped(rules) or not self.needs(message_type):
            return None
        sub = self.checker(message_type)
        if sub is None:
            return None
        if sub.check == sub._unfinished:  # a recursive type, still being compiled
            return lambda value: sub.check(value)
        return sub.check

    def _element(self, field: FieldDescriptor, rules: Any) -> Check | None:
        """The check of one item of a repeated field or one value of a map."""
        predicate = self._predicate(field, rules)
        if predicate is not None:
            return _as_check(predicate)
        return self._message(field, rules)

    def _repeated(self, field: FieldDescriptor, rules: Any) -> Check | None:
        repeated = rules.repeated if rule_kind(rules) == "repeated" else None
        items = repeated.items if repeated is not None and repeated.HasField("items") else None
        predicate = None if skipped(rules) else self._predicate(field, items)
        element = None if skipped(rules) or predicate else self._message(field, items)
        size = _size_check(repeated, "min_items", "max_items", "item(s)", "items")
        unique = repeated is not None and repeated.unique
        ignore_empty = repeated is not None and repeated.ignore_empty
        if predicate is None and element is None and size is None and not unique:
            return None
        problem, add = _Problem, _add

        def check(values: Any) -> Problems:
            if ignore_empty and not len(values):
                return None
            found: Problems = None
            if size is not None and (reason := size(len(values))) is not None:
                found = [problem("", reason)]
            if unique:
                found = add(found, _duplicates(values), "")
            # Two loops rather than one generic: this is the walk's innermost code.
            if predicate is not None:
                for index, value in enumerate(values):
                    reason = predicate(value)
                    if reason is not None:
                        found = add(found, [problem("", reason)], f"[{index}]")
            elif element is not None:
                for index, value in enumerate(values):
                    problems = element(value)
                    if problems:
                        found = add(found, problems, f"[{index}]")
            return found

        return check

    def _map(self, field: FieldDescriptor, rules: Any) -> Check | None:
        entry = field.message_type
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        pairs = rules.map if rule_kind(rules) == "map" else None
        keys = scalar_predicate(pairs.keys, key_field) if pairs and pairs.HasField("keys") else None
        value_rules = pairs.values if pairs is not None and pairs.HasField("values") else None
        element = None if skipped(rules) else self._element(value_field, value_rules)
        size = _size_check(pairs, "min_pairs", "max_pairs", "pair(s)", "pairs")
        ignore_empty = pairs is not None and pairs.ignore_empty
        if element is None and size is None and keys is None:
            return None

        def check(values: Any) -> Problems:
            if ignore_empty and not len(values):
                return None
            found: Problems = None
            if size is not None and (reason := size(len(values))) is not None:
                found = [_Problem("", reason)]
            for key in sorted(values):
                segment = f"[{json.dumps(key) if isinstance(key, str) else key}]"
                if keys is not None and (reason := keys(key)) is not None:
                    found = _add(found, [_Problem("", f"invalid key: {reason}")], segment)
                if element is not None:
                    found = _add(found, element(values[key]), segment)
            return found

        return check


def _size_check(
    rules: Any, min_name: str, max_name: str, unit: str, units: str
) -> Callable[[int], str | None] | None:
    """PGV's item/pair counts (min_items/max_items, min_pairs/max_pairs)."""
    if rules is None:
        return None
    minimum, maximum = getattr(rules, min_name), getattr(rules, max_name)
    has_max = rules.HasField(max_name)
    if minimum and has_max and minimum == maximum:
        reason = f"value must contain exactly {minimum} {unit}"
        return lambda size: None if size == minimum else reason
    if minimum and has_max:
        reason = f"value must contain between {minimum} and {maximum} {units}, inclusive"
        return lambda size: None if minimum <= size <= maximum else reason
    if minimum:
        reason = f"value must contain at least {minimum} {unit}"
        return lambda size: None if size >= minimum else reason
    if has_max:
        reason = f"value must contain no more than {maximum} {unit}"
        return lambda size: None if size <= maximum else reason
    return None


def _duplicates(values: Any) -> Problems:
    found: Problems = None
    seen: set[Any] = set()
    for index, value in enumerate(values):
        key = value.SerializeToString(deterministic=True) if isinstance(value, Message) else value
        if key in seen:
            found = _add(
                found, [_Problem("", "repeated value must contain unique items")], f"[{index}]"
            )
        seen.add(key)
    return found


def _duration_predicate(rules: Any) -> Predicate:
    pgv = duration_predicate(rules.duration) if rule_kind(rules) == "duration" else None
    if pgv is None:
        return envoy_duration_problem

    def check(value: Any) -> str | None:
        return envoy_duration_problem(value) or pgv(value)

    return check


def _any_check(rules: Any) -> Check:
    any_rules = rules.any if rule_kind(rules) == "any" else None
    allowed = frozenset(getattr(any_rules, "in")) if any_rules is not None else frozenset()
    denied = frozenset(any_rules.not_in) if any_rules is not None else frozenset()

    def check(value: Any) -> Problems:
        type_url = value.type_url
        if allowed and type_url not in allowed:
            return [_Problem("", f"type URL must be in list [{', '.join(sorted(allowed))}]")]
        if type_url in denied:
            return [_Problem("", f"type URL must not be in list [{', '.join(sorted(denied))}]")]
        payload = value.value
        if len(payload) > _ANY_CACHE_MAX_BYTES:
            found = _payload_problems(type_url, payload)
        else:
            found = _cached_payload_problems(type_url, payload)
        return [_Problem(path, reason) for path, reason in found] or None

    return check


def _payload_problems(type_url: str, payload: bytes) -> tuple[tuple[str, str], ...]:
    """(path from the Any, reason) of the Any's payload, if its type is known here."""
    type_name = type_url.rpartition("/")[2]
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    except KeyError:
        return ()  # a type this process does not know: nothing to check it against
    segment = f"<{descriptor.name}>"
    if not _COMPILER.needs(descriptor):
        return ()
    try:
        message = message_factory.GetMessageClass(descriptor).FromString(payload)
    except DecodeError:
        return ((segment, f"value does not decode as {type_name}"),)
    checker = _COMPILER.checker(descriptor)
    problems = checker.check(message) if checker is not None else None
    return tuple((segment + problem.joined(), problem.message) for problem in problems or ())


_cached_payload_problems = functools.lru_cache(maxsize=512)(_payload_problems)

_COMPILER: Final = _Compiler()
