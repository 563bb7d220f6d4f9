"""A certificate renewal over real gRPC streams (tier 2): an SDS push, and no listener push.

The Secret's SDS name is its `namespace/name` (`TLSSecret`), so a renewal (new certificate and
key in the same Secret) changes one SDS resource and nothing that names it. The production path
runs here: the warm `DagBuilder`, the `Publisher` and the snapshot cache behind the xDS server.
A client subscribes as Envoy does (LDS, then the secrets the HTTPS listener names), ACKs, and
after the renewal must get exactly one response: the secret, same name, new material, new
version; the listener stream hears nothing. In every framing Envoy can be bootstrapped with:
ADS state of the world and delta, and separate LDS and SDS streams (state of the world, delta).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.listener.v3 import lds_pb2_grpc
from envoy.service.secret.v3 import sds_pb2_grpc
from kube_manifests import service
from xds_support import NODE, Client, ack, request

from controlplane.dag import DagBuilder
from controlplane.envoy import TranslateOptions
from controlplane.metrics import XdsMetrics
from controlplane.model import ObjectSet, parse_object
from controlplane.publisher import Publisher
from controlplane.testing import certs
from controlplane.xds import LISTENER_TYPE, SECRET_TYPE, SnapshotCache, XdsServer

JSON = dict[str, Any]
HOST = "secure.example.com"
SDS_NAME = "default/tls"


INGRESS: JSON = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "secure", "namespace": "default"},
    "spec": {
        "tls": [{"hosts": [HOST], "secretName": "tls"}],
        "rules": [
            {
                "host": HOST,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    },
}
# Parsed once: as in the store, an object nobody edited stays the very same object, so the warm
# builder redoes only what read the Secret.
UNCHANGED = [parse_object(service("web")), parse_object(INGRESS)]


def world(pair: certs.CertKey) -> ObjectSet:
    secret = parse_object(certs.tls_secret("tls", "default", pair))
    return ObjectSet.from_objects([*UNCHANGED, secret])


def bodies(response: Any) -> dict[str, bytes]:
    """Resource name → encoded resource of a SotW or delta response."""
    if isinstance(response, discovery_pb2.DeltaDiscoveryResponse):
        return {r.name: r.resource.value for r in response.resources}
    found = {}
    for resource in response.resources:
        if response.type_url == LISTENER_TYPE:
            found[listener_pb2.Listener.FromString(resource.value).name] = resource.value
        else:
            found[secret_pb2.Secret.FromString(resource.value).name] = resource.value
    return found


def sds_names(listeners: dict[str, bytes]) -> list[str]:
    """The SDS names the HTTPS listener's filter chains ask for, as Envoy reads them."""
    https = listener_pb2.Listener.FromString(listeners["ingress_https"])
    names = []
    for chain in https.filter_chains:
        context = tls_pb2.DownstreamTlsContext()
        chain.transport_socket.typed_config.Unpack(context)
        names += [c.name for c in context.common_tls_context.tls_certificate_sds_secret_configs]
    return names


def certificate_of(body: bytes) -> bytes:
    return secret_pb2.Secret.FromString(body).tls_certificate.certificate_chain.inline_bytes


@dataclass
class Speaker:
    """Subscribes and ACKs as Envoy does, in one framing, on the stream of each type."""

    streams: dict[str, Client]
    delta: bool

    async def subscribe(self, type_url: str, names: list[str]) -> Any:
        client = self.streams[type_url]
        if self.delta:
            message: Any = discovery_pb2.DeltaDiscoveryRequest(
                type_url=type_url, resource_names_subscribe=names, node=NODE
            )
        else:
            message = request(type_url, names, node=True)
        await client.send(message)
        return await client.recv()

    async def ack(self, response: Any, names: list[str]) -> None:
        client = self.streams[response.type_url]
        if self.delta:
            message: Any = discovery_pb2.DeltaDiscoveryRequest(
                type_url=response.type_url, response_nonce=response.nonce
            )
        else:
            message = ack(response, names)
        await client.send(message)

    def close(self) -> None:
        for client in set(self.streams.values()):
            client.close()


Opener = Callable[[grpc.aio.Channel, XdsServer], Speaker]


def ads(delta: bool) -> Opener:
    def open_ads(channel: grpc.aio.Channel, server: XdsServer) -> Speaker:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        method = stub.DeltaAggregatedResources if delta else stub.StreamAggregatedResources
        client = Client(method, server)
        return Speaker({LISTENER_TYPE: client, SECRET_TYPE: client}, delta)

    return open_ads


def separate(delta: bool) -> Opener:
    def open_separate(channel: grpc.aio.Channel, server: XdsServer) -> Speaker:
        lds = lds_pb2_grpc.ListenerDiscoveryServiceStub(channel)
        sds = sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
        listeners = Client(lds.DeltaListeners if delta else lds.StreamListeners, server)
        secrets = Client(sds.DeltaSecrets if delta else sds.StreamSecrets, server)
        return Speaker({LISTENER_TYPE: listeners, SECRET_TYPE: secrets}, delta)

    return open_separate


@pytest.mark.parametrize(
    "opener",
    [ads(delta=False), ads(delta=True), separate(delta=False), separate(delta=True)],
    ids=["ads", "delta-ads", "separate", "delta-separate"],
)
async def test_a_renewal_is_one_sds_push_and_no_listener_push(
    cache: SnapshotCache,
    server: XdsServer,
    channel: grpc.aio.Channel,
    metrics: XdsMetrics,
    opener: Opener,
) -> None:
    first, renewed = certs.self_signed([HOST]), certs.self_signed([HOST])
    builder = DagBuilder()
    publisher = Publisher(TranslateOptions(), cache)
    objects = world(first)
    publisher.publish(builder.build(objects), objects)
    envoy = opener(channel, server)
    try:
        lds = await envoy.subscribe(LISTENER_TYPE, [])
        await envoy.ack(lds, [])
        names = sds_names(bodies(lds))
        assert names == [SDS_NAME]
        sds = await envoy.subscribe(SECRET_TYPE, names)
        await envoy.ack(sds, names)
        assert certificate_of(bodies(sds)[SDS_NAME]) == first.cert_pem
        for client in envoy.streams.values():
            await client.nothing()
        listeners_before = cache.snapshot.resources(LISTENER_TYPE)
        lds_pushes = metrics.pushes.labels(type="lds")._value.get()
        assert lds_pushes >= 1

        objects = world(renewed)  # the Secret patched: new certificate and key, same Secret
        publisher.publish(builder.build(objects), objects)

        update = await envoy.streams[SECRET_TYPE].recv()
        assert update.type_url == SECRET_TYPE
        assert list(bodies(update)) == [SDS_NAME]
        assert certificate_of(bodies(update)[SDS_NAME]) == renewed.cert_pem
        if isinstance(update, discovery_pb2.DeltaDiscoveryResponse):
            assert update.resources[0].version == cache.snapshot.versions(SECRET_TYPE)[SDS_NAME]
            assert list(update.removed_resources) == []
        await envoy.ack(update, names)
        for client in envoy.streams.values():
            await client.nothing()
        assert cache.snapshot.resources(LISTENER_TYPE) == listeners_before
        assert metrics.pushes.labels(type="lds")._value.get() == lds_pushes
    finally:
        envoy.close()
