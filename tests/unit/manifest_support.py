"""Reading manifests/ as kubectl would: the two overlays, their objects, pods and arguments.

Every kustomization in manifests/ only lists `resources` (files or other kustomizations), so an
overlay renders as the documents of those files, in order, recursively; `render(overlay)` does
exactly that offline, and a test holds it equal to `kubectl kustomize` when kubectl is here.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = ("split", "colocated")
NAMESPACE = "projectcontour"
NODEPORT = MANIFESTS / "nodeport" / "05-service-nodeport.yaml"
POD_KINDS = ("Deployment", "DaemonSet", "Job")

JSON = dict[str, Any]


def load(path: Path) -> list[JSON]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def _kustomization(directory: Path) -> JSON:
    (document,) = load(directory / "kustomization.yaml")
    assert set(document) <= {"apiVersion", "kind", "resources"}, (
        f"{directory}: only `resources` (no patches or generators: the files are what you get)"
    )
    return document


def _render(directory: Path) -> list[tuple[Path, JSON]]:
    found: list[tuple[Path, JSON]] = []
    for entry in _kustomization(directory)["resources"]:
        target = (directory / entry).resolve()
        if target.is_dir():
            found += _render(target)
        else:
            found += [(target, doc) for doc in load(target)]
    return found


@cache
def render(overlay: str) -> tuple[tuple[Path, JSON], ...]:
    """Every object the overlay installs, with the file it comes from."""
    return tuple(_render(MANIFESTS / "overlays" / overlay))


def objects(overlay: str, kind: str) -> list[JSON]:
    return [doc for _, doc in render(overlay) if doc["kind"] == kind]


def named(overlay: str, kind: str, name: str) -> JSON:
    found = [doc for doc in objects(overlay, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_templates(overlay: str) -> list[JSON]:
    """The pod templates of every Deployment, DaemonSet and Job."""
    return [doc for kind in POD_KINDS for doc in objects(overlay, kind)]


def pod_spec(workload: JSON) -> JSON:
    spec: JSON = workload["spec"]["template"]["spec"]
    return spec


def containers_of(workload: JSON) -> list[JSON]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def container_of(workload: JSON, name: str) -> JSON:
    for item in containers_of(workload):
        if item["name"] == name:
            return item
    raise AssertionError(f"no container {name!r}")


def flags(args: list[str]) -> dict[str, str]:
    """`--name=value` and `--name value` arguments as a dict (last one wins)."""
    found: dict[str, str] = {}
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            continue
        if "=" in arg:
            name, value = arg.split("=", 1)
            found[name] = value
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            found[arg] = args[i + 1]
        else:
            found[arg] = ""
    return found


def expand(args: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' `$(VAR)` expansion of command arguments."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), arg) for arg in args]


POD_ENV = {"POD_NAME": "controlplane-7d9f-abcde", "POD_NAMESPACE": NAMESPACE}


def selects(selector: JSON, labels: JSON) -> bool:
    """Whether a `matchLabels` selector (or a Service's plain selector) picks these labels."""
    wanted = selector.get("matchLabels", selector) if "matchExpressions" not in selector else None
    assert wanted is not None, "matchExpressions are not used in manifests/"
    return bool(wanted) and wanted.items() <= labels.items()


def pod_labels(workload: JSON) -> JSON:
    labels: JSON = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def mounts(workload: JSON, volume: str) -> dict[str, JSON]:
    """container name → its mount of `volume`."""
    return {
        item["name"]: mount
        for item in containers_of(workload)
        for mount in item.get("volumeMounts", [])
        if mount["name"] == volume
    }


def volume(workload: JSON, name: str) -> JSON:
    (found,) = [v for v in pod_spec(workload)["volumes"] if v["name"] == name]
    return dict(found)


def mounted_file(workload: JSON, container: str, path: str) -> tuple[str, str]:
    """(volume name, file inside it) of an absolute path seen by ``container``."""
    best: tuple[str, str] | None = None
    for mount in container_of(workload, container).get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(root) and (best is None or len(root) > len(best[1])):
            best = (mount["name"], root)
    assert best is not None, f"{path} is on no volume of {container}"
    return best[0], path.removeprefix(best[1])
