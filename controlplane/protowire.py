"""Protocol-buffer wire primitives for assembling messages from pre-encoded pieces.

The protobuf encoding of a message is the concatenation of its encoded fields, in any order, and
a repeated field is simply its element field repeated. So a ``DiscoveryResponse`` can be built by
joining bytes that were encoded once per resource (ARCHITECTURE §4.1) with a few small fields
that differ per stream (nonce). This module knows only the wire format; it imports nothing of
ours and no generated messages.

Reading goes the other way, just as far as taking a message apart again without decoding it:
``fields`` yields each top-level field with its bytes, so a RouteConfiguration splits into its
virtual hosts (and joins back, with some left out) without a parse of the whole message.
"""

from collections.abc import Iterable, Iterator

__all__ = [
    "field_bytes",
    "field_str",
    "fields",
    "first_string",
    "join_fields",
    "length_delimited_header",
    "varint",
]

_WIRE_LEN = 2  # wire type of length-delimited fields (strings, bytes, messages)


def varint(value: int) -> bytes:
    """Encode a non-negative integer as a base-128 varint."""
    if value < 0:
        raise ValueError("varint of a negative number")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited_header(number: int, length: int) -> bytes:
    """Tag and length of a length-delimited field whose payload is ``length`` bytes long."""
    return varint((number << 3) | _WIRE_LEN) + varint(length)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A complete length-delimited field (bytes or an embedded message)."""
    return length_delimited_header(number, len(payload)) + payload


def field_str(number: int, text: str) -> bytes:
    """A string field; empty strings are omitted, as proto3 does for default values."""
    if not text:
        return b""
    return field_bytes(number, text.encode())


def join_fields(pieces: Iterable[bytes]) -> bytes:
    """Concatenate encoded fields into one message (a single copy)."""
    return b"".join(pieces)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint starting at ``at`` and the offset after it."""
    value = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """Each top-level field of an encoded message: its number, its whole encoding (tag
    included) and, for a length-delimited field, its payload (``b""`` otherwise)."""
    at = 0
    while at < len(data):
        start = at
        tag, at = _read_varint(data, at)
        number, wire = tag >> 3, tag & 7
        payload_start = at
        if wire == 0:
            _, at = _read_varint(data, at)
        elif wire == 1:
            at += 8
        elif wire == _WIRE_LEN:
            length, payload_start = _read_varint(data, at)
            at = payload_start + length
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if at > len(data):
            raise ValueError("truncated field")
        payload = data[payload_start:at] if wire == _WIRE_LEN else b""
        yield number, data[start:at], payload


def first_string(data: bytes, path: Iterable[int]) -> str | None:
    """The first string found by following field numbers ``path`` down embedded messages."""
    numbers = tuple(path)
    current = data
    for depth, number in enumerate(numbers):
        for found, _, payload in fields(current):
            if found == number:
                current = payload
                break
        else:
            return None
        if depth == len(numbers) - 1:
            return current.decode("utf-8", "replace")
    return None
