"""`controlplane translate`: a cold run of the production path over manifest files.

Manifests → the same `Store` the file source fills → `dag.build` (the one builder, cold) →
`Publisher.translate` (the one translator and the same diff the server publishes) → the bytes of
every resource, decoded into protobuf JSON. What this prints is what `serve --manifests DIR`
streams for the same files, resource for resource (tests/e2e/test_serve_equals_translate.py).
No I/O beyond reading the files; no clocks.

`problems` lists the log-only findings of the build (`dag.problems`) and, after them, every
endpoint the translator left out (what `serve` logs as `endpoint.refused`), attributed to its
EndpointSlice or Endpoints object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from controlplane.dag import BuildOptions, build
from controlplane.envoy import (
    EnvoyConfig,
    RefusalReason,
    RefusedEndpoint,
    TranslateOptions,
    to_json,
)
from controlplane.health import status_row
from controlplane.model import model_type_for
from controlplane.publisher import Publisher
from controlplane.sources import manifest_files, read_documents
from controlplane.store import Store

__all__ = ["load_manifests", "translate_manifests"]


def load_manifests(paths: Sequence[Path], unread: list[dict[str, str]] | None = None) -> Store:
    """A store holding every object of a kind we read, from files and directories; each other
    object is added to `unread` as a problem row (never dropped silently)."""
    store = Store()
    for path in paths:
        for file in manifest_files(path) if path.is_dir() else [path]:
            for raw in read_documents(file):
                api_version, kind = str(raw.get("apiVersion", "")), str(raw.get("kind", ""))
                if model_type_for(api_version, kind):
                    store.apply_raw(raw, source=str(file))
                elif unread is not None:
                    unread.append(_unread_row(raw, api_version, kind, file))
    return store


def _unread_row(raw: Mapping[str, Any], api_version: str, kind: str, file: Path) -> dict[str, str]:
    metadata = raw.get("metadata")
    meta = metadata if isinstance(metadata, Mapping) else {}
    return {
        "kind": kind or "object",
        "namespace": str(meta.get("namespace", "")),
        "name": str(meta.get("name", "")),
        "field": "apiVersion/kind",
        "reason": f"{api_version}/{kind} is not read by this controller; ignored ({file})",
    }


def translate_manifests(
    paths: Sequence[Path],
    build_options: BuildOptions | None = None,
    translate_options: TranslateOptions | None = None,
) -> dict[str, Any]:
    """Manifests in; Envoy resources (as `serve` would publish them) and statuses out."""
    unread: list[dict[str, str]] = []
    objects = load_manifests(paths, unread).object_set()
    dag = build(objects, build_options or BuildOptions())
    publisher = Publisher(translate_options or TranslateOptions())
    snapshot = publisher.translate(dag, objects)
    report = publisher.report(dag, snapshot)
    config = EnvoyConfig.decode(
        {
            type_url: {
                name: resource.body for name, resource in snapshot.resources(type_url).items()
            }
            for type_url in snapshot.type_urls
        }
    )
    result: dict[str, Any] = to_json(config)
    result["status"] = [status_row(status) for status in report.statuses]
    result["problems"] = [
        {
            "kind": p.kind,
            "namespace": p.namespace,
            "name": p.name,
            "field": p.field,
            "reason": p.reason,
        }
        for p in report.problems
    ]
    refused = {r for rs in publisher.translator.endpoint_refusals.values() for r in rs}
    result["problems"] += [_refusal_row(r) for r in sorted(refused, key=_refusal_key)]
    result["problems"] += unread
    return result


_REFUSED_FIELD = {
    RefusalReason.FQDN: "addressType",
    RefusalReason.PORT_OUT_OF_RANGE: "ports.port",
}


def _refusal_row(refusal: RefusedEndpoint) -> dict[str, str]:
    kind, _, name = refusal.source.partition("/")
    subject = f"port {refusal.port}" if refusal.port is not None else f'"{refusal.address}"'
    default_field = "endpoints.addresses" if kind == "EndpointSlice" else "subsets.addresses"
    return {
        "kind": kind,
        "namespace": refusal.namespace,
        "name": name,
        "field": _REFUSED_FIELD.get(refusal.reason, default_field),
        "reason": f"{subject}: {refusal.detail}; left out of Service {refusal.service}",
    }


def _refusal_key(refusal: RefusedEndpoint) -> tuple[str, str, str, int, str]:
    return (refusal.namespace, refusal.source, refusal.address, refusal.port or 0, refusal.reason)
