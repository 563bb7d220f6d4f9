"""What an Ingress's annotations ask of its routes and hosts: one `IngressPolicy` per Ingress.

Ingress has no fields for timeouts, retries, websockets or TLS versions, so Contour read them from
annotations, and so do we, under the names users already have in their manifests. Where Contour
read an annotation under both `projectcontour.io/` and `contour.heptio.com/`, both are read and
the `projectcontour.io/` one wins when both are set (Contour's `compatAnnotation`). The request
timeout is also read as `response-timeout`, the name Contour moved it to.

A malformed value never stops the Ingress from being served: it is reported as a `Problem` naming
the annotation, and the policy falls back to what it would be without the annotation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from controlplane.dag.durations import parse_duration
from controlplane.dag.types import Problem, RetryPolicy, TLSVersion, annotation_field
from controlplane.model import Ingress

FORCE_SSL_REDIRECT = ("ingress.kubernetes.io/force-ssl-redirect",)
ALLOW_HTTP = ("kubernetes.io/ingress.allow-http",)
REQUEST_TIMEOUT = (
    "projectcontour.io/response-timeout",
    "contour.heptio.com/response-timeout",
    "projectcontour.io/request-timeout",
    "contour.heptio.com/request-timeout",
)


def _compat(suffix: str) -> tuple[str, str]:
    return (f"projectcontour.io/{suffix}", f"contour.heptio.com/{suffix}")


WEBSOCKET_ROUTES = _compat("websocket-routes")
RETRY_ON = _compat("retry-on")
NUM_RETRIES = _compat("num-retries")
PER_TRY_TIMEOUT = _compat("per-try-timeout")
TLS_MINIMUM_PROTOCOL_VERSION = _compat("tls-minimum-protocol-version")

RETRY_CONDITIONS = frozenset(
    {
        # HTTP (Envoy's x-envoy-retry-on)
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        # gRPC (Envoy's x-envoy-retry-grpc-on)
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
"""The `retry_on` conditions Envoy knows; anything else is reported and left out."""

_MAX_RETRIES = 2**32 - 1
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class IngressPolicy:
    """The annotations of one Ingress, parsed; the defaults are an Ingress without any."""

    force_ssl_redirect: bool = False
    """Routes of this Ingress's TLS hosts answer plain HTTP with a redirect to HTTPS."""
    allow_http: bool = True
    """False: this Ingress serves nothing on the plain HTTP listener (redirects excepted)."""
    timeout_seconds: float | None = None
    websocket_paths: frozenset[str] = frozenset()
    retry: RetryPolicy | None = None
    minimum_tls_version: TLSVersion = TLSVersion.V1_2

    def is_websocket(self, written_path: str, match_value: str) -> bool:
        """Whether a path is listed in `websocket-routes`, as written or as matched."""
        return written_path in self.websocket_paths or match_value in self.websocket_paths


class _Reader:
    """Reads annotations of one Ingress and records a Problem for every value it rejects."""

    def __init__(self, ingress: Ingress) -> None:
        self.ingress = ingress
        self.problems: list[Problem] = []

    def get(self, names: tuple[str, ...]) -> tuple[str, str] | None:
        """(annotation name, value) of the first of `names` present."""
        annotations = self.ingress.metadata.annotations
        for name in names:
            value = annotations.get(name)
            if value is not None:
                return name, value
        return None

    def reject(self, name: str, reason: str) -> None:
        self.problems.append(
            Problem(
                self.ingress.KIND,
                self.ingress.namespace,
                self.ingress.name,
                annotation_field(name),
                reason,
            )
        )

    def boolean(self, names: tuple[str, ...], default: bool) -> bool:
        found = self.get(names)
        if found is None:
            return default
        name, raw = found
        value = raw.strip().lower()
        if value in ("true", "false"):
            return value == "true"
        self.reject(name, f'"{raw}" is neither "true" nor "false"; ignored')
        return default

    def duration(self, names: tuple[str, ...]) -> float | None:
        found = self.get(names)
        if found is None:
            return None
        name, raw = found
        try:
            return parse_duration(raw)
        except ValueError as error:
            self.reject(name, f"{error}; ignored")
            return None

    def websocket_paths(self) -> frozenset[str]:
        found = self.get(WEBSOCKET_ROUTES)
        if found is None:
            return frozenset()
        name, raw = found
        paths = set()
        for item in raw.split(","):
            path = item.strip()
            if not path:
                continue
            if not path.startswith("/"):
                self.reject(name, f'"{path}" is not a path (it must start with "/"); ignored')
                continue
            paths.add(path)
        return frozenset(paths)

    def retry(self) -> RetryPolicy | None:
        found = self.get(RETRY_ON)
        if found is None:
            for names in (NUM_RETRIES, PER_TRY_TIMEOUT):
                unused = self.get(names)
                if unused is not None:
                    self.reject(unused[0], f'"{unused[1]}" ignored: {RETRY_ON[1]} is not set')
            return None
        name, raw = found
        conditions = []
        for item in raw.split(","):
            condition = item.strip()
            if not condition:
                continue
            if condition not in RETRY_CONDITIONS:
                self.reject(name, f'"{condition}" is not a retry condition Envoy knows; ignored')
                continue
            if condition not in conditions:
                conditions.append(condition)
        if not conditions:
            self.reject(name, f'"{raw}" names no retry condition; no retries')
            return None
        return RetryPolicy(
            retry_on=",".join(conditions),
            num_retries=self.num_retries(),
            per_try_timeout_seconds=self.duration(PER_TRY_TIMEOUT),
        )

    def num_retries(self) -> int:
        found = self.get(NUM_RETRIES)
        if found is None:
            return 1
        name, raw = found
        value = raw.strip()
        if not _DIGITS.fullmatch(value) or int(value) > _MAX_RETRIES:
            self.reject(name, f'"{raw}" is not a non-negative integer; 1 retry')
            return 1
        # Contour: 0 means "not set", and Envoy's default is one retry.
        return int(value) or 1

    def minimum_tls_version(self) -> TLSVersion:
        found = self.get(TLS_MINIMUM_PROTOCOL_VERSION)
        if found is None:
            return TLSVersion.V1_2
        name, raw = found
        value = raw.strip()
        for version in TLSVersion:
            if value == version.value:
                return version
        choices = ", ".join(version.value for version in TLSVersion)
        self.reject(name, f'"{raw}" is not a supported TLS version ({choices}); using 1.2')
        return TLSVersion.V1_2


def ingress_policy(ingress: Ingress) -> tuple[IngressPolicy, tuple[Problem, ...]]:
    """The policy the annotations of `ingress` ask for, and a Problem per rejected value."""
    reader = _Reader(ingress)
    policy = IngressPolicy(
        force_ssl_redirect=reader.boolean(FORCE_SSL_REDIRECT, default=False),
        allow_http=reader.boolean(ALLOW_HTTP, default=True),
        timeout_seconds=reader.duration(REQUEST_TIMEOUT),
        websocket_paths=reader.websocket_paths(),
        retry=reader.retry(),
        minimum_tls_version=reader.minimum_tls_version(),
    )
    return policy, tuple(reader.problems)
