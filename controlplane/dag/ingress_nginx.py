"""ingress-nginx's annotations, read into one `NginxPolicy` per Ingress that gets nginx semantics.

Which Ingresses get nginx semantics (`has_nginx_semantics`): an Ingress of the class `nginx`
(`spec.ingressClassName: nginx`, an IngressClass whose controller is `k8s.io/ingress-nginx`,
or, without `ingressClassName`, the annotation `kubernetes.io/ingress.class: nginx`), or any
Ingress carrying an annotation under `nginx.ingress.kubernetes.io/`: whoever wrote such an
annotation expects nginx's behaviour. Whether the Ingress is served at all is still decided by
`--ingress-class` (`classes.py`): `--ingress-class nginx` or `contour,nginx` takes the class over.

Those Ingresses get nginx's defaults even without annotations: plain HTTP to a host served over
TLS is redirected to HTTPS with 308 (`ssl-redirect` defaults to true); every path upgrades
websockets; a request has no overall timeout, only an idle timeout of 60 s (nginx's
`proxy-read-timeout`); upstream connections time out after 5 s (`proxy-connect-timeout`). nginx's
1m default body limit is not enforced (`proxy-body-size` is, when set): a limit nobody wrote
would break uploads that work today behind the nginx a user configured with a ConfigMap we
cannot see.

Every annotation is read as ingress-nginx reads it (see `ingress_nginx_values` for the syntaxes);
a malformed value is a Problem naming `metadata.annotations[NAME]`, the reason, and what is done
instead (nginx's default, or the feature off), and never reaches Envoy. Annotations that cannot
be honoured at all are reported from the table (`annotation_table.unsupported_annotations`).

A canary Ingress (`canary: "true"`) uses only its canary and affinity annotations; as in nginx,
the main Ingress's annotations apply to its traffic (see `ingress_canary.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from controlplane.dag.annotation_table import NGINX
from controlplane.dag.ingress_nginx_values import (
    MAX_UINT32,
    Refused,
    cidr_list,
    cookie_name,
    cors_list,
    cors_origins,
    header_name,
    nginx_bool,
    nginx_seconds,
    nginx_size,
    positive_int,
    redirect_code,
    redirect_to,
    rewrite_substitution,
    upstream_host,
)
from controlplane.dag.regexes import re2_problem
from controlplane.dag.types import (
    CorsPolicy,
    Problem,
    RateLimit,
    Redirect,
    SessionCookie,
    SourceRanges,
    UpstreamProtocol,
    annotation_field,
)
from controlplane.model import Ingress, ObjectSet, shown

__all__ = [
    "NGINX_CLASS",
    "NGINX_CONTROLLER",
    "CanaryRules",
    "NginxPolicy",
    "has_nginx_semantics",
    "nginx_policy",
]

NGINX_CLASS = "nginx"
NGINX_CONTROLLER = "k8s.io/ingress-nginx"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CONNECT_SECONDS = 5.0
DEFAULT_IDLE_SECONDS = 60.0
DEFAULT_COOKIE = "INGRESSCOOKIE"
BURST_MULTIPLIER = 5
PROTOCOLS = {
    "HTTP": UpstreamProtocol.HTTP1,
    "HTTPS": UpstreamProtocol.TLS,
    "GRPC": UpstreamProtocol.H2C,
    "H2C": UpstreamProtocol.H2C,
    "GRPCS": UpstreamProtocol.H2,
}
_CANARY_NAMES = (
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
)
_AFFINITY_NAMES = (
    "affinity",
    "affinity-mode",
    "session-cookie-name",
    "session-cookie-max-age",
    "session-cookie-expires",
    "session-cookie-path",
)
T = TypeVar("T")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class CanaryRules:
    """How a canary Ingress takes traffic from the main one (nginx precedence: header, cookie,
    weight)."""

    header: str | None = None
    """Lowercase header name: `always` → canary, `never` → main (unless a value or pattern)."""
    header_value: str | None = None
    header_pattern: str | None = None
    """An RE2 pattern matching the whole header value (the nginx pattern, unanchored)."""
    cookie: str | None = None
    weight: int = 0
    weight_total: int = 100


@dataclass(frozen=True, slots=True)
class NginxPolicy:
    """The nginx annotations of one Ingress, parsed; the defaults are nginx's."""

    ssl_redirect: bool = True
    force_ssl_redirect: bool = False
    redirect: Redirect | None = None
    """`temporal-redirect` or `permanent-redirect`: every path answers with it."""
    app_root: str | None = None
    use_regex: bool = False
    rewrite_target: str | None = None
    """Checked for syntax; turned into Envoy's substitution per path (its capture groups)."""
    protocol: UpstreamProtocol | None = None
    """None: the Service's own (Contour's `upstream-protocol.*` annotations)."""
    connect_timeout_seconds: float = DEFAULT_CONNECT_SECONDS
    idle_timeout_seconds: float = DEFAULT_IDLE_SECONDS
    max_request_bytes: int | None = None
    rate_limit: RateLimit | None = None
    source_ranges: SourceRanges | None = None
    cors: CorsPolicy | None = None
    affinity: SessionCookie | None = None
    affinity_path: bool = False
    """Whether `session-cookie-path` set `affinity.path` (else each path's own)."""
    canary: CanaryRules | None = None
    default_backend: str | None = None
    ssl_passthrough: bool = False
    aliases: tuple[str, ...] = ()
    """Raw alias names; the reader checks them as it checks rule hosts."""
    upstream_vhost: str | None = None
    problems: tuple[Problem, ...] = field(default=(), compare=False)


def has_nginx_semantics(ingress: Ingress, objects: ObjectSet) -> bool:
    """Whether `ingress` is read as ingress-nginx reads it (see the module docstring)."""
    annotations = ingress.metadata.annotations
    if any(name.startswith(NGINX) for name in annotations):
        return True
    class_name = ingress.spec.ingress_class_name
    if class_name:
        if class_name == NGINX_CLASS:
            return True
        ingress_class = objects.ingress_classes.get(("", class_name))
        return ingress_class is not None and ingress_class.spec.controller == NGINX_CONTROLLER
    return annotations.get(CLASS_ANNOTATION, "").strip() == NGINX_CLASS


class _Reader:
    """Reads the nginx annotations of one Ingress, recording a Problem per refused value."""

    def __init__(self, ingress: Ingress) -> None:
        self.ingress = ingress
        self.problems: list[Problem] = []

    def raw(self, name: str) -> str | None:
        return self.ingress.metadata.annotations.get(NGINX + name)

    def reject(self, name: str, reason: str) -> None:
        self.problems.append(
            Problem(
                self.ingress.KIND,
                self.ingress.namespace,
                self.ingress.name,
                annotation_field(NGINX + name),
                reason,
            )
        )

    def value(self, name: str, parse: Callable[[str], T | Refused], fallback: str) -> T | None:
        """The parsed value, or None (absent, or refused and reported with `fallback`)."""
        raw = self.raw(name)
        if raw is None:
            return None
        parsed = parse(raw)
        if isinstance(parsed, Refused):
            self.reject(name, f'"{shown(raw)}" {parsed.reason}; {fallback}')
            return None
        return parsed

    def boolean(self, name: str, default: bool) -> bool:
        found = self.value(name, nginx_bool, f"using {str(default).lower()}")
        return default if found is None else found

    def ignored(self, names: tuple[str, ...], why: str) -> None:
        for name in names:
            if self.raw(name) is not None:
                self.reject(name, f"ignored: {why}")

    # -- redirects and rewrites ------------------------------------------------------------

    def redirect(self) -> Redirect | None:
        for url_name, default in (("temporal-redirect", 302), ("permanent-redirect", 301)):
            if self.raw(url_name) is None:
                continue
            found = self._redirect(url_name, default)
            if found is not None:
                if url_name == "temporal-redirect":
                    self.ignored(("permanent-redirect",), "temporal-redirect wins, as in nginx")
                return found
        for url_name in ("temporal-redirect", "permanent-redirect"):
            if self.raw(f"{url_name}-code") is not None and self.raw(url_name) is None:
                self.reject(f"{url_name}-code", f"ignored: {NGINX}{url_name} is not set")
        return None

    def _redirect(self, url_name: str, default: int) -> Redirect | None:
        code = self.value(
            f"{url_name}-code", lambda raw: redirect_code(raw, default), f"using {default}"
        )
        return self.value(
            url_name,
            lambda raw: redirect_to(raw, code or default),
            "no redirect: the paths are served",
        )

    def app_root(self) -> str | None:
        def parse(raw: str) -> str | Refused:
            target = rewrite_substitution(raw, 0)
            if isinstance(target, Refused):
                return target
            if not raw.strip().startswith("/") or "\\" in target:
                return Refused("is not a path")
            return raw.strip()

        return self.value("app-root", parse, "no redirect from /")

    def rewrite_target(self) -> str | None:
        def parse(raw: str) -> str | Refused:
            checked = rewrite_substitution(raw, 9)
            return checked if isinstance(checked, Refused) else raw.strip()

        return self.value("rewrite-target", parse, "paths are served without rewrite")

    # -- upstreams -------------------------------------------------------------------------

    def protocol(self) -> UpstreamProtocol | None:
        def parse(raw: str) -> UpstreamProtocol | Refused:
            found = PROTOCOLS.get(raw.strip().upper())
            if found is None:
                choices = ", ".join(PROTOCOLS)
                return Refused(f"is not a protocol Envoy speaks here ({choices})")
            return found

        protocol = self.value("backend-protocol", parse, "using HTTP")
        if protocol is not None or self.raw("backend-protocol") is not None:
            return protocol
        if self.boolean("secure-backends", default=False):
            return UpstreamProtocol.TLS
        return None

    def affinity(self) -> tuple[SessionCookie | None, bool]:
        kind = self.raw("affinity")
        if kind is None:
            self.ignored(_AFFINITY_NAMES[1:], f"{NGINX}affinity is not set")
            return None, False
        if kind.strip() != "cookie":
            self.reject("affinity", f'"{shown(kind)}" is not "cookie"; no session affinity')
            return None, False

        def mode(raw: str) -> str | Refused:
            if raw.strip() in ("balanced", "persistent"):
                return raw.strip()
            return Refused('is neither "balanced" nor "persistent"')

        self.value("affinity-mode", mode, "using balanced")
        name = self.value("session-cookie-name", cookie_name, f"using {DEFAULT_COOKIE}")
        ttl = self.value("session-cookie-max-age", positive_int, "a session cookie")
        if ttl is None:
            ttl = self.value("session-cookie-expires", positive_int, "a session cookie")

        def cookie_path(raw: str) -> str | Refused:
            text = raw.strip()
            if not text.startswith("/") or any(c in text for c in ';\\"') or not text.isprintable():
                return Refused("is not a cookie path")
            if " " in text or len(text) > 1024:
                return Refused("is not a cookie path")
            return text

        path = self.value("session-cookie-path", cookie_path, "using each path's own")
        cookie = SessionCookie(name=name or DEFAULT_COOKIE, ttl_seconds=ttl or 0, path=path or "/")
        return cookie, path is not None

    # -- limits ----------------------------------------------------------------------------

    def timeouts(self) -> tuple[float, float]:
        connect = self.value(
            "proxy-connect-timeout", nginx_seconds, f"using {DEFAULT_CONNECT_SECONDS:g}"
        )
        idle = [
            self.value(name, nginx_seconds, f"using {DEFAULT_IDLE_SECONDS:g}")
            for name in ("proxy-read-timeout", "proxy-send-timeout")
        ]
        read, send = (DEFAULT_IDLE_SECONDS if value is None else value for value in idle)
        return connect or DEFAULT_CONNECT_SECONDS, max(read, send)

    def rate_limit(self) -> RateLimit | None:
        def rate(raw: str) -> int | Refused:
            return positive_int(raw, MAX_UINT32, allow_zero=True)

        rps = self.value("limit-rps", rate, "no rate limit")
        rpm = self.value("limit-rpm", rate, "no rate limit")
        multiplier = self.value(
            "limit-burst-multiplier",
            lambda raw: positive_int(raw, 1_000_000),
            f"using {BURST_MULTIPLIER}",
        )
        if rps and rpm:
            self.reject("limit-rpm", "not enforced: limit-rps is set too, and wins here")
        requests, period = (rps, 1) if rps else (rpm, 60)
        if not requests:
            if multiplier is not None:
                self.ignored(("limit-burst-multiplier",), "no limit-rps or limit-rpm is set")
            return None
        burst = max(requests * (BURST_MULTIPLIER if multiplier is None else multiplier), requests)
        if burst > MAX_UINT32:
            name = "limit-rps" if rps else "limit-rpm"
            self.reject(name, f"the burst ({burst}) is more than {MAX_UINT32}; no rate limit")
            return None
        return RateLimit(requests=requests, period_seconds=period, burst=burst, status=503)

    def source_ranges(self) -> SourceRanges | None:
        names = ("allowlist-source-range", "whitelist-source-range")
        allow_names = [name for name in names if self.raw(name) is not None]
        allow: tuple[str, ...] = ()
        for name in allow_names[:1]:
            allow = self._cidrs(name)
            if not allow:
                self.reject(name, "lists no usable address: nobody is served")
                allow = ()
        if len(allow_names) > 1:
            self.reject(allow_names[1], f"ignored: {NGINX}{allow_names[0]} is set too")
        deny = self._cidrs("denylist-source-range") if self.raw("denylist-source-range") else ()
        if allow_names and not allow:
            return SourceRanges(deny=("0.0.0.0/0", "::/0"))
        if not allow and not deny:
            return None
        return SourceRanges(allow=allow, deny=deny)

    def _cidrs(self, name: str) -> tuple[str, ...]:
        raw = self.raw(name) or ""
        networks, refused = cidr_list(raw)
        for refusal in refused:
            self.reject(name, f"{refusal.reason}; that entry is left out")
        return networks

    def cors(self) -> CorsPolicy | None:
        family = tuple(f"cors-{name}" for name in (
            "allow-origin", "allow-methods", "allow-headers", "expose-headers",
            "allow-credentials", "max-age",
        ))  # fmt: skip
        if not self.boolean("enable-cors", default=False):
            self.ignored(family, f'{NGINX}enable-cors is not "true"')
            return None
        policy = CorsPolicy()
        raw_origins = self.raw("cors-allow-origin")
        if raw_origins is not None:
            origins, refused = cors_origins(raw_origins)
            for refusal in refused:
                self.reject("cors-allow-origin", f"{refusal.reason}; that origin is left out")
            if not origins:
                self.reject("cors-allow-origin", "lists no usable origin; CORS is not enabled")
                return None
            policy = CorsPolicy(allow_origins=origins)
        methods = self.value(
            "cors-allow-methods", lambda raw: cors_list(raw, "methods"), "using the default"
        )
        headers = self.value(
            "cors-allow-headers", lambda raw: cors_list(raw, "headers"), "using the default"
        )
        expose = self.value(
            "cors-expose-headers", lambda raw: cors_list(raw, "expose"), "exposing none"
        )
        credentials = self.boolean("cors-allow-credentials", default=True)
        max_age = self.value(
            "cors-max-age",
            lambda raw: positive_int(raw, 2**31 - 1, allow_zero=True),
            "using 1728000",
        )
        return CorsPolicy(
            allow_origins=policy.allow_origins,
            allow_methods=methods or policy.allow_methods,
            allow_headers=headers or policy.allow_headers,
            expose_headers=expose or policy.expose_headers,
            allow_credentials=credentials,
            max_age_seconds=policy.max_age_seconds if max_age is None else max_age,
        )

    # -- canary ----------------------------------------------------------------------------

    def canary(self) -> CanaryRules | None:
        if not self.boolean("canary", default=False):
            self.ignored(_CANARY_NAMES, f'{NGINX}canary is not "true"')
            return None
        header = self.value("canary-by-header", header_name, "no header rule")
        value = pattern = None
        if header is None:
            self.ignored(
                ("canary-by-header-value", "canary-by-header-pattern"),
                f"{NGINX}canary-by-header is not set",
            )
        else:
            value = self.value("canary-by-header-value", _header_value, "using always and never")
            if value is not None:
                self.ignored(("canary-by-header-pattern",), "canary-by-header-value wins")
            else:
                pattern = self.value(
                    "canary-by-header-pattern", _header_pattern, "using always and never"
                )
        cookie = self.value("canary-by-cookie", cookie_name, "no cookie rule")
        total = self.value(
            "canary-weight-total", lambda raw: positive_int(raw, 1_000_000), "using 100"
        )
        total = total or 100
        weight = self.value(
            "canary-weight",
            lambda raw: positive_int(raw, total, allow_zero=True),
            "no weighted traffic",
        )
        return CanaryRules(header, value, pattern, cookie, weight or 0, total)


def _header_value(raw: str) -> str | Refused:
    if not raw or not raw.isprintable() or len(raw) > 1024:
        return Refused("is not a header value")
    return raw


def _header_pattern(raw: str) -> str | Refused:
    if not raw or len(raw) > 1024:
        return Refused("is not a pattern")
    pattern = f".*(?:{raw}).*"
    problem = re2_problem(pattern)
    return Refused(problem) if problem is not None else pattern


def _aliases(raw: str) -> tuple[str, ...] | Refused:
    names = tuple(dict.fromkeys(part for part in raw.replace(",", " ").split() if part))
    if len(raw) > 4096 or not names:
        return Refused("lists no host name")
    return names


def nginx_policy(ingress: Ingress) -> NginxPolicy:
    """The policy the nginx annotations of `ingress` ask for; `.problems` lists each refused
    value (the unsupported annotations are reported by the caller, from the table)."""
    reader = _Reader(ingress)
    affinity, affinity_path = reader.affinity()
    canary = reader.canary()
    if canary is not None:
        return NginxPolicy(
            affinity=affinity,
            affinity_path=affinity_path,
            canary=canary,
            problems=tuple(reader.problems),
        )
    connect, idle = reader.timeouts()
    policy = NginxPolicy(
        ssl_redirect=reader.boolean("ssl-redirect", default=True),
        force_ssl_redirect=reader.boolean("force-ssl-redirect", default=False),
        redirect=reader.redirect(),
        app_root=reader.app_root(),
        use_regex=reader.boolean("use-regex", default=False),
        rewrite_target=reader.rewrite_target(),
        protocol=reader.protocol(),
        connect_timeout_seconds=connect,
        idle_timeout_seconds=idle,
        max_request_bytes=reader.value("proxy-body-size", nginx_size, "no limit"),
        rate_limit=reader.rate_limit(),
        source_ranges=reader.source_ranges(),
        cors=reader.cors(),
        affinity=affinity,
        affinity_path=affinity_path,
        default_backend=reader.value("default-backend", _service_name, "no default backend"),
        ssl_passthrough=reader.boolean("ssl-passthrough", default=False),
        aliases=reader.value("server-alias", _aliases, "no aliases") or (),
        upstream_vhost=reader.value("upstream-vhost", upstream_host, "the request's Host is sent"),
    )
    reader.boolean("preserve-trailing-slash", default=True)
    return replace(policy, problems=tuple(reader.problems))


def _service_name(raw: str) -> str | Refused:
    name = raw.strip()
    if not _DNS_LABEL.fullmatch(name):
        return Refused("is not a Service name")
    return name
