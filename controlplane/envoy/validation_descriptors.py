"""What the descriptors say: the protoc-gen-validate rules and Envoy's deprecation annotations
of a field, a oneof or a message, read for `validation.py`'s checker compiler."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from envoy.annotations import deprecation_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from validate import validate_pb2

from controlplane.envoy.validation_rules import Predicate

__all__ = [
    "disallowed",
    "disallowed_values",
    "field_rules",
    "is_map",
    "is_required",
    "refuse_deprecated",
    "refuse_values",
    "required_oneofs",
    "rule_kind",
    "skipped",
    "switched_off",
]


def field_rules(field: FieldDescriptor) -> Any:
    options = field.GetOptions()
    if options.HasExtension(validate_pb2.rules):
        return options.Extensions[validate_pb2.rules]
    return None


def rule_kind(rules: Any) -> str | None:
    return None if rules is None else rules.WhichOneof("type")


def is_map(field: FieldDescriptor) -> bool:
    message_type = field.message_type
    return bool(field.is_repeated and message_type and message_type.GetOptions().map_entry)


def switched_off(descriptor: Descriptor) -> bool:
    options = descriptor.GetOptions()
    return any(
        options.HasExtension(extension) and options.Extensions[extension]
        for extension in (validate_pb2.disabled, validate_pb2.ignored)
    )


def required_oneofs(descriptor: Descriptor) -> Iterator[Any]:
    for oneof in descriptor.oneofs:
        options = oneof.GetOptions()
        if (
            options.HasExtension(validate_pb2.required)
            and options.Extensions[validate_pb2.required]
        ):
            yield oneof


def disallowed(field: FieldDescriptor) -> bool:
    """A deprecated field Envoy refuses unless a runtime flag re-enables it."""
    options = field.GetOptions()
    return bool(
        options.HasExtension(deprecation_pb2.disallowed_by_default)
        and options.Extensions[deprecation_pb2.disallowed_by_default]
    )


def disallowed_values(field: FieldDescriptor) -> dict[int, str]:
    """Enum values of `field`'s type that Envoy refuses by default: number → name."""
    enum_type = field.enum_type
    if enum_type is None:
        return {}
    banned = {}
    for value in enum_type.values:
        options = value.GetOptions()
        if (
            options.HasExtension(deprecation_pb2.disallowed_by_default_enum)
            and (options.Extensions[deprecation_pb2.disallowed_by_default_enum])
        ):
            banned[value.number] = value.name
    return banned


def refuse_deprecated(field: FieldDescriptor) -> Predicate:
    reason = f"{field.full_name} is deprecated and refused by Envoy (disallowed by default)"
    return lambda value: reason


def refuse_values(banned: dict[int, str]) -> Predicate:
    def check(value: Any) -> str | None:
        name = banned.get(value)
        if name is None:
            return None
        return f"enum value {name} is deprecated and refused by Envoy (disallowed by default)"

    return check


def is_required(rules: Any) -> bool:
    if rules is None:
        return False
    if rules.HasField("message") and rules.message.required:
        return True
    kind = rule_kind(rules)
    return kind in ("duration", "timestamp", "any") and bool(getattr(rules, kind).required)


def skipped(rules: Any) -> bool:
    return rules is not None and rules.HasField("message") and bool(rules.message.skip)
