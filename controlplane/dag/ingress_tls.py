"""The certificate an Ingress's `spec.tls[].secretName` refers to, if it may use it.

A plain `name` is a Secret in the Ingress's own namespace. Like Contour, we also accept
`namespace/name`, but a Secret in another namespace is used only when that namespace says so: a
TLSCertificateDelegation in the Secret's namespace must list the Secret (by name) with the
Ingress's namespace, or `*`, among its target namespaces. Without that, anyone allowed to create
an Ingress could serve (and so use) any certificate in the cluster.

The answer is either the parsed `TLSSecret` or a sentence saying why there is none; the caller
turns the sentence into a Problem.
"""

from __future__ import annotations

from controlplane.dag.secrets import split_secret_name, tls_secret
from controlplane.dag.types import TLSSecret
from controlplane.model import ObjectSet

ANY_NAMESPACE = "*"


def is_delegated(objects: ObjectSet, namespace: str, name: str, to_namespace: str) -> bool:
    """Whether Secret namespace/name is delegated to `to_namespace` (or to every namespace)."""
    for (delegation_namespace, _), delegation in objects.certificate_delegations.items():
        if delegation_namespace != namespace:
            continue
        for entry in delegation.spec.delegations:
            if entry.secret_name == name and (
                to_namespace in entry.target_namespaces or ANY_NAMESPACE in entry.target_namespaces
            ):
                return True
    return False


def ingress_secret(objects: ObjectSet, ingress_namespace: str, reference: str) -> TLSSecret | str:
    """The TLSSecret `reference` names for an Ingress in `ingress_namespace`, or why not."""
    namespace, name = split_secret_name(reference.strip(), ingress_namespace)
    if not namespace or not name or "/" in name:
        return f'"{reference}" is not a Secret name or namespace/name'
    where = f"Secret [{namespace}/{name}]"
    if namespace != ingress_namespace and not is_delegated(
        objects, namespace, name, ingress_namespace
    ):
        return (
            f"{where} is in another namespace and no TLSCertificateDelegation in "
            f'"{namespace}" delegates it to namespace "{ingress_namespace}"'
        )
    if (namespace, name) not in objects.secrets:
        return f"{where} is missing"
    secret = tls_secret(objects, namespace, name)
    if secret is None:
        return f"{where} is missing"
    if isinstance(secret, str):
        return f"{where} cannot be served: {secret}"
    return secret
