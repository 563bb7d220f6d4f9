"""Every annotation this controller reads, in one table: the source of docs/annotations.md and of
the reports about annotations it does not honour.

One row per annotation (with its aliases): the family it comes from (ingress-nginx, Contour,
Kubernetes), the objects it is read on, what Envoy does with it here, and whether it is
implemented as the family documents it, honoured with differences (said in the row), refused
(read, reported, never applied), or known but not implemented.

What the table says to users (reports, docs/annotations.md) is `annotation_report.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ANNOTATIONS",
    "BY_NAME",
    "NGINX",
    "OLD_NGINX",
    "WATCHED_PREFIXES",
    "Annotation",
    "Support",
]

NGINX = "nginx.ingress.kubernetes.io/"
OLD_NGINX = "ingress.kubernetes.io/"
CONTOUR = ("projectcontour.io/", "contour.heptio.com/")
WATCHED_PREFIXES = (NGINX, OLD_NGINX, *CONTOUR)


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


def _row(
    names: tuple[str, ...],
    group: str,
    support: Support,
    effect: str,
    note: str = "",
    *,
    objects: str = "Ingress",
) -> Annotation:
    """A row; its family is the one whose prefix the first name has."""
    first = names[0]
    family = (
        _N if first.startswith(NGINX) else _C if first.startswith((*CONTOUR, OLD_NGINX)) else _K
    )
    return Annotation(names, family, group, objects, support, effect, note)


OK, DIFF, REFUSED, TODO = (
    Support.IMPLEMENTED,
    Support.DIFFERENT,
    Support.REFUSED,
    Support.NOT_IMPLEMENTED,
)

ANNOTATIONS: tuple[Annotation, ...] = (
    # --- class selection -----------------------------------------------------------------
    _row(
        ("kubernetes.io/ingress.class", *_contour("ingress.class")),
        "Class",
        OK,
        "Selects the controller: the object is served when the class is one of "
        "`--ingress-class` (a comma-separated list). `spec.ingressClassName` wins over it.",
        "Class `nginx` (or any `nginx.ingress.kubernetes.io/` annotation) also gives the Ingress "
        "ingress-nginx's defaults; see docs/migrating-from-ingress-nginx.md.",
        objects="Ingress, IngressRoute",
    ),
    # --- Contour ---------------------------------------------------------------------------
    _row(
        (*_contour("response-timeout"), *_contour("request-timeout")),
        "Timeouts and retries",
        OK,
        "The route timeout (Go duration or `infinity`).",
    ),
    _row(
        _contour("websocket-routes"),
        "Timeouts and retries",
        OK,
        "Enables websocket upgrades on the listed paths (every path of an ingress-nginx "
        "Ingress upgrades anyway).",
    ),
    _row(_contour("retry-on"), "Timeouts and retries", OK, "Envoy `retry_on`."),
    _row(_contour("num-retries"), "Timeouts and retries", OK, "Retries (default 1)."),
    _row(_contour("per-try-timeout"), "Timeouts and retries", OK, "Per-try timeout."),
    _row(
        _contour("tls-minimum-protocol-version"),
        "TLS",
        OK,
        "Minimum TLS version of the Ingress's hosts (1.2 or 1.3; never lower than 1.2).",
    ),
    _row(
        ("ingress.kubernetes.io/force-ssl-redirect",),
        "TLS",
        OK,
        "Plain HTTP requests to the hosts under `spec.tls` get a 301 to HTTPS (Contour).",
    ),
    _row(
        ("kubernetes.io/ingress.allow-http",),
        "TLS",
        OK,
        '`"false"`: nothing of this Ingress is served on the plain listener but redirects.',
    ),
    *(
        _row(
            _contour(f"upstream-protocol.{protocol}"),
            "Upstreams",
            OK,
            f"The listed ports (numbers or names) speak {what}.",
            objects="Service",
        )
        for protocol, what in (
            ("h2", "HTTP/2 over TLS"),
            ("h2c", "HTTP/2 in clear text"),
            ("tls", "HTTP/1.1 over TLS"),
        )
    ),
    *(
        _row(_contour(name), "Upstreams", OK, f"Circuit breaker `{name}`.", objects="Service")
        for name in ("max-connections", "max-pending-requests", "max-requests", "max-retries")
    ),
    # --- ingress-nginx: paths --------------------------------------------------------------
    _row(
        _nginx("use-regex"),
        "Paths and rewrites",
        DIFF,
        "Paths are case-insensitive RE2 regular expressions matched at the start of the path "
        "(Envoy `safe_regex` `(?i)(?:PATH).*`).",
        "As in nginx, it applies to every ingress-nginx Ingress path of the host; Ingresses "
        "of Contour semantics on the same host keep their matches. A pattern RE2 refuses (or "
        "too large for Envoy) drops that path, reported.",
    ),
    _row(
        _nginx("rewrite-target"),
        "Paths and rewrites",
        OK,
        "Replaces the whole path with the target, `$1`...`$9` naming the path's capture groups "
        "(Envoy `regex_rewrite`); like nginx, makes the host's paths regular expressions.",
        "Targets with a query string or nginx variables other than capture groups are refused "
        "(the path is served without rewrite, reported).",
    ),
    _row(
        _nginx("app-root"),
        "Paths and rewrites",
        OK,
        "Requests for exactly `/` get a 302 to the application root.",
    ),
    _row(
        _nginx("upstream-vhost"),
        "Paths and rewrites",
        OK,
        "The `Host` sent upstream (Envoy `host_rewrite_literal`).",
        "nginx variables are refused.",
    ),
    _row(
        _nginx("server-alias"),
        "Paths and rewrites",
        DIFF,
        "More host names (comma- or space-separated) served with this Ingress's paths.",
        "Only this Ingress's paths are served on the alias (nginx serves the whole server); an "
        "alias that is another Ingress's host is ignored for that host, reported, as in nginx. "
        "An alias is served over HTTPS only when it is listed under `spec.tls`.",
    ),
    # --- ingress-nginx: redirects ----------------------------------------------------------
    _row(
        _nginx("permanent-redirect"),
        "Redirects",
        DIFF,
        "Every path of the Ingress answers with a redirect to the URL (301).",
        "The only nginx variable understood is a final `$request_uri` (keeps the request's "
        "path and query); other variables are refused. A URL without a path redirects to `/`.",
    ),
    _row(
        _nginx("permanent-redirect-code"),
        "Redirects",
        OK,
        "The status of `permanent-redirect` (301, 302, 303, 307 or 308).",
    ),
    _row(
        _nginx("temporal-redirect"),
        "Redirects",
        DIFF,
        "Every path of the Ingress answers with a redirect to the URL (302); it wins over "
        "`permanent-redirect`, as in nginx.",
        "As for `permanent-redirect`.",
    ),
    _row(
        _nginx("temporal-redirect-code"),
        "Redirects",
        OK,
        "The status of `temporal-redirect` (301, 302, 303, 307 or 308).",
    ),
    # --- ingress-nginx: TLS ----------------------------------------------------------------
    _row(
        _nginx("ssl-redirect"),
        "TLS",
        DIFF,
        'Default `"true"`: plain HTTP requests to a host served over TLS get a 308 to HTTPS.',
        "Only when the host is actually served over TLS (a usable certificate, from any "
        "Ingress); the trailing slash is kept (as with `preserve-trailing-slash`).",
    ),
    _row(
        _nginx("force-ssl-redirect"),
        "TLS",
        OK,
        "Plain HTTP requests get a 308 to HTTPS, even for hosts without TLS here (TLS ended "
        "by a load balancer in front).",
    ),
    _row(
        _nginx("preserve-trailing-slash"),
        "TLS",
        DIFF,
        "The HTTPS redirect keeps the path as it is.",
        'The trailing slash is always kept, as with `"true"`.',
    ),
    _row(
        _nginx("ssl-passthrough"),
        "TLS",
        OK,
        "TLS connections for the Ingress's hosts are passed, by SNI and unopened, to the "
        "backend of the path `/` (Envoy `tcp_proxy`); plain HTTP is served as usual.",
        "Needs no controller flag (nginx's `--enable-ssl-passthrough`). As in nginx, the "
        "other annotations do not apply to the passed-through connections.",
    ),
    # --- ingress-nginx: upstreams ----------------------------------------------------------
    _row(
        _nginx("backend-protocol"),
        "Upstreams",
        DIFF,
        "HTTP (HTTP/1.1), HTTPS (HTTP/1.1 over TLS), GRPC and H2C (HTTP/2 in clear text), "
        "GRPCS (HTTP/2 over TLS).",
        "AJP, FCGI and AUTO_HTTP are refused (served as HTTP, reported). The backend's "
        "certificate is not verified, as nginx's `proxy-ssl-verify` default.",
    ),
    _row(
        _nginx("secure-backends"),
        "Upstreams",
        OK,
        'The old `"true"` for `backend-protocol: HTTPS` (which wins when both are set).',
    ),
    _row(
        _nginx("default-backend"),
        "Upstreams",
        OK,
        "A Service (same namespace, first port) that takes the requests of this Ingress's "
        "backends while they have no healthy endpoint (Envoy aggregate cluster).",
    ),
    _row(
        _nginx("custom-http-errors"),
        "Upstreams",
        REFUSED,
        "Not applied.",
        "Envoy cannot yet hand a backend's error responses to the default backend here; "
        "the backend's own error pages are served.",
    ),
    _row(
        _nginx("affinity"),
        "Upstreams",
        DIFF,
        '`"cookie"`: session affinity by a cookie Envoy sets (Envoy ring hash).',
        "Other types are refused. A canary's requests do not stick to the canary.",
    ),
    _row(
        _nginx("affinity-mode"),
        "Upstreams",
        DIFF,
        "Accepted; Envoy's ring hash keeps most sessions when endpoints change.",
        '`"persistent"` is not strictly persistent.',
    ),
    _row(
        _nginx("session-cookie-name"),
        "Upstreams",
        OK,
        "The affinity cookie's name (default `INGRESSCOOKIE`).",
    ),
    _row(
        _nginx("session-cookie-max-age", "session-cookie-expires"),
        "Upstreams",
        OK,
        "The affinity cookie's lifetime in seconds (default: a session cookie).",
    ),
    _row(
        _nginx("session-cookie-path"),
        "Upstreams",
        OK,
        "The affinity cookie's path (default: the Ingress path; `/` for regex paths).",
    ),
    # --- ingress-nginx: timeouts and limits ------------------------------------------------
    _row(
        _nginx("proxy-connect-timeout"),
        "Timeouts and limits",
        OK,
        "The upstream connect timeout in seconds (default 5, as nginx).",
    ),
    _row(
        _nginx("proxy-read-timeout", "proxy-send-timeout"),
        "Timeouts and limits",
        DIFF,
        "The route's idle timeout in seconds (default 60); requests have no overall timeout, "
        "and websockets stay open while they carry data.",
        "Envoy has one idle timeout for both directions: the larger of the two is used.",
    ),
    _row(
        _nginx("proxy-body-size"),
        "Timeouts and limits",
        DIFF,
        "Request bodies larger than this (nginx size: `8m`, `512k`; `0` for no limit) get 413.",
        "No limit unless the annotation is set (nginx's default is 1m).",
    ),
    _row(
        _nginx("limit-rps"),
        "Timeouts and limits",
        OK,
        "Requests per second per client address, with a burst of `limit-burst-multiplier` "
        "times as many (Envoy local rate limit); 503 beyond.",
    ),
    _row(
        _nginx("limit-rpm"),
        "Timeouts and limits",
        DIFF,
        "Requests per minute per client address, as `limit-rps`.",
        "When both are set only `limit-rps` is enforced (reported).",
    ),
    _row(
        _nginx("limit-burst-multiplier"),
        "Timeouts and limits",
        OK,
        "The burst of `limit-rps`/`limit-rpm` (default 5).",
    ),
    _row(
        _nginx("limit-connections"),
        "Timeouts and limits",
        REFUSED,
        "Not applied.",
        "Envoy has no limit of concurrent connections per client address; not applied.",
    ),
    # --- ingress-nginx: access -------------------------------------------------------------
    _row(
        _nginx("whitelist-source-range", "allowlist-source-range"),
        "Access",
        OK,
        "Only these client addresses (comma-separated CIDRs or addresses) are served; the "
        "others get 403.",
        "An entry that is not an address is reported and left out; a list left empty "
        "serves nobody.",
    ),
    _row(
        _nginx("denylist-source-range"),
        "Access",
        OK,
        "These client addresses get 403; deny wins over allow.",
    ),
    _row(
        _nginx("enable-cors"),
        "CORS",
        OK,
        "Answers CORS preflights and decorates responses (Envoy CORS filter), with nginx's "
        "defaults.",
    ),
    _row(
        _nginx("cors-allow-origin"),
        "CORS",
        DIFF,
        "Allowed origins, comma-separated (default `*`).",
        "Wildcard subdomains (`https://*.example.com`) are refused, reported.",
    ),
    *(
        _row(_nginx(f"cors-{name}"), "CORS", OK, what)
        for name, what in (
            ("allow-methods", "Allowed methods."),
            ("allow-headers", "Allowed request headers."),
            ("expose-headers", "Exposed response headers."),
            ("allow-credentials", "Whether credentials are allowed (default true)."),
            ("max-age", "How long a preflight may be cached, in seconds."),
        )
    ),
    # --- ingress-nginx: canary -------------------------------------------------------------
    _row(
        _nginx("canary"),
        "Canary",
        OK,
        '`"true"`: this Ingress\'s paths do not compete for their host and path: they take a '
        "share of the traffic of the main Ingress's route with the same host, path and path "
        "type. Precedence as nginx: header, cookie, weight.",
        "A canary without a main Ingress for its host and path is ignored, reported (as in "
        "nginx); one canary per path. The canary's other annotations are ignored: the main "
        "Ingress's apply.",
    ),
    _row(
        _nginx("canary-weight"),
        "Canary",
        OK,
        "The canary's share out of `canary-weight-total` (Envoy weighted clusters).",
    ),
    _row(
        _nginx("canary-weight-total"),
        "Canary",
        OK,
        "The total of `canary-weight` (default 100).",
    ),
    _row(
        _nginx("canary-by-header"),
        "Canary",
        OK,
        "Requests whose header is `always` go to the canary, `never` to the main backend.",
    ),
    _row(
        _nginx("canary-by-header-value"),
        "Canary",
        OK,
        "The header value (exact) that sends a request to the canary instead of `always`.",
    ),
    _row(
        _nginx("canary-by-header-pattern"),
        "Canary",
        DIFF,
        "A regular expression on the header value instead of `always`.",
        "RE2, not PCRE: patterns RE2 refuses are reported and the header rule ignored.",
    ),
    _row(
        _nginx("canary-by-cookie"),
        "Canary",
        OK,
        "Requests whose cookie is `always` go to the canary, `never` to the main backend.",
    ),
    # --- refused: nginx configuration --------------------------------------------------------
    *(
        _row(
            _nginx(name),
            "nginx configuration",
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
        _row(_nginx(*names), "Not implemented", TODO, "Not applied.", why)
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

BY_NAME: dict[str, Annotation] = {name: row for row in ANNOTATIONS for name in row.names}
"""Each row under each of its names."""
