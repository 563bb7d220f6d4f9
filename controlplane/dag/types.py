"""The DAG: what the controller wants Envoy to do, in Envoy's own terms, before any protobuf.

Every value here is a frozen dataclass, compared and hashed by value, so a translator can cache
the encoding of a virtual host or cluster by the value itself and a test can compare a whole build
with `==`. Tuples are always in a deterministic order (the builder sorts), never in the order the
store happened to hold objects.

Names follow Contour's, so dashboards carry over:
- a `Cluster` is one Service port with one upstream policy; its Envoy name is
  `namespace/service/port/<10-hex hash of the port name and policy>` (so one name is always
  one value) and its EDS name
  `namespace/service/portname` (or `namespace/service` for an unnamed port);
- a `TLSSecret` is served over SDS as `namespace/name/<10-hex hash of the material>`.
"""

from __future__ import annotations

import hashlib
import math
import traceback
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property, lru_cache

from controlplane.model import Condition, IngressRouteStatus


def short_hash(*parts: object) -> str:
    """A stable 10-hex digest of `parts` (their repr), for names that change with policy."""
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()
    return digest[:10]


CATCH_ALL = "*"
"""The fqdn of the virtual host that answers requests for any other host."""


def host_order(fqdn: str) -> tuple[bool, str]:
    """Sort key for virtual hosts everywhere (DAG and Envoy): by fqdn, the `*` catch-all last."""
    return (fqdn == CATCH_ALL, fqdn)


class PathMatchKind(StrEnum):
    PREFIX = "prefix"
    """Plain string prefix: `/foo` matches `/foobar` (Ingress ImplementationSpecific)."""
    SEGMENT_PREFIX = "segment_prefix"
    """Whole path segments: `/foo` matches `/foo` and `/foo/bar`, not `/foobar` (Prefix)."""
    EXACT = "exact"
    REGEX = "regex"
    """An RE2 pattern that must match the whole path (Envoy `safe_regex`). Patterns from
    ingress-nginx (`use-regex`, `rewrite-target`) are case-insensitive prefixes there; the reader
    turns them into whole-path patterns (`(?i)` + pattern + `.*`) before they get here."""


@dataclass(frozen=True, slots=True, order=True)
class PathMatch:
    kind: PathMatchKind
    value: str

    @property
    def specificity(self) -> tuple[int, int]:
        """Sort key: exact before prefixes, longer before shorter (most specific first)."""
        return (0 if self.kind is PathMatchKind.EXACT else 1, -len(self.value))


class LoadBalancerPolicy(StrEnum):
    ROUND_ROBIN = "RoundRobin"
    WEIGHTED_LEAST_REQUEST = "WeightedLeastRequest"
    RANDOM = "Random"
    COOKIE = "Cookie"


class UpstreamProtocol(StrEnum):
    HTTP1 = ""
    H2 = "h2"
    H2C = "h2c"
    TLS = "tls"


class TLSVersion(StrEnum):
    """The minimum TLS version served; never below 1.2."""

    V1_2 = "1.2"
    V1_3 = "1.3"


@dataclass(frozen=True, slots=True)
class HealthCheck:
    path: str
    host: str = "contour-envoy-healthcheck"
    interval_seconds: int = 5
    timeout_seconds: int = 2
    unhealthy_threshold: int = 3
    healthy_threshold: int = 2


@dataclass(frozen=True, slots=True)
class CircuitBreakers:
    max_connections: int | None = None
    max_pending_requests: int | None = None
    max_requests: int | None = None
    max_retries: int | None = None


@dataclass(frozen=True, slots=True)
class TLSSecret:
    """A certificate and key from a `kubernetes.io/tls` Secret (PEM).

    Its SDS name is the Secret's `namespace/name` and nothing else: it names the Secret, not
    its content. A renewal (cert-manager renews continuously) patches the Secret, so the SDS
    resource of that name changes and nothing that refers to it does: the `ingress_https`
    filter chain that names it is byte for byte the same, Envoy is sent no listener and drains
    no connection, and the next TLS handshake gets the new certificate (Envoy updates an SDS
    certificate in place, for new connections only: envoyproxy/envoy#28386). One SDS `Secret`
    holds certificate and key together, so Envoy never sees one without the other.

    Contour names it `namespace/name/<10 hex of the SHA-1 of the certificate>` (`Secretname` in
    its `internal/envoy/secret.go`, from 0.x to today), so every renewal is a new resource and
    a listener update there; this is the one name we deliberately do not share with it.

    One name, one value: a Secret has one content at a time and the DAG is built from one view
    of the store, so two values with one name (different material) never meet in one DAG. The
    SDS resource's version is the hash of its bytes (`xds/snapshot.py`), so new material under
    the same name is a new version, and that is what streams and the quarantine key on.
    """

    namespace: str
    name: str
    certificate_chain: bytes
    private_key: bytes

    @property
    def sds_name(self) -> str:
        return f"{self.namespace}/{self.name}"


NO_BREAKERS = CircuitBreakers()
"""No thresholds set (Envoy's defaults): the value nearly every cluster has, shared."""


@dataclass(frozen=True, slots=True)
class UpstreamValidation:
    """Verify the upstream's certificate against `ca_certificate` and `subject_name`."""

    ca_certificate: bytes
    subject_name: str


@dataclass(frozen=True, slots=True)
class Cluster:
    """One Service port as an Envoy upstream cluster, with its policy."""

    namespace: str
    service: str
    port: int
    port_name: str = ""
    protocol: UpstreamProtocol = UpstreamProtocol.HTTP1
    load_balancer: LoadBalancerPolicy = LoadBalancerPolicy.ROUND_ROBIN
    health_check: HealthCheck | None = None
    validation: UpstreamValidation | None = None
    circuit_breakers: CircuitBreakers = field(default_factory=CircuitBreakers)
    external_name: str | None = None
    """For ExternalName Services: the DNS name Envoy resolves itself (no EDS)."""
    connect_timeout_seconds: float | None = None
    """None: the translator's default (2 s); ingress-nginx `proxy-connect-timeout`."""
    fallback: Cluster | None = None
    """Where requests go while this Service port has no healthy endpoint (ingress-nginx
    `default-backend`): Envoy gets an aggregate cluster of this cluster without its fallback,
    then the fallback. The fallback itself has no fallback."""

    name: str = field(init=False, compare=False, repr=False)
    """Envoy cluster name, computed once: `namespace/service/port/<policy hash>`. The hash covers
    every other field (the port name too), so two clusters with one name are equal."""

    def __post_init__(self) -> None:
        if (
            self.health_check is None
            and self.validation is None
            and self.external_name is None
            and self.connect_timeout_seconds is None
            and self.fallback is None
            and (self.circuit_breakers is NO_BREAKERS or self.circuit_breakers == NO_BREAKERS)
            and type(self.port_name) is str
            and len(self.port_name) <= 256
            and type(self.protocol) is UpstreamProtocol
            and type(self.load_balancer) is LoadBalancerPolicy
        ):
            # By the members' values: an Enum hashes in Python, a str in C.
            policy = _plain_policy(self.port_name, self.protocol.value, self.load_balancer.value)
        else:
            policy = self._policy_hash()
        object.__setattr__(self, "name", f"{self.namespace}/{self.service}/{self.port}/{policy}")

    def _policy_hash(self) -> str:
        return short_hash(
            self.port_name,
            self.protocol,
            self.load_balancer,
            self.health_check,
            self.validation,
            self.circuit_breakers,
            self.external_name,
            *(() if self.connect_timeout_seconds is None else (self.connect_timeout_seconds,)),
            *(() if self.fallback is None else (self.fallback.name,)),
        )

    @property
    def primary(self) -> Cluster:
        """This cluster without its fallback (itself when it has none)."""
        return self if self.fallback is None else replace(self, fallback=None)

    @property
    def envoy_clusters(self) -> tuple[Cluster, ...]:
        """Every Envoy cluster this value needs: itself and, when it has a fallback (an Envoy
        aggregate cluster), its primary and its fallback, which the aggregate names."""
        if self.fallback is None:
            return (self,)
        return (self, self.primary, self.fallback)

    @property
    def eds_name(self) -> str:
        base = f"{self.namespace}/{self.service}"
        return f"{base}/{self.port_name}" if self.port_name else base


@lru_cache(maxsize=4096)
def _plain_policy(port_name: str, protocol: str, load_balancer: str) -> str:
    """`Cluster._policy_hash` of a cluster with nothing but a port name, protocol and balancer
    (by their values) set, as nearly every cluster: one digest per distinct triple instead of
    one per cluster. The caller checks the types exactly (an equal value of another type could
    have another repr) and the length."""
    return short_hash(
        port_name,
        UpstreamProtocol(protocol),
        LoadBalancerPolicy(load_balancer),
        None,
        None,
        NO_BREAKERS,
        None,
    )


@dataclass(frozen=True, slots=True)
class WeightedCluster:
    cluster: Cluster
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retry_on: str = "5xx"
    num_retries: int = 1
    per_try_timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """A condition on one request header; a route matches only when all its conditions hold.

    Exactly one of `exact` and `regex` (RE2, matched against the whole value) is set. Canary
    routing (ingress-nginx `canary-by-header`, `canary-by-cookie`) is built from these: a cookie
    condition is a regex on the `cookie` header."""

    name: str
    """Lowercase header name."""
    exact: str | None = None
    regex: str | None = None


REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
"""The redirect statuses Envoy can send (`RedirectAction.RedirectResponseCode`)."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """Answer with a redirect instead of forwarding. Unset parts keep the request's own."""

    code: int = 301
    """One of REDIRECT_CODES."""
    scheme: str | None = None
    """`https` or `http`; None keeps the request's scheme."""
    host: str | None = None
    port: int | None = None
    """None keeps the request's port (Envoy drops it when the scheme changes to https)."""
    path: str | None = None
    """Replaces the whole path; None keeps it. The query string is kept unless `strip_query`."""
    strip_query: bool = False


HTTPS_REDIRECT = Redirect(code=301, scheme="https")
"""Contour's redirect of a TLS host's plain-HTTP requests."""


@dataclass(frozen=True, slots=True)
class RegexRewrite:
    """Rewrite the path with an RE2 pattern (Envoy `regex_rewrite`): every match of `pattern`
    is replaced by `substitution`, which refers to groups as `\\1` (Envoy's syntax, not `$1`)."""

    pattern: str
    substitution: str


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Answer CORS preflights and decorate responses (Envoy's CORS filter, per route)."""

    allow_origins: tuple[str, ...] = ("*",)
    """Exact origins (`https://a.example`), or `*` for any origin."""
    allow_methods: str = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
    allow_headers: str = (
        "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
        "Content-Type,Range,Authorization"
    )
    expose_headers: str = ""
    allow_credentials: bool = True
    max_age_seconds: int = 1728000
    """The defaults are ingress-nginx's."""


@dataclass(frozen=True, slots=True)
class SourceRanges:
    """Which client addresses a route serves (403 for the others): the client address is the
    one Envoy trusts (`use_remote_address`), as nginx's `$remote_addr`."""

    allow: tuple[str, ...] = ()
    """CIDRs; empty allows every address not denied."""
    deny: tuple[str, ...] = ()
    """CIDRs; deny wins over allow."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket per client address (Envoy's local rate limit, per route).

    `requests` tokens are added every `period_seconds`, up to `burst`; a request without a
    token gets `status`. ingress-nginx: `limit-rps: N` is (N, 1 s, N x limit-burst-multiplier)
    and `limit-rpm: N` is (N, 60 s, N x multiplier), both answering 503."""

    requests: int
    period_seconds: int
    burst: int
    status: int = 503


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """Cookie-based session affinity (the route hashes on this cookie; Envoy sets it when the
    request has none)."""

    name: str = "X-Contour-Session-Affinity"
    ttl_seconds: int = 0
    """0: a session cookie (no Max-Age)."""
    path: str = "/"


INFINITE = math.inf
"""A timeout of `INFINITE` seconds means "never time out" (Envoy: 0s)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """The Kubernetes object (and the part of it) a DAG value came from.

    Carried for reports only: a value Envoy would reject is attributed to its origin. It takes no
    part in equality or hashing, so two equal routes of two objects share one encoding.
    """

    kind: str
    namespace: str
    name: str
    field: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Route:
    """One route of a virtual host: a path match and where matching requests go."""

    match: PathMatch
    clusters: tuple[WeightedCluster, ...] = ()
    redirect: Redirect | None = None
    """Answer with this redirect instead of forwarding (`clusters` is then empty)."""
    prefix_rewrite: str | None = None
    """Replace the matched prefix, by whole segments, never producing `//`."""
    websocket: bool = False
    timeout_seconds: float | None = None
    """None: Envoy's default (15 s); INFINITE: no timeout."""
    retry: RetryPolicy | None = None
    headers: tuple[HeaderMatch, ...] = ()
    """Conditions on request headers besides the path (all must hold). Within a host, a route
    with conditions comes before the unconditioned route of the same match."""
    regex_rewrite: RegexRewrite | None = None
    """Rewrite the path with a pattern (ingress-nginx `rewrite-target`); never set together with
    `prefix_rewrite`."""
    host_rewrite: str | None = None
    """Send this `Host` upstream instead of the request's (ingress-nginx `upstream-vhost`)."""
    idle_timeout_seconds: float | None = None
    """Reset a request with no bytes either way for this long (nginx `proxy-read-timeout`,
    `proxy-send-timeout`); None: the websocket idle timeout for websockets, else Envoy's."""
    cors: CorsPolicy | None = None
    source_ranges: SourceRanges | None = None
    rate_limit: RateLimit | None = None
    max_request_bytes: int | None = None
    """Refuse request bodies larger than this with 413 (nginx `proxy-body-size`); None: no
    limit."""
    session_cookie: SessionCookie | None = None
    """The affinity cookie of a route whose clusters balance by `Cookie`; None: Contour's
    `X-Contour-Session-Affinity` session cookie on `/`."""
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def has_cookie_affinity(self) -> bool:
        return any(c.cluster.load_balancer is LoadBalancerPolicy.COOKIE for c in self.clusters)

    @property
    def https_redirect(self) -> bool:
        """Whether this route only redirects plain HTTP to HTTPS."""
        return self.redirect is not None and self.redirect.scheme == "https"


@dataclass(frozen=True, slots=True)
class VirtualHost:
    """A host on the plain HTTP listener; `fqdn` is `*` for the catch-all."""

    fqdn: str
    routes: tuple[Route, ...] = ()
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TCPProxy:
    clusters: tuple[WeightedCluster, ...]


@dataclass(frozen=True, slots=True)
class SecureVirtualHost:
    """A host on the TLS listener, selected by SNI.

    Either TLS is terminated at Envoy (`secret` set) and `routes` (HTTP) or `tcp_proxy` (raw TCP)
    serve it, or it is passed through (`secret` None, `tcp_proxy` set) to an upstream that speaks
    TLS itself.
    """

    fqdn: str
    routes: tuple[Route, ...] = ()
    secret: TLSSecret | None = None
    minimum_tls_version: TLSVersion = TLSVersion.V1_2
    tcp_proxy: TCPProxy | None = None
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def passthrough(self) -> bool:
        return self.secret is None and self.tcp_proxy is not None


class StatusKind(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    ORPHANED = "orphaned"


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """What the controller says about one object: the `.status` written to IngressRoutes.

    `status` is the model's own status type, so the status writer compares typed values with the
    object the informer holds; the properties read it in the DAG's terms.
    """

    kind: str
    namespace: str
    name: str
    status: IngressRouteStatus

    @property
    def key(self) -> tuple[str, str, str]:
        """Sort key: kind, namespace, name."""
        return (self.kind, self.namespace, self.name)

    @property
    def current_status(self) -> StatusKind:
        return StatusKind(self.status.current_status or StatusKind.INVALID)

    @property
    def description(self) -> str:
        return self.status.description or ""

    @property
    def observed_generation(self) -> int:
        return self.status.observed_generation or 0

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return self.status.conditions


def annotation_field(name: str) -> str:
    """The `field` of a Problem about one annotation: `metadata.annotations[NAME]`."""
    return f"metadata.annotations[{name}]"


INTERNAL_ERROR = "internal error"
"""The `field` of a Problem that reports a bug met while building one object."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A log-only finding about an object whose kind has no status (Ingress, Service, Secret).

    With `field == INTERNAL_ERROR` it reports a bug: `reason` holds the traceback, the object
    was left out (an IngressRoute is invalid), and the operator's log gets it as an error.
    """

    kind: str
    namespace: str
    name: str
    field: str
    reason: str

    @classmethod
    def internal_error(cls, kind: str, namespace: str, name: str, error: Exception) -> Problem:
        """A bug met while building one object, with its traceback (outside any except block
        too: `error.__traceback__` is kept)."""
        trace = "".join(traceback.format_exception(error)).rstrip()
        return cls(kind, namespace, name, INTERNAL_ERROR, trace)


def internal_error_description(error: Exception) -> str:
    """The status of an object whose build hit a bug: short, no traceback, points at the log."""
    return (
        f"internal error while building this object ({type(error).__name__}); "
        "the controller's log has the details"
    )


@dataclass(frozen=True)
class DAG:  # not slotted: clusters() and secrets() are cached on the instance
    """The result of one build: hosts for each listener, statuses, and log-only problems."""

    virtual_hosts: tuple[VirtualHost, ...] = ()
    secure_virtual_hosts: tuple[SecureVirtualHost, ...] = ()
    statuses: tuple[ObjectStatus, ...] = ()
    problems: tuple[Problem, ...] = ()

    @classmethod
    def with_derived(
        cls,
        clusters: tuple[Cluster, ...],
        secrets: tuple[TLSSecret, ...],
        *,
        virtual_hosts: tuple[VirtualHost, ...],
        secure_virtual_hosts: tuple[SecureVirtualHost, ...],
        statuses: tuple[ObjectStatus, ...],
        problems: tuple[Problem, ...],
    ) -> DAG:
        """A DAG whose `clusters()` and `secrets()` the caller already knows: the incremental
        builder keeps them up to date instead of walking every route of every host again. They
        must be exactly what `clusters()` and `secrets()` would derive."""
        dag = cls(virtual_hosts, secure_virtual_hosts, statuses, problems)
        dag.__dict__["_clusters"] = clusters  # what cached_property stores
        dag.__dict__["_secrets"] = secrets
        return dag

    def clusters(self) -> tuple[Cluster, ...]:
        """Every cluster any route or TCP proxy uses (with the members of aggregates), unique,
        sorted by Envoy name."""
        return self._clusters

    @cached_property
    def _clusters(self) -> tuple[Cluster, ...]:
        seen: dict[str, Cluster] = {}
        routes = [route for host in self.virtual_hosts for route in host.routes]
        routes += [route for host in self.secure_virtual_hosts for route in host.routes]
        weighted_clusters = [weighted for route in routes for weighted in route.clusters]
        for secure in self.secure_virtual_hosts:
            if secure.tcp_proxy is not None:
                weighted_clusters.extend(secure.tcp_proxy.clusters)
        for weighted in weighted_clusters:
            for cluster in weighted.cluster.envoy_clusters:
                seen.setdefault(cluster.name, cluster)
        return tuple(seen[name] for name in sorted(seen))

    def secrets(self) -> tuple[TLSSecret, ...]:
        """Every TLS secret a secure host serves, unique, sorted by SDS name."""
        return self._secrets

    @cached_property
    def _secrets(self) -> tuple[TLSSecret, ...]:
        seen = {h.secret.sds_name: h.secret for h in self.secure_virtual_hosts if h.secret}
        return tuple(seen[name] for name in sorted(seen))
