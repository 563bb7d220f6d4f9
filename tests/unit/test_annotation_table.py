"""The annotation table is the one source of docs/annotations.md and of the reports: the doc is
up to date, every annotation the readers look at has its row, and every row that says it is
honoured is read without a report."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.dag.annotation_report import annotations_markdown, unsupported_annotations
from controlplane.dag.annotation_table import ANNOTATIONS, BY_NAME, NGINX, Support
from controlplane.dag.ingress_annotations import (
    ALLOW_HTTP,
    FORCE_SSL_REDIRECT,
    NUM_RETRIES,
    PER_TRY_TIMEOUT,
    REQUEST_TIMEOUT,
    RETRY_ON,
    TLS_MINIMUM_PROTOCOL_VERSION,
    WEBSOCKET_ROUTES,
)
from controlplane.dag.ingress_nginx import _Reader, nginx_policy
from controlplane.model import parse_object

DOC = Path(__file__).resolve().parents[2] / "docs" / "annotations.md"


def test_the_doc_is_generated_from_the_table() -> None:
    assert DOC.read_text() == annotations_markdown(), (
        "docs/annotations.md is stale: regenerate it with .venv/bin/python -c "
        '"from controlplane.dag.annotation_report import annotations_markdown; '
        "open('docs/annotations.md', 'w').write(annotations_markdown())\""
    )


def _ingress(annotations: dict[str, str]) -> object:
    return parse_object(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "a", "namespace": "default", "annotations": annotations},
            "spec": {},
        }
    )


@pytest.mark.parametrize("canary", ["false", "true"])
def test_every_nginx_annotation_read_has_a_row(
    monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    asked: set[str] = set()
    raw = _Reader.raw

    def recording(self: _Reader, name: str) -> str | None:
        asked.add(NGINX + name)
        return raw(self, name)

    monkeypatch.setattr(_Reader, "raw", recording)
    nginx_policy(_ingress({NGINX + "canary": canary}))  # type: ignore[arg-type]
    missing = sorted(name for name in asked if name not in BY_NAME)
    assert missing == []
    assert all(BY_NAME[name].support is not Support.NOT_IMPLEMENTED for name in asked)


def test_every_contour_annotation_read_has_a_row() -> None:
    read = {
        *FORCE_SSL_REDIRECT,
        *ALLOW_HTTP,
        *REQUEST_TIMEOUT,
        *WEBSOCKET_ROUTES,
        *RETRY_ON,
        *NUM_RETRIES,
        *PER_TRY_TIMEOUT,
        *TLS_MINIMUM_PROTOCOL_VERSION,
    }
    assert sorted(name for name in read if name not in BY_NAME) == []


def test_honoured_rows_are_not_reported_and_the_others_are() -> None:
    for row in ANNOTATIONS:
        for name in row.names:
            reported = dict(unsupported_annotations({name: "x"}))
            watched = name.startswith(
                ("nginx.ingress.kubernetes.io/", "ingress.kubernetes.io/", "projectcontour.io/",
                 "contour.heptio.com/")
            )  # fmt: skip
            expected = watched and (not row.honoured or row.objects == "Service")
            assert (name in reported) == expected, name


def test_every_snippet_is_refused_as_nginx_configuration() -> None:
    names = {NGINX + "configuration-snippet", NGINX + "anything-snippet", NGINX + "x-snippets"}
    reported = dict(unsupported_annotations(dict.fromkeys(names, "return 200;")))
    assert set(reported) == names
    assert all("nginx configuration" in reason for reason in reported.values())
