"""`controlplane translate` as a migration tool: every Ingress and IngressRoute of a directory in
one of three groups (served as is, served with differences, refused) with the reasons, as data
in the output and as a short summary on stderr; problem rows name their object; `--config`
(Contour's keys too) sets what serve would build with, flags winning over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kube_manifests
import pytest
import yaml

from controlplane.cli import main
from controlplane.offline import migration_summary, translate_manifests

JSON = dict[str, Any]


def ingress(name: str, paths: list[tuple[str, str]], *, klass: str = "contour") -> JSON:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "ingressClassName": klass,
            "rules": [
                {
                    "host": f"{name}.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": path,
                                "pathType": "Prefix",
                                "backend": {"service": {"name": service, "port": {"number": 80}}},
                            }
                            for path, service in paths
                        ]
                    },
                }
            ],
        },
    }


def ingressroute(
    name: str, routes: list[JSON], fqdn: str | None = None, ns: str = "default"
) -> JSON:
    spec: JSON = {"routes": routes}
    if fqdn is not None:
        spec["virtualhost"] = {"fqdn": fqdn}
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


WEB = [{"name": "web", "port": 80}]
MANIFESTS = [
    kube_manifests.service("web", "default", [80]),
    ingress("plain", [("/", "web")]),
    ingress("partly", [("nope", "web"), ("/", "web")]),
    ingress("broken", [("/", "missing")]),
    ingress("theirs", [("/", "web")], klass="nginx"),
    ingressroute("root", [{"match": "/", "services": WEB}], fqdn="root.example.com"),
    ingressroute(
        "delegating",
        [
            {"match": "/", "delegate": {"name": "child"}},
            {"match": "/x", "delegate": {"name": "gone"}},
        ],
        fqdn="delegating.example.com",
    ),
    ingressroute("child", [{"match": "/", "services": WEB}]),
    ingressroute(
        "invalid",
        [{"match": "/", "services": [{"name": "missing", "port": 80}]}],
        fqdn="invalid.example.com",
    ),
    ingressroute("orphan", [{"match": "/", "services": WEB}]),
    {
        "apiVersion": "extensions/v1beta2",
        "kind": "Ingress",
        "metadata": {"name": "unreadable", "namespace": "default"},
    },
]


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    directory = tmp_path / "manifests"
    directory.mkdir()
    (directory / "all.yaml").write_text(yaml.safe_dump_all(MANIFESTS), encoding="utf-8")
    return directory


def grouped(result: JSON) -> dict[str, list[str]]:
    return {
        group: [f"{row['kind']} {row['namespace']}/{row['name']}" for row in rows]
        for group, rows in result["migration"].items()
    }


def notes(result: JSON, group: str, name: str) -> list[str]:
    [row] = [r for r in result["migration"][group] if r["name"] == name]
    return list(row["notes"])


def test_every_object_is_served_as_is_with_differences_or_refused(manifests: Path) -> None:
    result = translate_manifests([manifests])
    assert grouped(result) == {
        "served_as_is": [
            "Ingress default/plain",
            "IngressRoute default/child",
            "IngressRoute default/root",
        ],
        "served_with_differences": [
            "Ingress default/partly",
            "IngressRoute default/delegating",
        ],
        "refused": [
            "Ingress default/broken",
            "Ingress default/theirs",
            "IngressRoute default/invalid",
            "IngressRoute default/orphan",
            "Ingress default/unreadable",
        ],
    }
    assert notes(result, "served_with_differences", "partly") == [
        'spec.rules[0].http.paths[0].path: "nope" does not start with "/"; path ignored'
    ]
    [warning] = notes(result, "served_with_differences", "delegating")
    assert "gone" in warning
    assert notes(result, "refused", "broken") == [
        "spec.rules[0].http.paths[0].backend.service.name: Service [missing:80] is invalid or "
        "missing"
    ]
    assert notes(result, "refused", "theirs") == [
        'of class "nginx", not served here (--ingress-class contour); '
        "--ingress-class contour,nginx takes it over"
    ]
    assert notes(result, "refused", "invalid") == ["Service [missing:80] is invalid or missing"]
    assert notes(result, "refused", "orphan") == [
        "this IngressRoute is not part of a delegation chain from a root IngressRoute"
    ]
    [unread] = notes(result, "refused", "unreadable")
    assert "extensions/v1beta2/Ingress is not read" in unread


def test_problem_rows_name_their_object(manifests: Path) -> None:
    result = translate_manifests([manifests])
    rows = {(p["kind"], p["namespace"], p["name"], p["field"]) for p in result["problems"]}
    assert ("Ingress", "default", "partly", "spec.rules[0].http.paths[0].path") in rows
    assert all(p["namespace"] and p["name"] for p in result["problems"])


def test_the_summary_is_short_and_names_what_needs_a_look(manifests: Path) -> None:
    lines = migration_summary(translate_manifests([manifests])["migration"])
    assert lines[0] == (
        "migration: 10 objects: 3 served as is, 2 served with differences, 5 refused"
    )
    assert "  served with differences:" in lines and "  refused:" in lines
    assert (
        '    Ingress default/partly: spec.rules[0].http.paths[0].path: "nope" does not start '
        'with "/"; path ignored'
    ) in lines
    assert lines[-1] == (
        "  served as is: Ingress default/plain, IngressRoute default/child, "
        "IngressRoute default/root"
    )


def test_translate_prints_data_on_stdout_and_the_summary_on_stderr(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["translate", "-f", str(manifests)]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)  # nothing but the data
    assert grouped(printed)["refused"][0] == "Ingress default/broken"
    assert captured.err.startswith("migration: 10 objects: 3 served as is")
    assert main(["translate", "-f", str(manifests), "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["migration"] == printed["migration"]


def test_translate_takes_serves_config_file_with_contours_keys(
    manifests: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "contour.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ingress-class-name": "nginx",
                "ingressroute": {"root-namespaces": "platform"},
                "disablePermitInsecure": True,
            }
        ),
        encoding="utf-8",
    )
    assert main(["translate", "-f", str(manifests), "--config", str(config)]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    groups = grouped(printed)
    assert "Ingress default/theirs" in groups["served_as_is"]  # class nginx, from the file
    assert "Ingress default/plain" in groups["refused"]
    assert notes(printed, "refused", "root") == [
        "root IngressRoute cannot be defined in this namespace"
    ]  # root namespaces from the file
    assert f"controlplane translate: {config}: disablePermitInsecure: not implemented" in (
        captured.err
    )

    # A flag wins over the file.
    assert main(["translate", "-f", str(manifests), "--config", str(config),
                 "--ingress-class", "contour"]) == 0  # fmt: skip
    groups = grouped(json.loads(capsys.readouterr().out))
    assert "Ingress default/plain" in groups["served_as_is"]


def test_translate_refuses_an_unknown_config_key_in_one_line(
    manifests: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("ingress-klass: nginx\n", encoding="utf-8")
    assert main(["translate", "-f", str(manifests), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key ingress-klass" in err
