"""Turning raw Kubernetes JSON (dicts) into typed models, once, at the edge.

`parse_object` either returns a model or raises `ModelError` whose message names the object and the
field at fault. Kinds that carry a user-facing status (IngressRoute) never fail on a malformed
spec: they come back with `parse_error` set so the DAG can tell the user in `.status` instead of
the object silently vanishing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from controlplane.model.base import KubeObject, ObjectMeta, shown
from controlplane.model.contour import IngressRoute, TLSCertificateDelegation
from controlplane.model.convert import CONVERTED, upgrade
from controlplane.model.core import Endpoints, Secret, Service
from controlplane.model.discovery import EndpointSlice
from controlplane.model.networking import Ingress, IngressClass

MODEL_TYPES: tuple[type[KubeObject], ...] = (
    Service,
    Endpoints,
    Secret,
    EndpointSlice,
    Ingress,
    IngressClass,
    IngressRoute,
    TLSCertificateDelegation,
)
KINDS: dict[str, type[KubeObject]] = {model.KIND: model for model in MODEL_TYPES}


class ModelError(ValueError):
    """A raw object that cannot become a model; the message names it and the reason."""

    def __init__(self, kind: str, namespace: str, name: str, reason: str) -> None:
        self.kind, self.namespace, self.name, self.reason = kind, namespace, name, reason
        where = f"{namespace}/{name}" if namespace else name
        super().__init__(f"{kind} {where}: {reason}")


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each offending field by its JSON path, e.g. `spec.routes[0].match`."""
    parts = []
    for item in error.errors():
        path = ""
        for element in item["loc"]:
            path += (
                f"[{element}]"
                if isinstance(element, int)
                else f".{element}"
                if path
                else str(element)
            )
        parts.append(f"{path or 'object'}: {item['msg']}")
    return "; ".join(parts)


def model_type_for(api_version: str, kind: str) -> type[KubeObject] | None:
    """The model of `kind` at `api_version`, or None if we do not read that kind or version
    (old versions we convert, `convert.CONVERTED`, count as read)."""
    model = KINDS.get(kind)
    if model is None:
        return None
    if api_version not in model.API_VERSIONS and (api_version, kind) not in CONVERTED:
        return None
    return model


_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_DNS_LABEL = re.compile(r"(?=.{1,63}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAME_RULE = (
    "{field} must be a DNS-1123 name (lowercase letters, digits, '-' and '.'), as the API "
    "server requires; Envoy resource names are built from it"
)


def parse_object(raw: Mapping[str, Any], *, default_namespace: str = "default") -> KubeObject:
    """Parse one Kubernetes object. Raises ModelError for unknown kinds or broken objects.
    Old API versions we convert (`convert.py`) are converted first."""
    raw = upgrade(raw)
    api_version = str(raw.get("apiVersion", ""))
    kind = str(raw.get("kind", ""))
    metadata = raw.get("metadata") or {}
    name = str(metadata.get("name", "")) if isinstance(metadata, Mapping) else ""
    namespace = str(metadata.get("namespace", "")) if isinstance(metadata, Mapping) else ""
    model = model_type_for(api_version, kind)
    if model is None:
        raise ModelError(
            kind or "object", namespace, name, f"unsupported kind {api_version}/{kind}"
        )
    if name and not _DNS_SUBDOMAIN.fullmatch(name):
        raise ModelError(kind, namespace, shown(name), _NAME_RULE.format(field="metadata.name"))
    if namespace and not _DNS_LABEL.fullmatch(namespace):
        raise ModelError(
            kind, shown(namespace), name, _NAME_RULE.format(field="metadata.namespace")
        )
    data = dict(raw)
    if model.NAMESPACED and not namespace and isinstance(metadata, Mapping):
        data["metadata"] = {**metadata, "namespace": default_namespace}
        namespace = default_namespace
    try:
        return model.model_validate(data)
    except ValidationError as error:
        reason = describe_validation_error(error)
        if model is IngressRoute:
            salvaged = _salvage_ingressroute(data, reason)
            if salvaged is not None:
                return salvaged
        raise ModelError(kind, namespace, name, reason) from None


def _salvage_ingressroute(data: Mapping[str, Any], reason: str) -> IngressRoute | None:
    """Keep a broken IngressRoute (metadata only) so its status can say what is wrong."""
    try:
        metadata = ObjectMeta.model_validate(data.get("metadata") or {})
    except ValidationError:
        return None
    return IngressRoute(metadata=metadata, parse_error=reason)
