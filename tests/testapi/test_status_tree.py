"""`controlplane status --kubeconfig` and `kubectl ingressroute tree` against the test API server:
the trees show the statuses the cluster holds (the same as `status -f` on the same manifests when
the cluster holds the controller's statuses), the plugin finds the kubeconfig as kubectl does,
and a cluster without the CRD or without statuses is shown for what it is."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from testapi_support import FIXTURES, KUBECTL, KUBECTL_FOUND, Result

from controlplane.dag import BuildOptions, build
from controlplane.model import ObjectSet, parse_object
from controlplane.status_view import from_cluster, from_manifests, render_text
from controlplane.testing.apiserver import TestApiServer

JSON = dict[str, Any]
BIN = Path(sys.executable).parent
PLUGIN = BIN / "kubectl-ingressroute"


def _route(name: str, namespace: str, spec: JSON) -> JSON:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _service(name: str, namespace: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": [{"port": 80}]},
    }


MANIFESTS = [
    _service("home", "web"),
    _service("blog", "blog"),
    _route(
        "root",
        "web",
        {
            "virtualhost": {"fqdn": "www.example.com"},
            "routes": [
                {"match": "/", "services": [{"name": "home", "port": 80}]},
                {"match": "/blog", "delegate": {"name": "blog", "namespace": "blog"}},
                {"match": "/gone", "delegate": {"name": "nothere"}},
            ],
        },
    ),
    _route(
        "blog", "blog", {"routes": [{"match": "/blog", "services": [{"name": "blog", "port": 80}]}]}
    ),
    _route("lost", "team", {"routes": [{"match": "/x", "services": [{"name": "x", "port": 80}]}]}),
]


async def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return Result(proc.returncode or 0, out.decode(), err.decode())


async def _status(*args: str, env: dict[str, str] | None = None) -> Result:
    return await _run(sys.executable, "-m", "controlplane", "status", *args, env=env)


def _install(server: TestApiServer, *, with_statuses: bool) -> None:
    """The manifests in the cluster, with the statuses the controller would write for them."""
    for crd in yaml.safe_load_all((FIXTURES / "crds.yaml").read_text()):
        server.put_object(crd)
    for namespace in ("web", "blog", "team"):
        server.put_object(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    objects = ObjectSet.from_objects(parse_object(raw) for raw in MANIFESTS)
    statuses = {(s.namespace, s.name): s for s in build(objects, BuildOptions()).statuses}
    for raw in MANIFESTS:
        obj = dict(raw)
        status = statuses.get((raw["metadata"]["namespace"], raw["metadata"]["name"]))
        if with_statuses and raw["kind"] == "IngressRoute" and status is not None:
            obj["status"] = status.status.model_dump(by_alias=True, exclude_none=True)
        server.put_object(obj)


async def test_cluster_view_is_the_manifests_view_when_the_cluster_holds_its_statuses(
    server: TestApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    _install(server, with_statuses=True)
    (tmp_path / "manifests.yaml").write_text(yaml.safe_dump_all(MANIFESTS))

    cluster = await from_cluster(kubeconfig)
    files = from_manifests([tmp_path])
    text = await _status("--kubeconfig", str(kubeconfig))

    assert cluster == files
    assert text.code == 0 and text.err == "", text.err
    assert text.out.splitlines()[:5] == [
        "web/root  www.example.com  valid  1 warning:",
        '│     route "/gone": delegate web/nothere not found',
        "├── /blog → blog/blog  valid",
        "└── /gone → web/nothere  not found",
        "",
    ]
    assert "\x1b[" not in text.out  # piped: plain


async def test_kubectl_ingressroute_tree_as_a_plugin(
    server: TestApiServer, kubeconfig: Path
) -> None:
    if not KUBECTL_FOUND:
        pytest.skip("kubectl is not installed")
    assert PLUGIN.exists(), f"{PLUGIN} is missing: reinstall the package (make)"
    _install(server, with_statuses=True)
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(kubeconfig.parent),  # no ~/.kube/config there
        "KUBECONFIG": f"{kubeconfig.parent / 'absent'}{os.pathsep}{kubeconfig}",
    }

    listed = await _run(KUBECTL, "plugin", "list", env=env)
    tree = await _run(KUBECTL, "ingressroute", "tree", "-n", "web", env=env)
    as_yaml = await _run(KUBECTL, "ingressroute", "tree", "-o", "yaml", env=env)
    flags = await _run(
        KUBECTL, "ingressroute", "tree", "--kubeconfig", str(kubeconfig), "-n", "team",
        env={**env, "KUBECONFIG": ""},
    )  # fmt: skip
    nothing = await _run(KUBECTL, "ingressroute", "tree", env={**env, "KUBECONFIG": ""})

    assert str(PLUGIN) in listed.out
    assert tree.code == 0, tree.err
    assert tree.out.startswith("web/root  www.example.com  valid  1 warning:\n")
    assert tree.out.rstrip().endswith("1 IngressRoute: 1 valid")
    assert [o["name"] for o in yaml.safe_load(as_yaml.out)["orphans"]] == ["lost"]
    assert flags.out.startswith("no root IngressRoute\n\nnot reached from any root:\nteam/lost")
    assert nothing.code == 2 and nothing.out == ""
    assert nothing.err.strip() == (
        "kubectl ingressroute tree: no kubeconfig: pass --kubeconfig FILE, set KUBECONFIG, "
        "or read manifests with -f DIR"
    )


async def test_a_cluster_without_statuses_or_generations_behind(
    server: TestApiServer, kubeconfig: Path
) -> None:
    _install(server, with_statuses=False)
    blog = server.get_object("contour.heptio.com/v1beta1", "IngressRoute", "blog", "blog")
    blog["status"] = {"currentStatus": "valid", "description": "valid IngressRoute"}
    blog["status"]["observedGeneration"] = 1
    server.put_object(blog)
    blog["spec"]["routes"][0]["match"] = "/blog/"
    server.put_object(blog)  # generation 2: the status is for generation 1

    text = render_text(await from_cluster(kubeconfig))

    assert text.splitlines()[:3] == [
        "web/root  www.example.com  no status",
        "├── /blog → blog/blog  valid  (stale: written for an older generation)",
        "└── /gone → web/nothere  not found",
    ]
    assert text.rstrip().endswith("3 IngressRoutes: 1 valid, 2 without status")


async def test_a_cluster_without_the_crd(server: TestApiServer, kubeconfig: Path) -> None:
    result = await _status("--kubeconfig", str(kubeconfig), "-o", "json")

    assert result.code == 0
    assert json.loads(result.out) == {
        "roots": [],
        "orphans": [],
        "summary": {"valid": 0, "invalid": 0, "orphaned": 0},
    }
    assert result.err.strip() == (
        "controlplane status: no IngressRoute CRD in this cluster: nothing to show"
    )
