"""Fixtures shared by every test tier, and the Hypothesis profiles. Keep it small: tier-specific
fixtures live with the tier.

Hypothesis example counts come from profiles, never from the tests:

- `dev` (the default): 150 examples per property, randomised, failures kept in `.hypothesis/` and
  replayed first on the next run;
- `ci` (selected when `CI` is set to true, as `.ci/run` does): the same budget, derandomised so a
  CI run never fails on a counterexample that an unrelated change happened to find (`make fuzz`
  looks for those), no example database, and a reproduction blob printed on failure;
- `fuzz`: 4,000 examples per property, for `python -m bench fuzz` (`make fuzz`).

`HYPOTHESIS_PROFILE=NAME` (or pytest's `--hypothesis-profile NAME`) picks one explicitly.
"""

from __future__ import annotations

import os

# gRPC's C core logs every GOAWAY of a closing test server at info level; only errors matter here.
# Set before anything imports grpc (this conftest is loaded first).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from kubernetes_asyncio import client

from controlplane.sources import make_api_client
from controlplane.testing.envoy import find_envoy

# Building a DAG from a few dozen objects takes milliseconds: no per-example deadline, and
# generating those objects may be slower than Hypothesis expects of a strategy.
_PROPERTIES = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", _PROPERTIES, max_examples=150)
settings.register_profile(
    "ci", _PROPERTIES, max_examples=150, derandomize=True, database=None, print_blob=True
)
settings.register_profile("fuzz", _PROPERTIES, max_examples=4000)


def _profile() -> str:
    if chosen := os.environ.get("HYPOTHESIS_PROFILE"):
        return chosen
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


settings.load_profile(_profile())


@pytest.fixture(scope="session")
def envoy_binary() -> str:
    """Path of the ``envoy`` binary; tests that need it are skipped when it is not installed."""
    try:
        return find_envoy()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture
def kubeconfig(server: Any, tmp_path: Path) -> Path:
    """A kubeconfig for the tier's Kubernetes API test server (its own `server` fixture)."""
    path = tmp_path / "kubeconfig"
    server.write_kubeconfig(path)
    return Path(path)


@pytest.fixture
async def api(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    """An ApiClient for that server, made the way `serve --kubeconfig` makes one."""
    api_client = await make_api_client(kubeconfig)
    yield api_client
    await api_client.close()
