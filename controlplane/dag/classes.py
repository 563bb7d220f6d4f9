"""Which Ingresses and IngressRoutes are ours: ingress class selection.

In order: `spec.ingressClassName` (Ingress only) selects us when it is one of `--ingress-class`
(a comma-separated list) or names an IngressClass whose controller is ours; otherwise a class
annotation selects us when it is one of them; an object with neither is accepted (Contour's
behaviour, so unclassed objects keep working in single-controller clusters).
"""

from __future__ import annotations

from collections.abc import Mapping

from controlplane.dag.options import CONTROLLER_NAMES, BuildOptions
from controlplane.model import ObjectSet

CLASS_ANNOTATIONS = (
    "contour.heptio.com/ingress.class",
    "projectcontour.io/ingress.class",
    "kubernetes.io/ingress.class",
)


def class_of(annotations: Mapping[str, str], class_name: str | None) -> str | None:
    """The class an object asks for: `spec.ingressClassName`, else the first class annotation."""
    if class_name:
        return class_name
    return next((annotations[a] for a in CLASS_ANNOTATIONS if a in annotations), None)


def class_matches(
    annotations: Mapping[str, str],
    class_name: str | None,
    objects: ObjectSet,
    options: BuildOptions,
) -> bool:
    if class_name:
        if class_name in options.classes:
            return True
        ingress_class = objects.ingress_classes.get(("", class_name))
        return ingress_class is not None and ingress_class.spec.controller in CONTROLLER_NAMES
    if not annotations:  # most objects carry none at all
        return True
    for annotation in CLASS_ANNOTATIONS:
        value = annotations.get(annotation)
        if value is not None:
            return value in options.classes
    return True
