"""The stream state machine on plain objects: no gRPC, no event loop (tier 1)."""

from __future__ import annotations

from typing import Any

from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from xds_support import NODE, ack, assignment, cluster, listener, request, route, snapshot

from controlplane.xds import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SECRET_TYPE,
    Resource,
    Snapshot,
)
from controlplane.xds.stream import Framing, StreamState


def drain(state: StreamState, snap: Snapshot) -> list[Any]:
    """Every response the stream would write now, decoded."""
    out = []
    while (response := state.next_response(snap)) is not None:
        decode = (
            discovery_pb2.DiscoveryResponse
            if state.framing is Framing.SOTW
            else discovery_pb2.DeltaDiscoveryResponse
        )
        message = decode.FromString(response.payload)
        assert message.nonce == response.nonce
        out.append(message)
    return out


def notify_all(state: StreamState, old: Snapshot, new: Snapshot) -> None:
    for type_url in new.type_urls | old.type_urls:
        if changed := new.changed_names(old, type_url):
            state.notify(type_url, changed)


def sotw(make_before_break: bool = False) -> StreamState:
    return StreamState(Framing.SOTW, make_before_break=make_before_break)


def cla_names(response: Any) -> list[str]:
    return [
        endpoint_pb2.ClusterLoadAssignment.FromString(r.value).cluster_name
        for r in response.resources
    ]


BASE = snapshot(
    clusters=[cluster("a"), cluster("b", eds=False)],
    endpoints=[assignment("a", 80)],
    listeners=[listener("ingress_http")],
    routes=[route("ingress_http", "a"), route("ingress_https", "a")],
)


class TestStateOfTheWorld:
    def test_wildcard_first_request_gets_the_full_set_then_only_changes(self) -> None:
        state = sotw()
        state.on_request(request(CLUSTER_TYPE, node=True))
        [cds] = drain(state, BASE)
        assert len(cds.resources) == 2 and cds.version_info == BASE.version(CLUSTER_TYPE)
        assert state.node == NODE
        state.on_request(ack(cds))
        assert drain(state, BASE) == []
        notify_all(state, BASE, BASE)
        state.notify(CLUSTER_TYPE, {"a"})  # a spurious wake changes nothing
        assert drain(state, BASE) == []

    def test_nack_keeps_the_stream_and_is_not_resent(self) -> None:
        state = sotw()
        state.on_request(request(CLUSTER_TYPE))
        [cds] = drain(state, BASE)
        result = state.on_request(ack(cds, error="bad cluster"))
        assert result.nack is not None
        assert (result.nack.message, result.nack.version) == ("bad cluster", cds.version_info)
        assert result.nack.code == 3
        assert drain(state, BASE) == []
        new = snapshot(clusters=[cluster("a")])
        notify_all(state, BASE, new)
        [fixed] = drain(state, new)
        assert len(fixed.resources) == 1

    def test_stale_nonce_changes_nothing(self) -> None:
        state = sotw()
        state.on_request(request(ROUTE_TYPE, ["ingress_http"]))
        [first] = drain(state, BASE)
        state.on_request(request(ROUTE_TYPE, ["ingress_http", "ingress_https"], nonce=first.nonce))
        [second] = drain(state, BASE)
        result = state.on_request(request(ROUTE_TYPE, ["other"], nonce=first.nonce))
        assert result.stale
        assert state.interest(ROUTE_TYPE) == {"ingress_http", "ingress_https"}
        assert drain(state, BASE) == []
        assert second.nonce != first.nonce

    def test_unknown_type_is_ignored(self) -> None:
        state = sotw()
        assert state.on_request(request("type.googleapis.com/envoy.Nope")).ignored
        assert drain(state, BASE) == []

    def test_eds_answers_every_name_and_only_new_names_later(self) -> None:
        state = sotw()
        state.on_request(request(ENDPOINT_TYPE, ["a", "zz"]))
        [eds] = drain(state, BASE)
        assert cla_names(eds) == ["a", "zz"]
        state.on_request(ack(eds, ["a", "zz", "b"]))
        [more] = drain(state, BASE)
        assert cla_names(more) == ["b"]
        state.on_request(ack(more, ["a"]))  # unsubscribing needs no answer
        assert drain(state, BASE) == []
        assert state.interest(ENDPOINT_TYPE) == {"a"}
        state.on_request(request(ENDPOINT_TYPE, ["a", "zz"], nonce=more.nonce))
        [back] = drain(state, BASE)  # re-subscribed: answered again
        assert cla_names(back) == ["zz"]

    def test_repeated_eds_ack_is_a_request_and_is_answered(self) -> None:
        state = sotw()
        state.on_request(request(ENDPOINT_TYPE, ["a"]))
        [eds] = drain(state, BASE)
        state.on_request(ack(eds, ["a"]))
        assert drain(state, BASE) == []
        state.on_request(ack(eds, ["a"]))
        [again] = drain(state, BASE)
        assert cla_names(again) == ["a"]

    def test_removed_assignment_still_subscribed_is_sent_empty(self) -> None:
        state = sotw()
        state.on_request(request(ENDPOINT_TYPE, ["a"]))
        state.on_request(ack(drain(state, BASE)[0], ["a"]))
        new = BASE.with_changes(ENDPOINT_TYPE, {"a": None})
        notify_all(state, BASE, new)
        [eds] = drain(state, new)
        cla = endpoint_pb2.ClusterLoadAssignment.FromString(eds.resources[0].value)
        assert cla.cluster_name == "a" and not cla.endpoints

    def test_rds_sends_existing_requested_names_and_newly_subscribed_ones(self) -> None:
        state = sotw()
        state.on_request(request(ROUTE_TYPE, ["nope"]))
        assert drain(state, BASE) == []  # Envoy waits for a name that does not exist
        state.on_request(request(ROUTE_TYPE, ["nope", "ingress_https"]))
        [rds] = drain(state, BASE)
        assert len(rds.resources) == 1

    def test_pushes_leave_in_order(self) -> None:
        state = sotw()
        empty = snapshot()
        for type_url, names in [
            (ROUTE_TYPE, ["ingress_http"]),
            (LISTENER_TYPE, []),
            (SECRET_TYPE, []),
            (ENDPOINT_TYPE, ["a"]),
            (CLUSTER_TYPE, []),
        ]:
            state.on_request(request(type_url, names))
        first = drain(state, empty)
        assert [r.type_url for r in first] == [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE]
        for response in first:
            state.on_request(ack(response, ["a"] if response.type_url == ENDPOINT_TYPE else []))
        notify_all(state, empty, BASE)
        assert [r.type_url for r in drain(state, BASE)] == [
            CLUSTER_TYPE,
            ENDPOINT_TYPE,
            LISTENER_TYPE,
            ROUTE_TYPE,
        ]

    def test_changed_cluster_resends_its_assignment_unless_that_was_nacked(self) -> None:
        state = sotw()
        state.on_request(request(CLUSTER_TYPE))
        state.on_request(request(ENDPOINT_TYPE, ["a"]))
        cds, eds = drain(state, BASE)
        state.on_request(ack(cds))
        state.on_request(ack(eds, ["a"], error="bad endpoints"))
        changed = BASE.with_changes(CLUSTER_TYPE, {"a": _slow("a")})
        notify_all(state, BASE, changed)
        assert [r.type_url for r in drain(state, changed)] == [CLUSTER_TYPE]
        state.on_request(request(ENDPOINT_TYPE, ["a"], nonce=eds.nonce))
        fixed = changed.with_changes(ENDPOINT_TYPE, {"a": assignment("a", 81)})
        notify_all(state, changed, fixed)
        [eds2] = drain(state, fixed)
        state.on_request(ack(eds2, ["a"]))
        again = fixed.with_changes(CLUSTER_TYPE, {"a": _slow("a", 5)})
        notify_all(state, fixed, again)
        assert [r.type_url for r in drain(state, again)] == [CLUSTER_TYPE, ENDPOINT_TYPE]


def _slow(name: str, seconds: int = 3) -> Resource:
    from envoy.config.cluster.v3 import cluster_pb2

    message = cluster_pb2.Cluster.FromString(cluster(name).body)
    message.connect_timeout.seconds = seconds
    return Resource.encode(CLUSTER_TYPE, name, message, eds_name=name)


class TestMakeBeforeBreak:
    def converge(self, state: StreamState, snap: Snapshot) -> None:
        """Play a well-behaved Envoy with static clusters: ACK everything until quiet."""
        for _ in range(10):
            responses = drain(state, snap)
            if not responses:
                return
            for response in responses:
                names = ["ingress_http"] if response.type_url == ROUTE_TYPE else []
                state.on_request(ack(response, names))
        raise AssertionError("did not converge")

    def test_routes_wait_for_new_clusters_and_old_clusters_wait_for_routes(self) -> None:
        g0 = snapshot(
            clusters=[cluster("A")],
            endpoints=[assignment("A", 80)],
            listeners=[listener("ingress_http")],
            routes=[route("ingress_http", "A")],
        )
        g1 = snapshot(
            clusters=[cluster("B")],
            endpoints=[assignment("B", 81)],
            listeners=[listener("ingress_http")],
            routes=[route("ingress_http", "B")],
        )
        state = sotw(make_before_break=True)
        for type_url, names in [
            (CLUSTER_TYPE, []),
            (ENDPOINT_TYPE, ["A"]),
            (LISTENER_TYPE, []),
            (ROUTE_TYPE, ["ingress_http"]),
        ]:
            state.on_request(request(type_url, names))
        # Before the client ACKed CDS and EDS, no listener or route config is sent.
        cds, eds = drain(state, g0)
        assert (cds.type_url, eds.type_url) == (CLUSTER_TYPE, ENDPOINT_TYPE)
        state.on_request(ack(cds))
        assert drain(state, g0) == []
        state.on_request(ack(eds, ["A"]))
        lds, rds = drain(state, g0)
        state.on_request(ack(lds))
        state.on_request(ack(rds, ["ingress_http"]))
        assert drain(state, g0) == []

        notify_all(state, g0, g1)
        [cds] = drain(state, g1)  # old and new clusters; routes held back; A's endpoints kept
        assert sorted(_cluster_names(cds)) == ["A", "B"]
        state.on_request(ack(cds))
        state.on_request(request(ENDPOINT_TYPE, ["A", "B"], nonce=eds.nonce))
        [eds_b] = drain(state, g1)
        assert cla_names(eds_b) == ["B"]
        state.on_request(ack(eds_b, ["A", "B"]))
        [rds] = drain(state, g1)  # the listener did not change
        assert rds.type_url == ROUTE_TYPE
        state.on_request(ack(rds, ["ingress_http"]))
        [cds] = drain(state, g1)  # now A can go
        assert _cluster_names(cds) == ["B"]
        state.on_request(ack(cds))
        state.on_request(ack(eds_b, ["B"]))
        assert drain(state, g1) == []

    def test_rejected_clusters_hold_the_routes(self) -> None:
        g0 = snapshot(clusters=[cluster("A", eds=False)], routes=[route("ingress_http", "A")])
        g1 = snapshot(clusters=[cluster("B", eds=False)], routes=[route("ingress_http", "B")])
        state = sotw(make_before_break=True)
        state.on_request(request(CLUSTER_TYPE))
        state.on_request(request(ROUTE_TYPE, ["ingress_http"]))
        self.converge(state, g0)
        notify_all(state, g0, g1)
        [cds] = drain(state, g1)
        state.on_request(ack(cds, error="no"))
        assert drain(state, g1) == []

    def test_a_rejected_cluster_left_out_is_not_kept_for_the_client(self) -> None:
        # The quarantine leaves out the cluster Envoy refused; the client never held it, so
        # make-before-break must not keep it (that would send the rejected set again).
        g0 = snapshot(clusters=[cluster("A", eds=False)], routes=[route("ingress_http", "A")])
        g1 = snapshot(
            clusters=[cluster("A", eds=False), cluster("bad", eds=False)],
            routes=[route("ingress_http", "A", "bad")],
        )
        state = sotw(make_before_break=True)
        state.on_request(request(CLUSTER_TYPE))
        state.on_request(request(ROUTE_TYPE, ["ingress_http"]))
        self.converge(state, g0)
        notify_all(state, g0, g1)
        [cds] = drain(state, g1)
        state.on_request(ack(cds, error='name: "bad"'))
        contained = g1.with_changes(CLUSTER_TYPE, {"bad": None})
        notify_all(state, g1, contained)
        # Only the cluster it holds; and the routes no longer wait: it holds every cluster.
        again, rds = drain(state, contained)
        assert _cluster_names(again) == ["A"]
        assert rds.type_url == ROUTE_TYPE

    def test_without_make_before_break_everything_goes_at_once(self) -> None:
        state = sotw(make_before_break=False)
        state.on_request(request(CLUSTER_TYPE))
        state.on_request(request(LISTENER_TYPE))
        assert [r.type_url for r in drain(state, BASE)] == [CLUSTER_TYPE, LISTENER_TYPE]


def _cluster_names(response: Any) -> list[str]:
    from envoy.config.cluster.v3 import cluster_pb2

    return [cluster_pb2.Cluster.FromString(r.value).name for r in response.resources]


def delta_request(
    type_url: str,
    subscribe: list[str] | None = None,
    unsubscribe: list[str] | None = None,
    *,
    nonce: str = "",
    initial: dict[str, str] | None = None,
    error: str | None = None,
) -> discovery_pb2.DeltaDiscoveryRequest:
    req = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url,
        resource_names_subscribe=subscribe or [],
        resource_names_unsubscribe=unsubscribe or [],
        response_nonce=nonce,
        initial_resource_versions=initial or {},
    )
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
    return req


class TestDelta:
    def delta(self) -> StreamState:
        return StreamState(Framing.DELTA, make_before_break=False)

    def test_first_response_carries_everything_then_only_changes(self) -> None:
        state = self.delta()
        state.on_delta_request(delta_request(CLUSTER_TYPE))
        [first] = drain(state, BASE)
        assert sorted(r.name for r in first.resources) == ["a", "b"]
        assert {r.name: r.version for r in first.resources} == {
            n: r.version for n, r in BASE.resources(CLUSTER_TYPE).items()
        }
        state.on_delta_request(delta_request(CLUSTER_TYPE, nonce=first.nonce))
        new = BASE.with_changes(CLUSTER_TYPE, {"b": None, "c": cluster("c")})
        notify_all(state, BASE, new)
        [second] = drain(state, new)
        assert [r.name for r in second.resources] == ["c"]
        assert list(second.removed_resources) == ["b"]

    def test_a_rejected_diff_is_sent_again_whole_once_part_of_it_changes(self) -> None:
        # Envoy refuses a whole response when one resource breaks a `validate` rule: the good
        # clusters of it were never applied. When the culprit is left out, they must come again
        # (with nothing for the culprit, which the client never held); until then, nothing.
        state = self.delta()
        state.on_delta_request(delta_request(CLUSTER_TYPE))
        [first] = drain(state, BASE)
        result = state.on_delta_request(delta_request(CLUSTER_TYPE, nonce=first.nonce, error="b"))
        assert result.nack is not None
        assert dict(result.nack.resources) == dict(BASE.versions(CLUSTER_TYPE))
        notify_all(state, BASE, BASE)
        state.notify(CLUSTER_TYPE, {"a"})
        assert drain(state, BASE) == []
        without_b = BASE.with_changes(CLUSTER_TYPE, {"b": None})
        notify_all(state, BASE, without_b)
        [again] = drain(state, without_b)
        assert [r.name for r in again.resources] == ["a"]
        assert list(again.removed_resources) == []
        state.on_delta_request(delta_request(CLUSTER_TYPE, nonce=again.nonce))
        assert drain(state, without_b) == []

    def test_a_rejected_sotw_diff_is_sent_again_whole_too(self) -> None:
        state = sotw()
        state.on_request(request(ROUTE_TYPE, ["ingress_http", "ingress_https"]))
        [first] = drain(state, BASE)
        assert len(first.resources) == 2
        state.on_request(ack(first, ["ingress_http", "ingress_https"], error="missing ): ("))
        fixed = BASE.with_changes(ROUTE_TYPE, {"ingress_http": route("ingress_http", "b")})
        notify_all(state, BASE, fixed)
        [again] = drain(state, fixed)
        assert len(again.resources) == 2  # ingress_https too: it may never have been applied

    def test_initial_resource_versions_are_honoured(self) -> None:
        state = self.delta()
        have = {"a": BASE.resources(CLUSTER_TYPE)["a"].version, "b": "old", "gone": "x"}
        state.on_delta_request(delta_request(CLUSTER_TYPE, initial=have))
        [response] = drain(state, BASE)
        assert [r.name for r in response.resources] == ["b"]
        assert list(response.removed_resources) == ["gone"]

    def test_reconnect_with_everything_current_gets_an_empty_answer(self) -> None:
        state = self.delta()
        have = dict(BASE.versions(CLUSTER_TYPE))
        state.on_delta_request(delta_request(CLUSTER_TYPE, initial=have))
        [response] = drain(state, BASE)
        assert not response.resources and not response.removed_resources
        assert response.system_version_info == BASE.version(CLUSTER_TYPE)

    def test_named_subscriptions_and_never_existing_names(self) -> None:
        state = self.delta()
        state.on_delta_request(delta_request(ROUTE_TYPE, ["ingress_http", "missing"]))
        [first] = drain(state, BASE)
        assert [r.name for r in first.resources] == ["ingress_http"]
        assert list(first.removed_resources) == ["missing"]
        # Subscription changes apply whatever the nonce, even a stale one.
        state.on_delta_request(
            delta_request(ROUTE_TYPE, ["ingress_https"], ["ingress_http"], nonce="999")
        )
        [second] = drain(state, BASE)
        assert [r.name for r in second.resources] == ["ingress_https"]
        assert state.interest(ROUTE_TYPE) == {"missing", "ingress_https"}

    def test_eds_missing_names_get_empty_assignments_not_removals(self) -> None:
        state = self.delta()
        state.on_delta_request(delta_request(ENDPOINT_TYPE, ["a", "zz"]))
        [response] = drain(state, BASE)
        assert sorted(r.name for r in response.resources) == ["a", "zz"]
        assert not response.removed_resources

    def test_nack_is_not_resent(self) -> None:
        state = self.delta()
        state.on_delta_request(delta_request(ROUTE_TYPE, ["ingress_http"]))
        [first] = drain(state, BASE)
        result = state.on_delta_request(delta_request(ROUTE_TYPE, nonce=first.nonce, error="bad"))
        assert result.nack is not None and result.nack.message == "bad"
        notify_all(state, BASE, BASE)
        state.notify(ROUTE_TYPE, {"ingress_http"})
        assert drain(state, BASE) == []
        new = BASE.with_changes(ROUTE_TYPE, {"ingress_http": route("ingress_http", "b")})
        notify_all(state, BASE, new)
        [fixed] = drain(state, new)
        assert [r.name for r in fixed.resources] == ["ingress_http"]
