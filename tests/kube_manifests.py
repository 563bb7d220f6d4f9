"""Kubernetes manifests as tests write them: camelCase dicts, as `kubectl apply` would send.

One builder per kind, shared by every tier (pytest puts this directory on `sys.path` for the
root conftest, so any test imports it as `kube_manifests`). Tier-specific helpers wrap these with
their own defaults instead of writing the dict again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

JSON = dict[str, Any]
Port = int | tuple[str, int] | tuple[str, int, int]
"""A Service port: a number, (name, number), or (name, number, targetPort)."""


def _port(port: Port) -> JSON:
    if isinstance(port, int):
        return {"port": port}
    if len(port) == 2:
        name, number = port
        return {"name": name, "port": number} if name else {"port": number}
    name, number, target = port
    return {"name": name, "port": number, "targetPort": target}


def service(
    name: str = "web",
    namespace: str = "default",
    ports: Iterable[Port] = (("http", 80),),
    *,
    annotations: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    external_name: str | None = None,
    status: Mapping[str, Any] | None = None,
    **spec: Any,
) -> JSON:
    """A Service; `external_name` makes it an ExternalName Service (no ports)."""
    body: JSON = {"ports": [_port(port) for port in ports], **spec}
    if external_name is not None:
        body = {"type": "ExternalName", "externalName": external_name, "ports": [], **spec}
    meta: JSON = {"name": name, "namespace": namespace, **(metadata or {})}
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    manifest: JSON = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": body}
    if status is not None:
        manifest["status"] = dict(status)
    return manifest
