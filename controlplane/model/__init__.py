"""Typed, immutable views of the Kubernetes objects the controller reads.

This package imports nothing else of ours (enforced by import-linter): it is the vocabulary every
other layer shares.
"""

from controlplane.model.base import EPOCH, KubeModel, KubeObject, ObjectMeta
from controlplane.model.contour import IngressRoute, TLSCertificateDelegation
from controlplane.model.core import Endpoints, Secret, Service, ServicePort
from controlplane.model.discovery import EndpointSlice
from controlplane.model.networking import Ingress, IngressClass
from controlplane.model.objects import ObjectKey, ObjectSet
from controlplane.model.parse import KINDS, MODEL_TYPES, ModelError, parse_object

__all__ = [
    "EPOCH",
    "KINDS",
    "MODEL_TYPES",
    "EndpointSlice",
    "Endpoints",
    "Ingress",
    "IngressClass",
    "IngressRoute",
    "KubeModel",
    "KubeObject",
    "ModelError",
    "ObjectKey",
    "ObjectMeta",
    "ObjectSet",
    "Secret",
    "Service",
    "ServicePort",
    "TLSCertificateDelegation",
    "parse_object",
]
