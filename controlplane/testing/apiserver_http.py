"""The Kubernetes API over HTTP: paths, verbs, content types and watch streams.

`KubeApi` maps a request onto the registry and the store. Paths are resolved against the
registry on every request (`/api/v1/namespaces/NS/PLURAL/NAME/status`, the all-namespaces
`/api/v1/PLURAL`, cluster-scoped `/apis/G/V/PLURAL/NAME`, and the legacy `/watch/` prefix), so a
CRD's types are served as soon as it is stored. Every API request is reported once through
`on_request`, keyed by `RequestRecord`, for the server's counters.

What kubectl needs, as measured with kubectl 1.32: `/version`; `/api` and `/apis` in plain JSON
(it asks for aggregated discovery first and falls back when the answer is an `APIGroupList`);
`/api/v1` and `/apis/GROUP/VERSION`; `Table` answers for `get`; and `/openapi/v3`, without which
`kubectl apply` refuses to run ("failed to download openapi"). `apiserver_openapi` says what
kubectl reads in the OpenAPI documents (v3, and v2 in protobuf) and how they are built.

Watches stream newline-delimited JSON events over a chunked response. They start from the
history after the requested `resourceVersion` (or with an ADDED per object when none is given),
send a BOOKMARK every `bookmark_interval` seconds when asked to, end after `timeoutSeconds`, and
report a compacted `resourceVersion` as an ERROR event carrying a 410 `Expired` `Status`, as the
apiserver's watch cache does.

Writes ignore `.status` where the type has a status subresource and `/status` writes change only
`.status` (see `apiserver_store`). Patches are applied to the stored object and written as an
update, so a `metadata.resourceVersion` in a patch is checked like one in a PUT. Strategic merge
patches of custom resources are refused with 415, as the apiserver refuses them.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from controlplane.testing import apiserver_openapi_proto as openapi_proto
from controlplane.testing import apiserver_protobuf as protobuf
from controlplane.testing.apiserver_openapi import OpenApiDocuments
from controlplane.testing.apiserver_patch import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from controlplane.testing.apiserver_registry import Registry, ResourceType
from controlplane.testing.apiserver_store import (
    ApiError,
    Clock,
    Dropped,
    Store,
    Watcher,
    field_selector,
    label_selector,
    status_object,
)
from controlplane.testing.apiserver_table import partial_metadata, table

JSON = dict[str, Any]
_CLOSE_ENOUGH = 1e-6  # seconds: see `KubeApi._stream`

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-controlplane-testapi",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_PATCH_TYPES = (
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
)


@dataclass(frozen=True)
class RequestRecord:
    """What the request counters are keyed by: one per distinct request shape."""

    method: str
    path: str
    verb: str
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class _Target:
    """A resource path resolved against the registry."""

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str
    watch_path: bool


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


def error_response(e: ApiError) -> web.Response:
    return json_response(e.status(), e.code)


def _accept_as(request: web.Request) -> str:
    """The `as=` form the client prefers: `Table`, `PartialObjectMetadata[List]` or ``."""
    for alternative in request.headers.get("Accept", "").split(","):
        params = dict(p.strip().split("=", 1) for p in alternative.split(";")[1:] if "=" in p)
        if params.get("g") == "meta.k8s.io" and params.get("as"):
            return params["as"]
        if alternative.split(";")[0].strip() in ("application/json", "*/*", ""):
            return ""
    return ""


def _flag(value: str | None) -> bool:
    """A boolean query parameter, read as Go's strconv.ParseBool reads it."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


class KubeApi:
    """The resource API of the test server, over one registry and store."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        *,
        clock: Clock,
        bookmark_interval: float,
        on_request: Callable[[RequestRecord], None],
        after_delete: Callable[[ResourceType, str], None],
    ) -> None:
        self.registry, self.store, self.clock = registry, store, clock
        self.openapi = OpenApiDocuments(registry)
        self.bookmark_interval = bookmark_interval
        self._on_request = on_request
        self._after_delete = after_delete

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer a request for anything but the test hooks."""
        parts = [p for p in request.path.split("/") if p]
        try:
            if request.path in ("/healthz", "/readyz", "/livez"):
                return web.Response(text="ok")
            if request.path == "/version":
                return json_response(KUBE_VERSION)
            if request.path == "/openapi/v2":
                if "protobuf" in request.headers.get("Accept", ""):
                    return web.Response(
                        body=self.openapi.v2_protobuf(), content_type=openapi_proto.CONTENT_TYPE
                    )
                return json_response(self.openapi.v2())
            if parts[:2] == ["openapi", "v3"]:
                doc = self.openapi.v3("/".join(parts[2:])) if parts[2:] else self.openapi.v3_index()
                if doc is not None:
                    return json_response(doc)
            if parts and parts[0] in ("api", "apis"):
                return await self._api(request, parts)
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        except ApiError as e:
            return error_response(e)

    def _resolve(self, group: str, version: str, rest: list[str]) -> _Target:
        watch_path = bool(rest) and rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        missing = ApiError(404, "NotFound", "the server could not find the requested resource")
        if len(rest) >= 3 and rest[0] == "namespaces":
            rtype = self.registry.get(group, version, rest[2])
            if rtype is not None and rtype.namespaced and len(rest) <= 5:
                name = rest[3] if len(rest) > 3 else None
                return _Target(rtype, rest[1], name, rest[4] if len(rest) > 4 else "", watch_path)
        rtype = self.registry.get(group, version, rest[0]) if rest else None
        if rtype is None or len(rest) > 3 or (rtype.namespaced and len(rest) > 1):
            raise missing
        return _Target(
            rtype,
            None,
            rest[1] if len(rest) > 1 else None,
            rest[2] if len(rest) > 2 else "",
            watch_path,
        )

    def _count(self, request: web.Request, target: _Target, verb: str) -> None:
        record = RequestRecord(
            method=request.method,
            path=request.path,
            verb=verb,
            resource=target.rtype.plural,
            subresource=target.subresource,
            namespace=target.namespace or "",
            name=target.name or "",
        )
        self._on_request(record)

    async def _api(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        if parts[0] == "api":
            if len(parts) == 1:
                return self._discovery(
                    request,
                    {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
                )
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 1:
                return self._discovery(request, self.registry.api_group_list())
            if len(parts) == 2:
                found = self.registry.api_group(parts[1])
                if found is None:
                    raise ApiError(
                        404, "NotFound", "the server could not find the requested resource"
                    )
                return self._discovery(request, found)
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            resources = self.registry.api_resource_list(group, version)
            if resources is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self._discovery(request, resources)
        target = self._resolve(group, version, rest)
        if target.subresource and not (target.subresource == "status" and target.rtype.has_status):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        watch = target.watch_path or _flag(request.query.get("watch"))
        method = request.method
        verb = {
            "GET": "watch" if watch else ("get" if target.name else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if target.name else "deletecollection",
        }.get(method, method.lower())
        self._count(request, target, verb)
        if target.rtype.review is not None:
            if verb != "create" or target.name is not None or target.subresource:
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                )
            return json_response(target.rtype.review(await self._body(request)), 201)
        if verb == "watch":
            return await self._watch(request, target)
        if verb == "list":
            return self._list(request, target)
        if verb == "get":
            return self._get(request, target)
        if (
            verb == "create"
            and target.name is None
            and (target.namespace or not target.rtype.namespaced)
        ):
            body = await self._body(request)
            created = self.store.create(
                target.rtype, target.namespace, body, dry_run=self._dry_run(request)
            )
            return json_response(created, 201)
        if verb == "update" and target.name:
            body = await self._body(request)
            return json_response(self._update(request, target, body))
        if verb == "patch" and target.name:
            return await self._patch(request, target)
        if verb == "delete" and target.name:
            return await self._delete(request, target)
        if verb == "deletecollection" and (target.namespace or not target.rtype.namespaced):
            return self._delete_collection(request, target)
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    def _discovery(self, request: web.Request, document: JSON) -> web.Response:
        # Aggregated discovery is asked for first; a plain document makes kubectl fall back.
        return json_response(document)

    @staticmethod
    def _dry_run(request: web.Request) -> bool:
        return "dryRun" in request.query

    async def _body(self, request: web.Request) -> JSON:
        raw = await request.read()
        if request.content_type == "application/vnd.kubernetes.protobuf":
            try:
                return protobuf.decode(raw)
            except protobuf.UnsupportedKind as e:
                raise ApiError(415, "UnsupportedMediaType", str(e)) from None
        try:
            body = yaml.safe_load(raw) if "yaml" in request.content_type else json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise ApiError(
                400, "BadRequest", f"the request body could not be decoded: {e}"
            ) from None
        if not isinstance(body, dict | list):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        return body  # type: ignore[return-value]  # a list only for JSON Patch, checked there

    def _selectors(self, request: web.Request) -> tuple[Any, Any]:
        return label_selector(request.query.get("labelSelector")), field_selector(
            request.query.get("fieldSelector")
        )

    def _list(self, request: web.Request, target: _Target) -> web.Response:
        labels, fields = self._selectors(request)
        # Copy only the page served: a paged list of N objects would copy N²/limit otherwise.
        items = self.store.list(target.rtype, target.namespace, labels, fields, copied=False)
        revision = str(self.store.revision)
        start = 0
        if token := request.query.get("continue"):
            try:
                state = json.loads(base64.urlsafe_b64decode(token))
                start, revision = int(state["start"]), str(state["rv"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "invalid continue token") from None
        meta: JSON = {"resourceVersion": revision}
        limit = int(request.query.get("limit", "0") or 0)
        page = copy.deepcopy(items[start : start + limit] if limit > 0 else items[start:])
        if limit > 0 and start + limit < len(items):
            state = {"start": start + limit, "rv": revision}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        form = _accept_as(request)
        if form == "Table":
            return json_response(self._table(request, target.rtype, page, meta))
        if form == "PartialObjectMetadataList":
            return json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                    "items": [partial_metadata(i) for i in page],
                }
            )
        return json_response(
            {
                "kind": f"{target.rtype.kind}List",
                "apiVersion": target.rtype.api_version,
                "metadata": meta,
                "items": page,
            }
        )

    def _table(
        self, request: web.Request, rtype: ResourceType, objects: list[JSON], meta: JSON
    ) -> JSON:
        include = request.query.get("includeObject", "Metadata")
        return table(rtype, objects, now=self.clock(), include_object=include, list_meta=meta)

    def _get(self, request: web.Request, target: _Target) -> web.Response:
        assert target.name is not None
        obj = self.store.get(target.rtype, target.namespace, target.name)
        form = "" if target.subresource else _accept_as(request)
        if form == "Table":
            return json_response(
                self._table(
                    request,
                    target.rtype,
                    [obj],
                    {"resourceVersion": obj["metadata"]["resourceVersion"]},
                )
            )
        if form == "PartialObjectMetadata":
            return json_response(partial_metadata(obj))
        return json_response(obj)

    def _update(self, request: web.Request, target: _Target, body: JSON) -> JSON:
        assert target.name is not None
        return self.store.update(
            target.rtype,
            target.namespace,
            target.name,
            body,
            subresource=target.subresource,
            dry_run=self._dry_run(request),
        )

    async def _patch(self, request: web.Request, target: _Target) -> web.Response:
        assert target.name is not None
        patch_type = request.content_type
        if patch_type not in _PATCH_TYPES or (
            patch_type == "application/strategic-merge-patch+json" and target.rtype.crd_name
        ):
            accepted = ", ".join(
                t for t in _PATCH_TYPES if t != "application/strategic-merge-patch+json"
            )
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - "
                f"accepted media types include: {accepted}",
            )
        patch = await self._body(request)
        try:
            current = self.store.get(target.rtype, target.namespace, target.name)
        except ApiError as e:
            if patch_type != "application/apply-patch+yaml" or e.code != 404 or target.subresource:
                raise
            body = dict(patch)
            body.setdefault("metadata", {})["name"] = target.name
            created = self.store.create(
                target.rtype, target.namespace, body, dry_run=self._dry_run(request)
            )
            return json_response(created, 201)
        try:
            if patch_type == "application/json-patch+json":
                patched = json_patch(current, patch)
            elif patch_type == "application/strategic-merge-patch+json":
                patched = strategic_merge_patch(current, patch)
            else:
                patched = merge_patch(current, patch)
        except PatchError as e:
            raise ApiError(422, "Invalid", str(e)) from None
        if not isinstance(patched, dict):
            raise ApiError(422, "Invalid", "the patch must leave an object")
        return json_response(self._update(request, target, patched))

    def _deleted(self, target: _Target, obj: JSON) -> JSON:
        if target.rtype.crd_name or target.rtype.plural == "namespaces":
            return obj  # these answer with the object, other built-ins with a Status
        meta = obj["metadata"]
        details = {
            "name": meta["name"],
            "group": target.rtype.group,
            "kind": target.rtype.plural,
            "uid": meta["uid"],
        }
        return status_object(200, "", "", details) | {"reason": None, "message": None}

    async def _delete(self, request: web.Request, target: _Target) -> web.Response:
        """Delete one object, honouring the DeleteOptions body kubectl sends (`dryRun`,
        `preconditions` on uid and resourceVersion)."""
        assert target.name is not None
        options = await self._body(request) if request.can_read_body else {}
        if not isinstance(options, dict):
            raise ApiError(400, "BadRequest", "DeleteOptions must be a JSON object")
        dry_run = self._dry_run(request) or bool(options.get("dryRun"))
        current = self.store.get(target.rtype, target.namespace, target.name)["metadata"]
        for key, wanted in (options.get("preconditions") or {}).items():
            if wanted is not None and current.get(key) != wanted:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: {key} in precondition: {wanted}, "
                    f"{key} in object meta: {current.get(key)}",
                )
        obj = self.store.delete(target.rtype, target.namespace, target.name, dry_run=dry_run)
        if not dry_run:
            self._after_delete(target.rtype, target.name)
        body = self._deleted(target, obj)
        return json_response({k: v for k, v in body.items() if v is not None})

    def _delete_collection(self, request: web.Request, target: _Target) -> web.Response:
        labels, fields = self._selectors(request)
        deleted = []
        for obj in self.store.list(target.rtype, target.namespace, labels, fields):
            name = obj["metadata"]["name"]
            deleted.append(self.store.delete(target.rtype, obj["metadata"].get("namespace"), name))
            self._after_delete(target.rtype, name)
        meta = {"resourceVersion": str(self.store.revision)}
        return json_response(
            {
                "kind": f"{target.rtype.kind}List",
                "apiVersion": target.rtype.api_version,
                "metadata": meta,
                "items": deleted,
            }
        )

    async def _watch(self, request: web.Request, target: _Target) -> web.StreamResponse:
        labels, fields = self._selectors(request)
        if target.name:
            name = target.name
            fields = lambda obj, inner=fields: inner(obj) and obj["metadata"]["name"] == name  # noqa: E731
        rv = request.query.get("resourceVersion", "")
        try:
            since = int(rv) if rv not in ("", "0") else None
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv!r}") from None
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            watcher = self.store.watch(target.rtype, target.namespace, labels, fields, since)
        except ApiError as e:
            if e.code != 410:
                raise
            await response.prepare(request)
            await response.write(
                json.dumps({"type": "ERROR", "object": e.status()}).encode() + b"\n"
            )
            await response.write_eof()
            return response
        await response.prepare(request)
        try:
            ended = await self._stream(request, response, target, watcher)
        finally:
            self.store.unwatch(watcher)
        if ended:
            await response.write_eof()
        elif request.transport is not None:
            request.transport.abort()
        return response

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, target: _Target, watcher: Watcher
    ) -> bool:
        """Write events until the timeout (True) or a drop (True if graceful, False to reset)."""
        loop = asyncio.get_running_loop()
        timeout = request.query.get("timeoutSeconds")
        deadline = loop.time() + float(timeout) if timeout else None
        bookmarks = _flag(request.query.get("allowWatchBookmarks"))
        as_table = _accept_as(request) == "Table"
        next_bookmark = loop.time() + self.bookmark_interval
        while True:
            now = loop.time()
            # A timer fires within the clock's resolution of its time, and `x + interval` in
            # floats may land a hair after the clock's reading then (looptime's clock ticks in
            # microseconds and stands still while anything is ready): count a moment that close
            # as reached, or the wait below would be for nothing, again and again.
            soon = now + _CLOSE_ENOUGH
            if deadline is not None and soon >= deadline:
                return True
            if bookmarks and soon >= next_bookmark and watcher.queue.empty():
                bookmark = {
                    "kind": target.rtype.kind,
                    "apiVersion": target.rtype.api_version,
                    "metadata": {"resourceVersion": str(self.store.revision)},
                }
                await response.write(
                    json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n"
                )
                next_bookmark = now + self.bookmark_interval
            waits = [
                d - now for d in (deadline, next_bookmark if bookmarks else None) if d is not None
            ]
            if not watcher.queue.empty():
                # Not through wait_for: with a bookmark overdue its timeout is 0, and wait_for(0)
                # cancels the get before it runs, so the stream would spin and never send.
                item = watcher.queue.get_nowait()
            else:
                try:
                    item = await asyncio.wait_for(
                        watcher.queue.get(), max(0.0, min(waits)) if waits else None
                    )
                except TimeoutError:
                    continue
            if isinstance(item, Dropped):
                return item.graceful
            kind, obj = item
            if as_table:
                meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
                obj = self._table(request, target.rtype, [obj], meta)
            await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
