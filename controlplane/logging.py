"""structlog set-up: key-value events on stderr, JSON in a cluster, readable lines on a terminal.

Logs always go to stderr, so a command's stdout carries only its data. Console output is
coloured only when stderr is a terminal and `NO_COLOR` is not set (https://no-color.org): a log
redirected to a file (the demo's `.demo/*.log`, a CI artifact) stays plain text, without ANSI
escape codes.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

LEVELS = ("debug", "info", "warning", "error")
"""The levels `--log-level` accepts."""


def use_colors() -> bool:
    """Colour console logs: stderr is a terminal and `NO_COLOR` is unset or empty."""
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    """A logger on whatever `sys.stderr` is when it logs, not when logging was configured (a
    test's captured stream is closed once the test is over; a later log must not write there)."""
    return structlog.PrintLogger(file=sys.stderr)


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Configure structlog once per process. `json=None` picks JSON unless stderr is a TTY."""
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=use_colors())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
