"""Options of a DAG build: the flags of `controlplane serve` that change what gets built."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_INGRESS_CLASS = "contour"
CONTROLLER_NAMES = frozenset(
    {"projectcontour.io/ingress-controller", "contour.heptio.com/ingress-controller"}
)
"""IngressClass `spec.controller` values that name this controller."""


@dataclass(frozen=True, slots=True)
class BuildOptions:
    ingress_class: str = DEFAULT_INGRESS_CLASS
    root_namespaces: frozenset[str] = field(default_factory=frozenset)
    """Namespaces where root IngressRoutes may live; empty means anywhere."""
    enable_external_name_services: bool = False
    """ExternalName Services can point Envoy anywhere (its admin port too): off by default."""
