"""The routes and clusters of an ingress-nginx path: `NginxPolicy` applied to one match.

An ingress-nginx path becomes a route that upgrades websockets, has no overall timeout (unless
Contour's `response-timeout` sets one) and an idle timeout of `proxy-read/send-timeout`, with the
policy's CORS, source ranges, rate limit, body limit, `Host` rewrite and affinity cookie; or, with
`permanent-redirect`/`temporal-redirect`, a redirect and nothing else (nginx's `return` runs before
its access checks, so those do not apply to it either).

Each path also has a regex form (`regex_route`): the match `(?i)(?:PATH).*` and, when the
Ingress rewrites (`rewrite-target` differs from the path), the `regex_rewrite` of the whole path
(see `ingress_nginx_values`). Which form is served is settled per host (`ingress_claims.py`).

Clusters get the policy through `ClusterPolicy`: the upstream protocol of `backend-protocol`,
the connect timeout, cookie load balancing for `affinity: cookie`, and the `default-backend`
fallback. A canary's cluster takes the main Ingress's ClusterPolicy, as nginx serves a canary
with the main Ingress's annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controlplane.dag.ingress_annotations import IngressPolicy
from controlplane.dag.ingress_nginx import NginxPolicy
from controlplane.dag.ingress_nginx_values import (
    Refused,
    path_pattern,
    pattern_groups,
    rewrite_substitution,
)
from controlplane.dag.regexes import re2_fullmatch
from controlplane.dag.types import (
    INFINITE,
    Cluster,
    LoadBalancerPolicy,
    Origin,
    PathMatch,
    PathMatchKind,
    Redirect,
    RegexRewrite,
    Route,
    UpstreamProtocol,
    WeightedCluster,
)

__all__ = ["HTTPS_308", "ClusterPolicy", "matches_root", "nginx_route", "regex_form"]

HTTPS_308 = Redirect(code=308, scheme="https")
"""ingress-nginx's redirect of plain HTTP to HTTPS."""


@dataclass(frozen=True, slots=True)
class ClusterPolicy:
    """What an ingress-nginx Ingress changes in the clusters of its backends."""

    protocol: UpstreamProtocol | None = None
    connect_timeout_seconds: float | None = None
    cookie: bool = False
    fallback: Cluster | None = None

    @classmethod
    def of(cls, policy: NginxPolicy, fallback: Cluster | None) -> ClusterPolicy:
        return cls(
            policy.protocol, policy.connect_timeout_seconds, policy.affinity is not None, fallback
        )

    def apply(self, cluster: Cluster) -> Cluster:
        shaped = replace(
            cluster,
            protocol=cluster.protocol if self.protocol is None else self.protocol,
            connect_timeout_seconds=self.connect_timeout_seconds,
            load_balancer=LoadBalancerPolicy.COOKIE if self.cookie else cluster.load_balancer,
            fallback=None,
        )
        fallback = self.fallback
        same = fallback is not None and (fallback.namespace, fallback.service, fallback.port) == (
            cluster.namespace,
            cluster.service,
            cluster.port,
        )
        if fallback is None or same:
            return shaped
        return replace(shaped, fallback=fallback)


def nginx_route(
    nginx: NginxPolicy,
    contour: IngressPolicy,
    match: PathMatch,
    cluster: Cluster | None,
    origin: Origin,
) -> Route:
    """The route of one ingress-nginx path (see the module docstring); `cluster` is already
    shaped by the ClusterPolicy (None only for a redirect)."""
    if nginx.redirect is not None or cluster is None:
        return Route(match, redirect=nginx.redirect, origin=origin)
    cookie = nginx.affinity
    if cookie is not None and not nginx.affinity_path:
        path = "/" if match.kind is PathMatchKind.REGEX else match.value
        cookie = replace(cookie, path=path)
    return Route(
        match,
        clusters=(WeightedCluster(cluster),),
        websocket=True,
        timeout_seconds=INFINITE if contour.timeout_seconds is None else contour.timeout_seconds,
        retry=contour.retry,
        host_rewrite=nginx.upstream_vhost,
        idle_timeout_seconds=nginx.idle_timeout_seconds,
        cors=nginx.cors,
        source_ranges=nginx.source_ranges,
        rate_limit=nginx.rate_limit,
        max_request_bytes=nginx.max_request_bytes,
        session_cookie=cookie,
        origin=origin,
    )


def needs_rewrite(nginx: NginxPolicy, written_path: str) -> bool:
    """nginx's `needsRewrite`: a target that differs from the path."""
    return nginx.rewrite_target is not None and nginx.rewrite_target != written_path


def regex_form(nginx: NginxPolicy, route: Route, written_path: str) -> Route | Refused:
    """`route` as an nginx regex location, rewriting when the Ingress asks for it."""
    patterns = path_pattern(written_path)
    if isinstance(patterns, Refused):
        return patterns
    match, rewrite = patterns
    regex = PathMatch(PathMatchKind.REGEX, match)
    if route.redirect is not None:
        return replace(route, match=regex)
    regex_rewrite = None
    if needs_rewrite(nginx, written_path):
        assert nginx.rewrite_target is not None  # needs_rewrite says so
        substitution = rewrite_substitution(nginx.rewrite_target, pattern_groups(rewrite))
        if isinstance(substitution, Refused):
            return substitution
        regex_rewrite = RegexRewrite(rewrite, substitution)
    cookie = route.session_cookie
    if cookie is not None and not nginx.affinity_path:
        cookie = replace(cookie, path="/")
    return replace(route, match=regex, regex_rewrite=regex_rewrite, session_cookie=cookie)


def matches_root(match: PathMatch) -> bool:
    """Whether a request for `/` reaches this match (where nginx's `app-root` applies)."""
    if match.kind is PathMatchKind.REGEX:
        return re2_fullmatch(match.value, "/")
    return match.value == "/"
