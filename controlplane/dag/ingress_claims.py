"""What each Ingress claims, and how the claims of one host are settled into its virtual hosts.

`ingress.py` reads one Ingress into an `IngressReading`: route claims (a host, a match and a
route), TLS claims (a host and its certificate, or its TLS passed through) and canary claims.
Settling compares only the claims of one host, which is what lets the builder settle host by
host (`ingress_processor.py`) and the oracle (`reference.py`) everything at once with the same
functions and the same results, problems included: the losers of every settlement are returned
sorted by `route_claim_order` / `tls_claim_order`, which is how the builder orders them across
hosts.

Settling the routes of a host, in order:
1. Regex host (ingress-nginx): when any ingress-nginx path of the host asks for regex paths
   (`use-regex`, or a `rewrite-target` that differs from its path), every ingress-nginx claim of
   the host takes its regex form (`RouteClaim.regex_route`), as nginx enforces the regex
   location modifier on all the paths of a server. Claims of Contour semantics keep theirs.
2. Aliases (ingress-nginx `server-alias`): alias claims for a host that some Ingress names in a
   rule lose, as nginx ignores an alias that is another server's name.
3. Winners: rules go first, default backends after them; within each, the oldest Ingress, then
   the first path. A segment prefix `/` and a string prefix `/` are the same match.
4. Canaries (`ingress_canary.py`): each canary claim attaches to the winner of its match, or
   loses when there is none (or it has a canary already).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from controlplane.dag.ingress_canary import attach_canary
from controlplane.dag.ingress_nginx import CanaryRules
from controlplane.dag.ingress_nginx_routes import ClusterPolicy
from controlplane.dag.types import (
    Cluster,
    Origin,
    PathMatch,
    PathMatchKind,
    Problem,
    Redirect,
    Route,
    SecureVirtualHost,
    TCPProxy,
    TLSSecret,
    TLSVersion,
    VirtualHost,
    WeightedCluster,
)
from controlplane.model import Ingress

__all__ = [
    "DEFAULT_BACKEND",
    "IngressReading",
    "RouteClaim",
    "TLSClaim",
    "describe",
    "host_values",
    "route_claim_order",
    "route_order",
    "settle_routes",
    "settle_tls",
    "tls_claim_order",
]

DEFAULT_BACKEND = "spec.defaultBackend"
_KIND_ORDER = {
    PathMatchKind.EXACT: 0,
    PathMatchKind.SEGMENT_PREFIX: 1,
    PathMatchKind.PREFIX: 2,
    PathMatchKind.REGEX: 3,
}
_KIND_NAMES = {
    PathMatchKind.EXACT: "exact path",
    PathMatchKind.SEGMENT_PREFIX: "path prefix",
    PathMatchKind.PREFIX: "string prefix",
    PathMatchKind.REGEX: "path pattern",
}


def route_order(route: Route) -> tuple[int, int, int, str]:
    """Sort key for routes: most specific first (see `ingress.py`)."""
    match = route.match
    return (*match.specificity, _KIND_ORDER[match.kind], match.value)


def claim_key(host: str, match: PathMatch) -> tuple[str, PathMatchKind, str]:
    if match.kind is PathMatchKind.SEGMENT_PREFIX and match.value == "/":
        return (host, PathMatchKind.PREFIX, "/")
    return (host, match.kind, match.value)


def describe(host: str, match: PathMatch) -> str:
    return f'host "{host}" {_KIND_NAMES[match.kind]} "{match.value}"'


@dataclass(frozen=True, slots=True)
class RouteClaim:
    """A usable path of one Ingress, before conflicts are settled."""

    ingress: Ingress
    index: int
    """Position among the Ingress's claims (rules, aliases, canaries; 0 for the default
    backend): unique within the Ingress, so it orders the claims of one Ingress."""
    field: str
    host: str
    route: Route
    redirect: Redirect | None
    """On the plain listener, always answer with this redirect (to HTTPS)."""
    plain: bool
    """Serve the route on the plain listener (when not redirecting)."""
    redirect_if_tls: Redirect | None = None
    """On the plain listener, answer with this redirect when the host is served over TLS with a
    certificate (ingress-nginx `ssl-redirect`)."""
    regex_route: Route | None = None
    """The route as an ingress-nginx regex location (None: the path is not a usable pattern,
    or the claim is not of nginx semantics)."""
    regex_trigger: bool = False
    """This path makes every ingress-nginx path of its host a regex location."""
    alias: bool = False
    canary: CanaryRules | None = None
    """Set on the claims of a canary Ingress: they attach to a main claim, never compete."""
    cluster_policy: ClusterPolicy | None = None
    """How this claim's Ingress shapes clusters; a canary's cluster attached to it takes it."""
    extra_routes: tuple[Route, ...] = ()
    """Routes of the same match before `route` (a canary's header and cookie conditions)."""
    canary_by: RouteClaim | None = None
    """The canary claim attached to this one."""

    @property
    def key(self) -> tuple[str, PathMatchKind, str]:
        return claim_key(self.host, self.route.match)

    def as_regex(self) -> RouteClaim:
        if self.regex_route is None or self.regex_route is self.route:
            return self
        return replace(self, route=self.regex_route)

    def routes(self) -> tuple[Route, ...]:
        return (*self.extra_routes, self.route)

    def plain_routes(self, secured: bool) -> tuple[Route, ...]:
        """The routes on the plain listener; `secured`: the host is served over TLS here."""
        redirect = self.redirect or (self.redirect_if_tls if secured else None)
        if redirect is not None:
            return (Route(self.route.match, redirect=redirect, origin=self.route.origin),)
        return self.routes() if self.plain else ()


@dataclass(frozen=True, slots=True)
class TLSClaim:
    ingress: Ingress
    index: int
    """Position among the Ingress's TLS claims."""
    field: str
    """`spec.tls[i].hosts[j]` (or the `ssl-passthrough` annotation)."""
    host: str
    secret: TLSSecret | None
    minimum_tls_version: TLSVersion
    passthrough: Cluster | None = None
    """ingress-nginx `ssl-passthrough`: TLS is passed, unopened, to this cluster."""


@dataclass(frozen=True, slots=True)
class IngressReading:
    """What one Ingress asks for, read on its own: its claims and the problems found in it."""

    ingress: Ingress
    problems: tuple[Problem, ...]
    rules: tuple[RouteClaim, ...]
    default: RouteClaim | None
    tls: tuple[TLSClaim, ...]
    canaries: tuple[RouteClaim, ...] = ()

    @property
    def hosts(self) -> frozenset[str]:
        """Every host this Ingress claims a route, a canary or a certificate for."""
        hosts = {claim.host for claim in self.rules}
        hosts.update(claim.host for claim in self.tls)
        hosts.update(claim.host for claim in self.canaries)
        if self.default is not None:
            hosts.add(self.default.host)
        return frozenset(hosts)

    def for_host(self, host: str) -> IngressReading:
        """The claims of this reading for `host` only (the problems are left out)."""
        default = self.default if self.default is not None and self.default.host == host else None
        return IngressReading(
            self.ingress,
            (),
            tuple(claim for claim in self.rules if claim.host == host),
            default,
            tuple(claim for claim in self.tls if claim.host == host),
            tuple(claim for claim in self.canaries if claim.host == host),
        )


def route_claim_order(claim: RouteClaim) -> tuple[bool, tuple[datetime, str, str], int]:
    """Who claims first: rules before default backends, then the oldest Ingress, first path."""
    return (claim.field == DEFAULT_BACKEND, claim.ingress.age_key, claim.index)


def tls_claim_order(claim: TLSClaim) -> tuple[bool, tuple[datetime, str, str], int]:
    """Passed-through hosts first (nginx passes TLS through before terminating any), then the
    oldest Ingress."""
    return (claim.passthrough is None, claim.ingress.age_key, claim.index)


RouteLosers = list[tuple[RouteClaim, Problem]]
TLSLosers = list[tuple[TLSClaim, Problem]]


def problem(ingress: Ingress, field: str, reason: str) -> Problem:
    return Problem(ingress.KIND, ingress.namespace, ingress.name, field, reason)


def _by(winner: RouteClaim, claim: RouteClaim) -> str:
    if winner.ingress is claim.ingress:
        return f"{winner.field} of this Ingress"
    return f"Ingress {winner.ingress.namespace}/{winner.ingress.name} ({winner.field})"


def _host_claims(claims: list[RouteClaim], canaries: list[RouteClaim]) -> tuple[
    list[RouteClaim], list[RouteClaim], RouteLosers
]:  # fmt: skip
    """Steps 1 and 2 of the module docstring for the claims of one host."""
    if any(claim.regex_trigger for claim in claims):
        claims = [claim.as_regex() for claim in claims]
        canaries = [claim.as_regex() for claim in canaries]
    losers: RouteLosers = []
    owner = next((claim for claim in claims if not claim.alias), None)
    if owner is not None:
        for claim in claims:
            if claim.alias:
                reason = (
                    f'alias "{claim.host}" is the host of a rule of {_by(owner, claim)}: '
                    "the alias is ignored for it, as in ingress-nginx"
                )
                losers.append((claim, problem(claim.ingress, claim.field, reason)))
        claims = [claim for claim in claims if not claim.alias]
    return claims, canaries, losers


def settle_routes(
    readings: Sequence[IngressReading],
) -> tuple[dict[str, list[RouteClaim]], RouteLosers]:
    """The winning claim of every (host, match), grouped by host, and each losing claim with
    the problem it is reported as (see the module docstring). `readings` are oldest first."""
    rules: dict[str, list[RouteClaim]] = defaultdict(list)
    canaries: dict[str, list[RouteClaim]] = defaultdict(list)
    for reading in readings:
        for claim in reading.rules:
            rules[claim.host].append(claim)
        for claim in reading.canaries:
            canaries[claim.host].append(claim)
    defaults = [reading.default for reading in readings if reading.default is not None]
    losers: RouteLosers = []
    by_host: dict[str, list[RouteClaim]] = {}
    for host in sorted(rules.keys() | canaries.keys() | {claim.host for claim in defaults}):
        host_rules, host_canaries, alias_losers = _host_claims(rules[host], canaries[host])
        losers.extend(alias_losers)
        host_defaults = [claim for claim in defaults if claim.host == host]
        winners: dict[tuple[str, PathMatchKind, str], RouteClaim] = {}
        for claim in [*host_rules, *host_defaults]:
            winner = winners.setdefault(claim.key, claim)
            if winner is not claim:
                losers.append((claim, _lost(winner, claim)))
        for canary in host_canaries:
            main = winners.get(canary.key)
            attached = attach_canary(main, canary, describe(host, canary.route.match))
            if isinstance(attached, str):
                losers.append((canary, problem(canary.ingress, canary.field, attached)))
            else:
                winners[canary.key] = attached
        if winners:
            by_host[host] = list(winners.values())
    losers.sort(key=lambda loser: route_claim_order(loser[0]))
    return by_host, losers


def _lost(winner: RouteClaim, claim: RouteClaim) -> Problem:
    if claim.field == DEFAULT_BACKEND and winner.field != DEFAULT_BACKEND:
        why = "rules take precedence over default backends"
    elif winner.ingress is claim.ingress:
        why = "the first path wins"
    else:
        why = "the oldest Ingress wins (then the first by namespace/name)"
    reason = (
        f"{describe(claim.host, claim.route.match)} is already served by {_by(winner, claim)}: "
        f"{why}; this one is ignored"
    )
    return problem(claim.ingress, claim.field, reason)


def settle_tls(readings: Sequence[IngressReading]) -> tuple[dict[str, TLSClaim], TLSLosers]:
    """How each host is served over TLS: passed through (the oldest `ssl-passthrough`), else the
    certificate and minimum TLS version of the oldest Ingress."""
    winners: dict[str, TLSClaim] = {}
    losers: TLSLosers = []
    claims = sorted((claim for reading in readings for claim in reading.tls), key=tls_claim_order)
    for claim in claims:
        winner = winners.setdefault(claim.host, claim)
        same = (winner.secret, winner.minimum_tls_version, winner.passthrough) == (
            claim.secret,
            claim.minimum_tls_version,
            claim.passthrough,
        )
        if winner is claim or same:
            continue
        losers.append((claim, problem(claim.ingress, claim.field, _tls_lost(winner, claim))))
    losers.sort(key=lambda loser: tls_claim_order(loser[0]))
    return winners, losers


def _tls_lost(winner: TLSClaim, claim: TLSClaim) -> str:
    where = f"Ingress {winner.ingress.namespace}/{winner.ingress.name} ({winner.field})"
    if winner.passthrough is not None:
        how = f"passed through to Service [{winner.passthrough.service}:{winner.passthrough.port}]"
        if claim.passthrough is None:
            return (
                f'host "{claim.host}" is {how} by {where} (ssl-passthrough wins over TLS '
                "termination); this one is ignored"
            )
        return f'host "{claim.host}" is already {how} by {where}: the oldest Ingress wins'
    assert winner.secret is not None  # a claim without passthrough has a secret
    secret = f"Secret [{winner.secret.namespace}/{winner.secret.name}]"
    return (
        f'host "{claim.host}" is already served over TLS by {where} with {secret}, '
        f"minimum TLS {winner.minimum_tls_version.value}: the oldest Ingress wins; "
        "this one is ignored"
    )


def host_values(
    host: str, winners: Sequence[RouteClaim], tls: TLSClaim | None
) -> tuple[VirtualHost | None, SecureVirtualHost | None]:
    """The plain and TLS virtual host of `host`, from its winning claims and its TLS claim."""
    claims = sorted(winners, key=lambda claim: route_order(claim.route))
    secured = tls is not None and tls.secret is not None
    plain = tuple(route for claim in claims for route in claim.plain_routes(secured))
    secure = None
    if tls is not None:
        origin = Origin(tls.ingress.KIND, tls.ingress.namespace, tls.ingress.name, tls.field)
        if tls.passthrough is not None:
            proxy = TCPProxy((WeightedCluster(tls.passthrough),))
            secure = SecureVirtualHost(host, tcp_proxy=proxy, origin=origin)
        else:
            secure = SecureVirtualHost(
                host,
                routes=tuple(route for claim in claims for route in claim.routes()),
                secret=tls.secret,
                minimum_tls_version=tls.minimum_tls_version,
                origin=origin,
            )
    first = claims[0].route.origin if claims else None
    return (VirtualHost(host, plain, first) if plain else None), secure
