"""Reading manifests/ as kubectl would: the overlays, their objects, pods and arguments.

A kustomization in manifests/ lists `resources` (files or other kustomizations), so an overlay
renders as the documents of those files, in order, recursively. One overlay, split-deployment,
also lists `transformers`, of two kinds and only in the forms it uses: a
``ReplacementTransformer`` copying a field of one object (kind, name) into others, and a
``PatchTransformer`` on one object that either deletes it (``$patch: delete``) or adds fields
to it (a merge that refuses to overwrite anything: the subset of a strategic merge patch where
both agree). `render(overlay)` does exactly that offline, refusing any other form, and a test
holds it equal to `kubectl kustomize` when kubectl is here.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = ("split", "split-deployment", "colocated")
NAMESPACE = "projectcontour"
NODEPORT = MANIFESTS / "nodeport" / "05-service-nodeport.yaml"
POD_KINDS = ("Deployment", "DaemonSet", "Job", "CronJob")

JSON = dict[str, Any]


def load(path: Path) -> list[JSON]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def _kustomization(directory: Path) -> JSON:
    (document,) = load(directory / "kustomization.yaml")
    assert set(document) <= {"apiVersion", "kind", "resources", "transformers"}, (
        f"{directory}: only `resources` and `transformers` (the module docstring)"
    )
    return document


def _render(directory: Path) -> list[tuple[Path, JSON]]:
    kustomization = _kustomization(directory)
    found: list[tuple[Path, JSON]] = []
    for entry in kustomization["resources"]:
        target = (directory / entry).resolve()
        if target.is_dir():
            found += _render(target)
        else:
            found += [(target, doc) for doc in load(target)]
    for entry in kustomization.get("transformers", []):
        for config in load(directory / entry):
            found = _transform(found, config)
    return found


def _select(found: list[tuple[Path, JSON]], selector: JSON) -> list[JSON]:
    assert set(selector) == {"kind", "name"}, f"unsupported selector {selector}"
    chosen = [
        doc for _, doc in found
        if (doc["kind"], doc["metadata"]["name"]) == (selector["kind"], selector["name"])
    ]  # fmt: skip
    assert chosen, f"no {selector['kind']}/{selector['name']} to transform"
    return chosen


def _field(doc: JSON, path: str) -> Any:
    value: Any = doc
    for step in path.split("."):
        value = value[step]
    return value


def _set_field(doc: JSON, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = doc
    for step in parents:
        target = target[step]
    target[last] = copy.deepcopy(value)


def _add(target: JSON, patch: JSON, where: str) -> None:
    """Add ``patch``'s fields to ``target``: maps merge, nothing already there is overwritten."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _add(target[key], value, f"{where}.{key}")
        else:
            assert key not in target, f"{where}.{key}: the offline rendering only adds fields"
            target[key] = copy.deepcopy(value)


def _transform(found: list[tuple[Path, JSON]], config: JSON) -> list[tuple[Path, JSON]]:
    assert config["apiVersion"] == "builtin", config["apiVersion"]
    if config["kind"] == "ReplacementTransformer":
        for replacement in config["replacements"]:
            source = replacement["source"]
            (origin,) = _select(found, {k: source[k] for k in ("kind", "name")})
            value = _field(origin, source["fieldPath"])
            for target in replacement["targets"]:
                assert set(target) == {"select", "fieldPaths"}, f"unsupported target {target}"
                for doc in _select(found, target["select"]):
                    for path in target["fieldPaths"]:
                        _set_field(doc, path, value)
        return found
    assert config["kind"] == "PatchTransformer", f"unsupported transformer {config['kind']}"
    patch = yaml.safe_load(config["patch"])
    chosen = _select(found, config["target"])
    if patch.get("$patch") == "delete":
        return [(path, doc) for path, doc in found if not any(doc is c for c in chosen)]
    assert "$patch" not in patch, patch["$patch"]
    additions = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind", "metadata")}
    assert set(patch.get("metadata", {})) <= {"name"}, "the patch adds to metadata"
    for doc in chosen:
        _add(doc, additions, f"{doc['kind']}/{doc['metadata']['name']}")
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
    """Every Deployment, DaemonSet, Job and CronJob; a CronJob as the Job it creates (kind
    ``CronJob``, its metadata, its ``jobTemplate``'s spec), so that ``spec.template`` is its
    pod template too."""
    return [
        {**doc, "spec": doc["spec"]["jobTemplate"]["spec"]} if kind == "CronJob" else doc
        for kind in POD_KINDS
        for doc in objects(overlay, kind)
    ]


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
