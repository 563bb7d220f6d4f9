"""Typed, immutable views of the Kubernetes objects the controller reads.

This package imports nothing else of ours (enforced by import-linter): it is the vocabulary every
other layer shares.
"""

from controlplane.model.base import (
    EPOCH,
    UNSTAMPED,
    AgeKey,
    KubeModel,
    KubeObject,
    ObjectMeta,
    shown,
)
from controlplane.model.contour import (
    Condition,
    IngressRoute,
    IngressRouteStatus,
    TLSCertificateDelegation,
)
from controlplane.model.core import (
    CA_KEY,
    CERT_KEY,
    PRIVATE_KEY_KEY,
    Endpoints,
    Secret,
    Service,
    ServicePort,
)
from controlplane.model.discovery import EndpointSlice
from controlplane.model.networking import Ingress, IngressBackend, IngressClass
from controlplane.model.objects import NamespacedName, ObjectKey, ObjectSet
from controlplane.model.parse import KINDS, MODEL_TYPES, ModelError, model_type_for, parse_object

__all__ = [
    "CA_KEY",
    "CERT_KEY",
    "EPOCH",
    "KINDS",
    "MODEL_TYPES",
    "PRIVATE_KEY_KEY",
    "UNSTAMPED",
    "AgeKey",
    "Condition",
    "EndpointSlice",
    "Endpoints",
    "Ingress",
    "IngressBackend",
    "IngressClass",
    "IngressRoute",
    "IngressRouteStatus",
    "KubeModel",
    "KubeObject",
    "ModelError",
    "NamespacedName",
    "ObjectKey",
    "ObjectMeta",
    "ObjectSet",
    "Secret",
    "Service",
    "ServicePort",
    "TLSCertificateDelegation",
    "model_type_for",
    "parse_object",
    "shown",
]
