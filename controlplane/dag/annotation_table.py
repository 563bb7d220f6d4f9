"""Every annotation this controller reads, in one table: the source of docs/annotations.md and of
the reports about annotations it does not honour.

One row per annotation (with its aliases): the family it comes from (ingress-nginx, Contour,
Kubernetes), the objects it is read on, what Envoy does with it here, and whether it is
implemented as the family documents it, honoured with differences (said in the row), refused
(read, reported, never applied), or known but not implemented.

Reporting rule (`unsupported_annotations`): on an Ingress, every annotation under one of the
watched prefixes (`nginx.ingress.kubernetes.io/`, `ingress.kubernetes.io/`,
`projectcontour.io/`, `contour.heptio.com/`) that is not implemented for Ingresses is reported by
name, one Problem each: refused rows with their reason, nginx snippets (any `*-snippet` or
`*-snippets`) as nginx configuration that is never applied, everything else as not
implemented. Other annotations (`kubectl.kubernetes.io/`, `cert-manager.io/`, ...) belong to
other tools and are left alone. Reporting never stops the rest of the Ingress from being served.

`annotations_markdown()` renders the table; tests/unit/test_annotation_table.py holds
docs/annotations.md to it, so the doc cannot drift from what the code reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ANNOTATIONS",
    "NGINX",
    "WATCHED_PREFIXES",
    "Annotation",
    "Support",
    "annotations_markdown",
    "unsupported_annotations",
]

NGINX = "nginx.ingress.kubernetes.io/"
OLD_NGINX = "ingress.kubernetes.io/"
CONTOUR = ("projectcontour.io/", "contour.heptio.com/")
WATCHED_PREFIXES = (NGINX, OLD_NGINX, *CONTOUR)

SNIPPET_REASON = (
    "is nginx configuration, which Envoy cannot run: refused, never applied "
    "(the rest of the Ingress is served)"
)
NOT_IMPLEMENTED_REASON = "is not implemented by this controller; ignored"


class Support(StrEnum):
    IMPLEMENTED = "implemented"
    DIFFERENT = "honoured, with differences"
    REFUSED = "refused"
    NOT_IMPLEMENTED = "not implemented"


@dataclass(frozen=True, slots=True)
class Annotation:
    names: tuple[str, ...]
    """The full names read, the preferred one first (the others are aliases)."""
    family: str
    group: str
    objects: str
    support: Support
    effect: str
    """What Envoy does with it here."""
    note: str = ""
    """The differences from the family's documented behaviour, or why it is refused."""

    @property
    def honoured(self) -> bool:
        return self.support in (Support.IMPLEMENTED, Support.DIFFERENT)


def _nginx(*names: str) -> tuple[str, ...]:
    return tuple(NGINX + name for name in names)


def _contour(name: str) -> tuple[str, ...]:
    return tuple(prefix + name for prefix in CONTOUR)


_N = "ingress-nginx"
_C = "Contour"
_K = "Kubernetes"
_I = "Ingress"
OK, DIFF, REFUSED, TODO = (
    Support.IMPLEMENTED,
    Support.DIFFERENT,
    Support.REFUSED,
    Support.NOT_IMPLEMENTED,
)

ANNOTATIONS: tuple[Annotation, ...] = (
    # --- class selection -----------------------------------------------------------------
    Annotation(
        ("kubernetes.io/ingress.class", *_contour("ingress.class")),
        _K,
        "Class",
        "Ingress, IngressRoute",
        OK,
        "Selects the controller: the object is served when the class is one of "
        "`--ingress-class` (a comma-separated list). `spec.ingressClassName` wins over it.",
        "Class `nginx` (or any `nginx.ingress.kubernetes.io/` annotation) also gives the Ingress "
        "ingress-nginx's defaults; see docs/migrating-from-ingress-nginx.md.",
    ),
    # --- Contour ---------------------------------------------------------------------------
    Annotation(
        (*_contour("response-timeout"), *_contour("request-timeout")),
        _C,
        "Timeouts and retries",
        _I,
        OK,
        "The route timeout (Go duration or `infinity`).",
    ),
    Annotation(
        _contour("websocket-routes"),
        _C,
        "Timeouts and retries",
        _I,
        OK,
        "Enables websocket upgrades on the listed paths (every path of an ingress-nginx "
        "Ingress upgrades anyway).",
    ),
    Annotation(_contour("retry-on"), _C, "Timeouts and retries", _I, OK, "Envoy `retry_on`."),
    Annotation(_contour("num-retries"), _C, "Timeouts and retries", _I, OK, "Retries (default 1)."),
    Annotation(_contour("per-try-timeout"), _C, "Timeouts and retries", _I, OK, "Per-try timeout."),
    Annotation(
        _contour("tls-minimum-protocol-version"),
        _C,
        "TLS",
        _I,
        OK,
        "Minimum TLS version of the Ingress's hosts (1.2 or 1.3; never lower than 1.2).",
    ),
    Annotation(
        ("ingress.kubernetes.io/force-ssl-redirect",),
        _C,
        "TLS",
        _I,
        OK,
        "Plain HTTP requests to the hosts under `spec.tls` get a 301 to HTTPS (Contour).",
    ),
    Annotation(
        ("kubernetes.io/ingress.allow-http",),
        _K,
        "TLS",
        _I,
        OK,
        '`"false"`: nothing of this Ingress is served on the plain listener but redirects.',
    ),
    *(
        Annotation(
            _contour(f"upstream-protocol.{protocol}"),
            _C,
            "Upstreams",
            "Service",
            OK,
            f"The listed ports (numbers or names) speak {what}.",
        )
        for protocol, what in (
            ("h2", "HTTP/2 over TLS"),
            ("h2c", "HTTP/2 in clear text"),
            ("tls", "HTTP/1.1 over TLS"),
        )
    ),
    *(
        Annotation(_contour(name), _C, "Upstreams", "Service", OK, f"Circuit breaker `{name}`.")
        for name in ("max-connections", "max-pending-requests", "max-requests", "max-retries")
    ),
    # --- ingress-nginx: paths --------------------------------------------------------------
    Annotation(
        _nginx("use-regex"),
        _N,
        "Paths and rewrites",
        _I,
        DIFF,
        "Paths are case-insensitive RE2 regular expressions matched at the start of the path "
        "(Envoy `safe_regex` `(?i)(?:PATH).*`).",
        "As in nginx, it applies to every ingress-nginx Ingress path of the host; Ingresses "
        "of Contour semantics on the same host keep their matches. A pattern RE2 refuses (or "
        "too large for Envoy) drops that path, reported.",
    ),
    Annotation(
        _nginx("rewrite-target"),
        _N,
        "Paths and rewrites",
        _I,
        OK,
        "Replaces the whole path with the target, `$1`...`$9` naming the path's capture groups "
        "(Envoy `regex_rewrite`); like nginx, makes the host's paths regular expressions.",
        "Targets with a query string or nginx variables other than capture groups are refused "
        "(the path is served without rewrite, reported).",
    ),
    Annotation(
        _nginx("app-root"),
        _N,
        "Paths and rewrites",
        _I,
        OK,
        "Requests for exactly `/` get a 302 to the application root.",
    ),
    Annotation(
        _nginx("upstream-vhost"),
        _N,
        "Paths and rewrites",
        _I,
        OK,
        "The `Host` sent upstream (Envoy `host_rewrite_literal`).",
        "nginx variables are refused.",
    ),
    Annotation(
        _nginx("server-alias"),
        _N,
        "Paths and rewrites",
        _I,
        DIFF,
        "More host names (comma- or space-separated) served with this Ingress's paths.",
        "Only this Ingress's paths are served on the alias (nginx serves the whole server); an "
        "alias that is another Ingress's host is ignored for that host, reported, as in nginx. "
        "An alias is served over HTTPS only when it is listed under `spec.tls`.",
    ),
    # --- ingress-nginx: redirects ----------------------------------------------------------
    Annotation(
        _nginx("permanent-redirect"),
        _N,
        "Redirects",
        _I,
        DIFF,
        "Every path of the Ingress answers with a redirect to the URL (301).",
        "The only nginx variable understood is a final `$request_uri` (keeps the request's "
        "path and query); other variables are refused. A URL without a path redirects to `/`.",
    ),
    Annotation(
        _nginx("permanent-redirect-code"),
        _N,
        "Redirects",
        _I,
        OK,
        "The status of `permanent-redirect` (301, 302, 303, 307 or 308).",
    ),
    Annotation(
        _nginx("temporal-redirect"),
        _N,
        "Redirects",
        _I,
        DIFF,
        "Every path of the Ingress answers with a redirect to the URL (302); it wins over "
        "`permanent-redirect`, as in nginx.",
        "As for `permanent-redirect`.",
    ),
    Annotation(
        _nginx("temporal-redirect-code"),
        _N,
        "Redirects",
        _I,
        OK,
        "The status of `temporal-redirect` (301, 302, 303, 307 or 308).",
    ),
    # --- ingress-nginx: TLS ----------------------------------------------------------------
    Annotation(
        _nginx("ssl-redirect"),
        _N,
        "TLS",
        _I,
        DIFF,
        'Default `"true"`: plain HTTP requests to a host served over TLS get a 308 to HTTPS.',
        "Only when the host is actually served over TLS (a usable certificate, from any "
        "Ingress); the trailing slash is kept (as with `preserve-trailing-slash`).",
    ),
    Annotation(
        _nginx("force-ssl-redirect"),
        _N,
        "TLS",
        _I,
        OK,
        "Plain HTTP requests get a 308 to HTTPS, even for hosts without TLS here (TLS ended "
        "by a load balancer in front).",
    ),
    Annotation(
        _nginx("preserve-trailing-slash"),
        _N,
        "TLS",
        _I,
        DIFF,
        "The HTTPS redirect keeps the path as it is.",
        'The trailing slash is always kept, as with `"true"`.',
    ),
    Annotation(
        _nginx("ssl-passthrough"),
        _N,
        "TLS",
        _I,
        OK,
        "TLS connections for the Ingress's hosts are passed, by SNI and unopened, to the "
        "backend of the path `/` (Envoy `tcp_proxy`); plain HTTP is served as usual.",
        "Needs no controller flag (nginx's `--enable-ssl-passthrough`). As in nginx, the "
        "other annotations do not apply to the passed-through connections.",
    ),
    # --- ingress-nginx: upstreams ----------------------------------------------------------
    Annotation(
        _nginx("backend-protocol"),
        _N,
        "Upstreams",
        _I,
        DIFF,
        "HTTP (HTTP/1.1), HTTPS (HTTP/1.1 over TLS), GRPC and H2C (HTTP/2 in clear text), "
        "GRPCS (HTTP/2 over TLS).",
        "AJP, FCGI and AUTO_HTTP are refused (served as HTTP, reported). The backend's "
        "certificate is not verified, as nginx's `proxy-ssl-verify` default.",
    ),
    Annotation(
        _nginx("secure-backends"),
        _N,
        "Upstreams",
        _I,
        OK,
        'The old `"true"` for `backend-protocol: HTTPS` (which wins when both are set).',
    ),
    Annotation(
        _nginx("default-backend"),
        _N,
        "Upstreams",
        _I,
        OK,
        "A Service (same namespace, first port) that takes the requests of this Ingress's "
        "backends while they have no healthy endpoint (Envoy aggregate cluster).",
    ),
    Annotation(
        _nginx("custom-http-errors"),
        _N,
        "Upstreams",
        _I,
        REFUSED,
        "Not applied.",
        "Envoy cannot yet hand a backend's error responses to the default backend here; "
        "the backend's own error pages are served.",
    ),
    Annotation(
        _nginx("affinity"),
        _N,
        "Upstreams",
        _I,
        DIFF,
        '`"cookie"`: session affinity by a cookie Envoy sets (Envoy ring hash).',
        "Other types are refused. A canary's requests do not stick to the canary.",
    ),
    Annotation(
        _nginx("affinity-mode"),
        _N,
        "Upstreams",
        _I,
        DIFF,
        "Accepted; Envoy's ring hash keeps most sessions when endpoints change.",
        '`"persistent"` is not strictly persistent.',
    ),
    Annotation(
        _nginx("session-cookie-name"),
        _N,
        "Upstreams",
        _I,
        OK,
        "The affinity cookie's name (default `INGRESSCOOKIE`).",
    ),
    Annotation(
        _nginx("session-cookie-max-age", "session-cookie-expires"),
        _N,
        "Upstreams",
        _I,
        OK,
        "The affinity cookie's lifetime in seconds (default: a session cookie).",
    ),
    Annotation(
        _nginx("session-cookie-path"),
        _N,
        "Upstreams",
        _I,
        OK,
        "The affinity cookie's path (default: the Ingress path; `/` for regex paths).",
    ),
    # --- ingress-nginx: timeouts and limits ------------------------------------------------
    Annotation(
        _nginx("proxy-connect-timeout"),
        _N,
        "Timeouts and limits",
        _I,
        OK,
        "The upstream connect timeout in seconds (default 5, as nginx).",
    ),
    Annotation(
        _nginx("proxy-read-timeout", "proxy-send-timeout"),
        _N,
        "Timeouts and limits",
        _I,
        DIFF,
        "The route's idle timeout in seconds (default 60); requests have no overall timeout, "
        "and websockets stay open while they carry data.",
        "Envoy has one idle timeout for both directions: the larger of the two is used.",
    ),
    Annotation(
        _nginx("proxy-body-size"),
        _N,
        "Timeouts and limits",
        _I,
        DIFF,
        "Request bodies larger than this (nginx size: `8m`, `512k`; `0` for no limit) get 413.",
        "No limit unless the annotation is set (nginx's default is 1m).",
    ),
    Annotation(
        _nginx("limit-rps"),
        _N,
        "Timeouts and limits",
        _I,
        OK,
        "Requests per second per client address, with a burst of `limit-burst-multiplier` "
        "times as many (Envoy local rate limit); 503 beyond.",
    ),
    Annotation(
        _nginx("limit-rpm"),
        _N,
        "Timeouts and limits",
        _I,
        DIFF,
        "Requests per minute per client address, as `limit-rps`.",
        "When both are set only `limit-rps` is enforced (reported).",
    ),
    Annotation(
        _nginx("limit-burst-multiplier"),
        _N,
        "Timeouts and limits",
        _I,
        OK,
        "The burst of `limit-rps`/`limit-rpm` (default 5).",
    ),
    Annotation(
        _nginx("limit-connections"),
        _N,
        "Timeouts and limits",
        _I,
        REFUSED,
        "Not applied.",
        "Envoy has no limit of concurrent connections per client address; not applied.",
    ),
    # --- ingress-nginx: access -------------------------------------------------------------
    Annotation(
        _nginx("whitelist-source-range", "allowlist-source-range"),
        _N,
        "Access",
        _I,
        OK,
        "Only these client addresses (comma-separated CIDRs or addresses) are served; the "
        "others get 403.",
        "An entry that is not an address is reported and left out; a list left empty "
        "serves nobody.",
    ),
    Annotation(
        _nginx("denylist-source-range"),
        _N,
        "Access",
        _I,
        OK,
        "These client addresses get 403; deny wins over allow.",
    ),
    Annotation(
        _nginx("enable-cors"),
        _N,
        "CORS",
        _I,
        OK,
        "Answers CORS preflights and decorates responses (Envoy CORS filter), with nginx's "
        "defaults.",
    ),
    Annotation(
        _nginx("cors-allow-origin"),
        _N,
        "CORS",
        _I,
        DIFF,
        "Allowed origins, comma-separated (default `*`).",
        "Wildcard subdomains (`https://*.example.com`) are refused, reported.",
    ),
    *(
        Annotation(_nginx(f"cors-{name}"), _N, "CORS", _I, OK, what)
        for name, what in (
            ("allow-methods", "Allowed methods."),
            ("allow-headers", "Allowed request headers."),
            ("expose-headers", "Exposed response headers."),
            ("allow-credentials", "Whether credentials are allowed (default true)."),
            ("max-age", "How long a preflight may be cached, in seconds."),
        )
    ),
    # --- ingress-nginx: canary -------------------------------------------------------------
    Annotation(
        _nginx("canary"),
        _N,
        "Canary",
        _I,
        OK,
        '`"true"`: this Ingress\'s paths do not compete for their host and path: they take a '
        "share of the traffic of the main Ingress's route with the same host, path and path "
        "type. Precedence as nginx: header, cookie, weight.",
        "A canary without a main Ingress for its host and path is ignored, reported (as in "
        "nginx); one canary per path. The canary's other annotations are ignored: the main "
        "Ingress's apply.",
    ),
    Annotation(
        _nginx("canary-weight"),
        _N,
        "Canary",
        _I,
        OK,
        "The canary's share out of `canary-weight-total` (Envoy weighted clusters).",
    ),
    Annotation(
        _nginx("canary-weight-total"),
        _N,
        "Canary",
        _I,
        OK,
        "The total of `canary-weight` (default 100).",
    ),
    Annotation(
        _nginx("canary-by-header"),
        _N,
        "Canary",
        _I,
        OK,
        "Requests whose header is `always` go to the canary, `never` to the main backend.",
    ),
    Annotation(
        _nginx("canary-by-header-value"),
        _N,
        "Canary",
        _I,
        OK,
        "The header value (exact) that sends a request to the canary instead of `always`.",
    ),
    Annotation(
        _nginx("canary-by-header-pattern"),
        _N,
        "Canary",
        _I,
        DIFF,
        "A regular expression on the header value instead of `always`.",
        "RE2, not PCRE: patterns RE2 refuses are reported and the header rule ignored.",
    ),
    Annotation(
        _nginx("canary-by-cookie"),
        _N,
        "Canary",
        _I,
        OK,
        "Requests whose cookie is `always` go to the canary, `never` to the main backend.",
    ),
    # --- refused: nginx configuration --------------------------------------------------------
    *(
        Annotation(
            _nginx(name),
            _N,
            "nginx configuration",
            _I,
            REFUSED,
            "Never applied.",
            "nginx configuration (any `*-snippet` annotation): reported, the rest of the "
            "Ingress is served.",
        )
        for name in (
            "configuration-snippet",
            "server-snippet",
            "server-snippets",
            "auth-snippet",
            "stream-snippet",
            "modsecurity-snippet",
        )
    ),
    # --- known, not implemented ------------------------------------------------------------
    *(
        Annotation(_nginx(*names), _N, "Not implemented", _I, TODO, "Not applied.", why)
        for names, why in (
            (
                ("auth-type", "auth-secret", "auth-secret-type", "auth-realm"),
                "Basic authentication.",
            ),
            (
                ("auth-url", "auth-signin", "auth-response-headers", "auth-method"),
                "External authentication.",
            ),
            (
                ("auth-tls-secret", "auth-tls-verify-client", "auth-tls-verify-depth"),
                "Client certificates.",
            ),
            (("proxy-ssl-secret", "proxy-ssl-verify", "proxy-ssl-name"), "Backend mTLS."),
            (("proxy-buffering", "proxy-buffer-size", "client-body-buffer-size"), "Buffers."),
            (("proxy-next-upstream", "proxy-next-upstream-tries"), "Retries."),
            (("proxy-redirect-from", "proxy-redirect-to"), "Response rewriting."),
            (("upstream-hash-by", "load-balance"), "Load-balancing algorithms."),
            (("from-to-www-redirect",), "www redirects."),
            (("x-forwarded-prefix",), "Request headers."),
            (("limit-rate", "limit-rate-after", "limit-whitelist"), "Bandwidth limits."),
            (("enable-modsecurity", "enable-owasp-core-rules"), "ModSecurity."),
            (("mirror-target", "mirror-host"), "Request mirroring."),
            (("session-cookie-samesite", "session-cookie-secure"), "Cookie attributes."),
            (("service-upstream",), "Service ClusterIP upstreams."),
        )
    ),
)
"""Every annotation read (or known and refused), grouped for docs/annotations.md."""

_BY_NAME: dict[str, Annotation] = {name: row for row in ANNOTATIONS for name in row.names}
_SERVICE_ONLY = frozenset(
    name for row in ANNOTATIONS if row.objects == "Service" for name in row.names
)


def _reason(name: str) -> str:
    if name.endswith(("-snippet", "-snippets")):
        return SNIPPET_REASON
    row = _BY_NAME.get(name)
    if row is not None and row.support is Support.REFUSED:
        return f"is refused: {row.note}"
    if name in _SERVICE_ONLY:
        return "is read on Services, not on Ingresses; ignored"
    if name.startswith(OLD_NGINX):
        suffix = name.removeprefix(OLD_NGINX)
        newer = _BY_NAME.get(NGINX + suffix)
        if newer is not None and newer.honoured:
            return f"is ingress-nginx's old name, not read here: use {NGINX}{suffix}; ignored"
    return NOT_IMPLEMENTED_REASON


def unsupported_annotations(annotations: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    """(name, reason) of every Ingress annotation under a watched prefix not honoured here,
    sorted by name."""
    for name in sorted(annotations):
        if not name.startswith(WATCHED_PREFIXES):
            continue
        row = _BY_NAME.get(name)
        if row is not None and row.honoured and name not in _SERVICE_ONLY:
            continue
        yield name, _reason(name)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def annotations_markdown() -> str:
    """docs/annotations.md, rendered from `ANNOTATIONS`."""
    lines = [
        "# Annotations",
        "",
        "<!-- Generated from controlplane/dag/annotation_table.py; "
        "tests/unit/test_annotation_table.py checks it. Do not edit by hand. -->",
        "",
        "Every annotation this controller reads, and the ones it knows and refuses. On an "
        "Ingress, any annotation under `nginx.ingress.kubernetes.io/`, "
        "`ingress.kubernetes.io/`, `projectcontour.io/` or `contour.heptio.com/` that is not "
        "honoured here is reported by name (`controlplane translate` prints it under "
        "`problems`; `serve` logs it and records an Event on the Ingress), and the rest of the "
        "Ingress is served. Which Ingresses get ingress-nginx's semantics and defaults, and "
        "what differs from nginx, is in docs/migrating-from-ingress-nginx.md.",
        "",
        "Support: **implemented** as the family documents it; **honoured, with differences** "
        "(said in the row); **refused**: read, reported, never applied; **not implemented**: "
        "known, reported, ignored. Contour annotations are read under both "
        "`projectcontour.io/` and `contour.heptio.com/` (the first wins).",
    ]
    families: dict[str, dict[str, list[Annotation]]] = {}
    for row in ANNOTATIONS:
        families.setdefault(row.family, {}).setdefault(row.group, []).append(row)
    for family in (_K, _C, _N):
        lines += ["", f"## {family}"]
        for group, rows in families[family].items():
            lines += [
                "",
                f"### {group}",
                "",
                "| annotation | objects | what Envoy does | support | notes |",
                "|---|---|---|---|---|",
            ]
            for row in rows:
                names = "<br>".join(f"`{name}`" for name in row.names)
                lines.append(
                    f"| {names} | {row.objects} | {_cell(row.effect)} | {row.support.value} "
                    f"| {_cell(row.note)} |"
                )
    return "\n".join(lines) + "\n"
