"""Informers: the objects of a cluster, listed and then watched into the store.

One `Informer` per kind and namespace (or per kind, cluster-wide when no namespaces are given)
lists its objects, hands them to the store with `replace_kind`, and then watches from the list's
`resourceVersion` with bookmarks on. `KubeSource` runs them all and sets `synced` once every one
of them has finished its first list: the runtime does not build, and readiness stays false, until
then (ARCHITECTURE.md §5).

Invariants:
- **No event lost, none applied out of order.** `resource_version` is advanced only after an
  event has been applied (bookmarks advance it too), and every re-watch starts from it. A watch the
  server ends is resumed at once; a broken connection is resumed after a capped, jittered backoff
  (0.2 s doubling to 10 s). An event seen twice is harmless anyway: the store ignores an update
  that changes nothing the DAG can see.
- **410 Gone means re-list.** When our `resourceVersion` has been compacted away (an ERROR event
  with code 410, or a 410 answer), the informer lists again and *replaces* its kind (within its
  namespace): objects deleted while we were not watching get their delete events.
- **A missing CRD is not fatal.** A 404 for an optional kind (IngressRoute,
  TLSCertificateDelegation: their CRDs may not be installed) empties that kind, counts as synced,
  and is retried every `missing_retry` seconds, so readiness is never held hostage by a CRD
  installed later or never. Any other failure (403 from RBAC, 5xx, a dead connection) is retried
  with backoff and logged; the informer never gives up while it runs.
- **Only what the DAG needs is kept.** Objects are parsed into the pydantic models (unknown fields
  dropped). Before that, `managedFields` and the `last-applied-configuration` annotation are
  removed (the latter would keep a whole copy of a Secret, private key and all), and a Secret keeps
  only `tls.crt`, `tls.key` and `ca.crt`; a Secret with none of them is not stored at all (the
  DAG sees it as absent). Malformed objects are logged and left out (a malformed update removes
  the previous version, as a re-list would).

Namespaces: `--watch-namespaces a,b` gives one informer per namespace for every namespaced kind;
empty means cluster-wide. Secrets are read only where TLS can be configured: in the root
namespaces when `--root-namespaces` is set (restricted to the watched namespaces when both are),
else wherever the other kinds are watched. Secrets delegated from other namespaces through a
TLSCertificateDelegation are not followed outside those namespaces (out of scope for now).
IngressClass is cluster-scoped and always watched cluster-wide.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from kubernetes_asyncio import client

from controlplane.metrics import InformerMetrics, informer_metrics
from controlplane.model import (
    CA_KEY,
    CERT_KEY,
    PRIVATE_KEY_KEY,
    EndpointSlice,
    Ingress,
    IngressClass,
    IngressRoute,
    KubeObject,
    ModelError,
    Secret,
    Service,
    TLSCertificateDelegation,
    parse_object,
)
from controlplane.sources.kubeclient import (
    Backoff,
    KubeApiError,
    is_transient,
    request_json,
    resource_path,
    watch_lines,
)
from controlplane.store import Store

log = structlog.get_logger(__name__)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TLS_DATA_KEYS = frozenset({CERT_KEY, PRIVATE_KEY_KEY, CA_KEY})


@dataclass(frozen=True, slots=True)
class Resource:
    """A kind as the API serves it: where to list and watch it, and which model parses it."""

    model: type[KubeObject]
    group: str
    version: str
    plural: str
    namespaced: bool = True
    optional: bool = False
    """A custom resource whose CRD may be missing: 404 means "none", not an error."""

    @property
    def kind(self) -> str:
        return self.model.KIND

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        return resource_path(self.group, self.version, self.plural, namespace=namespace, name=name)


SERVICES = Resource(Service, "", "v1", "services")
ENDPOINT_SLICES = Resource(EndpointSlice, "discovery.k8s.io", "v1", "endpointslices")
SECRETS = Resource(Secret, "", "v1", "secrets")
INGRESSES = Resource(Ingress, "networking.k8s.io", "v1", "ingresses")
INGRESS_CLASSES = Resource(
    IngressClass, "networking.k8s.io", "v1", "ingressclasses", namespaced=False
)
INGRESS_ROUTES = Resource(
    IngressRoute, "contour.heptio.com", "v1beta1", "ingressroutes", optional=True
)
CERTIFICATE_DELEGATIONS = Resource(
    TLSCertificateDelegation,
    "contour.heptio.com",
    "v1beta1",
    "tlscertificatedelegations",
    optional=True,
)
RESOURCES: tuple[Resource, ...] = (
    SERVICES,
    ENDPOINT_SLICES,
    SECRETS,
    INGRESSES,
    INGRESS_CLASSES,
    INGRESS_ROUTES,
    CERTIFICATE_DELEGATIONS,
)


class Sink(Protocol):
    """Where an informer puts what it reads (the store, or a single-object tracker)."""

    def replace(self, kind: str, objects: list[KubeObject], namespace: str | None) -> None: ...
    def apply(self, obj: KubeObject) -> None: ...
    def delete(self, kind: str, namespace: str, name: str) -> None: ...


class StoreSink:
    def __init__(self, store: Store) -> None:
        self._store = store

    def replace(self, kind: str, objects: list[KubeObject], namespace: str | None) -> None:
        self._store.replace_kind(kind, objects, namespace=namespace)

    def apply(self, obj: KubeObject) -> None:
        self._store.apply(obj)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._store.delete(kind, namespace, name)


@dataclass(frozen=True)
class InformerOptions:
    page_size: int = 500
    """Objects per list request (`limit`); big clusters are listed in pages."""
    watch_timeout: float = 300.0
    """Server-side `timeoutSeconds` of a watch, stretched by up to 2x at random per watch."""
    request_timeout: float = 30.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    missing_retry: float = 60.0
    """Seconds between looks for a CRD that is not installed."""
    rand: Callable[[], float] = field(default=random.random, compare=False)


class Gone(Exception):
    """Our resourceVersion is too old for a watch (410): list again."""


def trim(resource: Resource, raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The raw object reduced to what we keep, with apiVersion/kind set (list items lack them);
    None for a Secret with no TLS material."""
    obj = dict(raw)
    obj["apiVersion"] = resource.api_version
    obj["kind"] = resource.kind
    metadata = raw.get("metadata")
    if isinstance(metadata, Mapping):
        meta = {key: value for key, value in metadata.items() if key != "managedFields"}
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
            meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        obj["metadata"] = meta
    if resource.model is Secret:
        data = raw.get("data")
        kept = (
            {key: value for key, value in data.items() if key in TLS_DATA_KEYS}
            if isinstance(data, Mapping)
            else {}
        )
        if not kept:
            return None
        obj["data"] = kept
    return obj


def _meta(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = raw.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


class Informer:
    """List, then watch one kind in one namespace (or cluster-wide) into a sink, forever."""

    def __init__(
        self,
        api_client: client.ApiClient,
        resource: Resource,
        sink: Sink,
        *,
        namespace: str | None = None,
        field_selector: str | None = None,
        options: InformerOptions | None = None,
        on_synced: Callable[[], None] = lambda: None,
        metrics: InformerMetrics | None = None,
    ) -> None:
        self.api_client = api_client
        self.metrics = metrics if metrics is not None else informer_metrics()
        self.resource = resource
        self.namespace = namespace if resource.namespaced else None
        self.field_selector = field_selector
        self.options = options or InformerOptions()
        self.resource_version: str | None = None
        self.synced = False
        self._sink = sink
        self._on_synced = on_synced
        self._log = log.bind(kind=resource.kind, namespace=self.namespace or "*")
        self._backoff = Backoff(
            self.options.backoff_initial, self.options.backoff_max, rand=self.options.rand
        )

    def _mark_synced(self) -> None:
        if not self.synced:
            self.synced = True
            self._on_synced()

    async def run(self) -> None:
        gone_in_a_row = 0
        while True:
            try:
                if self.resource_version is None:
                    self.resource_version = await self.list_objects()
                    self._mark_synced()
                await self.watch()
                gone_in_a_row = 0
            except Gone as error:
                self._log.info("informer.relist", reason=str(error))
                self.metrics.relists.labels(kind=self.resource.kind).inc()
                self.resource_version = None
                gone_in_a_row += 1
                if gone_in_a_row > 1:  # a server that keeps answering 410: do not spin
                    await asyncio.sleep(self._backoff.next())
            except KubeApiError as error:
                if error.status == 404 and self.resource.optional:
                    await self._missing(error)
                else:
                    await self._retry(error)
            except Exception as error:  # any failure is retried: an informer never stops
                await self._retry(error)

    async def _missing(self, error: KubeApiError) -> None:
        self._log.warning(
            "informer.kind_missing",
            reason=error.message or error.reason,
            retry_in=self.options.missing_retry,
        )
        self._sink.replace(self.resource.kind, [], self.namespace)
        self.resource_version = None
        self._mark_synced()
        await asyncio.sleep(self.options.missing_retry)

    async def _retry(self, error: BaseException) -> None:
        delay = self._backoff.next()
        # An error (403 from missing RBAC, a 400) needs a human; the rest heals by itself.
        emit = self._log.warning if is_transient(error) else self._log.error
        emit(
            "informer.retry",
            error=f"{type(error).__name__}: {error}",
            resource_version=self.resource_version,
            delay=round(delay, 3),
        )
        await asyncio.sleep(delay)

    def _selectors(self) -> list[tuple[str, str]]:
        return [("fieldSelector", self.field_selector)] if self.field_selector else []

    async def list_objects(self) -> str:
        """List every object (in pages), replace the kind in the sink; the list's version."""
        objects: list[KubeObject] = []
        token: str | None = None
        while True:
            query = [("limit", str(self.options.page_size)), *self._selectors()]
            if token:
                query.append(("continue", token))
            try:
                page = await request_json(
                    self.api_client,
                    "GET",
                    self.resource.path(self.namespace),
                    query=query,
                    request_timeout=self.options.request_timeout,
                )
            except KubeApiError as error:
                if error.status == 410 and token:  # the continue token expired: start over
                    objects, token = [], None
                    continue
                raise
            items = page.get("items") or []
            objects.extend(obj for raw in items if (obj := self._parse(raw)) is not None)
            meta = _meta(page)
            token = meta.get("continue") or None
            if token is None:
                break
        self._sink.replace(self.resource.kind, objects, self.namespace)
        self.metrics.last_event.labels(kind=self.resource.kind).set(time.time())
        self._backoff.reset()
        version = str(meta.get("resourceVersion", ""))
        self._log.info("informer.listed", objects=len(objects), resource_version=version)
        return version

    async def watch(self) -> None:
        """Watch from `resource_version` until the server ends the watch."""
        assert self.resource_version is not None
        query = [
            ("resourceVersion", self.resource_version),
            ("allowWatchBookmarks", "true"),
            *self._selectors(),
        ]
        timeout = self.options.watch_timeout * (1.0 + self.options.rand())
        try:
            async with watch_lines(
                self.api_client,
                self.resource.path(self.namespace),
                query=query,
                server_timeout=timeout,
            ) as lines:
                async for line in lines:
                    self.handle(json.loads(line))
                    self._backoff.reset()
        except KubeApiError as error:
            if error.status == 410:  # answered as a status rather than as an ERROR event
                raise Gone(error.message or "resourceVersion expired") from None
            raise

    def handle(self, event: Mapping[str, Any]) -> None:
        """Apply one watch event, then advance `resource_version` past it."""
        kind = event.get("type")
        raw = event.get("object")
        if not isinstance(raw, Mapping):
            raise ValueError(f"watch event without an object: {str(event)[:200]}")
        if kind == "ERROR":
            code = int(raw.get("code") or 0)
            message = str(raw.get("message", ""))
            if code == 410:
                raise Gone(message or "resourceVersion expired")
            raise KubeApiError(code, str(raw.get("reason", "")), message)
        meta = _meta(raw)
        known = kind if kind in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK") else "other"
        self.metrics.events.labels(kind=self.resource.kind, type=known).inc()
        self.metrics.last_event.labels(kind=self.resource.kind).set(time.time())
        if kind in ("ADDED", "MODIFIED"):
            obj = self._parse(raw)
            if obj is not None:
                self._sink.apply(obj)
            else:
                self._sink.delete(
                    self.resource.kind, str(meta.get("namespace", "")), str(meta.get("name", ""))
                )
        elif kind == "DELETED":
            self._sink.delete(
                self.resource.kind, str(meta.get("namespace", "")), str(meta.get("name", ""))
            )
        elif kind != "BOOKMARK":
            self._log.warning("informer.unknown_event", type=kind)
        version = meta.get("resourceVersion")
        if version:
            self.resource_version = str(version)

    def _parse(self, raw: Any) -> KubeObject | None:
        if not isinstance(raw, Mapping):
            return None
        trimmed = trim(self.resource, raw)
        if trimmed is None:
            return None
        try:
            return parse_object(trimmed)
        except ModelError as error:
            self._log.warning(
                "object.skipped", name=error.name, reason=error.reason, source="kubernetes"
            )
            return None


def secret_namespaces(
    watch_namespaces: Sequence[str], root_namespaces: Sequence[str]
) -> tuple[str, ...]:
    """Where Secrets are read; () means cluster-wide (see the module docstring)."""
    if not root_namespaces:
        return tuple(watch_namespaces)
    if not watch_namespaces:
        return tuple(root_namespaces)
    return tuple(ns for ns in root_namespaces if ns in watch_namespaces)


class KubeSource:
    """Every informer the DAG needs, feeding one store.

    `await source.run(synced)` runs until cancelled and sets `synced` once each informer has
    finished its first list (or found its CRD missing).
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        store: Store,
        *,
        watch_namespaces: Sequence[str] = (),
        root_namespaces: Sequence[str] = (),
        options: InformerOptions | None = None,
        resources: Iterable[Resource] = RESOURCES,
    ) -> None:
        self.options = options or InformerOptions()
        self._synced = asyncio.Event()
        self._pending = 0
        sink = StoreSink(store)
        self.informers: list[Informer] = []
        secrets_disjoint = bool(root_namespaces and watch_namespaces) and not secret_namespaces(
            watch_namespaces, root_namespaces
        )
        for resource in resources:
            if not resource.namespaced:
                namespaces: Sequence[str | None] = [None]
            elif resource is SECRETS:
                if secrets_disjoint:
                    continue  # no root namespace is watched: no Secret can matter
                namespaces = list(secret_namespaces(watch_namespaces, root_namespaces)) or [None]
            else:
                namespaces = list(watch_namespaces) or [None]
            for namespace in namespaces:
                self.informers.append(
                    Informer(
                        api_client,
                        resource,
                        sink,
                        namespace=namespace,
                        options=self.options,
                        on_synced=self._one_synced,
                    )
                )
        self._pending = len(self.informers)

    def _one_synced(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._synced.set()

    def unsynced(self) -> list[str]:
        """The informers still waiting for their first list, e.g. `Secret in default`."""
        return [
            f"{i.resource.kind} in {i.namespace or 'all namespaces'}"
            for i in self.informers
            if not i.synced
        ]

    async def run(self, synced: asyncio.Event) -> None:
        async def relay() -> None:
            await self._synced.wait()
            log.info("kube.synced", informers=len(self.informers))
            synced.set()

        if not self.informers:
            self._synced.set()
        async with asyncio.TaskGroup() as group:
            group.create_task(relay(), name="kube-synced")
            for informer in self.informers:
                name = f"informer-{informer.resource.kind}-{informer.namespace or '*'}"
                group.create_task(informer.run(), name=name)
