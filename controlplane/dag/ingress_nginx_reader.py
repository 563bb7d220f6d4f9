"""Reading an Ingress of ingress-nginx semantics into claims (`NginxIngressReader`).

It reads like `IngressReader` and adds what nginx does (`ingress_nginx.py` has the policy,
`ingress_nginx_routes.py` the routes and clusters):

- Each path is claimed with its nginx route and, when it is a usable RE2 pattern, its regex form.
  A path of an Ingress that asks for regex paths (`use-regex`, or a rewrite) is served as a
  regex only, whatever its `pathType` (nginx ignores it then too); a path that is not a usable
  pattern is dropped, reported.
- Plain HTTP: `force-ssl-redirect` redirects every path (308); `ssl-redirect` (default on)
  redirects when the host is served over TLS here, settled per host (`RouteClaim.redirect_if_tls`).
  A `permanent-redirect`/`temporal-redirect` path answers with its own redirect first, as nginx's
  `return` runs before the HTTPS redirect.
- `app-root`: a 302 from exactly `/` on each host where a path of this Ingress takes `/`.
- `server-alias`: the claims of the Ingress's first rule host, again under each alias.
- `ssl-passthrough`: a passthrough TLS claim for each rule host, to the backend of its `/` path.
- `default-backend`: the fallback cluster of every backend of the Ingress.
- A canary Ingress (`canary: "true"`) claims nothing of its own: its paths are canary claims,
  settled onto the main Ingress's (`ingress_canary.py`); its `spec.tls` and
  `spec.defaultBackend` are reported and ignored.
"""

from __future__ import annotations

import re
from dataclasses import replace

from controlplane.dag.annotation_table import NGINX
from controlplane.dag.ingress_claims import DEFAULT_BACKEND, RouteClaim, TLSClaim
from controlplane.dag.ingress_nginx import NginxPolicy, nginx_policy
from controlplane.dag.ingress_nginx_routes import (
    HTTPS_308,
    ClusterPolicy,
    matches_root,
    needs_rewrite,
    nginx_route,
    regex_form,
)
from controlplane.dag.ingress_nginx_values import Refused
from controlplane.dag.ingress_reader import (
    Backends,
    IngressReader,
    Problems,
    normal_host,
    path_match,
)
from controlplane.dag.types import (
    CATCH_ALL,
    HTTPS_REDIRECT,
    Cluster,
    PathMatch,
    PathMatchKind,
    Redirect,
    Route,
    TLSVersion,
    UpstreamProtocol,
    WeightedCluster,
    annotation_field,
)
from controlplane.model import Ingress, IngressBackend, shown

__all__ = ["NginxIngressReader"]

_REGEX_PATH_REFUSED = re.compile(r"[\s\x00-\x1f\x7f]")


def _field(name: str) -> str:
    return annotation_field(NGINX + name)


class NginxIngressReader(IngressReader):
    """`IngressReader` with ingress-nginx's semantics (see the module docstring)."""

    def __init__(self, backends: Backends, ingress: Ingress, problems: Problems) -> None:
        super().__init__(backends, ingress, problems)
        self.nginx: NginxPolicy = nginx_policy(ingress)
        problems.extend(self.nginx.problems)
        self.cluster_policy = ClusterPolicy.of(self.nginx, None)
        self._root_clusters: dict[str, Cluster] = {}
        """host → the (unshaped) cluster of this Ingress's `/` path, for ssl-passthrough."""

    @property
    def is_canary(self) -> bool:
        return self.nginx.canary is not None

    def read(self) -> None:
        if self.nginx.default_backend is not None:
            fallback = self._fallback(self.nginx.default_backend)
            self.cluster_policy = ClusterPolicy.of(self.nginx, fallback)
        super().read()

    def _fallback(self, name: str) -> Cluster | None:
        field = _field("default-backend")
        service = self.objects.services.get((self.ingress.namespace, name))
        if service is None or not service.spec.ports:
            self.problems.add(
                self.ingress,
                field,
                f"Service [{name}] is missing or has no port; no default backend",
            )
            return None
        cluster = self.resolve(field, name, service.spec.ports[0].port)
        if cluster is None:
            return None
        return replace(cluster, connect_timeout_seconds=self.nginx.connect_timeout_seconds)

    # -- paths -------------------------------------------------------------------------------

    def read_path(
        self, field: str, host: str, path: str | None, path_type: str, backend: IngressBackend
    ) -> None:
        written = path or "/"
        trigger = not self.is_canary and (
            self.nginx.use_regex or needs_rewrite(self.nginx, written)
        )
        literal: PathMatch | None = None
        if trigger:
            if not written.startswith("/") or _REGEX_PATH_REFUSED.search(written):
                reason = f'"{shown(written)}" is not a path (or holds whitespace); path ignored'
                self.problems.add(self.ingress, f"{field}.path", reason)
                return
        else:
            found = path_match(path, path_type)
            # A canary's path only has to name the main Ingress's, which may be a regex (`?`).
            usable_pattern = written.startswith("/") and not _REGEX_PATH_REFUSED.search(written)
            if isinstance(found, tuple) and not (self.is_canary and usable_pattern):
                self.problems.add(self.ingress, f"{field}.{found[0]}", found[1])
                return
            literal = None if isinstance(found, tuple) else found
        raw = self.cluster(f"{field}.backend", backend)
        if raw is None and (self.nginx.redirect is None or self.is_canary):
            return
        if raw is not None and written == "/" and host not in self._root_clusters:
            self._root_clusters[host] = raw
        provisional = literal or PathMatch(PathMatchKind.PREFIX, written)
        route = self._route(field, provisional, raw)
        regex = regex_form(self.nginx, route, written)
        if isinstance(regex, Refused):
            if trigger:
                reason = f'"{shown(written)}" {regex.reason}; path ignored'
                self.problems.add(self.ingress, f"{field}.path", reason)
                return
            regex_route = None
        else:
            regex_route = regex
        served = regex_route if trigger and regex_route is not None else route
        claim = self._route_claim(field, host, served)
        claim = replace(claim, regex_route=regex_route, regex_trigger=trigger)
        if self.is_canary:
            self.canaries.append(replace(claim, canary=self.nginx.canary, cluster_policy=None))
        else:
            self.rules.append(claim)

    def _route(self, field: str, match: PathMatch, raw: Cluster | None) -> Route:
        if self.is_canary:
            assert raw is not None  # a canary path without a backend is dropped above
            return Route(match, clusters=(WeightedCluster(raw),), origin=self.origin(field))
        shaped = None if raw is None else self.cluster_policy.apply(raw)
        return nginx_route(self.nginx, self.policy, match, shaped, self.origin(field))

    def _route_claim(self, field: str, host: str, route: Route) -> RouteClaim:
        redirect: Redirect | None = None
        if self.nginx.redirect is None and self.nginx.force_ssl_redirect:
            redirect = HTTPS_308
        elif self.policy.force_ssl_redirect and host in self.tls_hosts:
            redirect = HTTPS_REDIRECT
        ssl_redirect = self.nginx.ssl_redirect and self.nginx.redirect is None
        return RouteClaim(
            self.ingress,
            0,
            field,
            host,
            route,
            redirect,
            self.policy.allow_http,
            redirect_if_tls=HTTPS_308 if ssl_redirect else None,
            cluster_policy=self.cluster_policy,
        )

    def _read_default_backend(self) -> None:
        backend = self.ingress.spec.default_backend
        if backend is None:
            return
        if self.is_canary:
            self.problems.add(
                self.ingress,
                DEFAULT_BACKEND,
                "a canary Ingress's default backend is not supported; ignored",
            )
            return
        raw = self.cluster(DEFAULT_BACKEND, backend)
        if raw is None and self.nginx.redirect is None:
            return
        route = self._route(DEFAULT_BACKEND, PathMatch(PathMatchKind.PREFIX, "/"), raw)
        self.default = self._route_claim(DEFAULT_BACKEND, CATCH_ALL, route)

    def _read_tls(self) -> None:
        if self.is_canary:
            if self.ingress.spec.tls:
                self.problems.add(
                    self.ingress,
                    "spec.tls",
                    "is ignored on a canary Ingress: the main Ingress's TLS applies",
                )
            return
        super()._read_tls()

    # -- what the annotations add ----------------------------------------------------------

    def finish(self) -> None:
        if self.is_canary:
            return
        if self.nginx.app_root is not None:
            self._app_root(self.nginx.app_root)
        if self.nginx.aliases:
            self._aliases(self.nginx.aliases)
        if self.nginx.ssl_passthrough:
            self._passthrough()

    def _rule_hosts(self) -> list[str]:
        return list(dict.fromkeys(claim.host for claim in self.rules if not claim.alias))

    def _app_root(self, app_root: str) -> None:
        field = _field("app-root")
        redirect = Redirect(code=302, path=app_root, strip_query=True)
        claims: list[RouteClaim] = []
        for host in self._rule_hosts():
            host_claims = [claim for claim in self.rules if claim.host == host]
            if any(matches_root(claim.route.match) for claim in host_claims):
                route = Route(
                    PathMatch(PathMatchKind.EXACT, "/"),
                    redirect=redirect,
                    origin=self.origin(field),
                )
                claim = self._route_claim(field, host, route)
                claims.append(replace(claim, redirect=None, redirect_if_tls=None))
            claims.extend(host_claims)
        self.rules = claims

    def _aliases(self, aliases: tuple[str, ...]) -> None:
        field = _field("server-alias")
        hosts = [host for host in self._rule_hosts() if host != CATCH_ALL]
        if not hosts:
            self.problems.add(self.ingress, field, "this Ingress has no rule host; ignored")
            return
        first = [claim for claim in self.rules if claim.host == hosts[0]]
        for raw in aliases:
            alias = normal_host(raw)
            if alias is None:
                reason = f'"{shown(raw)}" is not a DNS name (or *.name); that alias is ignored'
                self.problems.add(self.ingress, field, reason)
                continue
            if alias == hosts[0]:
                continue
            self.rules.extend(
                replace(claim, host=alias, field=field, alias=True) for claim in first
            )

    def _passthrough(self) -> None:
        field = _field("ssl-passthrough")
        for host in self._rule_hosts():
            cluster = self._root_clusters.get(host)
            if host == CATCH_ALL or cluster is None:
                where = "a rule without host" if host == CATCH_ALL else f'host "{host}"'
                self.problems.add(
                    self.ingress,
                    field,
                    f"{where} has no usable path / whose backend would take the TLS "
                    "connections; not passed through",
                )
                continue
            upstream = replace(cluster, protocol=UpstreamProtocol.HTTP1, fallback=None)
            self.tls.append(
                TLSClaim(self.ingress, len(self.tls), field, host, None, TLSVersion.V1_2, upstream)
            )
