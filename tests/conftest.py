"""Fixtures shared by every test tier. Keep it small: tier-specific fixtures live with the tier."""

from __future__ import annotations

import os

# gRPC's C core logs every GOAWAY of a closing test server at info level; only errors matter here.
# Set before anything imports grpc (this conftest is loaded first).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import pytest

from controlplane.testing.envoy import find_envoy


@pytest.fixture(scope="session")
def envoy_binary() -> str:
    """Path of the ``envoy`` binary; tests that need it are skipped when it is not installed."""
    try:
        return find_envoy()
    except FileNotFoundError as error:
        pytest.skip(str(error))
