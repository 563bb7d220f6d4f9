"""Fixtures for the xDS tests: a cache, a server on 127.0.0.1:0 and ADS clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc
from prometheus_client import CollectorRegistry
from xds_support import Client

from controlplane.metrics import XdsMetrics, xds_metrics
from controlplane.xds import ServerSettings, SnapshotCache, XdsServer


@pytest.fixture
def metrics() -> XdsMetrics:
    return xds_metrics(CollectorRegistry())


@pytest.fixture
def cache(metrics: XdsMetrics) -> SnapshotCache:
    return SnapshotCache(metrics=metrics)


@pytest.fixture
def settings() -> ServerSettings:
    return ServerSettings(write_timeout_s=1.0)


@pytest.fixture
async def server(cache: SnapshotCache, settings: ServerSettings) -> AsyncIterator[XdsServer]:
    srv = XdsServer(cache, settings)
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(grace=0)


@pytest.fixture
async def channel(server: XdsServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@pytest.fixture
async def ads(channel: grpc.aio.Channel, server: XdsServer) -> AsyncIterator[Any]:
    """A factory of ADS clients; every client is closed at the end of the test."""
    clients: list[Client] = []

    def open_stream(method: str = "StreamAggregatedResources") -> Client:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        client = Client(getattr(stub, method), server)
        clients.append(client)
        return client

    yield open_stream
    for client in clients:
        client.close()
