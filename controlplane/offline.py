"""`controlplane translate`: a cold run of the production path over manifest files.

Manifests → the same `Store` the file source fills → `dag.build` (the one builder, cold) →
`Publisher.translate` (the one translator and the same diff the server publishes) → the bytes of
every resource, decoded into protobuf JSON. What this prints is what `serve --manifests DIR`
streams for the same files, resource for resource (tests/e2e/test_serve_equals_translate.py).
No I/O beyond reading the files; no clocks.

`problems` lists the log-only findings of the build (`dag.problems`) and, after them, every
endpoint the translator left out (what `serve` logs as `endpoint.refused`), attributed to its
EndpointSlice or Endpoints object, and every object of a kind or version we do not read; each
row names its object (kind, namespace, name) and the field at fault.

`migration` sorts every Ingress and IngressRoute of the input, by namespace/name, into what a
team moving its manifests here needs to know (`migration_report`):

- `served_as_is`: nothing about it is reported;
- `served_with_differences`: something is reported (an annotation ignored, a path refused, a
  warning in its status) but part of it is served: a virtual host, route or TLS host of the
  DAG has it as `origin`, or, for an IngressRoute, its status is `valid` (one that only
  delegates serves its children's routes);
- `refused`: it serves nothing (invalid, orphaned, every rule refused, another ingress class,
  an API version we do not read).

Rows of the last two groups carry `notes`, the reasons in the words of `problems` and status.
`migration_summary` is the same as a few lines for a person (the CLI prints them on stderr:
stdout carries the data only). `options_from_settings` turns `--config` and the translate flags
into the builder's and translator's options, as `serve` does for the same settings (file mode:
no local network refused unless asked).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from controlplane.addresses import refused_networks
from controlplane.config import ServeSettings
from controlplane.dag import (
    DAG,
    BuildOptions,
    ObjectStatus,
    SecureVirtualHost,
    StatusKind,
    VirtualHost,
    build,
    class_of,
    ingresses_of_our_class,
)
from controlplane.envoy import (
    EnvoyConfig,
    RefusalReason,
    RefusedEndpoint,
    TranslateOptions,
    to_json,
)
from controlplane.health import status_row
from controlplane.model import ObjectSet, model_type_for, shown
from controlplane.publisher import Publisher
from controlplane.sources import manifest_files, read_documents
from controlplane.store import Store

__all__ = [
    "load_manifests",
    "migration_report",
    "migration_summary",
    "options_from_settings",
    "translate_manifests",
]

Row = dict[str, Any]


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
    build_options = build_options or BuildOptions()
    dag = build(objects, build_options)
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
    result["migration"] = migration_report(
        objects, dag, report.statuses, result["problems"], build_options
    )
    return result


def options_from_settings(settings: ServeSettings) -> tuple[BuildOptions, TranslateOptions]:
    """What `serve` would build and translate with these settings, read from files: the local
    networks are refused only when `refuse_local_endpoints` says so (file mode's default)."""
    networks = refused_networks(
        local=bool(settings.refuse_local_endpoints), extra=settings.refuse_endpoint_cidrs
    )
    build_options = BuildOptions(
        ingress_class=settings.ingress_class,
        root_namespaces=frozenset(settings.root_namespaces),
        enable_external_name_services=settings.enable_external_name_services,
        refused_networks=networks,
    )
    translate_options = TranslateOptions(
        http_port=settings.envoy_http_port,
        https_port=settings.envoy_https_port,
        xds_mode=settings.xds_mode,
        refused_endpoint_networks=networks,
    )
    return build_options, translate_options


# -- the migration report ------------------------------------------------------------------

_MIGRATED_KINDS = ("Ingress", "IngressRoute")
AS_IS, DIFFERENT, REFUSED = "served_as_is", "served_with_differences", "refused"


def migration_report(
    objects: ObjectSet,
    dag: DAG,
    statuses: Iterable[ObjectStatus],
    problems: Iterable[Mapping[str, Any]],
    build_options: BuildOptions,
) -> dict[str, list[Row]]:
    """Every Ingress and IngressRoute (and each we could not read) in one of three groups; see
    the module docstring."""
    notes: dict[tuple[str, str, str], list[str]] = {}
    for problem in problems:
        if problem["kind"] in _MIGRATED_KINDS:
            key = (problem["kind"], problem["namespace"], problem["name"])
            notes.setdefault(key, []).append(f"{problem['field']}: {problem['reason']}")
    valid: set[tuple[str, str, str]] = set()
    with_status: set[tuple[str, str, str]] = set()
    for status in statuses:
        key = (status.kind, status.namespace, status.name)
        with_status.add(key)
        if status.current_status is StatusKind.VALID:
            valid.add(key)
            warnings = [c.message for c in status.conditions if c.type == "Warning"]
            notes.setdefault(key, []).extend(warnings)
        else:
            notes.setdefault(key, []).insert(0, status.description)
    served = _served(dag) | valid
    classes = ",".join(sorted(build_options.classes))

    def other_class(key: tuple[str, str, str]) -> str:
        ingress = objects.ingresses.get(key[1:]) if key[0] == "Ingress" else None
        wanted = ingress and class_of(ingress.metadata.annotations, ingress.spec.ingress_class_name)
        if not wanted:
            return f"not of the ingress class(es) this controller serves ({classes})"
        return (
            f'of class "{shown(wanted)}", not served here (--ingress-class {classes}); '
            f"--ingress-class {classes},{shown(wanted)} takes it over"
        )

    ours = {("Ingress", *key) for key in ingresses_of_our_class(objects, build_options)}
    ours |= with_status
    keys = [("Ingress", *k) for k in objects.ingresses]
    keys += [("IngressRoute", *k) for k in objects.ingress_routes]
    report: dict[str, list[Row]] = {AS_IS: [], DIFFERENT: [], REFUSED: []}
    read = set(keys)
    unread = sorted(k for k in notes if k not in read)  # an old apiVersion, not read at all
    for key in sorted(set(keys)) + unread:
        told = notes.get(key, [])
        if not told and key not in served:
            told = [other_class(key) if key not in ours else "no rule or backend of it is served"]
        row: Row = {"kind": key[0], "namespace": key[1], "name": key[2]}
        if key not in served:
            report[REFUSED].append(row | {"notes": told})
        elif told:
            report[DIFFERENT].append(row | {"notes": told})
        else:
            report[AS_IS].append(row)
    return report


def _served(dag: DAG) -> set[tuple[str, str, str]]:
    """The objects some virtual host, route or TLS host of the DAG comes from."""
    hosts: list[VirtualHost | SecureVirtualHost] = [*dag.virtual_hosts, *dag.secure_virtual_hosts]
    origins = [host.origin for host in hosts]
    origins += [route.origin for host in hosts for route in host.routes]
    return {(o.kind, o.namespace, o.name) for o in origins if o is not None}


def migration_summary(report: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The migration report as a few lines for a person: the counts, then each object that
    needs a look with its first note (the JSON has them all)."""
    counts = {group: len(rows) for group, rows in report.items()}
    total = sum(counts.values())
    lines = [
        f"migration: {total} object{'s' * (total != 1)}: {counts.get(AS_IS, 0)} served as is, "
        f"{counts.get(DIFFERENT, 0)} served with differences, {counts.get(REFUSED, 0)} refused"
    ]
    for group, title in ((DIFFERENT, "served with differences"), (REFUSED, "refused")):
        if not report.get(group):
            continue
        lines.append(f"  {title}:")
        for row in report[group]:
            told = list(row.get("notes") or [])
            more = f" (+{len(told) - 1} more)" if len(told) > 1 else ""
            first = f": {told[0]}{more}" if told else ""
            lines.append(f"    {row['kind']} {row['namespace']}/{row['name']}{first}")
    if report.get(AS_IS):
        names = ", ".join(f"{r['kind']} {r['namespace']}/{r['name']}" for r in report[AS_IS])
        lines.append(f"  served as is: {names}")
    return lines


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
