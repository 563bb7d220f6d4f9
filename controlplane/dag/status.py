"""What `kubectl get ingressroute` says: the status wording and `.status.conditions`.

Every IngressRoute of our ingress class gets exactly one `ObjectStatus`, in one of three states:

- `valid`: `description` is `valid IngressRoute`, or, when something the object points at is not
  served, `valid IngressRoute, with warnings: W1; W2` (each warning names the route at fault);
- `invalid`: `description` is one sentence naming the route, service or field at fault, worded
  as Contour words it so existing scripts keep matching;
- `orphaned`: `this IngressRoute is not part of a delegation chain from a root IngressRoute`.

Conditions (the list is atomic: it is rewritten whole on every change, so a type may repeat):

- exactly one `Valid` condition: status `True` (reason `Valid`) or `False` (reason `Invalid` or
  `Orphaned`), its message the description;
- one `Warning` condition (status `True`) per warning, in the order the description lists them,
  with one of the `WarningReason`s below as reason and the warning sentence as message. Scripts
  select them with `.status.conditions[?(@.type=="Warning")]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from controlplane.dag.memo import text_memo
from controlplane.dag.types import ObjectStatus, Origin, Problem, StatusKind
from controlplane.model import Condition, IngressRoute, IngressRouteStatus, shown

KIND = "IngressRoute"
VALID = "valid IngressRoute"
ORPHANED = "this IngressRoute is not part of a delegation chain from a root IngressRoute"
ROOT_NAMESPACE = "root IngressRoute cannot be defined in this namespace"
ROOT_TO_ROOT = "root ingressroute cannot delegate to another root ingressroute"

CONDITION_VALID = "Valid"
CONDITION_WARNING = "Warning"


class WarningReason(StrEnum):
    """The `reason` of a `Warning` condition: what kind of thing is not served, and why."""

    DELEGATE_NOT_FOUND = "DelegateNotFound"
    """A route (or the tcpproxy) delegates to an IngressRoute that is missing (or not ours)."""
    DELEGATE_INVALID = "DelegateInvalid"
    """The delegate exists but is invalid, or cannot serve under this delegation: its paths leave
    the delegated prefix, or the delegation closes a cycle (`... is invalid under this route`)."""
    DELEGATE_HAS_NO_TCPPROXY = "DelegateHasNoTCPProxy"
    """A tcpproxy delegates to an IngressRoute that has no `tcpproxy` of its own."""
    ROUTE_SHADOWED = "RouteShadowed"
    """Another route for the same host and path came first (earlier in the delegation walk);
    reported on the root of that host, naming the IngressRoute whose route is ignored."""
    ROUTE_EMPTY = "RouteEmpty"
    """A route has neither services nor a delegate (Contour ignored it silently)."""
    ROUTES_IGNORED = "RoutesIgnored"
    """`routes` beside a `tcpproxy` in effect: TCP proxying serves the host, so the routes are
    neither checked nor served (as in Contour, which required a dummy route beside a tcpproxy)."""
    TLS_IGNORED = "TLSIgnored"
    """Part of `virtualhost.tls` or `tcpproxy` is ignored (e.g. passthrough with a secret)."""
    TLS_VERSION_RAISED = "TLSVersionRaised"
    """`minimumProtocolVersion` is below TLS 1.2 or unknown: TLS 1.2 is served instead."""
    VALUE_IGNORED = "ValueIgnored"
    """A value Contour accepted does not parse (a timeout): the default is used instead."""
    REJECTED_BY_ENVOY = "RejectedByEnvoyRules"
    """A route (or host) was left out before publishing because Envoy would reject it."""


@dataclass(frozen=True, slots=True)
class StatusWarning:
    """Something a valid IngressRoute asks for that is not served; it stays `valid` regardless."""

    reason: WarningReason
    message: str


@text_memo()
def route_where(match: str) -> str:
    """How a status names a route: by its `match`, as the user wrote it (one string per
    distinct `match`: most routes share a few)."""
    return f'route "{shown(match)}"'


def service_where(where: str, service: str) -> str:
    return f'{where}: service "{shown(service)}"'


def prefix_mismatch(match: str, parent_prefix: str) -> str:
    return f'the path prefix "{match}" does not match the parent\'s path prefix "{parent_prefix}"'


def delegation_cycle(what: str, chain: Iterable[str]) -> str:
    """`what` is `route` or `tcpproxy`; `chain` runs from the root to the delegation that
    re-enters an object already on it (so its last object appears twice)."""
    return f"{what} creates a delegation cycle: {' -> '.join(chain)}"


def fqdn_taken(fqdn: str, owner: str) -> str:
    return f'fqdn "{fqdn}" is already used by IngressRoute {owner}'


def fqdn_used_by_ingress(fqdn: str, ingress: str) -> str:
    """A root claiming an fqdn that an older Ingress (of any namespace) claims."""
    return f'fqdn "{fqdn}" is already used by Ingress {ingress}'


def valid(route: IngressRoute, warnings: Iterable[StatusWarning] = ()) -> ObjectStatus:
    unique = tuple(dict.fromkeys(warnings))
    if not unique:
        return _shared(route, StatusKind.VALID)
    description = VALID + ", with warnings: " + "; ".join(w.message for w in unique)
    conditions = (
        _condition(CONDITION_VALID, "True", "Valid", description),
        *(_condition(CONDITION_WARNING, "True", w.reason.value, w.message) for w in unique),
    )
    return _status(route, StatusKind.VALID, description, conditions)


def invalid(route: IngressRoute, description: str) -> ObjectStatus:
    condition = _condition(CONDITION_VALID, "False", "Invalid", description)
    return _status(route, StatusKind.INVALID, description, (condition,))


def orphaned(route: IngressRoute) -> ObjectStatus:
    return _shared(route, StatusKind.ORPHANED)


_FIELDS_SET = {"current_status", "description", "observed_generation", "conditions"}
"""Every status sets every field: one set shared by all (pydantic keeps one per instance, and
20,000 of them cost 4 MiB); nothing mutates it."""


@lru_cache(maxsize=4096)
def _condition(type_: str, status: str, reason: str, message: str) -> Condition:
    # model_construct: our own values need no validation (a 10k build makes 20k of these), and
    # the cache shares one object among the many objects with the same condition (`Valid`).
    return Condition.model_construct(type=type_, status=status, reason=reason, message=message)


def _status(
    route: IngressRoute, kind: StatusKind, description: str, conditions: tuple[Condition, ...]
) -> ObjectStatus:
    metadata = route.metadata
    return ObjectStatus(
        KIND,
        metadata.namespace,
        metadata.name,
        _route_status(kind, description, metadata.generation, conditions),
    )


def _route_status(
    kind: StatusKind, description: str, generation: int, conditions: tuple[Condition, ...]
) -> IngressRouteStatus:
    return IngressRouteStatus.model_construct(
        _FIELDS_SET,
        current_status=kind.value,
        description=description,
        observed_generation=generation,
        conditions=conditions,
    )


_SHARED_KINDS = {
    StatusKind.VALID: (VALID, (CONDITION_VALID, "True", "Valid", VALID)),
    StatusKind.ORPHANED: (ORPHANED, (CONDITION_VALID, "False", "Orphaned", ORPHANED)),
}


_SHARED_STATUSES: dict[StatusKind, dict[int, IngressRouteStatus]] = {
    kind: {} for kind in _SHARED_KINDS
}
"""kind → generation → the status value: a memo of `_route_status` for those (a pure function
of them), bounded (each map is emptied when full)."""
_SHARED_STATUSES_MAX = 256


def _shared(route: IngressRoute, kind: StatusKind) -> ObjectStatus:
    """A status without warnings (valid) or orphaned: nearly every IngressRoute's. Its typed
    value depends only on the kind and the generation, so objects of one generation share one
    (immutable) `IngressRouteStatus`, as they share its `Valid` condition."""
    metadata = route.metadata
    generation = metadata.generation
    by_generation = _SHARED_STATUSES[kind]
    shared = by_generation.get(generation) if type(generation) is int else None
    if shared is None:
        description, condition = _SHARED_KINDS[kind]
        shared = _route_status(kind, description, generation, (_condition(*condition),))
        if type(generation) is int:
            if len(by_generation) >= _SHARED_STATUSES_MAX:
                by_generation.clear()
            by_generation[generation] = shared
    return ObjectStatus(KIND, metadata.namespace, metadata.name, shared)


def with_rejections(
    statuses: Sequence[ObjectStatus], rejected: Mapping[Origin, Sequence[str]]
) -> tuple[tuple[ObjectStatus, ...], tuple[Problem, ...]]:
    """Statuses and problems once values Envoy would reject were left out of what is published.

    An IngressRoute whose route (or host) was left out stays as the DAG judged it, with a
    `RejectedByEnvoyRules` warning per value naming the route and the reason; any other object
    (an Ingress, a Service, a Secret) gets a Problem. `rejected`: origin → reasons.
    """
    by_key = {(s.namespace, s.name): s for s in statuses if s.kind == KIND}
    changed: dict[tuple[str, str], ObjectStatus] = {}
    problems: list[Problem] = []
    for origin, reasons in rejected.items():
        status = changed.get((origin.namespace, origin.name)) or by_key.get(
            (origin.namespace, origin.name)
        )
        if origin.kind == KIND and status is not None:
            warnings = [
                StatusWarning(
                    WarningReason.REJECTED_BY_ENVOY, f"{origin.field or 'host'}: not served: {r}"
                )
                for r in reasons
            ]
            changed[(origin.namespace, origin.name)] = _with_warnings(status, warnings)
            continue
        problems.extend(
            Problem(origin.kind, origin.namespace, origin.name, origin.field, f"not served: {r}")
            for r in reasons
        )
    if not changed:
        return tuple(statuses), tuple(problems)
    return (
        tuple(changed.get((s.namespace, s.name), s) if s.kind == KIND else s for s in statuses),
        tuple(problems),
    )


def _with_warnings(status: ObjectStatus, warnings: Sequence[StatusWarning]) -> ObjectStatus:
    if status.current_status is not StatusKind.VALID:
        return status  # an invalid or orphaned object contributes nothing to be left out
    known = [
        StatusWarning(WarningReason(c.reason), c.message)
        for c in status.conditions
        if c.type == CONDITION_WARNING
    ]
    unique = tuple(dict.fromkeys((*known, *warnings)))
    description = VALID + ", with warnings: " + "; ".join(w.message for w in unique)
    conditions = (
        _condition(CONDITION_VALID, "True", "Valid", description),
        *(_condition(CONDITION_WARNING, "True", w.reason.value, w.message) for w in unique),
    )
    return ObjectStatus(
        status.kind,
        status.namespace,
        status.name,
        IngressRouteStatus.model_construct(
            _FIELDS_SET,
            current_status=StatusKind.VALID.value,
            description=description,
            observed_generation=status.status.observed_generation,
            conditions=conditions,
        ),
    )
