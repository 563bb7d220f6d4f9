"""Protocol-buffer wire primitives for assembling messages from pre-encoded pieces.

The protobuf encoding of a message is the concatenation of its encoded fields, in any order, and
a repeated field is simply its element field repeated. So a ``DiscoveryResponse`` can be built by
joining bytes that were encoded once per resource (ARCHITECTURE §4.1) with a few small fields
that differ per stream (nonce). This module knows only the wire format; it imports nothing of
ours and no generated messages.
"""

from collections.abc import Iterable

__all__ = ["field_bytes", "field_str", "join_fields", "length_delimited_header", "varint"]

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
