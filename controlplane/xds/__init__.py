"""xDS: encoded snapshots, the per-stream protocol state machine, and the gRPC services.

Public surface used by the runtime::

    cache = SnapshotCache(metrics=xds_metrics(registry))
    server = XdsServer(cache, ServerSettings(...))
    port = await server.start("127.0.0.1:8001")
    cache.publish(Snapshot.build({CLUSTER_TYPE: [Resource.encode(CLUSTER_TYPE, name, msg)], ...}))
    cache.update(ENDPOINT_TYPE, {name: Resource.encode(...) or None})
    cache.listen(listener)          # NACK records (and ACKs it asks for) go to the quarantine
    await server.stop(grace=1.0)

    tls = TlsFiles.of(ca, cert, key)   # mutual TLS (all three or none): XdsServer(cache, tls=tls)
    config = await fetch_config(address, tls=tls)        # what `controlplane xds` prints

This package imports neither the DAG, the translator nor the sources (ARCHITECTURE §2).
"""

from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    PUSH_ORDER,
    ROUTE_TYPE,
    SECRET_TYPE,
    WILDCARD_TYPES,
)
from controlplane.xds.cache import NackRecord, SnapshotCache, VerdictListener
from controlplane.xds.client import (
    Fetched,
    fetch_config,
    fetch_resources,
    open_channel,
    watch_config,
)
from controlplane.xds.server import ServerSettings, XdsServer, is_loopback
from controlplane.xds.snapshot import Resource, Snapshot, version_of
from controlplane.xds.tls import SERVER_NAME, ServerCertificates, TlsFiles, channel_credentials

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
    "PUSH_ORDER",
    "ROUTE_TYPE",
    "SECRET_TYPE",
    "SERVER_NAME",
    "WILDCARD_TYPES",
    "Fetched",
    "NackRecord",
    "Resource",
    "ServerCertificates",
    "ServerSettings",
    "Snapshot",
    "SnapshotCache",
    "TlsFiles",
    "VerdictListener",
    "XdsServer",
    "channel_credentials",
    "fetch_config",
    "fetch_resources",
    "is_loopback",
    "open_channel",
    "version_of",
    "watch_config",
]
