"""A Kubernetes API test server per test, and an ApiClient made the way `serve` makes one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from controlplane.sources.kubeclient import make_api_client
from controlplane.testing.apiserver import TestApiServer


@pytest.fixture
async def server() -> AsyncIterator[TestApiServer]:
    api = TestApiServer(bookmark_interval=0.1, history_limit=1000)
    await api.start("127.0.0.1", 0)
    yield api
    await api.stop()


@pytest.fixture
def kubeconfig(server: TestApiServer, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    server.write_kubeconfig(path)
    return path


@pytest.fixture
async def api(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    api_client = await make_api_client(kubeconfig)
    yield api_client
    await api_client.close()
