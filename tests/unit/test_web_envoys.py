"""What the status page reads of an xDS stream: the version each type last ACKed, which a NACK
of a newer version does not change, and the node it came from (the pure stream state machine)."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from controlplane.typeurls import CLUSTER_TYPE
from controlplane.web import envoy_rows
from controlplane.xds import NackRecord, Resource, Snapshot
from controlplane.xds.stream import StreamState
from controlplane.xds.stream_results import Framing


def snapshot(*names: str) -> Snapshot:
    return Snapshot.build(
        {
            CLUSTER_TYPE: [
                Resource.encode(CLUSTER_TYPE, n, cluster_pb2.Cluster(name=n)) for n in names
            ]
        }
    )


def answer(state: StreamState, current: Snapshot, error: str | None = None) -> str:
    """Pull the next response and answer it (ACK, or NACK with `error`); its version."""
    out = state.next_response(current)
    assert out is not None
    request = discovery_pb2.DiscoveryRequest(
        type_url=CLUSTER_TYPE, response_nonce=out.nonce, version_info=out.version
    )
    if error is not None:
        request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    state.on_request(request)
    return out.version


class Session:
    def __init__(self, state: StreamState) -> None:
        self.state = state


def test_acked_versions_follow_acks_and_ignore_nacks() -> None:
    state = StreamState(Framing.SOTW, make_before_break=False)
    first = discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE)
    first.node.id, first.node.cluster = "edge-1", "edge"
    state.on_request(first)
    assert state.acked_versions() == {}
    old = snapshot("a")
    version = answer(state, old)
    assert state.acked_versions() == {CLUSTER_TYPE: version}
    new = snapshot("a", "b")
    state.notify(CLUSTER_TYPE, {"b"})
    answer(state, new, error="no")
    assert state.acked_versions() == {CLUSTER_TYPE: version}

    nack = NackRecord("edge-1", CLUSTER_TYPE, new.version(CLUSTER_TYPE), "no", 3, 1.0)
    (row,) = envoy_rows([Session(state)], [nack], new)
    assert (row.node_id, row.cluster, row.streams) == ("edge-1", "edge", 1)
    assert [(t.type, t.acked, t.current) for t in row.types] == [("cds", version, False)]
    assert row.last_nack is not None and row.last_nack.message == "no"
    (current,) = envoy_rows([Session(state)], [], old)
    assert current.types[0].current and current.last_nack is None
