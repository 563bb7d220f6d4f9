"""discovery.k8s.io/v1 EndpointSlice: the endpoints of one Service, possibly split in slices."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from controlplane.model.base import KubeModel, KubeObject

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class EndpointConditions(KubeModel):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class Endpoint(KubeModel):
    addresses: list[str] = Field(default_factory=list)
    conditions: EndpointConditions = Field(default_factory=EndpointConditions)

    @property
    def is_ready(self) -> bool:
        # The API says: a nil `ready` should be interpreted as "true".
        return self.conditions.ready is not False


class EndpointSlicePort(KubeModel):
    name: str | None = ""
    port: int | None = None
    protocol: str = "TCP"


class EndpointSlice(KubeObject):
    KIND: ClassVar[str] = "EndpointSlice"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("discovery.k8s.io/v1",)

    address_type: str = "IPv4"
    endpoints: list[Endpoint] = Field(default_factory=list)
    ports: list[EndpointSlicePort] = Field(default_factory=list)

    @property
    def service_name(self) -> str | None:
        return self.metadata.labels.get(SERVICE_NAME_LABEL)
