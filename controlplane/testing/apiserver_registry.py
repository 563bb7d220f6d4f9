"""The resource types the test API server serves, and the discovery documents that list them.

A `ResourceType` is everything the server needs to know about one group/version/plural: its
kind, its scope, its short names, whether it has a `status` subresource and which printer
columns its `Table` form shows. Built-in types are fixed at start; a CustomResourceDefinition
adds one `ResourceType` per served version when it is created and removes them when it is
deleted, so `kubectl api-resources` and every discovery document follow the CRDs that exist.

Invariants:

- The registry is keyed by (group, version, plural); the core group is the empty string.
- Discovery documents are computed from the registry on every request, never cached, so a CRD
  is visible to the very next discovery request after its creation.
- A type with a `view` has no objects of its own: they are another type's, converted at the
  edge (`events.k8s.io/v1` Events are core `v1` Events; see `apiserver_events`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from controlplane.testing import apiserver_events, apiserver_reviews

JSON = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class PrinterColumn:
    """One column of the server-side `Table`: a JSONPath (CRDs) or a function (built-ins)."""

    name: str
    type: str = "string"
    json_path: str = ""
    description: str = ""
    priority: int = 0
    format: str = ""
    cell: Callable[[JSON], Any] | None = None

    def definition(self) -> JSON:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class StorageView:
    """How a type is served from another type's objects, as the apiserver serves one stored
    kind through several APIs. `validate(new, old)` raises `ValueError` with the apiserver's
    message for a write it refuses (`old` is None on create)."""

    stored_as: tuple[str, str, str]
    to_stored: Callable[[JSON], JSON]
    from_stored: Callable[[JSON], JSON]
    validate: Callable[[JSON, JSON | None], None]


EVENTS_VIEW = StorageView(
    stored_as=("", "v1", "events"),
    to_stored=apiserver_events.to_core,
    from_stored=apiserver_events.from_core,
    validate=apiserver_events.validate,
)


@dataclass(frozen=True)
class ResourceType:
    """A group/version/plural the server answers for."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    singular: str = ""
    has_status: bool = False
    categories: tuple[str, ...] = ()
    columns: tuple[PrinterColumn, ...] = ()
    crd_name: str = ""
    view: StorageView | None = None
    """Set when the objects are another type's (see `StorageView`)."""
    review: Callable[[JSON], JSON] | None = None
    """Set on a review type (`SelfSubjectAccessReview`): a create is answered with
    `review(body)` and nothing is stored; no other verb is served."""
    schema: JSON | None = field(default=None, compare=False, repr=False)
    """A custom resource's `openAPIV3Schema`, for the OpenAPI documents (`apiserver_openapi`)."""
    key: tuple[str, str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.group, self.version, self.plural))
        if not self.singular:
            object.__setattr__(self, "singular", self.kind.lower())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """How the apiserver names the type in messages: `services`, `ingressroutes.GROUP`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def verbs(self) -> tuple[str, ...]:
        return ("create",) if self.review is not None else ALL_VERBS

    def discovery(self) -> list[JSON]:
        entries: list[JSON] = [
            {
                "name": self.plural,
                "singularName": self.singular,
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": list(self.verbs),
            }
        ]
        if self.short_names:
            entries[0]["shortNames"] = list(self.short_names)
        if self.categories:
            entries[0]["categories"] = list(self.categories)
        if self.has_status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(SUBRESOURCE_VERBS),
                }
            )
        return entries


def _ports(obj: JSON) -> str:
    parts = []
    for port in obj.get("spec", {}).get("ports") or []:
        text = str(port.get("port", ""))
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        parts.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _external_ip(obj: JSON) -> str:
    ips = list(obj.get("spec", {}).get("externalIPs") or [])
    for ingress in obj.get("status", {}).get("loadBalancer", {}).get("ingress") or []:
        ips.append(ingress.get("ip") or ingress.get("hostname") or "")
    if ips:
        return ",".join(ips)
    return "<pending>" if obj.get("spec", {}).get("type") == "LoadBalancer" else "<none>"


def _selector(obj: JSON) -> str:
    selector = obj.get("spec", {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _endpoints(obj: JSON) -> str:
    out = []
    for subset in obj.get("subsets") or []:
        for address in subset.get("addresses") or []:
            for port in subset.get("ports") or [{}]:
                out.append(f"{address.get('ip')}:{port.get('port')}" if port else address["ip"])
    if not out:
        return "<none>"
    return ",".join(out[:3]) + (f" + {len(out) - 3} more..." if len(out) > 3 else "")


def _count(path: str) -> Callable[[JSON], Any]:
    return lambda obj: len(obj.get(path) or {})


def _ingress_hosts(obj: JSON) -> str:
    hosts = [r["host"] for r in obj.get("spec", {}).get("rules") or [] if r.get("host")]
    return ",".join(hosts) or "*"


def _ingress_address(obj: JSON) -> str:
    lb = obj.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    return ",".join(i.get("ip") or i.get("hostname") or "" for i in lb)


def _ingress_ports(obj: JSON) -> str:
    return "80, 443" if obj.get("spec", {}).get("tls") else "80"


def _path(path: str, default: Any = None) -> Callable[[JSON], Any]:
    def get(obj: JSON) -> Any:
        value: Any = obj
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    return get


def _col(
    name: str, cell: Callable[[JSON], Any], type_: str = "string", priority: int = 0
) -> PrinterColumn:
    return PrinterColumn(name=name, type=type_, cell=cell, priority=priority)


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    columns: tuple[PrinterColumn, ...] = (),
    categories: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        has_status=status,
        columns=columns,
        categories=categories,
    )


def builtin_types() -> list[ResourceType]:
    """The built-in types, with the printer columns of the real apiserver where they are cheap."""
    rbac = "rbac.authorization.k8s.io"
    return [
        _builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            namespaced=False,
            short=("ns",),
            status=True,
            columns=(_col("Status", _path("status.phase", "")),),
        ),
        _builtin(
            "",
            "v1",
            "services",
            "Service",
            short=("svc",),
            status=True,
            categories=("all",),
            columns=(
                _col("Type", _path("spec.type", "")),
                _col("Cluster-IP", _path("spec.clusterIP", "<none>")),
                _col("External-IP", _external_ip),
                _col("Port(s)", _ports),
                _col("Selector", _selector, priority=1),
            ),
        ),
        _builtin(
            "",
            "v1",
            "endpoints",
            "Endpoints",
            short=("ep",),
            columns=(_col("Endpoints", _endpoints),),
        ),
        _builtin(
            "",
            "v1",
            "secrets",
            "Secret",
            columns=(_col("Type", _path("type", "")), _col("Data", _count("data"), "integer")),
        ),
        _builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            short=("cm",),
            columns=(_col("Data", _count("data"), "integer"),),
        ),
        _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
        _builtin("", "v1", "events", "Event", short=("ev",)),
        ResourceType(
            group="events.k8s.io",
            version="v1",
            plural="events",
            kind="Event",
            namespaced=True,
            short_names=("ev",),
            view=EVENTS_VIEW,
        ),
        _builtin(
            "",
            "v1",
            "pods",
            "Pod",
            short=("po",),
            status=True,
            categories=("all",),
            columns=(_col("Status", _path("status.phase", "Pending")),),
        ),
        _builtin("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
        _builtin(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            short=("ing",),
            status=True,
            columns=(
                _col("Class", _path("spec.ingressClassName", "<none>")),
                _col("Hosts", _ingress_hosts),
                _col("Address", _ingress_address),
                _col("Ports", _ingress_ports),
            ),
        ),
        _builtin(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "IngressClass",
            namespaced=False,
            columns=(_col("Controller", _path("spec.controller", "")),),
        ),
        _builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            columns=(_col("Holder", _path("spec.holderIdentity", "")),),
        ),
        _builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            short=("deploy",),
            status=True,
            categories=("all",),
        ),
        _builtin(
            "apps", "v1", "daemonsets", "DaemonSet", short=("ds",), status=True, categories=("all",)
        ),
        _builtin("batch", "v1", "jobs", "Job", status=True, categories=("all",)),
        _builtin(
            "batch", "v1", "cronjobs", "CronJob", short=("cj",), status=True, categories=("all",)
        ),
        _builtin("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
        _builtin(rbac, "v1", "clusterroles", "ClusterRole", namespaced=False),
        _builtin(rbac, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
        _builtin(rbac, "v1", "roles", "Role"),
        _builtin(rbac, "v1", "rolebindings", "RoleBinding"),
        _builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            namespaced=False,
            short=("crd", "crds"),
            status=True,
            columns=(_col("Created At", _path("metadata.creationTimestamp", "")),),
        ),
        _builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            short=("pdb",),
            status=True,
        ),
        *(
            ResourceType(
                group=group,
                version="v1",
                plural=plural,
                kind=kind,
                namespaced=False,
                review=review,
            )
            for group, plural, kind, review in (
                (
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews",
                    "SelfSubjectAccessReview",
                    apiserver_reviews.access_review,
                ),
                (
                    "authorization.k8s.io",
                    "selfsubjectrulesreviews",
                    "SelfSubjectRulesReview",
                    apiserver_reviews.rules_review,
                ),
                (
                    "authentication.k8s.io",
                    "selfsubjectreviews",
                    "SelfSubjectReview",
                    apiserver_reviews.subject_review,
                ),
            )
        ),
    ]


class CRDError(ValueError):
    """A CustomResourceDefinition the server cannot serve; the message is user-facing."""


def types_from_crd(crd: JSON) -> list[ResourceType]:
    """One `ResourceType` per served version of an apiextensions.k8s.io/v1 CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not group or not plural or not kind:
        raise CRDError("spec.group, spec.names.plural and spec.names.kind are required")
    if crd.get("metadata", {}).get("name") != f"{plural}.{group}":
        raise CRDError(
            "metadata.name: Invalid value: "
            f'must be spec.names.plural+"."+spec.group: "{plural}.{group}"'
        )
    scope = spec.get("scope", "Namespaced")
    if scope not in ("Namespaced", "Cluster"):
        raise CRDError(f'spec.scope: Unsupported value: "{scope}"')
    versions = spec.get("versions") or []
    if not versions:
        raise CRDError("spec.versions: Required value")
    out = []
    for version in versions:
        if not version.get("served", True):
            continue
        columns = tuple(
            PrinterColumn(
                name=c.get("name", ""),
                type=c.get("type", "string"),
                json_path=c.get("jsonPath", ""),
                description=c.get("description", ""),
                priority=int(c.get("priority", 0)),
                format=c.get("format", ""),
            )
            for c in version.get("additionalPrinterColumns")
            or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        )
        out.append(
            ResourceType(
                group=group,
                version=version["name"],
                plural=plural,
                kind=kind,
                namespaced=scope == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                singular=names.get("singular") or kind.lower(),
                has_status="status" in (version.get("subresources") or {}),
                categories=tuple(names.get("categories") or ()),
                columns=columns,
                crd_name=crd["metadata"]["name"],
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            )
        )
    return out


class Registry:
    """The served types by (group, version, plural), and the discovery documents built from them."""

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self.generation = 0
        """Grows on every change of the served types (documents derived from them key on it)."""
        for t in types:
            self._types[t.key] = t

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for t in self._types.values():
            if t.api_version == api_version and t.kind == kind:
                return t
        return None

    def add(self, types: Iterable[ResourceType]) -> None:
        for t in types:
            self._types[t.key] = t
        self.generation += 1

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        gone = [t for t in self._types.values() if t.crd_name == crd_name]
        for t in gone:
            del self._types[t.key]
        self.generation += 1
        return gone

    def types(self) -> list[ResourceType]:
        return list(self._types.values())

    def group_versions(self, group: str) -> list[str]:
        """The versions of a group, in the order they were registered (the first is preferred)."""
        seen: dict[str, None] = {}
        for t in self._types.values():
            if t.group == group:
                seen.setdefault(t.version)
        return list(seen)

    def api_group(self, group: str) -> JSON | None:
        versions = self.group_versions(group)
        if not versions:
            return None
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": gvs,
            "preferredVersion": gvs[0],
        }

    def api_group_list(self) -> JSON:
        groups: dict[str, None] = {}
        for t in self._types.values():
            if t.group:
                groups.setdefault(t.group)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self.api_group(g) for g in groups],
        }

    def api_resource_list(self, group: str, version: str) -> JSON | None:
        types = [t for t in self._types.values() if t.group == group and t.version == version]
        if not types:
            return None
        resources = [entry for t in types for entry in t.discovery()]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }
