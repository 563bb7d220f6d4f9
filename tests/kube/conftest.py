"""A Kubernetes API test server per test (`kubeconfig` and `api` for it: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from controlplane.testing.apiserver import TestApiServer


@pytest.fixture
async def server() -> AsyncIterator[TestApiServer]:
    api = TestApiServer(bookmark_interval=0.1, history_limit=1000)
    await api.start("127.0.0.1", 0)
    yield api
    await api.stop()
