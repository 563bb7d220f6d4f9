"""Ingress → virtual hosts: reading one Ingress into claims, and settling the claims of a host.

The builder (`ingress_processor.py`) reads each Ingress on its own (`read_ingress`) and settles
host by host (`settle_routes`, `settle_tls`, `host_values`); the test oracle (`reference.py`)
runs the same steps over every Ingress at once.

Ingress has no status of ours, so everything wrong with one is a log-only `Problem` naming the
field at fault, and a fault costs as little as it can: a bad path drops that path, a bad host that
rule, a bad certificate the HTTPS side of its hosts. Nothing here raises on any input.

How an Ingress becomes routes:

- A rule's `host` is a virtual host on the plain listener (lowercased: DNS names are
  case-insensitive and Envoy refuses two virtual hosts with one domain); host-less rules and
  `spec.defaultBackend` go to the catch-all `*`. The default backend is a plain prefix `/`, so it
  catches everything no more specific route takes.
- `pathType: Exact` is an exact match, `Prefix` a match by whole segments (`/foo` and `/foo/`
  match `/foo`, `/foo/` and `/foo/bar`, never `/foobar`), `ImplementationSpecific` a plain string
  prefix, as Contour did. A missing path is `/`.
- Within a host, routes are ordered most specific first: exact matches, then longer prefixes
  before shorter ones, a segment prefix before a string prefix of the same text (it matches a
  subset), then by text. Hosts are ordered by name with `*` last.

Who wins when two paths ask for the same host and match (a segment prefix `/` and a string prefix
`/` are the same match: both take every path): rules go first, default backends after them
(a default backend is for what no rule matches); within each, the oldest Ingress (creation time,
then namespace, then name) wins, and within one Ingress the first path. Only a usable path (valid,
with a backend that resolves) claims its match, so a broken path never shadows a working one. The
loser is dropped with a Problem naming the winner.

TLS: each `spec.tls` entry's hosts are served on the TLS listener with its Secret (see
`ingress_tls` for cross-namespace references) when they also have routes, from this Ingress or
another; the HTTPS side serves every route of the host, whatever the annotations say about plain
HTTP. When two Ingresses give one host different certificates (or minimum versions), the oldest
usable one wins. A bad certificate costs the host its HTTPS side only.

Annotations (see `ingress_annotations`) shape the plain listener per Ingress:
`force-ssl-redirect: "true"` turns the routes of the hosts the Ingress lists under `spec.tls` into
redirects to HTTPS (even when the certificate is unusable: the user asked that the host never be
served in clear text); `allow-http: "false"` removes the Ingress's other routes from the plain
listener (its redirects stay, as in Contour).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from controlplane.dag.classes import class_matches
from controlplane.dag.ingress_annotations import WEBSOCKET_ROUTES, IngressPolicy, ingress_policy
from controlplane.dag.ingress_tls import ingress_secret
from controlplane.dag.options import BuildOptions
from controlplane.dag.services import (
    Resolved,
    ServiceError,
    refused_external_name,
    resolve_cluster,
)
from controlplane.dag.types import (
    CATCH_ALL,
    HTTPS_REDIRECT,
    Cluster,
    Origin,
    PathMatch,
    PathMatchKind,
    Problem,
    Route,
    SecureVirtualHost,
    TLSSecret,
    TLSVersion,
    VirtualHost,
    WeightedCluster,
    host_order,
)
from controlplane.model import Ingress, IngressBackend, NamespacedName, ObjectSet, shown

__all__ = [
    "CATCH_ALL",
    "IngressReading",
    "RouteClaim",
    "TLSClaim",
    "host_order",
    "host_values",
    "ingresses_of_our_class",
    "is_ours",
    "normal_host",
    "overridden_by_ingressroute",
    "path_match",
    "read_ingress",
    "route_claim_order",
    "route_order",
    "settle_routes",
    "settle_tls",
    "tls_claim_order",
]

DEFAULT_BACKEND = "spec.defaultBackend"
PATH_TYPES = {
    "Exact": PathMatchKind.EXACT,
    "Prefix": PathMatchKind.SEGMENT_PREFIX,
    "ImplementationSpecific": PathMatchKind.PREFIX,
}
_KIND_ORDER = {PathMatchKind.EXACT: 0, PathMatchKind.SEGMENT_PREFIX: 1, PathMatchKind.PREFIX: 2}
_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
_MAX_HOST_LENGTH = 253
# `?` and `#` never reach a path match (Envoy strips the query) and Envoy rejects them in a
# segment prefix, which would fail the whole route configuration; nor can a request path hold
# whitespace or control characters.
_BAD_PATH_CHARACTER = re.compile(r"[?#\s\x00-\x1f\x7f]")


def route_order(route: Route) -> tuple[int, int, int, str]:
    """Sort key for routes: most specific first (see the module docstring)."""
    match = route.match
    return (*match.specificity, _KIND_ORDER[match.kind], match.value)


def _claim_key(host: str, match: PathMatch) -> tuple[str, PathMatchKind, str]:
    if match.kind is PathMatchKind.SEGMENT_PREFIX and match.value == "/":
        return (host, PathMatchKind.PREFIX, "/")
    return (host, match.kind, match.value)


def _describe(host: str, match: PathMatch) -> str:
    kinds = {
        PathMatchKind.EXACT: "exact path",
        PathMatchKind.SEGMENT_PREFIX: "path prefix",
        PathMatchKind.PREFIX: "string prefix",
    }
    return f'host "{host}" {kinds[match.kind]} "{match.value}"'


def normal_host(raw: str) -> str | None:
    """`raw` lowercased if it is a DNS name, optionally `*.`-prefixed; else None."""
    host = raw.strip().lower()
    if len(host) > _MAX_HOST_LENGTH or not _HOST.fullmatch(host):
        return None
    return host


def path_match(path: str | None, path_type: str) -> PathMatch | tuple[str, str]:
    """The match for an Ingress path, or (`path`|`pathType`, reason) when there is none."""
    kind = PATH_TYPES.get(path_type)
    if kind is None:
        choices = ", ".join(PATH_TYPES)
        return "pathType", f'"{shown(path_type)}" is not one of {choices}; path ignored'
    value = path or "/"
    if not value.startswith("/"):
        return "path", f'"{shown(value)}" does not start with "/"; path ignored'
    if _BAD_PATH_CHARACTER.search(value):
        return "path", f'"{shown(value)}" holds "?", "#", whitespace or control characters; ignored'
    if kind is PathMatchKind.SEGMENT_PREFIX:
        value = value.rstrip("/") or "/"
    return PathMatch(kind, value)


@dataclass(frozen=True, slots=True)
class RouteClaim:
    """A usable path of one Ingress, before conflicts are settled."""

    ingress: Ingress
    index: int
    """Position among the Ingress's rule claims (0 for the default backend)."""
    field: str
    host: str
    route: Route
    redirect: bool
    """On the plain listener, answer with a redirect to HTTPS."""
    plain: bool
    """Serve the route on the plain listener (when not redirecting)."""

    @property
    def key(self) -> tuple[str, PathMatchKind, str]:
        return _claim_key(self.host, self.route.match)

    def plain_route(self) -> Route | None:
        if self.redirect:
            return Route(self.route.match, redirect=HTTPS_REDIRECT, origin=self.route.origin)
        return self.route if self.plain else None


@dataclass(frozen=True, slots=True)
class TLSClaim:
    ingress: Ingress
    index: int
    """Position among the Ingress's TLS claims."""
    field: str
    """`spec.tls[i].hosts[j]`"""
    host: str
    secret: TLSSecret
    minimum_tls_version: TLSVersion


class _Problems:
    """Problems in the order found, each once (a Service used by many paths is reported once)."""

    def __init__(self) -> None:
        self._found: dict[Problem, None] = {}

    def add(self, ingress: Ingress, field: str, reason: str) -> None:
        self._found.setdefault(
            Problem(ingress.KIND, ingress.namespace, ingress.name, field, reason)
        )

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self._found.setdefault(problem)

    def result(self) -> tuple[Problem, ...]:
        return tuple(self._found)


class _Backends:
    """`resolve_cluster`, once per Service port and build however many paths name it."""

    def __init__(self, objects: ObjectSet, options: BuildOptions) -> None:
        self.objects, self.options = objects, options
        self._resolved: dict[tuple[str, str, int | str], Resolved | ServiceError] = {}

    def resolve(self, namespace: str, name: str, port: int | str) -> Resolved | ServiceError:
        """The cluster for a backend, or the error saying why there is none."""
        key = (namespace, name, port)
        if key not in self._resolved:
            try:
                self._resolved[key] = resolve_cluster(
                    self.objects, self.options, namespace, name, port
                )
            except ServiceError as error:
                self._resolved[key] = error
        return self._resolved[key]


class _IngressReader:
    """Turns one Ingress into route and TLS claims, reporting what it cannot use."""

    def __init__(self, backends: _Backends, ingress: Ingress, problems: _Problems) -> None:
        self.backends = backends
        self.objects = backends.objects
        self.options = backends.options
        self.ingress = ingress
        self.problems = problems
        policy, policy_problems = ingress_policy(ingress)
        problems.extend(policy_problems)
        self.policy: IngressPolicy = policy
        self.tls_hosts: set[str] = set()
        """Every valid host listed under `spec.tls`, usable certificate or not."""
        self.tls: list[TLSClaim] = []
        self.rules: list[RouteClaim] = []
        self.default: RouteClaim | None = None
        self._websocket_used: set[str] = set()

    def read(self) -> None:
        self._read_tls()
        self._read_rules()
        self._read_default_backend()
        annotations = self.ingress.metadata.annotations
        for path in sorted(self.policy.websocket_paths - self._websocket_used):
            name = next(name for name in WEBSOCKET_ROUTES if name in annotations)
            self.problems.add(
                self.ingress,
                f"metadata.annotations[{name}]",
                f'"{path}" matches no path of this Ingress; ignored',
            )

    def _read_tls(self) -> None:
        for index, tls in enumerate(self.ingress.spec.tls):
            field = f"spec.tls[{index}]"
            hosts = []
            for host_index, raw in enumerate(tls.hosts):
                host = normal_host(raw)
                if host is None:
                    self.problems.add(
                        self.ingress,
                        f"{field}.hosts[{host_index}]",
                        f'"{raw}" is not a DNS name (or *.name); ignored',
                    )
                    continue
                hosts.append((f"{field}.hosts[{host_index}]", host))
            if not tls.hosts:
                self.problems.add(self.ingress, f"{field}.hosts", "lists no hosts; ignored")
            self.tls_hosts.update(host for _, host in hosts)
            secret = self._secret(field, tls.secret_name)
            if secret is None:
                continue
            first = len(self.tls)
            self.tls.extend(
                TLSClaim(
                    self.ingress,
                    first + offset,
                    host_field,
                    host,
                    secret,
                    self.policy.minimum_tls_version,
                )
                for offset, (host_field, host) in enumerate(hosts)
            )

    def _secret(self, field: str, secret_name: str | None) -> TLSSecret | None:
        if not secret_name:
            self.problems.add(
                self.ingress, f"{field}.secretName", "is not set; these hosts get no HTTPS"
            )
            return None
        found = ingress_secret(self.objects, self.ingress.namespace, secret_name)
        if isinstance(found, str):
            self.problems.add(
                self.ingress, f"{field}.secretName", f"{found}; these hosts get no HTTPS"
            )
            return None
        return found

    def _read_rules(self) -> None:
        for index, rule in enumerate(self.ingress.spec.rules):
            host = CATCH_ALL
            if rule.host:
                normal = normal_host(rule.host)
                if normal is None:
                    self.problems.add(
                        self.ingress,
                        f"spec.rules[{index}].host",
                        f'"{rule.host}" is not a DNS name (or *.name); rule ignored',
                    )
                    continue
                host = normal
            if rule.http is None:
                continue
            for path_index, path in enumerate(rule.http.paths):
                field = f"spec.rules[{index}].http.paths[{path_index}]"
                match = path_match(path.path, path.path_type)
                if isinstance(match, tuple):
                    self.problems.add(self.ingress, f"{field}.{match[0]}", match[1])
                    continue
                written = path.path or "/"
                claim = self._claim(
                    len(self.rules), field, f"{field}.backend", host, written, match, path.backend
                )
                if claim is not None:
                    self.rules.append(claim)

    def _read_default_backend(self) -> None:
        backend = self.ingress.spec.default_backend
        if backend is None:
            return
        match = PathMatch(PathMatchKind.PREFIX, "/")
        self.default = self._claim(
            0, DEFAULT_BACKEND, DEFAULT_BACKEND, CATCH_ALL, "/", match, backend
        )

    def _claim(
        self,
        index: int,
        field: str,
        backend_field: str,
        host: str,
        written: str,
        match: PathMatch,
        backend: IngressBackend,
    ) -> RouteClaim | None:
        websocket = self.policy.is_websocket(written, match.value)
        if websocket:
            self._websocket_used.update({written, match.value})
        cluster = self._cluster(backend_field, backend)
        if cluster is None:
            return None
        route = Route(
            match,
            clusters=(WeightedCluster(cluster),),
            websocket=websocket,
            timeout_seconds=self.policy.timeout_seconds,
            retry=self.policy.retry,
            origin=Origin(self.ingress.KIND, self.ingress.namespace, self.ingress.name, field),
        )
        redirect = self.policy.force_ssl_redirect and host in self.tls_hosts
        return RouteClaim(self.ingress, index, field, host, route, redirect, self.policy.allow_http)

    def _cluster(self, field: str, backend: IngressBackend) -> Cluster | None:
        service = backend.service
        if service is None:
            self.problems.add(
                self.ingress, field, "names no service (resource backends are not supported)"
            )
            return None
        port = service.port.ref
        if port is None:
            self.problems.add(
                self.ingress, f"{field}.service.port", "has neither a number nor a name"
            )
            return None
        resolved = self.backends.resolve(self.ingress.namespace, service.name, port)
        if isinstance(resolved, ServiceError):
            self.problems.add(
                self.ingress, f"{field}.service.{self._faulty(service.name)}", str(resolved)
            )
            self.problems.extend(resolved.problems)
            return None
        self.problems.extend(resolved.problems)
        return resolved.cluster

    def _faulty(self, service_name: str) -> str:
        """Which of `service.name` and `service.port` made a backend unresolvable."""
        service = self.objects.services.get((self.ingress.namespace, service_name))
        if service is None:
            return "name"
        if service.is_external_name and (
            not self.options.enable_external_name_services
            or not service.spec.external_name
            or refused_external_name(service.spec.external_name, self.options.refused_networks)
        ):
            return "name"
        return "port"


@dataclass(frozen=True, slots=True)
class IngressReading:
    """What one Ingress asks for, read on its own: its claims and the problems found in it."""

    ingress: Ingress
    problems: tuple[Problem, ...]
    rules: tuple[RouteClaim, ...]
    default: RouteClaim | None
    tls: tuple[TLSClaim, ...]

    @property
    def hosts(self) -> frozenset[str]:
        """Every host this Ingress claims a route or a certificate for."""
        hosts = {claim.host for claim in self.rules}
        hosts.update(claim.host for claim in self.tls)
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
        )


def is_ours(ingress: Ingress, objects: ObjectSet, options: BuildOptions) -> bool:
    """Whether `ingress` is of our ingress class (see `classes.py`)."""
    return class_matches(
        ingress.metadata.annotations, ingress.spec.ingress_class_name, objects, options
    )


def ingresses_of_our_class(objects: ObjectSet, options: BuildOptions) -> list[NamespacedName]:
    """The keys of every Ingress of our class, sorted (whose address the status writer sets)."""
    return sorted(
        key for key, ingress in objects.ingresses.items() if is_ours(ingress, objects, options)
    )


def read_ingress(
    ingress: Ingress,
    objects: ObjectSet,
    options: BuildOptions,
    backends: _Backends | None = None,
) -> IngressReading:
    """One Ingress of our class turned into claims; `backends` shares resolutions in a build.

    A bug met while reading costs this Ingress only: it claims nothing, and the problem carries
    the traceback."""
    problems = _Problems()
    try:
        reader = _IngressReader(backends or _Backends(objects, options), ingress, problems)
        reader.read()
    except Exception as error:  # blast radius of one
        found = Problem.internal_error(ingress.KIND, ingress.namespace, ingress.name, error)
        return IngressReading(ingress, (*problems.result(), found), (), None, ())
    return IngressReading(
        ingress, problems.result(), tuple(reader.rules), reader.default, tuple(reader.tls)
    )


def route_claim_order(claim: RouteClaim) -> tuple[bool, tuple[datetime, str, str], int]:
    """Who claims first: rules before default backends, then the oldest Ingress, first path."""
    return (claim.field == DEFAULT_BACKEND, claim.ingress.age_key, claim.index)


def tls_claim_order(claim: TLSClaim) -> tuple[tuple[datetime, str, str], int]:
    return (claim.ingress.age_key, claim.index)


RouteLosers = list[tuple[RouteClaim, Problem]]
TLSLosers = list[tuple[TLSClaim, Problem]]


def _problem(ingress: Ingress, field: str, reason: str) -> Problem:
    return Problem(ingress.KIND, ingress.namespace, ingress.name, field, reason)


def settle_routes(
    readings: Sequence[IngressReading],
) -> tuple[dict[str, list[RouteClaim]], RouteLosers]:
    """The winning claim of every (host, match), grouped by host, and each losing claim with
    the problem it is reported as (see the module docstring). `readings` are oldest first."""
    winners: dict[tuple[str, PathMatchKind, str], RouteClaim] = {}
    losers: RouteLosers = []
    rules = [claim for reading in readings for claim in reading.rules]
    defaults = [reading.default for reading in readings if reading.default is not None]
    for claim in [*rules, *defaults]:
        winner = winners.setdefault(claim.key, claim)
        if winner is claim:
            continue
        if winner.ingress is claim.ingress:
            by = f"{winner.field} of this Ingress"
        else:
            by = f"Ingress {winner.ingress.namespace}/{winner.ingress.name} ({winner.field})"
        if claim.field == DEFAULT_BACKEND and winner.field != DEFAULT_BACKEND:
            why = "rules take precedence over default backends"
        elif winner.ingress is claim.ingress:
            why = "the first path wins"
        else:
            why = "the oldest Ingress wins (then the first by namespace/name)"
        reason = (
            f"{_describe(claim.host, claim.route.match)} is already served by {by}: "
            f"{why}; this one is ignored"
        )
        losers.append((claim, _problem(claim.ingress, claim.field, reason)))
    by_host: dict[str, list[RouteClaim]] = defaultdict(list)
    for claim in winners.values():
        by_host[claim.host].append(claim)
    return by_host, losers


def settle_tls(readings: Sequence[IngressReading]) -> tuple[dict[str, TLSClaim], TLSLosers]:
    """The certificate and minimum TLS version of each host: the oldest Ingress's."""
    winners: dict[str, TLSClaim] = {}
    losers: TLSLosers = []
    for claim in (claim for reading in readings for claim in reading.tls):
        winner = winners.setdefault(claim.host, claim)
        same = (winner.secret, winner.minimum_tls_version) == (
            claim.secret,
            claim.minimum_tls_version,
        )
        if winner is claim or same:
            continue
        secret = f"Secret [{winner.secret.namespace}/{winner.secret.name}]"
        reason = (
            f'host "{claim.host}" is already served over TLS by Ingress '
            f"{winner.ingress.namespace}/{winner.ingress.name} ({winner.field}) with {secret}, "
            f"minimum TLS {winner.minimum_tls_version.value}: the oldest Ingress wins; "
            "this one is ignored"
        )
        losers.append((claim, _problem(claim.ingress, claim.field, reason)))
    return winners, losers


def host_values(
    host: str, winners: Sequence[RouteClaim], tls: TLSClaim | None
) -> tuple[VirtualHost | None, SecureVirtualHost | None]:
    """The plain and TLS virtual host of `host`, from its winning claims and certificate."""
    claims = sorted(winners, key=lambda claim: route_order(claim.route))
    plain = tuple(route for claim in claims if (route := claim.plain_route()) is not None)
    secure = None
    if tls is not None:
        secure = SecureVirtualHost(
            host,
            routes=tuple(claim.route for claim in claims),
            secret=tls.secret,
            minimum_tls_version=tls.minimum_tls_version,
            origin=Origin(tls.ingress.KIND, tls.ingress.namespace, tls.ingress.name, tls.field),
        )
    origin = claims[0].route.origin if claims else None
    return (VirtualHost(host, plain, origin) if plain else None), secure


def overridden_by_ingressroute(
    fqdn: str, owner: NamespacedName, ingress: NamespacedName
) -> Problem:
    """The problem of an Ingress claiming a host an IngressRoute owns (the IngressRoute wins,
    on HTTP and HTTPS alike, whether or not it is valid)."""
    return Problem(
        "Ingress",
        *ingress,
        "spec.rules[].host",
        f'host "{fqdn}" belongs to IngressRoute {owner[0]}/{owner[1]}; this Ingress\'s rules '
        "and TLS for it are ignored",
    )
