"""Old API versions in manifest files, converted to the version we read, as the API server did.

Most Ingress manifests in blog posts and old repositories are `extensions/v1beta1` or
`networking.k8s.io/v1beta1`. An API server converts them to `networking.k8s.io/v1` on the way
in; the file source and `translate` read files directly, so they convert here, with the API
server's rules:

- `spec.backend` becomes `spec.defaultBackend`;
- a backend `{serviceName, servicePort}` becomes `{service: {name, port: {number | name}}}`
  (`servicePort` is a number, or a name given as a string; a string of digits is a number);
- a path without `pathType` gets `ImplementationSpecific`;
- `networking.k8s.io/v1beta1` IngressClass has the v1 shape already.

Anything else keeps its apiVersion; only these pairs convert. Pure: a new dict, the input is
never modified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CONVERTED", "upgrade"]

V1 = "networking.k8s.io/v1"
CONVERTED = frozenset(
    {
        ("extensions/v1beta1", "Ingress"),
        ("networking.k8s.io/v1beta1", "Ingress"),
        ("networking.k8s.io/v1beta1", "IngressClass"),
    }
)
"""(apiVersion, kind) pairs read by converting them to `networking.k8s.io/v1`."""


def upgrade(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """`raw` in the version we read, if it is one of `CONVERTED`; else `raw` itself."""
    key = (str(raw.get("apiVersion", "")), str(raw.get("kind", "")))
    if key not in CONVERTED:
        return raw
    converted = {**raw, "apiVersion": V1}
    spec = raw.get("spec")
    if key[1] == "Ingress" and isinstance(spec, Mapping):
        converted["spec"] = _ingress_spec(spec)
    return converted


def _ingress_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    result = {key: value for key, value in spec.items() if key != "backend"}
    if "backend" in spec and "defaultBackend" not in spec:
        result["defaultBackend"] = _backend(spec["backend"])
    rules = spec.get("rules")
    if isinstance(rules, list):
        result["rules"] = [_rule(rule) for rule in rules]
    return result


def _rule(rule: Any) -> Any:
    if not isinstance(rule, Mapping) or not isinstance(rule.get("http"), Mapping):
        return rule
    http = rule["http"]
    paths = http.get("paths")
    if not isinstance(paths, list):
        return rule
    return {**rule, "http": {**http, "paths": [_path(path) for path in paths]}}


def _path(path: Any) -> Any:
    if not isinstance(path, Mapping):
        return path
    converted = {**path}
    converted.setdefault("pathType", "ImplementationSpecific")
    if "backend" in path:
        converted["backend"] = _backend(path["backend"])
    return converted


def _backend(backend: Any) -> Any:
    if not isinstance(backend, Mapping) or "serviceName" not in backend:
        return backend
    port = backend.get("servicePort")
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        service_port: dict[str, Any] = {"number": int(port)}
    elif isinstance(port, str):
        service_port = {"name": port}
    else:
        service_port = {}
    rest = {k: v for k, v in backend.items() if k not in ("serviceName", "servicePort")}
    return {**rest, "service": {"name": backend["serviceName"], "port": service_port}}
