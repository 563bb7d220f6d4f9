"""Options of a DAG build: the flags of `controlplane serve` that change what gets built."""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.addresses import NetworkSet

DEFAULT_INGRESS_CLASS = "contour"
CONTROLLER_NAMES = frozenset(
    {"projectcontour.io/ingress-controller", "contour.heptio.com/ingress-controller"}
)
"""IngressClass `spec.controller` values that name this controller."""


@dataclass(frozen=True, slots=True)
class BuildOptions:
    ingress_class: str = DEFAULT_INGRESS_CLASS
    """The class this controller serves, or several, comma-separated (`contour,nginx` takes
    over a class another controller served)."""
    root_namespaces: frozenset[str] = field(default_factory=frozenset)
    """Namespaces where root IngressRoutes may live; empty means anywhere."""
    enable_external_name_services: bool = False
    """ExternalName Services can point Envoy anywhere (its admin port too): off by default."""
    refused_networks: NetworkSet = field(default_factory=NetworkSet)
    """An ExternalName whose IP (any spelling) is in these networks is refused; so is any name
    of this host (`localhost`, ...) when they hold loopback. `serve` in cluster mode passes
    `addresses.LOCAL_NETWORKS` plus `--refuse-endpoint-cidrs` (the same set the translator
    refuses endpoint addresses in); empty by default and in file mode."""
    classes: frozenset[str] = field(init=False, compare=False, repr=False)
    """`ingress_class` split at commas, blanks dropped."""

    def __post_init__(self) -> None:
        classes = frozenset(c.strip() for c in self.ingress_class.split(",") if c.strip())
        object.__setattr__(self, "classes", classes)
