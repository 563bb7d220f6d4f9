"""Helpers for the xDS tests: small Envoy resources, requests, and a gRPC test client."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from waiting import eventually

from controlplane.xds import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    Resource,
    Snapshot,
    XdsServer,
)

NODE = base_pb2.Node(id="envoy-1", cluster="ingress")


def cluster(name: str, *, eds: bool = True, service: str = "") -> Resource:
    msg = cluster_pb2.Cluster(name=name)
    if eds:
        msg.type = cluster_pb2.Cluster.EDS
        msg.eds_cluster_config.service_name = service or name
        msg.eds_cluster_config.eds_config.CopyFrom(
            config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource())
        )
    else:
        msg.type = cluster_pb2.Cluster.STATIC
    return Resource.encode(CLUSTER_TYPE, name, msg, eds_name=(service or name) if eds else None)


def assignment(name: str, *ports: int) -> Resource:
    msg = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    group = msg.endpoints.add()
    for port in ports:
        group.lb_endpoints.append(
            endpoint_components_pb2.LbEndpoint(
                endpoint=endpoint_components_pb2.Endpoint(
                    address=address_pb2.Address(
                        socket_address=address_pb2.SocketAddress(
                            address="10.0.0.1", port_value=port
                        )
                    )
                )
            )
        )
    return Resource.encode(ENDPOINT_TYPE, name, msg)


def listener(name: str, port: int = 8080) -> Resource:
    msg = listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address="0.0.0.0", port_value=port)
        ),
    )
    return Resource.encode(LISTENER_TYPE, name, msg)


def route(name: str, *clusters: str) -> Resource:
    vhost = route_components_pb2.VirtualHost(name="*", domains=["*"])
    for c in clusters:
        vhost.routes.append(
            route_components_pb2.Route(
                match=route_components_pb2.RouteMatch(prefix="/"),
                route=route_components_pb2.RouteAction(cluster=c),
            )
        )
    msg = route_pb2.RouteConfiguration(name=name, virtual_hosts=[vhost])
    return Resource.encode(ROUTE_TYPE, name, msg)


def snapshot(
    *,
    clusters: Iterable[Resource] = (),
    endpoints: Iterable[Resource] = (),
    listeners: Iterable[Resource] = (),
    routes: Iterable[Resource] = (),
) -> Snapshot:
    return Snapshot.build(
        {
            CLUSTER_TYPE: list(clusters),
            ENDPOINT_TYPE: list(endpoints),
            LISTENER_TYPE: list(listeners),
            ROUTE_TYPE: list(routes),
        }
    )


def request(
    type_url: str,
    names: Iterable[str] = (),
    *,
    nonce: str = "",
    version: str = "",
    error: str | None = None,
    node: bool = False,
) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=list(names), response_nonce=nonce, version_info=version
    )
    if node:
        req.node.CopyFrom(NODE)
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return req


def ack(response: Any, names: Iterable[str] = (), *, error: str | None = None) -> Any:
    """The request Envoy sends after applying (or, with ``error``, rejecting) ``response``."""
    return request(
        response.type_url, names, nonce=response.nonce, version=response.version_info, error=error
    )


_TAGS = itertools.count(1)
TAG = "x-test-stream"
"""The call metadata naming a test client, so `nothing()` finds the server's end of it."""


class Client:
    """A test xDS client over a real gRPC stream; responses are collected by a reader task.

    `nothing()` checks that the server sent nothing, without a sleep: it waits until the
    server's end of this stream has handled every request sent on it and its writer sleeps with
    nothing to look at, and every response written has arrived; only then is the queue read.
    """

    def __init__(self, method: Any, server: XdsServer) -> None:
        self.tag = str(next(_TAGS))
        self.call = method(metadata=((TAG, self.tag),))
        self.server = server
        self.sent = 0
        self.received = 0
        self.responses: asyncio.Queue[Any] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.call.read()
            if message is grpc.aio.EOF:
                return
            self.received += 1
            await self.responses.put(message)

    async def send(self, message: Any) -> None:
        await self.call.write(message)
        self.sent += 1

    async def recv(self, wait: float = 2.0) -> Any:
        return await asyncio.wait_for(self.responses.get(), wait)

    def _settled(self) -> bool:
        mine = [s for s in self.server.sessions if s.metadata.get(TAG) == self.tag]
        if not mine:
            return self.sent == 0
        (session,) = mine
        return session.handled == self.sent and session.idle and session.sent == self.received

    async def nothing(self) -> None:
        """Assert that the server sends this stream nothing for what happened so far."""
        await eventually(self._settled, within=5.0, message="the xDS stream settled")
        assert self.responses.empty(), f"unexpected response: {self.responses.get_nowait()}"

    def close(self) -> None:
        self.call.cancel()
        self.reader.cancel()
