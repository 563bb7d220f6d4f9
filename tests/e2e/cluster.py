"""A Kubernetes API test server + the real kubectl, for end-to-end tests of the kube path."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBECTL = shutil.which("kubectl")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Kubectl:
    kubeconfig: Path
    cache_dir: Path

    async def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        if KUBECTL is None:
            pytest.skip("kubectl is not installed")
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else None,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {err.decode()}")
        return out.decode()

    async def apply(self, *documents: Mapping[str, Any]) -> str:
        return await self.run("apply", "-f", "-", stdin=yaml.safe_dump_all(list(documents)))

    async def get_json(self, *args: str) -> Any:
        return json.loads(await self.run("get", *args, "-o", "json"))


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def ingressroute(
    name: str, fqdn: str | None, routes: list[dict[str, Any]], *, namespace: str = "default"
) -> dict[str, Any]:
    spec: dict[str, Any] = {"routes": routes}
    if fqdn is not None:
        spec["virtualhost"] = {"fqdn": fqdn}
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
