"""Nothing Envoy would reject is encoded: every value is checked, and what fails is left out.

Envoy rejects a whole resource when one value in it breaks a rule (a RouteConfiguration with
every tenant's virtual hosts, the HTTPS listener with every tenant's filter chain), and a
rejected update freezes every Envoy on its last configuration. So the translator builds each DAG
value's message through `checked`: the message must build (a bug or an out-of-range number makes
protobuf raise) and pass `validation.violations` (the rules Envoy itself enforces). A value that
fails is left out, and a `Rejection` says what, why, and which Kubernetes object it came from
(its `Origin`); the publisher turns rejections into statuses, problems, logs and a metric.

The DAG refuses every hostile value it knows of with the user's field named (see
`dag/ingressroute_spec.py`); this is the backstop for the ones it does not. Checks run when a
value is encoded, which the translator caches, so their cost follows what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from controlplane.dag import Origin
from controlplane.envoy.validation import violations

__all__ = ["Rejection", "Rejections", "checked"]

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A value left out of what is published, because Envoy would reject it."""

    origin: Origin | None
    """The Kubernetes object it came from (None if unknown)."""
    type_url: str
    resource: str
    """The resource it belonged to: a virtual host's fqdn, a cluster's or secret's name."""
    path: str
    """Where in the Envoy message (empty when building the message failed)."""
    reason: str

    def describe(self) -> str:
        """One sentence for a status or a log line."""
        where = f"{self.path}: " if self.path else ""
        return f"Envoy would reject {where}{self.reason}"


Rejections = tuple[Rejection, ...]


def checked(
    build: Callable[[], M | None],
    origin: Origin | None,
    type_url: str,
    resource: str,
    prefix: str = "",
) -> tuple[M | None, Rejections]:
    """The message `build` makes (None if it makes none), or None and why Envoy would not
    take it."""
    try:
        message = build()
    except Exception as error:  # an out-of-range value, or a bug: this value only
        reason = f"cannot be translated ({type(error).__name__}: {error})"
        return None, (Rejection(origin, type_url, resource, prefix, reason),)
    if message is None:
        return None, ()
    found = violations(message)
    if not found:
        return message, ()
    return None, tuple(
        Rejection(origin, type_url, resource, prefix + violation.path, violation.message)
        for violation in found
    )
