"""A whole subscription answered from the shared memo equals what ``_diff`` computes (tier 1).

``stream_whole_answer`` exists only for speed (a thousand Envoys asking the same EDS names at
once); every scenario here runs twice, once with the shortcut and once with it switched off,
and the responses, what the stream holds afterwards and what it does on the next change must be
the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from xds_support import ack, assignment, cluster, listener, request, route, snapshot

from controlplane.xds import ENDPOINT_TYPE, ROUTE_TYPE, Snapshot
from controlplane.xds.stream import Framing, StreamState
from controlplane.xds.stream_whole_answer import whole_answer

BEFORE = snapshot(
    clusters=[cluster("a"), cluster("b"), cluster("c")],
    endpoints=[assignment("a", 80), assignment("b", 81)],
    listeners=[listener("ingress_http")],
    routes=[route("ingress_http", "a"), route("ingress_https", "b")],
)
AFTER = snapshot(
    clusters=[cluster("a"), cluster("b"), cluster("c")],
    endpoints=[assignment("a", 80), assignment("b", 82), assignment("c", 83)],
    listeners=[listener("ingress_http")],
    routes=[route("ingress_http", "a", "b"), route("ingress_https", "b")],
)

SCENARIOS = [
    pytest.param(ENDPOINT_TYPE, ["a", "b"], id="eds-all-present"),
    pytest.param(ENDPOINT_TYPE, ["c", "a", "zz"], id="eds-some-missing-get-empty-assignments"),
    pytest.param(ENDPOINT_TYPE, ["zz"], id="eds-all-missing"),
    pytest.param(ROUTE_TYPE, ["ingress_http", "ingress_https"], id="rds-all-present"),
    pytest.param(ROUTE_TYPE, ["ingress_http", "nope"], id="rds-a-missing-name-is-not-answered"),
    pytest.param(ROUTE_TYPE, ["nope"], id="rds-nothing-to-answer"),
]


def run(type_url: str, names: list[str], *, shortcut: bool, monkeypatch: Any) -> list[Any]:
    """The stream's whole conversation: first answer, ACK, a change, its answer."""
    if not shortcut:
        monkeypatch.setattr(StreamState, "_holds_nothing_of_whole", lambda self, state: False)
    state = StreamState(Framing.SOTW, make_before_break=False)
    seen: list[Any] = []
    state.on_request(request(type_url, names, node=True))
    first = state.next_response(BEFORE)
    seen.append(_outgoing(first))
    held = state._types[type_url]
    seen.append((dict(held.sent), dict(held.last_batch)))
    if first is not None:
        decoded = discovery_pb2.DiscoveryResponse.FromString(first.payload)
        state.on_request(ack(decoded, names))
    for changed_type in (ENDPOINT_TYPE, ROUTE_TYPE):
        state.notify(changed_type, AFTER.changed_names(BEFORE, changed_type))
    seen.append(_outgoing(state.next_response(AFTER)))
    seen.append((dict(held.sent), dict(held.acked)))
    monkeypatch.undo()
    return seen


def _outgoing(out: Any) -> Any:
    return None if out is None else (out.type_url, out.nonce, out.payload, out.resources)


@pytest.mark.parametrize(("type_url", "names"), SCENARIOS)
def test_the_shortcut_answers_exactly_as_the_diff_does(
    type_url: str, names: list[str], monkeypatch: Any
) -> None:
    fast = run(type_url, names, shortcut=True, monkeypatch=monkeypatch)
    slow = run(type_url, names, shortcut=False, monkeypatch=monkeypatch)
    assert fast == slow


def test_streams_with_one_subscription_share_one_answer_and_what_they_hold() -> None:
    states = [StreamState(Framing.SOTW, make_before_break=False) for _ in range(3)]
    for state in states:
        state.on_request(request(ENDPOINT_TYPE, ["b", "a", "zz"], node=True))
    out = [state.next_response(BEFORE) for state in states]
    assert all(o is not None and o.resources == ("a", "b", "zz") for o in out)
    held = [state._types[ENDPOINT_TYPE].sent for state in states]
    assert held[0] is held[1] is held[2]
    subscribed = states[0]._types[ENDPOINT_TYPE].subscribed
    assert whole_answer(BEFORE, ENDPOINT_TYPE, subscribed) is whole_answer(
        BEFORE, ENDPOINT_TYPE, subscribed
    )


def test_a_changed_table_gets_its_own_answer() -> None:
    names = frozenset({"a", "b", "c"})
    before = whole_answer(BEFORE, ENDPOINT_TYPE, names)
    after = whole_answer(AFTER, ENDPOINT_TYPE, names)
    assert before.fields != after.fields
    assert dict(after.sent) == {n: r.version for n, r in _resources(AFTER, names)}


def _resources(snap: Snapshot, names: Iterable[str]) -> list[Any]:
    current = snap.resources(ENDPOINT_TYPE)
    return [(n, current[n]) for n in sorted(names)]


def test_long_name_lists_are_found_by_their_encoding_exactly() -> None:
    state = StreamState(Framing.SOTW, make_before_break=False)
    names = [f"ns{i}/svc{i}/80" for i in range(100)]
    state.on_request(request(ENDPOINT_TYPE, names, node=True))
    first = state.next_response(BEFORE)
    assert first is not None
    held = state._types[ENDPOINT_TYPE].subscribed
    assert held == frozenset(names)
    decoded = discovery_pb2.DiscoveryResponse.FromString(first.payload)
    # An ACK repeating the names in another order, then one naming one more.
    state.on_request(ack(decoded, list(reversed(names))))
    assert state._types[ENDPOINT_TYPE].subscribed is held
    state.on_request(ack(decoded, [*names, "a"]))
    assert state._types[ENDPOINT_TYPE].subscribed == frozenset([*names, "a"])
    out = state.next_response(BEFORE)
    assert out is not None and out.resources == ("a",)


def test_a_star_among_many_names_is_a_wildcard_subscription() -> None:
    state = StreamState(Framing.SOTW, make_before_break=False)
    state.on_request(request(ENDPOINT_TYPE, [*(f"n{i}" for i in range(50)), "*"], node=True))
    assert state.interest(ENDPOINT_TYPE) is None


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def test_a_stream_keeps_no_request_alive() -> None:
    """Requests come and go: 2,000 ACKs of 1,000 names (~40 KB each parsed) hold nothing.

    upb fuses the arenas of two messages on CopyFrom/MergeFrom into a kept message, after which
    every request merged lives as long as the kept one: this failed with 80 MB retained.
    """
    names = [f"ns{i}/svc{i}/80" for i in range(1000)]
    first = request(ENDPOINT_TYPE, names, node=True)
    first.node.locality.zone = "z1"
    state = StreamState(Framing.SOTW, make_before_break=False)
    state.on_request(discovery_pb2.DiscoveryRequest.FromString(first.SerializeToString()))
    out = state.next_response(BEFORE)
    assert out is not None
    encoded = request(ENDPOINT_TYPE, names, nonce=out.nonce).SerializeToString()
    before = _rss_mib()
    for _ in range(2000):
        state.on_request(discovery_pb2.DiscoveryRequest.FromString(encoded))
    assert _rss_mib() - before < 20
    assert state.node is not None and state.node.locality.zone == "z1"


def test_a_made_up_subscription_is_answered_but_not_remembered() -> None:
    names = frozenset(f"nope-{i}" for i in range(3000))
    first = whole_answer(BEFORE, ENDPOINT_TYPE, names)
    assert len(first.names) == 3000  # every name gets its empty assignment
    assert whole_answer(BEFORE, ENDPOINT_TYPE, names) is not first
    fleet = frozenset({"a", "b", "zz"})
    assert whole_answer(BEFORE, ENDPOINT_TYPE, fleet) is whole_answer(BEFORE, ENDPOINT_TYPE, fleet)


def test_a_huge_name_list_is_not_remembered_by_its_encoding() -> None:
    from controlplane.xds.sharing import Subscriptions

    subscriptions = Subscriptions()
    huge = b"x" * (2 << 20)
    one = subscriptions.by_encoding(huge, lambda: ["a"])
    assert subscriptions.by_encoding(huge, lambda: ["a"]) is not one
    small = b"y" * 100
    assert subscriptions.by_encoding(small, lambda: ["a"]) is subscriptions.by_encoding(
        small, lambda: ["b"]
    )
