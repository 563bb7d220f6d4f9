"""`ObjectSet`: the immutable set of objects one DAG build reads.

The store hands the DAG an `ObjectSet` (never itself), so the DAG stays a pure function of its
input: same ObjectSet in, same DAG out. Objects are keyed by (namespace, name); cluster-scoped
kinds (IngressClass) use an empty namespace. Endpoint slices are also indexed by the Service they
belong to, which is how the endpoint translation finds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from controlplane.model.base import KubeObject
from controlplane.model.contour import IngressRoute, TLSCertificateDelegation
from controlplane.model.core import Endpoints, Secret, Service
from controlplane.model.discovery import EndpointSlice
from controlplane.model.networking import Ingress, IngressClass

NamespacedName = tuple[str, str]
T = TypeVar("T", bound=KubeObject)


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: KubeObject) -> ObjectKey:
        return cls(obj.KIND, obj.metadata.namespace, obj.metadata.name)

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind} {self.name}")
        )


@dataclass(frozen=True)
class ObjectSet:
    services: Mapping[NamespacedName, Service] = field(default_factory=dict)
    secrets: Mapping[NamespacedName, Secret] = field(default_factory=dict)
    ingresses: Mapping[NamespacedName, Ingress] = field(default_factory=dict)
    ingress_classes: Mapping[NamespacedName, IngressClass] = field(default_factory=dict)
    ingress_routes: Mapping[NamespacedName, IngressRoute] = field(default_factory=dict)
    certificate_delegations: Mapping[NamespacedName, TLSCertificateDelegation] = field(
        default_factory=dict
    )
    endpoint_slices: Mapping[NamespacedName, tuple[EndpointSlice, ...]] = field(
        default_factory=dict
    )
    """EndpointSlices by the (namespace, service name) they belong to."""
    endpoints: Mapping[NamespacedName, Endpoints] = field(default_factory=dict)
    """Core Endpoints, by (namespace, service name): used when a Service has no slices."""

    @classmethod
    def from_objects(cls, objects: Iterable[KubeObject]) -> ObjectSet:
        """Build a set from loose objects (tests, `translate`); later duplicates replace earlier."""
        by_kind: dict[str, dict[NamespacedName, KubeObject]] = {}
        slices: dict[NamespacedName, dict[str, EndpointSlice]] = {}
        for obj in objects:
            key = (obj.metadata.namespace, obj.metadata.name)
            if isinstance(obj, EndpointSlice):
                service = obj.service_name
                if service:
                    slices.setdefault((obj.metadata.namespace, service), {})[obj.name] = obj
                continue
            by_kind.setdefault(obj.KIND, {})[key] = obj

        def kind(model: type[T]) -> dict[NamespacedName, T]:
            found = by_kind.get(model.KIND, {})
            return {key: obj for key, obj in found.items() if isinstance(obj, model)}

        return cls(
            services=kind(Service),
            secrets=kind(Secret),
            ingresses=kind(Ingress),
            ingress_classes=kind(IngressClass),
            ingress_routes=kind(IngressRoute),
            certificate_delegations=kind(TLSCertificateDelegation),
            endpoint_slices={
                service: tuple(by_name[name] for name in sorted(by_name))
                for service, by_name in slices.items()
            },
            endpoints=kind(Endpoints),
        )
