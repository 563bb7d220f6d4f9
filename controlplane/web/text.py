"""Escaping: every string a user controls goes through here before it reaches HTML, SVG or DOT.

Names, fqdns, route matches and status descriptions come from tenants' objects, and a hostile
tenant will put `<script>` in whatever ends up on a page. `markup` escapes for HTML and XML
alike (text and attribute values; `&`, `<`, `>`, both quotes) and replaces characters XML 1.0
forbids (controls other than tab and newlines, lone surrogates, U+FFFE/U+FFFF) with U+FFFD, so
an SVG stays well-formed whatever a value holds. `dot_id` quotes for Graphviz. `clip` shortens
for display; the full value stays available (a `<title>` tooltip, the JSON endpoints).
"""

from __future__ import annotations

import html
import re

__all__ = ["clip", "dot_id", "markup"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def markup(text: str) -> str:
    """`text` as HTML/XML character data or a quoted attribute value."""
    return html.escape(_clean(text), quote=True)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters: longer text ends in an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "\u2026"


def dot_id(text: str) -> str:
    """`text` as a double-quoted Graphviz string (IDs and attribute values)."""
    escaped = _clean(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'
