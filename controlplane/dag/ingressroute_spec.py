"""One IngressRoute on its own: its spec checked and turned into DAG pieces, before any delegation.

`compile_ingressroute` looks at a single object and the Services and Secrets it names, never at
where it sits in a delegation chain. It either raises `SpecError` (the object is invalid, the
message is its status description) or returns a `CompiledIngressRoute`: the routes that point at
services (finished DAG `Route`s), the delegations still to follow, the tcpproxy, and warnings.
The delegation walk (`dag/delegation.py`) then decides which of those pieces are served where.
Checking locally first is what makes "an invalid IngressRoute contributes no routes at all" cheap
to guarantee: an object is either compiled whole or not at all.

Checks run in this order and the first failure is the description: root namespace, fqdn, TLS,
then each route in spec order (match, services-vs-delegate, then per service: port, weight,
strategy, health check, upstream validation, the Service itself; then timeout and retry
policy; no route at all when a tcpproxy is in effect), then the tcpproxy. Values the CRD
schema would reject with an enum (strategy, minimumProtocolVersion) can still arrive from
manifest files; they are reported, not guessed.

Routing semantics:

- `match` is a path prefix compared by whole segments (`PathMatchKind.SEGMENT_PREFIX`): `/foo`
  matches `/foo` and `/foo/bar` but not `/foobar`. This corrects Contour, whose v1beta1 prefixes
  matched characters. A trailing `/` is dropped (`/foo/` is `/foo`); `/` is `PREFIX "/"`.
- Route weights follow Contour's documented rule: when no service of a route gives a weight,
  all are equal (1 each); otherwise an omitted weight is 0. Should the weights then add up to 0,
  all are equal again, so Envoy never sees an all-zero split. The sum must fit Envoy's uint32
  total.
- tcpproxy weights follow what Contour 0.15 did for TCP, which is not the route rule: a service
  without a weight beside weighted ones gets weight 1, never 0 (Envoy refuses a TCP cluster
  weight of 0). Sources: Contour 0.15's `docs/ingressroute.md`, "TCP Proxying", whose examples
  put an unweighted `tcpservice` beside `otherservice` with `weight: 20`, and Contour's
  `internal/envoy/listener.go` `TCPProxy`, which turned every weight of 0 into 1. Contour could
  not tell `weight: 0` from no weight; we can, and an explicit 0 drains its service (left out of
  the proxy) unless every service says 0, when all are equal.
- A tcpproxy in effect (a root with TLS or passthrough, or any delegate) ignores `routes`
  entirely: they are not checked, serve nothing, and give the host no HTTP virtual host (not
  even redirects), with a `RoutesIgnored` warning. Contour's v1beta1 schema required a dummy
  route beside a tcpproxy and ignored it (projectcontour/contour#812: "spec.routes is required
  by input validation even though it is ignored when spec.tcpproxy is present").
- `timeoutPolicy.request` and `retryPolicy.perTryTimeout` are Go durations or `infinity`.
- Upstream `validation.caSecret` names a Secret in the IngressRoute's own namespace holding a
  `ca.crt` bundle; when it is missing or holds no certificate the route's service is invalid with
  `route "/x": service "s": validation.caSecret "name" not found or has no valid ca.crt`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from controlplane.dag.durations import parse_duration
from controlplane.dag.memo import text_memo
from controlplane.dag.options import BuildOptions
from controlplane.dag.reads import BuildInputs
from controlplane.dag.secrets import ca_certificate, split_secret_name, tls_secret
from controlplane.dag.services import ServiceError, resolve_cluster
from controlplane.dag.status import (
    KIND,
    ROOT_NAMESPACE,
    ROOT_TO_ROOT,
    StatusWarning,
    WarningReason,
    route_where,
    service_where,
)
from controlplane.dag.types import (
    HealthCheck,
    LoadBalancerPolicy,
    Origin,
    PathMatch,
    PathMatchKind,
    Problem,
    RetryPolicy,
    Route,
    TLSSecret,
    TLSVersion,
    UpstreamValidation,
    WeightedCluster,
)
from controlplane.model import IngressRoute, NamespacedName, shown
from controlplane.model import contour as spec

MAX_TOTAL_WEIGHT = 2**32 - 1
"""Envoy adds the weights of a route's clusters in a uint32."""
MAX_SETTING = 2**31 - 1
"""Upper bound of health-check and retry numbers (Envoy reads them as uint32 or durations)."""

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


class SpecError(ValueError):
    """The IngressRoute is invalid; `str()` is its status description."""


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route that points at services: the DAG route, plus what only the listener split needs."""

    match_text: str
    route: Route
    permit_insecure: bool


@dataclass(frozen=True, slots=True)
class Delegation:
    """A route handing the prefix `match` over to the IngressRoute `target`."""

    match_text: str
    match: PathMatch
    target: NamespacedName


@dataclass(frozen=True, slots=True)
class CompiledTCPProxy:
    """Either clusters to proxy to, or a delegate whose own tcpproxy says where."""

    clusters: tuple[WeightedCluster, ...] = ()
    delegate: NamespacedName | None = None


@dataclass(frozen=True, slots=True)
class CompiledVirtualHost:
    """A root's `virtualhost`: the fqdn (lower case, no trailing dot) and how TLS is served."""

    fqdn: str
    secret: TLSSecret | None = None
    minimum_tls_version: TLSVersion = TLSVersion.V1_2
    passthrough: bool = False

    @property
    def enforces_tls(self) -> bool:
        """Whether plain-HTTP requests are redirected to https (unless `permitInsecure`)."""
        return self.secret is not None or self.passthrough


@dataclass(frozen=True, slots=True)
class CompiledIngressRoute:
    key: NamespacedName
    virtual_host: CompiledVirtualHost | None
    routes: tuple[CompiledRoute, ...]
    delegations: tuple[Delegation, ...]
    tcp_proxy: CompiledTCPProxy | None
    warnings: tuple[StatusWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class _Context:
    inputs: BuildInputs
    options: BuildOptions
    namespace: str
    name: str
    problems: list[Problem]
    warnings: list[StatusWarning]


@text_memo()
def path_match(match: str) -> PathMatch:
    """The DAG match of an IngressRoute `match` (already known to start with `/`); one value
    per distinct `match` (most routes of a cluster share a few)."""
    trimmed = match.rstrip("/")
    if not trimmed:
        return PathMatch(PathMatchKind.PREFIX, "/")
    return PathMatch(PathMatchKind.SEGMENT_PREFIX, trimmed)


def within(match: PathMatch, prefix: PathMatch) -> bool:
    """Whether `match` lies under `prefix` by whole segments (`/foobar` is not under `/foo`)."""
    if prefix.kind is PathMatchKind.PREFIX and prefix.value == "/":
        return True
    return match.value == prefix.value or match.value.startswith(prefix.value + "/")


def compile_ingressroute(
    route: IngressRoute,
    inputs: BuildInputs,
    options: BuildOptions,
    problems: list[Problem],
) -> CompiledIngressRoute:
    """Check one IngressRoute and build its pieces; raises SpecError when it is invalid.

    Service annotation problems are appended to `problems`.
    """
    if route.parse_error is not None:
        raise SpecError(route.parse_error)
    ctx = _Context(inputs, options, route.namespace, route.name, problems, [])
    virtual_host = None
    tcp_spec = route.spec.tcpproxy
    if route.spec.virtualhost is not None:
        virtual_host, tcp_spec = _with_tcp_proxy(
            _virtual_host(route.spec.virtualhost, ctx), tcp_spec, ctx
        )
    routes: list[CompiledRoute] = []
    delegations: list[Delegation] = []
    if tcp_spec is not None and route.spec.routes:
        ctx.warnings.append(
            StatusWarning(
                WarningReason.ROUTES_IGNORED,
                "Spec.Routes is ignored because tcpproxy is set",
            )
        )
    elif tcp_spec is None:
        for route_spec in route.spec.routes:
            compiled = _route(route_spec, ctx)
            if isinstance(compiled, CompiledRoute):
                routes.append(compiled)
            elif isinstance(compiled, Delegation):
                delegations.append(compiled)
    tcp_proxy = _tcp_proxy(tcp_spec, ctx) if tcp_spec is not None else None
    return CompiledIngressRoute(
        key=(route.namespace, route.name),
        virtual_host=virtual_host,
        routes=tuple(routes),
        delegations=tuple(delegations),
        tcp_proxy=tcp_proxy,
        warnings=tuple(ctx.warnings),
    )


def claimed_fqdn(route: IngressRoute, options: BuildOptions) -> str | None:
    """The fqdn a root IngressRoute claims, valid or not in every other respect: its
    `virtualhost.fqdn`, canonical, if the object parses, may be a root in its namespace, and
    names a proper hostname. Whoever claimed an fqdn first keeps it while it exists."""
    if route.parse_error is not None or route.spec.virtualhost is None:
        return None
    try:
        return _fqdn(route.spec.virtualhost, route.namespace, options)
    except SpecError:
        return None


def _fqdn(vhost: spec.VirtualHost, namespace: str, options: BuildOptions) -> str:
    roots = options.root_namespaces
    if roots and namespace not in roots:
        raise SpecError(ROOT_NAMESPACE)
    fqdn = (vhost.fqdn or "").strip()
    if not fqdn:
        raise SpecError("Spec.VirtualHost.Fqdn must be specified")
    if "*" in fqdn:
        raise SpecError(f'Spec.VirtualHost.Fqdn "{shown(fqdn)}" cannot use wildcards')
    if not _is_hostname(fqdn.lower()):
        raise SpecError(f'Spec.VirtualHost.Fqdn "{shown(fqdn)}" is not a valid hostname')
    return fqdn.lower().removesuffix(".")


def _virtual_host(vhost: spec.VirtualHost, ctx: _Context) -> CompiledVirtualHost:
    canonical = _fqdn(vhost, ctx.namespace, ctx.options)
    tls = vhost.tls
    if tls is None:
        return CompiledVirtualHost(canonical)
    version = _tls_version(tls.minimum_protocol_version, ctx)
    secret_name = (tls.secret_name or "").strip()
    if tls.passthrough and not secret_name:
        return CompiledVirtualHost(canonical, minimum_tls_version=version, passthrough=True)
    if tls.passthrough:
        ctx.warnings.append(
            StatusWarning(
                WarningReason.TLS_IGNORED,
                "Spec.VirtualHost.TLS.Passthrough is ignored because SecretName is set",
            )
        )
    return CompiledVirtualHost(
        canonical, secret=_secret(secret_name, ctx), minimum_tls_version=version
    )


_URL_PATH_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%"
)
"""What RFC 3986 allows in a path (percent-encoding included): no spaces, controls or NUL."""


def _url_path(text: str, field: str) -> None:
    if _URL_PATH_CHARACTERS.issuperset(text):
        return
    for index, character in enumerate(text):
        if character not in _URL_PATH_CHARACTERS:
            raise SpecError(
                f'{field} "{shown(text)}" must be a URL path: {character!r} at position '
                f"{index} is not allowed (spaces and control characters must be %-encoded)"
            )


def _is_hostname(fqdn: str) -> bool:
    """At most 253 characters; dot-separated labels of 1-63 of `[a-z0-9-]`, none starting or
    ending with `-`; one trailing dot allowed."""
    return len(fqdn) <= 253 and _HOSTNAME.fullmatch(fqdn.removesuffix(".")) is not None


def _tls_version(value: str | None, ctx: _Context) -> TLSVersion:
    """Contour accepted any value here (and served TLS 1.1 for most); we keep the host up and
    never go below TLS 1.2, saying so in a warning."""
    if value is None or not value.strip():
        return TLSVersion.V1_2
    try:
        return TLSVersion(value.strip())
    except ValueError:
        ctx.warnings.append(
            StatusWarning(
                WarningReason.TLS_VERSION_RAISED,
                f'Spec.VirtualHost.TLS.MinimumProtocolVersion "{value}" is not supported '
                "(1.2 or 1.3); using 1.2",
            )
        )
        return TLSVersion.V1_2


def _secret(secret_name: str, ctx: _Context) -> TLSSecret:
    namespace, name = split_secret_name(secret_name, ctx.namespace)
    shared_with = ctx.inputs.certificate_targets.get((namespace, name), frozenset())
    if namespace != ctx.namespace and not shared_with & {ctx.namespace, "*"}:
        raise SpecError(f"{secret_name}: certificate delegation not permitted")
    secret = tls_secret(ctx.inputs.objects, namespace, name) if name else None
    if secret is None:
        raise SpecError(f"TLS Secret [{secret_name}] not found or is malformed")
    if isinstance(secret, str):
        raise SpecError(f"TLS Secret [{secret_name}] not found or is malformed: {secret}")
    return secret


def _with_tcp_proxy(
    vhost: CompiledVirtualHost, tcp: spec.TCPProxy | None, ctx: _Context
) -> tuple[CompiledVirtualHost, spec.TCPProxy | None]:
    """Passthrough needs a tcpproxy, and a tcpproxy needs TLS (SNI picks the host).

    Contour ignored the unusable half silently; we ignore it too (the routes keep working) but
    say so in a warning. A passthrough without tcpproxy serves its routes on plain HTTP only.
    """
    if tcp is None and vhost.passthrough:
        ctx.warnings.append(
            StatusWarning(
                WarningReason.TLS_IGNORED,
                "Spec.VirtualHost.TLS.Passthrough is ignored because there is no tcpproxy",
            )
        )
        return replace(vhost, passthrough=False), None
    if tcp is not None and not vhost.enforces_tls:
        ctx.warnings.append(
            StatusWarning(
                WarningReason.TLS_IGNORED,
                "tcpproxy is ignored because Spec.VirtualHost.TLS is not set",
            )
        )
        return vhost, None
    return vhost, tcp


def _route(route: spec.Route, ctx: _Context) -> CompiledRoute | Delegation | None:
    where = route_where(route.match)
    if not route.match.startswith("/"):
        raise SpecError(f'{where}: match must start with "/"')
    if "?" in route.match or "#" in route.match:
        raise SpecError(f'{where}: match must be a path (no "?" or "#")')
    if not _URL_PATH_CHARACTERS.issuperset(route.match):
        _url_path(route.match, f"{where}: match")
    if route.prefix_rewrite and not _URL_PATH_CHARACTERS.issuperset(route.prefix_rewrite):
        _url_path(route.prefix_rewrite, f"{where}: prefixRewrite")
    match = path_match(route.match)
    if route.services and route.delegate is not None:
        raise SpecError(f"{where}: cannot specify services and delegate in the same route")
    if route.delegate is not None:
        return Delegation(route.match, match, _delegate_target(route.delegate, ctx))
    if not route.services:
        ctx.warnings.append(
            StatusWarning(WarningReason.ROUTE_EMPTY, f"{where}: has no services or delegate")
        )
        return None
    clusters = _services(where, route.services, ctx)
    timeout = None
    if route.timeout_policy is not None and route.timeout_policy.request is not None:
        timeout = _duration(route.timeout_policy.request, f"{where}: timeoutPolicy.request", ctx)
    retry = None
    if route.retry_policy is not None:
        retry = _retry_policy(route.retry_policy, where, ctx)
    return CompiledRoute(
        match_text=route.match,
        route=Route(
            match=match,
            clusters=clusters,
            prefix_rewrite=route.prefix_rewrite or None,
            websocket=route.enable_websockets,
            timeout_seconds=timeout,
            retry=retry,
            origin=Origin(KIND, ctx.namespace, ctx.name, where),
        ),
        permit_insecure=route.permit_insecure,
    )


def _delegate_target(delegate: spec.Delegate, ctx: _Context) -> NamespacedName:
    target = (delegate.namespace or ctx.namespace, delegate.name)
    if target in ctx.inputs.roots:
        raise SpecError(ROOT_TO_ROOT)
    return target


def _tcp_proxy(tcp: spec.TCPProxy, ctx: _Context) -> CompiledTCPProxy:
    if tcp.services and tcp.delegate is not None:
        raise SpecError("tcpproxy: cannot specify services and delegate in the same tcpproxy")
    if tcp.delegate is not None:
        return CompiledTCPProxy(delegate=_delegate_target(tcp.delegate, ctx))
    if not tcp.services:
        raise SpecError("tcpproxy: either services or delegate must be specified")
    clusters = _services("tcpproxy", tcp.services, ctx, weights_of=_tcp_weights)
    # Only an explicit `weight: 0` is 0 here (see the module docstring); Envoy refuses a TCP
    # cluster weight of 0, and the user asked that it get nothing: it is left out.
    return CompiledTCPProxy(clusters=tuple(c for c in clusters if c.weight > 0))


def _services(
    where: str,
    services: list[spec.RouteService],
    ctx: _Context,
    *,
    weights_of: Callable[[list[int | None]], list[int]] | None = None,
) -> tuple[WeightedCluster, ...]:
    resolved = []
    for service in services:
        if _plain(service):  # nothing below can fail, so nothing needs naming
            load_balancer, health_check, validation = LoadBalancerPolicy.ROUND_ROBIN, None, None
        else:
            at = service_where(where, service.name)
            if not 1 <= service.port <= 65535:
                raise SpecError(f"{at}: port must be in the range 1-65535")
            if service.weight is not None and service.weight < 0:
                raise SpecError(f"{at}: weight must be greater than or equal to zero")
            load_balancer = _strategy(service.strategy, at)
            health_check = _health_check(service.health_check, at)
            validation = _validation(service.validation, at, ctx)
        try:
            found = resolve_cluster(
                ctx.inputs.objects,
                ctx.options,
                ctx.namespace,
                service.name,
                service.port,
                load_balancer=load_balancer,
                health_check=health_check,
                validation=validation,
            )
        except ServiceError as error:
            ctx.problems.extend(error.problems)
            raise SpecError(str(error)) from None
        if found.problems:
            ctx.problems.extend(found.problems)
        resolved.append((found.cluster, service.weight))
    weights = (weights_of or _weights)([weight for _, weight in resolved])
    if sum(weights) > MAX_TOTAL_WEIGHT:
        raise SpecError(
            f"{where}: the weights of its services add up to more than {MAX_TOTAL_WEIGHT}"
        )
    return tuple(
        [
            WeightedCluster(cluster, weight)
            for (cluster, _), weight in zip(resolved, weights, strict=True)
        ]
    )


def _plain(service: spec.RouteService) -> bool:
    """A service with a valid port and weight and no policy of its own (most are): what the
    checks of `_services` would find for it is known without making them."""
    return (
        1 <= service.port <= 65535
        and (service.weight is None or service.weight >= 0)
        and not service.strategy
        and service.health_check is None
        and service.validation is None
    )


def _weights(given: list[int | None]) -> list[int]:
    """Contour's rule: no weights at all → equal shares; otherwise an omitted weight is 0."""
    weights = [weight or 0 for weight in given]
    if not any(weights):
        return [1] * len(weights)
    return weights


def _tcp_weights(given: list[int | None]) -> list[int]:
    """Contour 0.15's TCP proxy: a service without a weight gets 1; an explicit 0 stays 0 (and
    is left out) unless every weight is 0, when all are equal."""
    weights = [1 if weight is None else weight for weight in given]
    if not any(weights):
        return [1] * len(weights)
    return weights


def _strategy(strategy: str | None, at: str) -> LoadBalancerPolicy:
    if strategy is None or not strategy:
        return LoadBalancerPolicy.ROUND_ROBIN
    try:
        return LoadBalancerPolicy(strategy)
    except ValueError:
        choices = ", ".join(policy.value for policy in LoadBalancerPolicy)
        raise SpecError(f'{at}: strategy "{strategy}" is not supported ({choices})') from None


def _health_check(check: spec.HealthCheck | None, at: str) -> HealthCheck | None:
    if check is None:
        return None
    if not check.path or not check.path.startswith("/"):
        raise SpecError(f'{at}: healthCheck.path must be specified and start with "/"')
    _url_path(check.path, f"{at}: healthCheck.path")
    if check.host and not _is_hostname(check.host.lower()):
        raise SpecError(f'{at}: healthCheck.host "{shown(check.host)}" is not a valid hostname')
    defaults = HealthCheck(path=check.path)

    def setting(value: int | None, field: str, default: int) -> int:
        # Contour's rule: 0 (or absent) means "use the default".
        if value is None or value == 0:
            return default
        if not 0 < value <= MAX_SETTING:
            raise SpecError(f"{at}: healthCheck.{field} must be in the range 0-{MAX_SETTING}")
        return value

    return HealthCheck(
        path=check.path,
        host=check.host or defaults.host,
        interval_seconds=setting(
            check.interval_seconds, "intervalSeconds", defaults.interval_seconds
        ),
        timeout_seconds=setting(check.timeout_seconds, "timeoutSeconds", defaults.timeout_seconds),
        unhealthy_threshold=setting(
            check.unhealthy_threshold_count,
            "unhealthyThresholdCount",
            defaults.unhealthy_threshold,
        ),
        healthy_threshold=setting(
            check.healthy_threshold_count, "healthyThresholdCount", defaults.healthy_threshold
        ),
    )


def _validation(
    validation: spec.UpstreamValidation | None, at: str, ctx: _Context
) -> UpstreamValidation | None:
    if validation is None:
        return None
    name = validation.ca_secret or ""
    bundle = ca_certificate(ctx.inputs.objects, ctx.namespace, name) if name else None
    if bundle is None:
        raise SpecError(f'{at}: validation.caSecret "{name}" not found or has no valid ca.crt')
    if not validation.subject_name:
        raise SpecError(f"{at}: validation.subjectName must be specified")
    return UpstreamValidation(ca_certificate=bundle, subject_name=validation.subject_name)


def _duration(text: str, field: str, ctx: _Context) -> float | None:
    """A timeout; one that does not parse falls back to Envoy's default with a warning (Contour
    accepted it, so an upgrade must not take the host down)."""
    try:
        return parse_duration(text)
    except ValueError as error:
        ctx.warnings.append(
            StatusWarning(WarningReason.VALUE_IGNORED, f"{field}: {error}; using the default")
        )
        return None


def _retry_policy(policy: spec.RetryPolicy, where: str, ctx: _Context) -> RetryPolicy:
    count = policy.count or 0
    if not 0 <= count <= MAX_SETTING:
        raise SpecError(f"{where}: retryPolicy.count must be in the range 0-{MAX_SETTING}")
    per_try = None
    if policy.per_try_timeout is not None:
        per_try = _duration(policy.per_try_timeout, f"{where}: retryPolicy.perTryTimeout", ctx)
    return RetryPolicy(retry_on="5xx", num_retries=count or 1, per_try_timeout_seconds=per_try)
