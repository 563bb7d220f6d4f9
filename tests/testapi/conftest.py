"""Fixtures for the Kubernetes API test server: a started server with a fake clock, a
kubeconfig for it, the real kubectl, and a kubernetes-asyncio ApiClient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config
from testapi_support import FakeClock, Kubectl

from controlplane.testing.apiserver import TestApiServer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def server(clock: FakeClock) -> AsyncIterator[TestApiServer]:
    api = TestApiServer(bookmark_interval=0.2, history_limit=100, clock=clock)
    await api.start("127.0.0.1", 0)
    yield api
    await api.stop()


@pytest.fixture
def kubeconfig(server: TestApiServer, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    server.write_kubeconfig(path)
    return path


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(kubeconfig, tmp_path / "kube-cache")


@pytest.fixture
async def api(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration=configuration) as api_client:
        yield api_client
