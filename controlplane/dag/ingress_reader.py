"""Reading one Ingress into claims, as Contour reads it (`IngressReader`).

`ingress_nginx_reader.NginxIngressReader` extends it for Ingresses of ingress-nginx semantics;
`ingress.read_ingress` picks one. The reader never raises on any input: what it cannot use is a
Problem naming the field (see `ingress.py` for what the claims mean and how they are settled).

Every annotation under a watched prefix that is not honoured is reported here, for both kinds of
reader, from `annotation_table`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace

from controlplane.dag.annotation_report import unsupported_annotations
from controlplane.dag.ingress_annotations import WEBSOCKET_ROUTES, IngressPolicy, ingress_policy
from controlplane.dag.ingress_claims import DEFAULT_BACKEND, RouteClaim, TLSClaim
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
    TLSSecret,
    WeightedCluster,
    annotation_field,
)
from controlplane.model import Ingress, IngressBackend, ObjectSet, shown

__all__ = ["Backends", "IngressReader", "Problems", "normal_host", "path_match"]

PATH_TYPES = {
    "Exact": PathMatchKind.EXACT,
    "Prefix": PathMatchKind.SEGMENT_PREFIX,
    "ImplementationSpecific": PathMatchKind.PREFIX,
}
_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
_MAX_HOST_LENGTH = 253
# `?` and `#` never reach a path match (Envoy strips the query) and Envoy rejects them in a
# segment prefix, which would fail the whole route configuration; nor can a request path hold
# whitespace or control characters.
_BAD_PATH_CHARACTER = re.compile(r"[?#\s\x00-\x1f\x7f]")


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


class Problems:
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


class Backends:
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


class IngressReader:
    """Turns one Ingress into route and TLS claims, reporting what it cannot use."""

    def __init__(self, backends: Backends, ingress: Ingress, problems: Problems) -> None:
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
        self.canaries: list[RouteClaim] = []
        self.default: RouteClaim | None = None
        self._websocket_used: set[str] = set()

    def report_unsupported(self) -> None:
        for name, reason in unsupported_annotations(self.ingress.metadata.annotations):
            self.problems.add(self.ingress, annotation_field(name), reason)

    def read(self) -> None:
        self.report_unsupported()
        self._read_tls()
        self._read_rules()
        self._read_default_backend()
        self.finish()
        self.rules = [replace(claim, index=index) for index, claim in enumerate(self.rules)]
        first = len(self.rules)
        self.canaries = [
            replace(claim, index=first + index) for index, claim in enumerate(self.canaries)
        ]

    def finish(self) -> None:
        """Reports what the annotations asked for that matched nothing."""
        annotations = self.ingress.metadata.annotations
        for path in sorted(self.policy.websocket_paths - self._websocket_used):
            name = next(name for name in WEBSOCKET_ROUTES if name in annotations)
            self.problems.add(
                self.ingress,
                annotation_field(name),
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
                self.read_path(field, host, path.path, path.path_type, path.backend)

    def read_path(
        self, field: str, host: str, path: str | None, path_type: str, backend: IngressBackend
    ) -> None:
        match = path_match(path, path_type)
        if isinstance(match, tuple):
            self.problems.add(self.ingress, f"{field}.{match[0]}", match[1])
            return
        written = path or "/"
        claim = self._claim(field, f"{field}.backend", host, written, match, backend)
        if claim is not None:
            self.rules.append(claim)

    def _read_default_backend(self) -> None:
        backend = self.ingress.spec.default_backend
        if backend is None:
            return
        match = PathMatch(PathMatchKind.PREFIX, "/")
        self.default = self._claim(DEFAULT_BACKEND, DEFAULT_BACKEND, CATCH_ALL, "/", match, backend)

    def origin(self, field: str) -> Origin:
        return Origin(self.ingress.KIND, self.ingress.namespace, self.ingress.name, field)

    def _claim(
        self,
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
        cluster = self.cluster(backend_field, backend)
        if cluster is None:
            return None
        route = Route(
            match,
            clusters=(WeightedCluster(cluster),),
            websocket=websocket,
            timeout_seconds=self.policy.timeout_seconds,
            retry=self.policy.retry,
            origin=self.origin(field),
        )
        redirect = (
            HTTPS_REDIRECT if self.policy.force_ssl_redirect and host in self.tls_hosts else None
        )
        return RouteClaim(self.ingress, 0, field, host, route, redirect, self.policy.allow_http)

    def cluster(self, field: str, backend: IngressBackend) -> Cluster | None:
        """The cluster of a backend, or None with the problem reported."""
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
        return self._resolved(resolved, lambda: f"{field}.service.{self._faulty(service.name)}")

    def resolve(self, field: str, name: str, port: int | str) -> Cluster | None:
        """The cluster of a Service port of this Ingress's namespace, or None with the problem
        reported under `field`."""
        resolved = self.backends.resolve(self.ingress.namespace, name, port)
        return self._resolved(resolved, lambda: field)

    def _resolved(
        self, resolved: Resolved | ServiceError, field: Callable[[], str]
    ) -> Cluster | None:
        if isinstance(resolved, ServiceError):
            self.problems.add(self.ingress, field(), str(resolved))
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
