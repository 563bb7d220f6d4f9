"""Short reason classes for metric labels: why an object is invalid, in a bounded vocabulary.

A Prometheus label value must never be a user's text: a description quotes names, matches and
hosts, and one label value per distinct sentence would let a tenant mint series at will. So a
status description is mapped onto one of a fixed set of classes (`REASONS`) by the wording the
DAG uses for it (`dag/status.py`, `dag/ingressroute_spec.py`, `dag/services.py`). Quoted values
are removed before matching, so text inside quotes cannot steer the class; anything not
recognised is `other`, never the text itself.

A `Problem` (Ingress, Service, Secret) is classed by its `field`, which our code writes (a JSON
path such as `spec.rules[0].host`): indices and bracketed keys are dropped
(`spec.rules[].host`) and anything that does not look like a path becomes `other`. A bug is
`internal_error`; a value left out because Envoy would reject it is `rejected_by_envoy`.
"""

from __future__ import annotations

import re

from controlplane.dag import INTERNAL_ERROR, Problem

__all__ = ["REASONS", "problem_class", "reason_class"]

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("internal_error", r"^internal error"),
        ("root_namespace", r"^root IngressRoute cannot be defined in this namespace"),
        ("root_to_root", r"root ingressroute cannot delegate to another root"),
        ("fqdn_missing", r"Spec\.VirtualHost\.Fqdn must be specified"),
        ("fqdn_wildcard", r"Spec\.VirtualHost\.Fqdn .*cannot use wildcards"),
        ("fqdn_invalid", r"Spec\.VirtualHost\.Fqdn .*is not a valid hostname"),
        ("fqdn_conflict", r"^fqdn .*is already used by (IngressRoute|Ingress) "),
        ("tls_secret", r"TLS Secret|certificate delegation not permitted"),
        ("route_match", r"match must|must be a URL path"),
        ("services_and_delegate", r"cannot specify services and delegate"),
        ("service_missing", r"Service \[.*\] is invalid or missing"),
        (
            "service_refused",
            r"Service \[.*\] (is of type ExternalName|points at|.*which is refused)",
        ),
        ("service_port", r"port must be in the range"),
        ("load_balancer_strategy", r"strategy .*is not supported"),
        ("service_weight", r"weight must|weights of its services"),
        ("health_check", r"healthCheck\."),
        ("upstream_validation", r"validation\.(caSecret|subjectName)"),
        ("retry_policy", r"retryPolicy\."),
        ("timeout_policy", r"timeoutPolicy\."),
        ("tcpproxy", r"^tcpproxy: "),
    )
)

SPEC_UNPARSABLE = "spec_unparsable"
OTHER = "other"
REJECTED_BY_ENVOY = "rejected_by_envoy"
INTERNAL = "internal_error"

REASONS: frozenset[str] = frozenset(
    {name for name, _ in _RULES} | {SPEC_UNPARSABLE, OTHER, REJECTED_BY_ENVOY}
)
"""Every reason class an IngressRoute can be given (problems add their field classes)."""

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_.\[\]-]{0,63}")
_BRACKETS = re.compile(r"\[[^\]]*\]")


def reason_class(description: str, *, unparsable: bool = False) -> str:
    """The class of an invalid IngressRoute's description (`unparsable`: its spec did not
    parse, and the description is the parser's)."""
    if unparsable:
        return SPEC_UNPARSABLE
    text = _QUOTED.sub('""', description)
    for name, pattern in _RULES:
        if pattern.search(text):
            return name
    return OTHER


def problem_class(problem: Problem) -> str:
    """The class of a problem of an Ingress, Service or Secret."""
    if problem.field == INTERNAL_ERROR:
        return INTERNAL
    if problem.reason.startswith("not served: "):
        return REJECTED_BY_ENVOY
    field = _BRACKETS.sub("[]", problem.field)
    return field if _FIELD.fullmatch(field) else OTHER
