"""What the annotation table says to users: the reports about annotations not honoured, and
docs/annotations.md.

Reporting rule (`unsupported_annotations`): on an Ingress, every annotation under one of the
watched prefixes (`nginx.ingress.kubernetes.io/`, `ingress.kubernetes.io/`,
`projectcontour.io/`, `contour.heptio.com/`) that is not honoured for Ingresses is reported by
name, one Problem each: refused rows with their reason, nginx snippets (any `*-snippet` or
`*-snippets`) as nginx configuration that is never applied, annotations read on Services as
such, ingress-nginx's old `ingress.kubernetes.io/` names with the name to use, everything else
as not implemented. Other annotations (`kubectl.kubernetes.io/`, `cert-manager.io/`, ...)
belong to other tools and are left alone. Reporting never stops the rest of the Ingress from
being served.

`annotations_markdown()` renders the table; tests/unit/test_annotation_table.py holds
docs/annotations.md to it, so the doc cannot drift from what the code reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controlplane.dag.annotation_table import (
    ANNOTATIONS,
    BY_NAME,
    NGINX,
    OLD_NGINX,
    WATCHED_PREFIXES,
    Annotation,
    Support,
)

__all__ = ["annotations_markdown", "unsupported_annotations"]

SNIPPET_REASON = (
    "is nginx configuration, which Envoy cannot run: refused, never applied "
    "(the rest of the Ingress is served)"
)
NOT_IMPLEMENTED_REASON = "is not implemented by this controller; ignored"
FAMILIES = ("Kubernetes", "Contour", "ingress-nginx")

_SERVICE_ONLY = frozenset(
    name for row in ANNOTATIONS if row.objects == "Service" for name in row.names
)


def _reason(name: str) -> str:
    if name.endswith(("-snippet", "-snippets")):
        return SNIPPET_REASON
    row = BY_NAME.get(name)
    if row is not None and row.support is Support.REFUSED:
        return f"is refused: {row.note.rstrip('.')}"
    if name in _SERVICE_ONLY:
        return "is read on Services, not on Ingresses; ignored"
    if name.startswith(OLD_NGINX):
        suffix = name.removeprefix(OLD_NGINX)
        newer = BY_NAME.get(NGINX + suffix)
        if newer is not None and newer.honoured:
            return f"is ingress-nginx's old name, not read here: use {NGINX}{suffix}; ignored"
    return NOT_IMPLEMENTED_REASON


def unsupported_annotations(annotations: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    """(name, reason) of every Ingress annotation under a watched prefix not honoured here,
    sorted by name."""
    for name in sorted(annotations):
        if not name.startswith(WATCHED_PREFIXES):
            continue
        row = BY_NAME.get(name)
        if row is not None and row.honoured and name not in _SERVICE_ONLY:
            continue
        yield name, _reason(name)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def annotations_markdown() -> str:
    """docs/annotations.md, rendered from `ANNOTATIONS`."""
    lines = [
        "# Annotations",
        "",
        "<!-- Generated from controlplane/dag/annotation_table.py; "
        "tests/unit/test_annotation_table.py checks it. Do not edit by hand. -->",
        "",
        "Every annotation this controller reads, and the ones it knows and refuses. On an "
        "Ingress, any annotation under `nginx.ingress.kubernetes.io/`, "
        "`ingress.kubernetes.io/`, `projectcontour.io/` or `contour.heptio.com/` that is not "
        "honoured here is reported by name (`controlplane translate` prints it under "
        "`problems`; `serve` logs it and records an Event on the Ingress), and the rest of the "
        "Ingress is served. Which Ingresses get ingress-nginx's semantics and defaults, and "
        "what differs from nginx, is in docs/migrating-from-ingress-nginx.md.",
        "",
        "Support: **implemented** as the family documents it; **honoured, with differences** "
        "(said in the row); **refused**: read, reported, never applied; **not implemented**: "
        "known, reported, ignored. Contour annotations are read under both "
        "`projectcontour.io/` and `contour.heptio.com/` (the first wins).",
    ]
    families: dict[str, dict[str, list[Annotation]]] = {}
    for row in ANNOTATIONS:
        families.setdefault(row.family, {}).setdefault(row.group, []).append(row)
    for family in FAMILIES:
        lines += ["", f"## {family}"]
        for group, rows in families[family].items():
            lines += [
                "",
                f"### {group}",
                "",
                "| annotation | objects | what Envoy does | support | notes |",
                "|---|---|---|---|---|",
            ]
            for row in rows:
                names = "<br>".join(f"`{name}`" for name in row.names)
                lines.append(
                    f"| {names} | {row.objects} | {_cell(row.effect)} | {row.support.value} "
                    f"| {_cell(row.note)} |"
                )
    return "\n".join(lines) + "\n"
