"""Ingresses of ingress-nginx semantics, one table row per behaviour: manifests in, routes and
problems out.

Rows read like tests/unit/test_dag_ingress.py's (and reuse its helpers and its `build`, which
builds every row cold, warm from two prior states, by the reference oracle, and in reverse
order). Expected routes are written with `ng()`, a route with nginx's defaults: websockets on,
no overall timeout, a 60 s idle timeout, a 5 s connect timeout. Hostile rows check that a value
Envoy would refuse never reaches the DAG: it is reported, and the Ingress is served without it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from dag_support import build_every_way
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dag_ingress import (
    BASE_SERVICES,
    P,
    Row,
    Secure,
    backend,
    certificate,
    exact,
    ingress,
    path,
    prefix,
    rule,
    secret,
    segments,
    tls,
)

from controlplane.dag.options import BuildOptions
from controlplane.dag.types import (
    INFINITE,
    Cluster,
    CorsPolicy,
    LoadBalancerPolicy,
    PathMatch,
    PathMatchKind,
    RateLimit,
    Redirect,
    RegexRewrite,
    Route,
    SessionCookie,
    SourceRanges,
    UpstreamProtocol,
    WeightedCluster,
)
from controlplane.envoy import TranslateOptions
from controlplane.model import ObjectSet, parse_object
from controlplane.publisher import Publisher

__all__ = ["certificate"]  # the fixture, imported for pytest

N = "nginx.ingress.kubernetes.io/"
NGINX = BuildOptions(ingress_class="nginx")
HTTPS_308 = Redirect(code=308, scheme="https")
WEB = Cluster("default", "web", 80, "http", connect_timeout_seconds=5.0)
API = Cluster("default", "api", 9000, "", connect_timeout_seconds=5.0)


def cluster(base: Cluster = WEB, **fields: Any) -> Cluster:
    return replace(base, **fields)


def ng(match: PathMatch, to: Cluster = WEB, **fields: Any) -> Route:
    """A route with ingress-nginx's defaults."""
    defaults: dict[str, Any] = {
        "clusters": (WeightedCluster(to),),
        "websocket": True,
        "timeout_seconds": INFINITE,
        "idle_timeout_seconds": 60.0,
    }
    return Route(match, **(defaults | fields))


def regex(pattern: str) -> PathMatch:
    return PathMatch(PathMatchKind.REGEX, f"(?i)(?:{pattern}).*")


def rewrite(pattern: str, substitution: str) -> RegexRewrite:
    return RegexRewrite(f"(?i)^(?:{pattern}).*", substitution)


def nx(name: str = "ing", *rules: Any, **kwargs: Any) -> dict[str, Any]:
    """An Ingress of class nginx."""
    return ingress(name, *rules, class_name="nginx", **kwargs)


def ann(**values: str) -> dict[str, str]:
    """nginx annotations: `ann(rewrite_target="/")`."""
    return {N + name.replace("_", "-"): value for name, value in values.items()}


def field(name: str) -> str:
    return f"metadata.annotations[{N}{name}]"


ROOT = segments("/")
FOO = rule("foo.com", path())
TLS_FOO = (tls("cert", "foo.com"),)

ROWS = [
    # --- which Ingresses get nginx semantics, and nginx's defaults ---------------------------
    Row("class nginx: nginx defaults", [nx("a", FOO)], {"foo.com": [ng(ROOT)]}, options=NGINX),
    Row(
        "the class annotation nginx",
        [ingress("a", FOO, annotations={"kubernetes.io/ingress.class": "nginx"})],
        {"foo.com": [ng(ROOT)]},
        options=NGINX,
    ),
    Row(
        "any nginx annotation gives nginx semantics (and class contour serves it)",
        [ingress("a", FOO, annotations=ann(proxy_read_timeout="3600"))],
        {"foo.com": [ng(ROOT, idle_timeout_seconds=3600.0)]},
    ),
    Row(
        "an Ingress without either keeps Contour's semantics beside an nginx one",
        [ingress("a", FOO), nx("b", rule("bar.com", path()))],
        {
            "bar.com": [ng(ROOT)],
            "foo.com": [
                Route(ROOT, (WeightedCluster(cluster(WEB, connect_timeout_seconds=None)),))
            ],
        },
        options=BuildOptions(ingress_class="contour,nginx"),
    ),
    Row(
        "TLS hosts redirect plain HTTP with 308",
        [secret(), nx("a", FOO, tls_=TLS_FOO)],
        {"foo.com": [Route(ROOT, redirect=HTTPS_308)]},
        {"foo.com": Secure([ng(ROOT)])},
        options=NGINX,
    ),
    Row(
        "ssl-redirect: false serves plain HTTP",
        [secret(), nx("a", FOO, tls_=TLS_FOO, annotations=ann(ssl_redirect="false"))],
        {"foo.com": [ng(ROOT)]},
        {"foo.com": Secure([ng(ROOT)])},
        options=NGINX,
    ),
    Row(
        "ssl-redirect follows the host's TLS from another Ingress",
        [secret(), nx("a", tls_=TLS_FOO), nx("b", FOO, age=1)],
        {"foo.com": [Route(ROOT, redirect=HTTPS_308)]},
        {"foo.com": Secure([ng(ROOT)])},
        options=NGINX,
    ),
    Row(
        "no redirect to a host whose certificate is unusable",
        [nx("a", FOO, tls_=(tls("missing", "foo.com"),))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", "spec.tls[0].secretName", "missing")],
        options=NGINX,
    ),
    Row(
        "force-ssl-redirect redirects without TLS here",
        [nx("a", FOO, annotations=ann(force_ssl_redirect="true"))],
        {"foo.com": [Route(ROOT, redirect=HTTPS_308)]},
        options=NGINX,
    ),
    Row(
        "Contour's response-timeout still applies",
        [nx("a", FOO, annotations={"projectcontour.io/response-timeout": "30s"})],
        {"foo.com": [ng(ROOT, timeout_seconds=30.0)]},
        options=NGINX,
    ),
    # --- regex paths and rewrites ------------------------------------------------------------
    Row(
        "rewrite-target with capture groups",
        [
            nx(
                "a",
                rule("foo.com", path("/something(/|$)(.*)", "ImplementationSpecific")),
                annotations=ann(rewrite_target="/$2"),
            )
        ],
        {
            "foo.com": [
                ng(
                    regex("/something(/|$)(.*)"),
                    regex_rewrite=rewrite("/something(/|$)(.*)", "/\\2"),
                )
            ]
        },
        options=NGINX,
    ),
    Row(
        "rewrite-target without groups replaces the whole path",
        [nx("a", rule("foo.com", path("/pay")), annotations=ann(rewrite_target="/"))],
        {"foo.com": [ng(regex("/pay"), regex_rewrite=rewrite("/pay", "/"))]},
        options=NGINX,
    ),
    Row(
        "a group beyond the path's is empty, as in nginx",
        [nx("a", rule("foo.com", path("/a/(.*)")), annotations=ann(rewrite_target="/$1/$3"))],
        {"foo.com": [ng(regex("/a/(.*)"), regex_rewrite=rewrite("/a/(.*)", "/\\1/"))]},
        options=NGINX,
    ),
    Row(
        "rewrite-target equal to the path: no rewrite, no regex",
        [nx("a", rule(None, path("/token", None)), annotations=ann(rewrite_target="/token"))],
        {"*": [ng(prefix("/token"))]},
        options=NGINX,
    ),
    Row(
        "use-regex",
        [nx("a", rule("foo.com", path("/foo/.*")), annotations=ann(use_regex="true"))],
        {"foo.com": [ng(regex("/foo/.*"))]},
        options=NGINX,
    ),
    Row(
        "use-regex accepts ? in a path",
        [nx("a", rule("foo.com", path("/something/?(.*)")), annotations=ann(use_regex="true"))],
        {"foo.com": [ng(regex("/something/?(.*)"))]},
        options=NGINX,
    ),
    Row(
        "use-regex applies to the host's other nginx Ingresses, not to Contour ones",
        [
            nx("a", rule("foo.com", path("/api/v[0-9]+")), annotations=ann(use_regex="true")),
            nx("b", rule("foo.com", path("/static")), age=1),
            ingress("c", rule("foo.com", path("/legacy")), age=2),
            nx("d", rule("bar.com", path("/static")), age=3),
        ],
        {
            "bar.com": [ng(segments("/static"))],
            "foo.com": [
                ng(regex("/api/v[0-9]+")),
                ng(regex("/static")),
                Route(
                    segments("/legacy"),
                    (WeightedCluster(cluster(connect_timeout_seconds=None)),),
                ),
            ],
        },
        options=BuildOptions(ingress_class="contour,nginx"),
    ),
    Row(
        "a regex RE2 refuses drops that path",
        [
            nx(
                "a",
                rule("foo.com", path("/(?<=x)y"), path("/ok")),
                annotations=ann(use_regex="true"),
            )
        ],
        {"foo.com": [ng(regex("/ok"))]},
        problems=[P("a", "spec.rules[0].http.paths[0].path", "not a valid RE2 pattern")],
        options=NGINX,
    ),
    Row(
        "a regex too large for Envoy drops that path",
        [nx("a", rule("foo.com", path("/[a-z]{30}")), annotations=ann(use_regex="true"))],
        problems=[P("a", "spec.rules[0].http.paths[0].path", "over Envoy's limit")],
        options=NGINX,
    ),
    Row(
        "a rewrite target with an nginx variable is refused",
        [nx("a", rule("foo.com", path("/x")), annotations=ann(rewrite_target="/$host/y"))],
        {"foo.com": [ng(segments("/x"))]},
        problems=[P("a", field("rewrite-target"), "nginx variable")],
        options=NGINX,
    ),
    Row(
        "a rewrite target with a query is refused",
        [nx("a", rule("foo.com", path("/x")), annotations=ann(rewrite_target="/y?a=b"))],
        {"foo.com": [ng(segments("/x"))]},
        problems=[P("a", field("rewrite-target"), "query")],
        options=NGINX,
    ),
    Row(
        "app-root",
        [nx("a", FOO, annotations=ann(app_root="/app"))],
        {
            "foo.com": [
                Route(exact("/"), redirect=Redirect(302, path="/app", strip_query=True)),
                ng(ROOT),
            ]
        },
        options=NGINX,
    ),
    Row(
        "app-root only where a path takes /",
        [nx("a", rule("foo.com", path("/x")), annotations=ann(app_root="/app"))],
        {"foo.com": [ng(segments("/x"))]},
        options=NGINX,
    ),
    Row(
        "app-root that is not a path",
        [nx("a", FOO, annotations=ann(app_root="https://evil.example"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", field("app-root"), "not a path")],
        options=NGINX,
    ),
    # --- redirects ---------------------------------------------------------------------------
    Row(
        "permanent-redirect",
        [nx("a", FOO, annotations=ann(permanent_redirect="https://www.example.org"))],
        {
            "foo.com": [
                Route(ROOT, redirect=Redirect(301, "https", "www.example.org", None, "/", True))
            ]
        },
        options=NGINX,
    ),
    Row(
        "permanent-redirect keeping $request_uri, with a code",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    permanent_redirect="https://new.example.org$request_uri",
                    permanent_redirect_code="308",
                ),
            )
        ],
        {"foo.com": [Route(ROOT, redirect=Redirect(308, "https", "new.example.org", None))]},
        options=NGINX,
    ),
    Row(
        "temporal-redirect wins over permanent-redirect",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    temporal_redirect="http://a.example/x?y=1",
                    permanent_redirect="https://b.example",
                ),
            )
        ],
        {
            "foo.com": [
                Route(ROOT, redirect=Redirect(302, "http", "a.example", None, "/x?y=1", True))
            ]
        },
        problems=[P("a", field("permanent-redirect"), "temporal-redirect wins")],
        options=NGINX,
    ),
    Row(
        "a redirect needs no backend",
        [
            nx(
                "a",
                rule("foo.com", path(to=backend("gone"))),
                annotations=ann(temporal_redirect="https://x.example/"),
            )
        ],
        {"foo.com": [Route(ROOT, redirect=Redirect(302, "https", "x.example", None, "/", True))]},
        problems=[P("a", "spec.rules[0].http.paths[0].backend.service.name", "gone")],
        options=NGINX,
    ),
    Row(
        "a redirect code Envoy cannot send",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    permanent_redirect="https://x.example/", permanent_redirect_code="399"
                ),
            )
        ],
        {"foo.com": [Route(ROOT, redirect=Redirect(301, "https", "x.example", None, "/", True))]},
        problems=[P("a", field("permanent-redirect-code"), "using 301")],
        options=NGINX,
    ),
    # --- upstreams ---------------------------------------------------------------------------
    *(
        Row(
            f"backend-protocol {protocol}",
            [nx("a", FOO, annotations=ann(backend_protocol=protocol))],
            {"foo.com": [ng(ROOT, cluster(protocol=expected))]},
            options=NGINX,
        )
        for protocol, expected in (
            ("HTTPS", UpstreamProtocol.TLS),
            ("GRPC", UpstreamProtocol.H2C),
            ("grpcs", UpstreamProtocol.H2),
            ("H2C", UpstreamProtocol.H2C),
            ("HTTP", UpstreamProtocol.HTTP1),
        )
    ),
    Row(
        "backend-protocol FCGI is refused",
        [nx("a", FOO, annotations=ann(backend_protocol="FCGI"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", field("backend-protocol"), "using HTTP")],
        options=NGINX,
    ),
    Row(
        "secure-backends",
        [nx("a", FOO, annotations=ann(secure_backends="true"))],
        {"foo.com": [ng(ROOT, cluster(protocol=UpstreamProtocol.TLS))]},
        options=NGINX,
    ),
    Row(
        "proxy timeouts",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    proxy_connect_timeout="10", proxy_read_timeout="1m", proxy_send_timeout="120"
                ),
            )
        ],
        {"foo.com": [ng(ROOT, cluster(connect_timeout_seconds=10.0), idle_timeout_seconds=120.0)]},
        options=NGINX,
    ),
    Row(
        "malformed and hostile timeouts fall back to nginx's defaults",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    proxy_connect_timeout="0",
                    proxy_read_timeout="99999999999",
                    proxy_send_timeout="ten",
                ),
            )
        ],
        {"foo.com": [ng(ROOT)]},
        problems=[
            P("a", field("proxy-connect-timeout"), "is zero; using 5"),
            P("a", field("proxy-read-timeout"), "too long"),
            P("a", field("proxy-send-timeout"), "not a number of seconds"),
        ],
        options=NGINX,
    ),
    Row(
        "default-backend",
        [nx("a", FOO, annotations=ann(default_backend="api"))],
        {"foo.com": [ng(ROOT, cluster(fallback=API))]},
        options=NGINX,
    ),
    Row(
        "default-backend missing",
        [nx("a", FOO, annotations=ann(default_backend="gone"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", field("default-backend"), "no default backend")],
        options=NGINX,
    ),
    Row(
        "upstream-vhost",
        [nx("a", FOO, annotations=ann(upstream_vhost="internal.example:8080"))],
        {"foo.com": [ng(ROOT, host_rewrite="internal.example:8080")]},
        options=NGINX,
    ),
    Row(
        "upstream-vhost with a variable or CR/LF",
        [nx("a", FOO, annotations=ann(upstream_vhost="$host"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", field("upstream-vhost"), "variable")],
        options=NGINX,
    ),
    Row(
        "affinity cookie",
        [
            nx(
                "a",
                rule("foo.com", path("/shop")),
                annotations=ann(affinity="cookie", session_cookie_max_age="3600"),
            )
        ],
        {
            "foo.com": [
                ng(
                    segments("/shop"),
                    cluster(load_balancer=LoadBalancerPolicy.COOKIE),
                    session_cookie=SessionCookie("INGRESSCOOKIE", 3600, "/shop"),
                )
            ]
        },
        options=NGINX,
    ),
    Row(
        "affinity cookie name and path",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    affinity="cookie", session_cookie_name="route", session_cookie_path="/x"
                ),
            )
        ],
        {
            "foo.com": [
                ng(
                    ROOT,
                    cluster(load_balancer=LoadBalancerPolicy.COOKIE),
                    session_cookie=SessionCookie("route", 0, "/x"),
                )
            ]
        },
        options=NGINX,
    ),
    Row(
        "affinity other than cookie",
        [nx("a", FOO, annotations=ann(affinity="ip", session_cookie_name="x"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", field("affinity"), 'not "cookie"')],
        options=NGINX,
    ),
    # --- limits and access -------------------------------------------------------------------
    Row(
        "proxy-body-size",
        [nx("a", FOO, annotations=ann(proxy_body_size="8m"))],
        {"foo.com": [ng(ROOT, max_request_bytes=8 * 1024 * 1024)]},
        options=NGINX,
    ),
    Row(
        "proxy-body-size 0 is no limit; a huge size is refused",
        [
            nx("a", FOO, annotations=ann(proxy_body_size="0")),
            nx("b", rule("b.com", path()), annotations=ann(proxy_body_size="99g")),
        ],
        {"b.com": [ng(ROOT)], "foo.com": [ng(ROOT)]},
        problems=[P("b", field("proxy-body-size"), "more than Envoy can enforce")],
        options=NGINX,
    ),
    Row(
        "limit-rps with the default burst",
        [nx("a", FOO, annotations=ann(limit_rps="10"))],
        {"foo.com": [ng(ROOT, rate_limit=RateLimit(10, 1, 50))]},
        options=NGINX,
    ),
    Row(
        "limit-rpm with a multiplier; limit-rps wins over it",
        [
            nx("a", FOO, annotations=ann(limit_rpm="60", limit_burst_multiplier="2")),
            nx("b", rule("b.com", path()), annotations=ann(limit_rps="1", limit_rpm="60")),
        ],
        {
            "b.com": [ng(ROOT, rate_limit=RateLimit(1, 1, 5))],
            "foo.com": [ng(ROOT, rate_limit=RateLimit(60, 60, 120))],
        },
        problems=[P("b", field("limit-rpm"), "limit-rps is set too")],
        options=NGINX,
    ),
    Row(
        "limit-rps beyond Envoy's range",
        [nx("a", FOO, annotations=ann(limit_rps="99999999999999"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", field("limit-rps"), "no rate limit")],
        options=NGINX,
    ),
    Row(
        "limit-connections is refused",
        [nx("a", FOO, annotations=ann(limit_connections="5"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", field("limit-connections"), "no limit of concurrent connections")],
        options=NGINX,
    ),
    Row(
        "allow and deny lists",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    whitelist_source_range="10.0.0.1/8, 192.168.1.1,2001:db8::/32",
                    denylist_source_range="10.1.0.0/16",
                ),
            )
        ],
        {
            "foo.com": [
                ng(
                    ROOT,
                    source_ranges=SourceRanges(
                        ("10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32"), ("10.1.0.0/16",)
                    ),
                )
            ]
        },
        options=NGINX,
    ),
    Row(
        "allowlist-source-range is the new name; bad entries are left out",
        [nx("a", FOO, annotations=ann(allowlist_source_range="1.2.3.4, 10.0.0.0/33"))],
        {"foo.com": [ng(ROOT, source_ranges=SourceRanges(("1.2.3.4/32",)))]},
        problems=[P("a", field("allowlist-source-range"), '"10.0.0.0/33"')],
        options=NGINX,
    ),
    Row(
        "an allow list with no usable entry serves nobody",
        [nx("a", FOO, annotations=ann(whitelist_source_range="everyone"))],
        {"foo.com": [ng(ROOT, source_ranges=SourceRanges(deny=("0.0.0.0/0", "::/0")))]},
        problems=[
            P("a", field("whitelist-source-range"), '"everyone"'),
            P("a", field("whitelist-source-range"), "nobody is served"),
        ],
        options=NGINX,
    ),
    Row(
        "CORS with nginx's defaults",
        [nx("a", FOO, annotations=ann(enable_cors="true"))],
        {"foo.com": [ng(ROOT, cors=CorsPolicy())]},
        options=NGINX,
    ),
    Row(
        "CORS origins, methods and credentials; wildcard origins refused",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    enable_cors="true",
                    cors_allow_origin="https://a.example, http://b.example:8080, https://*.c.example",
                    cors_allow_methods="GET,POST",
                    cors_allow_credentials="false",
                    cors_max_age="600",
                ),
            )
        ],
        {
            "foo.com": [
                ng(
                    ROOT,
                    cors=CorsPolicy(
                        allow_origins=("https://a.example", "http://b.example:8080"),
                        allow_methods="GET, POST",
                        allow_credentials=False,
                        max_age_seconds=600,
                    ),
                )
            ]
        },
        problems=[P("a", field("cors-allow-origin"), "wildcard")],
        options=NGINX,
    ),
    Row(
        "cors-* without enable-cors is reported",
        [nx("a", FOO, annotations=ann(cors_allow_origin="https://a.example"))],
        {"foo.com": [ng(ROOT)]},
        problems=[P("a", field("cors-allow-origin"), "enable-cors is not")],
        options=NGINX,
    ),
    # --- hosts -------------------------------------------------------------------------------
    Row(
        "server-alias",
        [nx("a", FOO, annotations=ann(server_alias="www.foo.com, foo.example.org"))],
        {"foo.com": [ng(ROOT)], "foo.example.org": [ng(ROOT)], "www.foo.com": [ng(ROOT)]},
        options=NGINX,
    ),
    Row(
        "an alias that is another Ingress's host is ignored for it",
        [
            nx("a", FOO, annotations=ann(server_alias="bar.com")),
            nx("b", rule("bar.com", path(to=backend("api", 9000))), age=1),
        ],
        {"bar.com": [ng(ROOT, API)], "foo.com": [ng(ROOT)]},
        problems=[P("a", field("server-alias"), 'alias "bar.com" is the host of a rule')],
        options=NGINX,
    ),
    # --- refused and unknown annotations -----------------------------------------------------
    Row(
        "snippets are refused, the rest is served",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    configuration_snippet="more_set_headers x;",
                    server_snippet="return 200;",
                    auth_snippet="x",
                    my_own_snippet="x",
                ),
            )
        ],
        {"foo.com": [ng(ROOT)]},
        problems=[
            P("a", field(name), "nginx configuration")
            for name in (
                "auth-snippet",
                "configuration-snippet",
                "my-own-snippet",
                "server-snippet",
            )
        ],
        options=NGINX,
    ),
    Row(
        "unknown and not implemented annotations are reported by name",
        [
            nx(
                "a",
                FOO,
                annotations={
                    N + "auth-url": "http://auth",
                    N + "no-such-thing": "1",
                    N + "custom-http-errors": "404",
                    "ingress.kubernetes.io/rewrite-target": "/",
                    "projectcontour.io/nope": "1",
                    "cert-manager.io/cluster-issuer": "le",
                },
            )
        ],
        {"foo.com": [ng(ROOT)]},
        problems=[
            P("a", field("auth-url"), "not implemented"),
            P("a", field("no-such-thing"), "not implemented"),
            P("a", field("custom-http-errors"), "refused"),
            P("a", "metadata.annotations[ingress.kubernetes.io/rewrite-target]", "old name"),
            P("a", "metadata.annotations[projectcontour.io/nope]", "not implemented"),
        ],
        options=NGINX,
    ),
    # --- hostile values ----------------------------------------------------------------------
    Row(
        "hostile: 10 kB values",
        [
            nx(
                "a",
                FOO,
                annotations=ann(
                    rewrite_target="/" + "a" * 10_000,
                    whitelist_source_range="1.1.1.1," * 3000,
                    permanent_redirect="https://x.example/" + "a" * 10_000,
                    canary_by_header="x" * 10_000,
                ),
            )
        ],
        {"foo.com": [ng(ROOT, source_ranges=SourceRanges(deny=("0.0.0.0/0", "::/0")))]},
        problems=[
            P("a", field("rewrite-target"), "characters long"),
            P("a", field("whitelist-source-range"), "characters long"),
            P("a", field("whitelist-source-range"), "nobody is served"),
            P("a", field("permanent-redirect"), "characters long"),
            P("a", field("canary-by-header"), 'canary is not "true"'),
        ],
        options=NGINX,
    ),
    Row(
        "hostile: redirects with CR/LF or a non-http scheme",
        [
            nx(
                "a",
                FOO,
                annotations=ann(permanent_redirect="https://x.example/\r\nSet-Cookie: a=b"),
            ),
            nx(
                "b", rule("b.com", path()), annotations=ann(temporal_redirect="javascript:alert(1)")
            ),
        ],
        {"b.com": [ng(ROOT)], "foo.com": [ng(ROOT)]},
        problems=[
            P("a", field("permanent-redirect"), "control characters"),
            P("b", field("temporal-redirect"), "not an http:// or https:// URL"),
        ],
        options=NGINX,
    ),
    Row(
        "hostile: control characters in regex paths, cookie names and header values",
        [
            nx("a", rule("foo.com", path("/a\nb"), path("/ok")), annotations=ann(use_regex="true")),
            nx(
                "b",
                rule("b.com", path()),
                annotations=ann(
                    affinity="cookie", session_cookie_name="a;b", session_cookie_path="/a;b"
                ),
            ),
        ],
        {
            "b.com": [
                ng(
                    ROOT,
                    cluster(load_balancer=LoadBalancerPolicy.COOKIE),
                    session_cookie=SessionCookie("INGRESSCOOKIE", 0, "/"),
                )
            ],
            "foo.com": [ng(regex("/ok"))],
        },
        problems=[
            P("a", "spec.rules[0].http.paths[0].path", "whitespace"),
            P("b", field("session-cookie-name"), "not a cookie name"),
            P("b", field("session-cookie-path"), "not a cookie path"),
        ],
        options=NGINX,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_build(row: Row, certificate: Any) -> None:
    from test_dag_ingress import test_build as check

    check(row, certificate)


def test_ssl_passthrough_passes_tls_to_the_root_path() -> None:
    objects = [*BASE_SERVICES, nx("a", FOO, annotations=ann(ssl_passthrough="true"))]
    dag = build_every_way(ObjectSet.from_objects(map(parse_object, objects)), NGINX)
    (secure,) = dag.secure_virtual_hosts
    assert secure.passthrough and secure.fqdn == "foo.com"
    assert secure.tcp_proxy is not None
    (upstream,) = secure.tcp_proxy.clusters
    assert (upstream.cluster.service, upstream.cluster.port) == ("web", 80)


def test_ssl_passthrough_without_a_root_path_is_reported() -> None:
    objects = [
        *BASE_SERVICES,
        nx("a", rule("foo.com", path("/x")), annotations=ann(ssl_passthrough="true")),
    ]
    dag = build_every_way(ObjectSet.from_objects(map(parse_object, objects)), NGINX)
    assert dag.secure_virtual_hosts == ()
    assert [p.field for p in dag.problems] == [field("ssl-passthrough")]


def _translator_reads_the_new_route_vocabulary() -> bool:
    """Whether the Envoy translator serves regex matches yet (another branch teaches it the
    vocabulary ingress-nginx needs; until then this check cannot run here)."""
    objects = ObjectSet.from_objects(
        map(
            parse_object,
            [
                *BASE_SERVICES,
                nx("a", rule("foo.com", path("/a(.*)")), annotations=ann(use_regex="true")),
            ],
        )
    )
    dag = build_every_way(objects, NGINX)
    publisher = Publisher(TranslateOptions())
    return publisher.report(dag, publisher.translate(dag, objects)).rejections == ()


def test_no_row_reaches_envoy_with_a_value_it_would_reject() -> None:
    """Every row's DAG, translated: nothing for the translator's backstop to leave out."""
    if not _translator_reads_the_new_route_vocabulary():
        pytest.skip("the translator does not serve the ingress-nginx route vocabulary yet")
    publisher = Publisher(TranslateOptions())
    for row in ROWS:
        raws = [raw for raw in [*row.services, *row.objects] if raw.get("kind") != "Secret"]
        objects = ObjectSet.from_objects(map(parse_object, raws))
        dag = build_every_way(objects, row.options)
        report = publisher.report(dag, publisher.translate(dag, objects))
        assert report.rejections == (), row.id


NGINX_NAMES = sorted(
    N + name
    for name in (
        "rewrite-target", "use-regex", "app-root", "permanent-redirect", "permanent-redirect-code",
        "temporal-redirect", "ssl-redirect", "force-ssl-redirect", "backend-protocol",
        "proxy-connect-timeout", "proxy-read-timeout", "proxy-body-size", "limit-rps",
        "limit-rpm", "limit-burst-multiplier", "whitelist-source-range", "denylist-source-range",
        "enable-cors", "cors-allow-origin", "cors-allow-methods", "affinity",
        "session-cookie-name", "session-cookie-path", "canary", "canary-weight",
        "canary-weight-total", "canary-by-header", "canary-by-header-pattern", "canary-by-cookie",
        "default-backend", "ssl-passthrough", "server-alias", "upstream-vhost", "server-snippet",
    )
)  # fmt: skip
NGINX_WORDS = st.one_of(
    st.text(max_size=16),
    st.sampled_from(
        [
            "true", "false", "cookie", "/", "/$1", "/$2/x", "(.*)", "/a(/|$)(.*)", "10", "0",
            "99999999999999999999", "8m", "1.2.3.4/8", "::/0", "https://a.example$request_uri",
            "GRPC", "x-canary", "api", "www.foo.com, bar.com", "(?<=x)", "\r\n", "$host",
        ]
    ),
)  # fmt: skip


@settings(deadline=None)
@given(
    main=st.dictionaries(st.sampled_from(NGINX_NAMES), NGINX_WORDS, max_size=6),
    second=st.dictionaries(st.sampled_from(NGINX_NAMES), NGINX_WORDS, max_size=6),
    paths=st.lists(
        st.tuples(
            st.one_of(st.none(), NGINX_WORDS),
            st.sampled_from(["Exact", "Prefix", "ImplementationSpecific"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_never_raises_and_every_build_agrees(
    main: dict[str, str], second: dict[str, str], paths: list[tuple[str | None, str]]
) -> None:
    """Two Ingresses on one host with any nginx annotations (a canary among them, often): the
    build never raises, and the warm builds and the oracle agree (`build_every_way`)."""
    rules = rule("foo.com", *(path(value, kind) for value, kind in paths))
    objects = [
        *BASE_SERVICES,
        secret(),
        nx("a", rules, annotations=main, tls_=TLS_FOO),
        nx("b", rules, age=1, annotations=second),
    ]
    built = build_every_way(ObjectSet.from_objects(map(parse_object, objects)), NGINX)
    assert all(problem.field != "internal error" for problem in built.problems)
