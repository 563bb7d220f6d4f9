"""networking.k8s.io/v1 Ingress and IngressClass."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from controlplane.model.base import KubeModel, KubeObject
from controlplane.model.core import LoadBalancerStatus


class ServiceBackendPort(KubeModel):
    number: int | None = None
    name: str | None = None

    @property
    def ref(self) -> int | str | None:
        """The port by number when given, else by name."""
        return self.number if self.number is not None else self.name


class IngressServiceBackend(KubeModel):
    name: str
    port: ServiceBackendPort = Field(default_factory=ServiceBackendPort)


class IngressBackend(KubeModel):
    service: IngressServiceBackend | None = None


class HTTPIngressPath(KubeModel):
    path: str | None = None
    path_type: str = "ImplementationSpecific"
    backend: IngressBackend


class HTTPIngressRuleValue(KubeModel):
    paths: list[HTTPIngressPath] = Field(default_factory=list)


class IngressRule(KubeModel):
    host: str | None = None
    http: HTTPIngressRuleValue | None = None


class IngressTLS(KubeModel):
    hosts: list[str] = Field(default_factory=list)
    secret_name: str | None = None


class IngressSpec(KubeModel):
    ingress_class_name: str | None = None
    default_backend: IngressBackend | None = None
    rules: list[IngressRule] = Field(default_factory=list)
    tls: list[IngressTLS] = Field(default_factory=list)


class IngressStatus(KubeModel):
    load_balancer: LoadBalancerStatus = Field(default_factory=LoadBalancerStatus)


class Ingress(KubeObject):
    KIND: ClassVar[str] = "Ingress"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("networking.k8s.io/v1",)

    spec: IngressSpec = Field(default_factory=IngressSpec)
    status: IngressStatus = Field(default_factory=IngressStatus)


class IngressClassSpec(KubeModel):
    controller: str = ""


class IngressClass(KubeObject):
    KIND: ClassVar[str] = "IngressClass"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("networking.k8s.io/v1",)
    NAMESPACED: ClassVar[bool] = False

    spec: IngressClassSpec = Field(default_factory=IngressClassSpec)
