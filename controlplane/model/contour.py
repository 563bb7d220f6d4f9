"""contour.heptio.com/v1beta1 IngressRoute and TLSCertificateDelegation.

The shapes follow Heptio Contour's v1beta1 API so existing manifests parse unchanged. Numeric and
enumerated values are kept as users wrote them (a port of 70000, a weight of -1, an unknown
strategy): judging them is the DAG's job, which reports them in the object's status.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from controlplane.model.base import KubeModel, KubeObject


class TLS(KubeModel):
    secret_name: str | None = None
    minimum_protocol_version: str | None = None
    passthrough: bool = False


class VirtualHost(KubeModel):
    fqdn: str | None = None
    tls: TLS | None = None


class HealthCheck(KubeModel):
    path: str | None = None
    host: str | None = None
    interval_seconds: int | None = None
    timeout_seconds: int | None = None
    unhealthy_threshold_count: int | None = None
    healthy_threshold_count: int | None = None


class UpstreamValidation(KubeModel):
    ca_secret: str | None = None
    subject_name: str | None = None


class RouteService(KubeModel):
    name: str = ""
    port: int = 0
    weight: int | None = None
    strategy: str | None = None
    health_check: HealthCheck | None = None
    validation: UpstreamValidation | None = None


class Delegate(KubeModel):
    name: str = ""
    namespace: str | None = None


class TimeoutPolicy(KubeModel):
    request: str | None = None


class RetryPolicy(KubeModel):
    count: int | None = None
    per_try_timeout: str | None = None


class Route(KubeModel):
    match: str = ""
    services: list[RouteService] = Field(default_factory=list)
    delegate: Delegate | None = None
    enable_websockets: bool = False
    permit_insecure: bool = False
    prefix_rewrite: str | None = None
    timeout_policy: TimeoutPolicy | None = None
    retry_policy: RetryPolicy | None = None


class TCPProxy(KubeModel):
    services: list[RouteService] = Field(default_factory=list)
    delegate: Delegate | None = None


class IngressRouteSpec(KubeModel):
    virtualhost: VirtualHost | None = None
    routes: list[Route] = Field(default_factory=list)
    tcpproxy: TCPProxy | None = None


class Condition(KubeModel):
    type: str
    status: str
    reason: str = ""
    message: str = ""


class IngressRouteStatus(KubeModel):
    """`.status` of an IngressRoute: what the DAG says about it and what the writer compares
    with the cluster's copy (typed values on both sides; equal means no write)."""

    current_status: str | None = None
    description: str | None = None
    observed_generation: int | None = None
    conditions: tuple[Condition, ...] = ()


class IngressRoute(KubeObject):
    KIND: ClassVar[str] = "IngressRoute"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("contour.heptio.com/v1beta1",)

    spec: IngressRouteSpec = Field(default_factory=IngressRouteSpec)
    status: IngressRouteStatus = Field(default_factory=IngressRouteStatus)
    parse_error: str | None = Field(default=None, exclude=True)
    """Set when the spec could not be parsed; the DAG reports the object invalid with it."""

    @property
    def is_root(self) -> bool:
        return self.spec.virtualhost is not None


class CertificateDelegation(KubeModel):
    secret_name: str
    target_namespaces: list[str] = Field(default_factory=list)


class TLSCertificateDelegationSpec(KubeModel):
    delegations: list[CertificateDelegation] = Field(default_factory=list)


class TLSCertificateDelegation(KubeObject):
    KIND: ClassVar[str] = "TLSCertificateDelegation"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("contour.heptio.com/v1beta1",)

    spec: TLSCertificateDelegationSpec = Field(default_factory=TLSCertificateDelegationSpec)
