"""What streams share: interned subscriptions, versions over a shared base, the grouped index."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from prometheus_client import CollectorRegistry
from xds_support import ack, assignment, cluster, listener, request, route, snapshot

from controlplane.metrics import xds_metrics
from controlplane.xds import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, Snapshot
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.sharing import NO_NAMES, Subscriptions, Versions, union
from controlplane.xds.stream import Framing, StreamState

NAMES = [f"ns/app{i}/http" for i in range(1_000)]
BIG = snapshot(
    clusters=[cluster(n) for n in NAMES],
    endpoints=[assignment(n, 80) for n in NAMES],
    listeners=[listener("ingress_http")],
    routes=[route("ingress_http", *NAMES[:3])],
)


def drain(state: StreamState, snap: Snapshot) -> list[Any]:
    out = []
    while (response := state.next_response(snap)) is not None:
        out.append(discovery_pb2.DiscoveryResponse.FromString(response.payload))
    return out


def envoy_like(subscriptions: Subscriptions, snap: Snapshot = BIG) -> StreamState:
    """A make-before-break ADS stream that subscribed and ACKed like Envoy, until quiet."""
    state = StreamState(Framing.SOTW, subscriptions=subscriptions)
    state.on_request(request(CLUSTER_TYPE, node=True))
    state.on_request(request(LISTENER_TYPE))
    for _ in range(10):
        responses = drain(state, snap)
        if not responses:
            return state
        for response in responses:
            if response.type_url == CLUSTER_TYPE:
                state.on_request(ack(response))
                state.on_request(request(ENDPOINT_TYPE, NAMES))
            elif response.type_url == ENDPOINT_TYPE:
                state.on_request(ack(response, NAMES))
            elif response.type_url == LISTENER_TYPE:
                state.on_request(ack(response))
                state.on_request(request(ROUTE_TYPE, ["ingress_http"]))
            else:
                state.on_request(ack(response, ["ingress_http"]))
    raise AssertionError("did not converge")


class TestSubscriptions:
    def test_equal_subscriptions_share_one_frozenset_until_released(self) -> None:
        table = Subscriptions()
        first = table.acquire(["a", "b"])
        second = table.acquire({"b", "a"})
        assert first is second and table.holders(first) == 2
        table.release(first)
        assert table.acquire(frozenset({"a", "b"})) is first
        table.release(first)
        table.release(first)
        assert len(table) == 0
        assert table.acquire([]) is NO_NAMES and len(table) == 0

    def test_streams_with_equal_subscriptions_share_it_and_give_it_back(self) -> None:
        table = Subscriptions()
        streams = [envoy_like(table) for _ in range(3)]
        eds = streams[0].interest(ENDPOINT_TYPE)
        assert eds == frozenset(NAMES)
        assert all(s.interest(ENDPOINT_TYPE) is eds for s in streams)
        assert table.holders(eds) == 3
        for stream in streams:
            stream.close()
        assert len(table) == 0

    def test_an_ack_repeating_the_names_keeps_the_set_and_allocates_nothing(self) -> None:
        state = envoy_like(Subscriptions())
        held = state.interest(ENDPOINT_TYPE)
        [eds] = drain(state, BIG) or [None]
        assert eds is None  # converged
        state.on_request(request(ENDPOINT_TYPE, NAMES))  # Envoy asks again (empty nonce)
        [last] = drain(state, BIG)

        def cycle() -> Any:
            # The same ACK twice is an EDS re-request: every cycle ACKs and sends all names.
            state.on_request(ack(last, NAMES))
            state.on_request(ack(last, NAMES))
            [again] = drain(state, BIG)
            return again

        for _ in range(5):
            last = cycle()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(50):
                last = cycle()
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert state.interest(ENDPOINT_TYPE) is held
        assert grown < 4_096, f"50 ACKs of 1,000 names kept {grown} bytes"

    def test_a_stream_costs_its_differences_not_its_names(self) -> None:
        table = Subscriptions()
        keep = [envoy_like(table)]  # the snapshot's shared maps are built by the first
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            keep += [envoy_like(table) for _ in range(100)]
            gc.collect()
            per_stream = (tracemalloc.get_traced_memory()[0] - before) / 100
        finally:
            tracemalloc.stop()
        # Unshared, one stream held ~350 KB here (1,000 names and their versions, several times).
        assert per_stream < 8_000, f"{per_stream:.0f} bytes per stream"


class TestVersions:
    BASE = {"a": "1", "b": "2", "c": "3"}

    def test_scope_and_overlay(self) -> None:
        held = Versions(self.BASE, frozenset({"a", "b", "x"}), {"b": None, "x": "9"})
        assert dict(held) == {"a": "1", "x": "9"}
        assert "b" not in held and "c" not in held and held.version("x") == "9"
        assert held.covers(["a", "x"]) and not held.covers(["a", "b"])

    def test_updates_equal_to_the_base_leave_no_overlay(self) -> None:
        held = Versions(self.BASE, frozenset({"a", "b"}))
        changed = held.updated({"a": "5"})
        assert changed.overlay == {"a": "5"} and held.version("a") == "1"
        assert changed.updated({"a": "1"}).overlay == {}
        assert dict(changed.forgetting(["b", "zz"])) == {"a": "5"}

    def test_a_new_scope_forgets_names_that_left_and_does_not_hold_names_that_came(self) -> None:
        held = Versions(self.BASE, frozenset({"a", "b"}), {"a": "7"})
        moved = held.within(frozenset({"b", "c"}))
        assert dict(moved) == {"b": "2"}
        assert moved.within(frozenset({"a", "b", "c"})).version("a") is None

    def test_rebase_keeps_the_contents_and_shrinks_the_overlay(self) -> None:
        scope = frozenset({"a", "b", "c"})
        held = Versions({}, scope).updated({"a": "1", "b": "2", "c": "old"})
        rebased = held.rebased(self.BASE)
        assert dict(rebased) == dict(held) and rebased.overlay == {"c": "old"}
        assert rebased.base is self.BASE

    def test_outside(self) -> None:
        held = Versions(self.BASE, None, {"z": "1", "a": None})
        assert sorted(held.outside({"b": 0})) == ["c", "z"]

    def test_union_returns_an_operand_when_it_can(self) -> None:
        names = frozenset({"a", "b"})
        assert union(NO_NAMES, names) is names and union(names, NO_NAMES) is names
        assert union(names, {"a"}) is names and union(names, {"c"}) == {"a", "b", "c"}


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, frozenset[str]]] = []

    def notify(self, type_url: str, names: frozenset[str]) -> None:
        self.seen.append((type_url, names))


class TestWatchIndex:
    def test_watchers_of_one_subscription_are_one_group_and_share_what_they_are_told(
        self,
    ) -> None:
        cache = SnapshotCache(metrics=xds_metrics(CollectorRegistry()))
        cache.publish(BIG)
        names = cache.subscriptions.acquire(NAMES[:10])
        watchers = [Recorder() for _ in range(3)]
        for watcher in watchers:
            cache.set_interest(watcher, ENDPOINT_TYPE, names)
        other = Recorder()
        cache.set_interest(other, ENDPOINT_TYPE, frozenset({NAMES[0], "elsewhere"}))
        assert cache.watchers(ENDPOINT_TYPE, NAMES[5]) == 3
        assert cache.watchers(ENDPOINT_TYPE, NAMES[0]) == 4
        cache.update(ENDPOINT_TYPE, {NAMES[5]: assignment(NAMES[5], 81)})
        told = [w.seen[-1][1] for w in watchers]
        assert told[0] == {NAMES[5]} and all(t is told[0] for t in told)
        assert other.seen == []
        cache.unwatch(watchers[0])
        cache.set_interest(watchers[1], ENDPOINT_TYPE, frozenset())
        assert cache.watchers(ENDPOINT_TYPE, NAMES[5]) == 1
        cache.unwatch(watchers[2])
        assert cache.watchers(ENDPOINT_TYPE, NAMES[5]) == 0
        assert cache.watchers(ENDPOINT_TYPE, NAMES[0]) == 1
