"""Fixtures for the Kubernetes API test server: a started server with a fake clock and the real
kubectl (`kubeconfig` and `api` for the server: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
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
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(kubeconfig, tmp_path / "kube-cache")
