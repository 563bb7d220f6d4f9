"""Every example translates to a configuration the real Envoy accepts, and `translate` reports
a status for every IngressRoute in it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controlplane.dag import BuildOptions
from controlplane.dag.builder import build
from controlplane.envoy import static_bootstrap, translate
from controlplane.sources.files import FileSource
from controlplane.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(path for path in (ROOT / "examples").iterdir() if path.is_dir())

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_envoy_accepts_the_translation_of_each_example(
    example: Path, tmp_path: Path, envoy_binary: str
) -> None:
    store = Store()
    FileSource(example, store).load_all()
    objects = store.object_set()
    # examples/ingress-nginx is written for the class `nginx`, taken over as a migration would.
    dag = build(objects, BuildOptions(ingress_class="contour,nginx"))
    assert dag.virtual_hosts, "every example serves something"
    config_path = tmp_path / "static.json"
    config_path.write_text(json.dumps(static_bootstrap(translate(dag, objects=objects))))
    checked = subprocess.run(
        [envoy_binary, "--mode", "validate", "--config-path", str(config_path), "-l", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_translate_cli_prints_resources_and_every_status() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "controlplane", "translate", "-f", str(ROOT / "examples")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(completed.stdout)
    assert [r["name"] for r in result["listeners"]] == ["ingress_http", "ingress_https"]
    statuses = {(s["namespace"], s["name"]): s for s in result["status"]}
    assert set(statuses) == {
        ("default", "kuard"),
        ("platform", "www"),
        ("blog", "blog"),
        ("shop", "shop"),
    }
    assert {s["currentStatus"] for s in statuses.values()} == {"valid"}
    assert statuses["platform", "www"]["description"] == "valid IngressRoute"


def test_translate_yaml_is_the_json_as_yaml() -> None:
    """`-o yaml` used to crash on the protobuf JSON mapping's OrderedDicts."""
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "controlplane", "translate", "-f", str(ROOT / "examples"),
             "-o", output],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout
        for output in ("json", "yaml")
    ]  # fmt: skip
    assert yaml.safe_load(outputs[1]) == json.loads(outputs[0])
