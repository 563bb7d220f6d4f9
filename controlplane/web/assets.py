"""The page's static files (`static/page.css`, `static/page.js`), shipped as package data.

Served from `/static/NAME` by the health server, never from a CDN: the page works offline and
behind a Content-Security-Policy that allows only its own origin. Only the names in `ASSETS`
are served (no path from a request ever reaches the file system).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["ASSETS", "asset"]

ASSETS = {
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
}
"""File name → Content-Type of every file the page loads."""


@cache
def asset(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of one of `ASSETS`, or None for any other name."""
    content_type = ASSETS.get(name)
    if content_type is None:
        return None
    body = resources.files(__package__ or "controlplane.web").joinpath("static", name)
    return body.read_bytes(), content_type
