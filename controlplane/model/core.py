"""Core (v1) kinds the controller reads: Service, Endpoints, Secret."""

from __future__ import annotations

import base64
import binascii
from typing import ClassVar

from pydantic import Field

from controlplane.model.base import KubeModel, KubeObject


class ServicePort(KubeModel):
    name: str = ""
    port: int
    protocol: str = "TCP"
    target_port: int | str | None = None
    app_protocol: str | None = None


class ServiceSpec(KubeModel):
    type: str = "ClusterIP"
    ports: list[ServicePort] = Field(default_factory=list)
    external_name: str | None = None
    cluster_ip: str | None = None


class LoadBalancerIngress(KubeModel):
    ip: str | None = None
    hostname: str | None = None


class LoadBalancerStatus(KubeModel):
    ingress: list[LoadBalancerIngress] = Field(default_factory=list)


class ServiceStatus(KubeModel):
    load_balancer: LoadBalancerStatus = Field(default_factory=LoadBalancerStatus)


class Service(KubeObject):
    KIND: ClassVar[str] = "Service"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)

    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus = Field(default_factory=ServiceStatus)

    def find_port(self, ref: int | str) -> ServicePort | None:
        """The port a backend refers to, by number or by name."""
        for port in self.spec.ports:
            if (isinstance(ref, int) and port.port == ref) or (
                isinstance(ref, str) and port.name == ref
            ):
                return port
        return None

    @property
    def is_external_name(self) -> bool:
        return self.spec.type == "ExternalName"


class EndpointAddress(KubeModel):
    ip: str
    hostname: str | None = None


class EndpointPort(KubeModel):
    name: str = ""
    port: int
    protocol: str = "TCP"


class EndpointSubset(KubeModel):
    addresses: list[EndpointAddress] = Field(default_factory=list)
    not_ready_addresses: list[EndpointAddress] = Field(default_factory=list)
    ports: list[EndpointPort] = Field(default_factory=list)


class Endpoints(KubeObject):
    """Core Endpoints: read for services that have no EndpointSlices (older clusters, files)."""

    KIND: ClassVar[str] = "Endpoints"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)

    subsets: list[EndpointSubset] = Field(default_factory=list)


TLS_SECRET_TYPE = "kubernetes.io/tls"
CERT_KEY = "tls.crt"
PRIVATE_KEY_KEY = "tls.key"
CA_KEY = "ca.crt"


class Secret(KubeObject):
    """A Secret; only TLS material (`tls.crt`, `tls.key`, `ca.crt`) is kept."""

    KIND: ClassVar[str] = "Secret"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)

    type: str = "Opaque"
    data: dict[str, str] = Field(default_factory=dict)

    def decoded(self, key: str) -> bytes | None:
        """The base64-decoded value of `key`, or None when absent or not valid base64."""
        value = self.data.get(key)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
