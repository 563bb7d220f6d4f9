"""Fewest round trips for a new route to a new Service (issue 13, item 2), over real gRPC.

A route to a new Service needs the new Cluster (CDS), then its ClusterLoadAssignment (EDS:
Envoy keeps a new cluster warming until it arrives), then the route (RDS: make-before-break
holds routes back until the client has ACKed every cluster and answered their EDS). Each step
must go out the moment the answer it waits for is read: never on a timer, never on the next
build.

The client here talks like Envoy (SotW and delta ADS): having applied a CDS response that adds a
cluster, Envoy first asks EDS for the new cluster's name, then ACKs the CDS. The server's end of
the stream is observed with a `Timeline`: when each request was applied, when the writer was
woken and by what, when it pulled each response, and when it found nothing to send and went to
sleep. The assertion that a step waited for nothing but its cause: the writer that pulled the
response was woken while the request allowing it (or the publish) was being applied, and did
not go idle in between (idle: that request did not suffice; woken from elsewhere: a timer, or
something else, sent it). A wildcard EDS subscriber gets the new assignment in the very pass
that sends the cluster. Timestamps are recorded (and printed when an assertion fails) but not
asserted: a timed test is not a benchmark (`python -m bench propagation` has the milliseconds
against a real Envoy, step by step).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from waiting import eventually
from xds_support import NODE, TAG, Client, ack, assignment, cluster, listener, request, route

from controlplane.typeurls import TYPE_NAMES
from controlplane.xds import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    Snapshot,
    SnapshotCache,
    XdsServer,
)
from controlplane.xds.session import Session
from controlplane.xds.stream import Outgoing

BEFORE = Snapshot.build(
    {
        CLUSTER_TYPE: [cluster("old")],
        ENDPOINT_TYPE: [assignment("old", 80)],
        LISTENER_TYPE: [listener("ingress_http")],
        ROUTE_TYPE: [route("ingress_http", "old")],
    }
)


def with_new_route(*, endpoints: bool = True) -> Snapshot:
    """A new route to a new Service: cluster `new` (and its assignment, unless the Service has
    no endpoints yet, when the server answers with an empty one) and the route using it."""
    assignments = [assignment("old", 80)] + ([assignment("new", 81)] if endpoints else [])
    return Snapshot.build(
        {
            CLUSTER_TYPE: [cluster("old"), cluster("new")],
            ENDPOINT_TYPE: assignments,
            LISTENER_TYPE: [listener("ingress_http")],
            ROUTE_TYPE: [route("ingress_http", "old", "new")],
        }
    )


@dataclass(frozen=True)
class Event:
    time: float
    what: str  # "published", "handled", "woken", "sent" or "idle"
    type: str = ""  # cds, eds, lds, rds
    note: str = ""  # handled: "ack", "request NAMES", "subscribe NAMES"; woken: by what

    def __str__(self) -> str:
        return f"{self.time * 1000:9.3f} ms  {self.what:9} {self.type:3} {self.note}"


class Timeline:
    """What the server's end of one stream did, in order, from the moment it is attached:

    - ``published``: the test published a snapshot; ``handled``: a request was read and applied;
    - ``woken``: the writer was told to look (note: ``by N``, the event during which it was
      told, or ``later`` when no event was in progress, as from a timer);
    - ``sent``: the writer pulled a response; ``idle``: it found nothing to send and sleeps.
    """

    def __init__(self, session: Session) -> None:
        self.events: list[Event] = []
        self._start = time.perf_counter()
        self._during: int | None = None
        state = session.state
        handle: Callable[[Any], None] = session._handle
        poke: Callable[[], None] = session._poke
        pull: Callable[[Snapshot], Outgoing | None] = state.next_response

        def handled(message: Any) -> None:
            names = list(getattr(message, "resource_names", ()))
            before = state.interest(message.type_url)  # None: every name (a wildcard)
            renamed = bool(names) and before is not None and frozenset(names) != before
            subscribes = list(getattr(message, "resource_names_subscribe", ()))
            if message.HasField("error_detail"):
                note = "nack"
            elif subscribes:
                note = "subscribe " + ",".join(subscribes)
            elif renamed or not message.response_nonce:
                note = "request " + ",".join(names)
            else:
                note = "ack"
            with self._cause("handled", message.type_url, note):
                handle(message)

        def woken() -> None:
            during = self._during
            self._add("woken", note="later" if during is None else f"by {during}")
            poke()

        def pulled(snapshot: Snapshot) -> Outgoing | None:
            out = pull(snapshot)
            if out is None:
                self._add("idle")
            else:
                self._add("sent", out.type_url, ",".join(out.resources))
            return out

        session._handle = handled  # type: ignore[method-assign]
        session._poke = woken  # type: ignore[method-assign]
        state.next_response = pulled  # type: ignore[method-assign]

    def _add(self, what: str, type_url: str = "", note: str = "") -> int:
        kind = TYPE_NAMES.get(type_url, type_url)
        self.events.append(Event(time.perf_counter() - self._start, what, kind, note))
        return len(self.events) - 1

    @contextmanager
    def _cause(self, what: str, type_url: str = "", note: str = "") -> Iterator[None]:
        self._during = self._add(what, type_url, note)
        try:
            yield
        finally:
            self._during = None

    def publish(self, cache: SnapshotCache, snapshot: Snapshot) -> None:
        with self._cause("published"):
            cache.publish(snapshot)

    def __str__(self) -> str:
        return "\n".join(f"{i:3} {e}" for i, e in enumerate(self.events))

    def index(self, match: Callable[[Event], bool], after: int = -1) -> int:
        for index in range(after + 1, len(self.events)):
            if match(self.events[index]):
                return index
        raise AssertionError(f"not in the timeline:\n{self}")

    def sent(self, kind: str, after: int = -1) -> int:
        return self.index(lambda e: e.what == "sent" and e.type == kind, after)

    def handled(self, kind: str, note: str, after: int = -1) -> int:
        return self.index(
            lambda e: e.what == "handled" and e.type == kind and e.note.startswith(note), after
        )

    def assert_at_once(self, cause: int, effect: int) -> None:
        """``effect`` left because of ``cause`` and nothing else: the writer was woken while
        ``cause`` was being applied, and pulled ``effect`` without going idle in between (an
        idle writer would mean that ``cause`` did not suffice, a wake-up from elsewhere that
        something else, such as a timer, sent it)."""
        assert cause < effect, f"{effect} came before {cause}:\n{self}"
        between = self.events[cause + 1 : effect]
        assert not [e for e in between if e.what == "idle"], (
            f"the writer went idle between {cause} and {effect}:\n{self}"
        )
        assert Event(0, "woken", "", f"by {cause}") in [
            Event(0, e.what, e.type, e.note) for e in between
        ], f"{cause} did not wake the writer that sent {effect}:\n{self}"


async def timeline_of(server: XdsServer, client: Client) -> Timeline:
    def mine() -> list[Session]:
        return [s for s in server.sessions if s.metadata.get(TAG) == client.tag]

    await eventually(lambda: bool(mine()), message="the server's end of the stream")
    await client.nothing()  # settled: what the timeline records comes after
    (session,) = mine()
    return Timeline(session)


def names_of(response: Any) -> list[str]:
    """The resource names a SotW or delta response carries."""
    if isinstance(response, discovery_pb2.DeltaDiscoveryResponse):
        return [r.name for r in response.resources]
    decode: dict[str, Callable[[bytes], Any]] = {
        ENDPOINT_TYPE: lambda b: endpoint_pb2.ClusterLoadAssignment.FromString(b).cluster_name,
        ROUTE_TYPE: lambda b: route_pb2.RouteConfiguration.FromString(b).name,
    }
    if response.type_url in decode:
        return [decode[response.type_url](r.value) for r in response.resources]
    return [response.type_url]


# --- state of the world --------------------------------------------------------------------


async def converge_sotw(client: Client) -> dict[str, Any]:
    """Subscribe and ACK as Envoy does until the client holds `BEFORE`; the last responses."""
    await client.send(request(CLUSTER_TYPE, node=True))
    await client.send(request(LISTENER_TYPE))
    cds = await client.recv()
    await client.send(request(ENDPOINT_TYPE, ["old"]))
    await client.send(ack(cds))
    eds = await client.recv()
    await client.send(ack(eds, ["old"]))
    lds = await client.recv()
    await client.send(request(ROUTE_TYPE, ["ingress_http"]))
    await client.send(ack(lds))
    rds = await client.recv()
    await client.send(ack(rds, ["ingress_http"]))
    await client.nothing()
    return {CLUSTER_TYPE: cds, ENDPOINT_TYPE: eds, LISTENER_TYPE: lds, ROUTE_TYPE: rds}


@pytest.mark.parametrize("endpoints", [True, False], ids=["endpoints", "no-endpoints-yet"])
async def test_sotw_each_step_leaves_on_the_answer_it_waits_for(
    cache: SnapshotCache, server: XdsServer, ads: Any, endpoints: bool
) -> None:
    cache.publish(BEFORE)
    client = ads()
    last = await converge_sotw(client)
    timeline = await timeline_of(server, client)

    timeline.publish(cache, with_new_route(endpoints=endpoints))
    cds = await client.recv()
    assert cds.type_url == CLUSTER_TYPE
    await client.nothing()  # routes wait: the new cluster is neither ACKed nor warm
    # Envoy, applying the clusters, asks for the new one's assignment, then ACKs the CDS.
    await client.send(request(ENDPOINT_TYPE, ["new", "old"], nonce=last[ENDPOINT_TYPE].nonce))
    await client.send(ack(cds))
    eds = await client.recv()
    assert (eds.type_url, names_of(eds)) == (ENDPOINT_TYPE, ["new"])
    await client.nothing()  # routes wait for the EDS answer
    await client.send(ack(eds, ["new", "old"]))
    rds = await client.recv()
    assert (rds.type_url, names_of(rds)) == (ROUTE_TYPE, ["ingress_http"])
    await client.send(ack(rds, ["ingress_http"]))
    await client.nothing()

    published = timeline.index(lambda e: e.what == "published")
    cds_sent = timeline.sent("cds", published)
    eds_asked = timeline.handled("eds", "request new", published)
    eds_sent = timeline.sent("eds", published)
    cds_acked = timeline.handled("cds", "ack", published)
    eds_acked = timeline.handled("eds", "ack", eds_sent)
    rds_sent = timeline.sent("rds", published)
    timeline.assert_at_once(published, cds_sent)
    timeline.assert_at_once(eds_asked, eds_sent)
    timeline.assert_at_once(max(cds_acked, eds_acked), rds_sent)
    assert cds_sent < eds_asked < eds_sent < eds_acked < rds_sent
    # Nothing else went out: one response per step.
    assert [e.type for e in timeline.events if e.what == "sent"] == ["cds", "eds", "rds"]


async def test_sotw_a_cds_ack_before_the_eds_request_changes_nothing(
    cache: SnapshotCache, server: XdsServer, ads: Any
) -> None:
    """Some clients ACK the clusters before asking for the new assignment: the EDS answer
    still goes out on the request, and the routes on its ACK."""
    cache.publish(BEFORE)
    client = ads()
    last = await converge_sotw(client)
    timeline = await timeline_of(server, client)

    timeline.publish(cache, with_new_route())
    cds = await client.recv()
    await client.send(ack(cds))
    await client.nothing()
    await client.send(request(ENDPOINT_TYPE, ["new", "old"], nonce=last[ENDPOINT_TYPE].nonce))
    eds = await client.recv()
    assert names_of(eds) == ["new"]
    await client.send(ack(eds, ["new", "old"]))
    rds = await client.recv()
    assert rds.type_url == ROUTE_TYPE

    eds_asked = timeline.handled("eds", "request new")
    timeline.assert_at_once(eds_asked, timeline.sent("eds"))
    timeline.assert_at_once(timeline.handled("eds", "ack", eds_asked), timeline.sent("rds"))


async def test_sotw_wildcard_eds_gets_the_new_assignment_in_the_same_pass_as_the_cluster(
    cache: SnapshotCache, server: XdsServer, ads: Any
) -> None:
    """A client subscribed to every assignment is not asked to name the new one: its EDS
    goes out right behind the CDS, in the same writer pass, and RDS on the two ACKs."""
    cache.publish(BEFORE)
    client = ads()
    await client.send(request(CLUSTER_TYPE, node=True))
    await client.send(request(ENDPOINT_TYPE, ["*"]))
    cds, eds = await client.recv(), await client.recv()
    await client.send(request(LISTENER_TYPE))
    await client.send(ack(cds))
    await client.send(ack(eds, ["*"]))
    lds = await client.recv()
    await client.send(request(ROUTE_TYPE, ["ingress_http"]))
    await client.send(ack(lds))
    await client.send(ack(await client.recv(), ["ingress_http"]))
    timeline = await timeline_of(server, client)

    timeline.publish(cache, with_new_route())
    cds = await client.recv()
    eds = await client.recv()
    assert (cds.type_url, eds.type_url, names_of(eds)) == (CLUSTER_TYPE, ENDPOINT_TYPE, ["new"])
    await client.nothing()
    await client.send(ack(cds))
    await client.send(ack(eds, ["*"]))
    rds = await client.recv()
    assert rds.type_url == ROUTE_TYPE

    published = timeline.index(lambda e: e.what == "published")
    cds_sent = timeline.sent("cds", published)
    eds_sent = timeline.sent("eds", cds_sent)
    assert eds_sent == cds_sent + 1, f"EDS not pulled right after CDS:\n{timeline}"
    timeline.assert_at_once(published, eds_sent)
    timeline.assert_at_once(timeline.handled("eds", "ack", eds_sent), timeline.sent("rds"))


# --- delta ---------------------------------------------------------------------------------


def delta(
    type_url: str,
    subscribe: Iterable[str] = (),
    *,
    nonce: str = "",
    node: bool = False,
) -> discovery_pb2.DeltaDiscoveryRequest:
    message = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url, resource_names_subscribe=list(subscribe), response_nonce=nonce
    )
    if node:
        message.node.CopyFrom(NODE)
    return message


async def test_delta_each_step_leaves_on_the_answer_it_waits_for(
    cache: SnapshotCache, server: XdsServer, ads: Any
) -> None:
    cache.publish(BEFORE)
    client = ads("DeltaAggregatedResources")
    await client.send(delta(CLUSTER_TYPE, node=True))
    await client.send(delta(LISTENER_TYPE))
    cds = await client.recv()
    await client.send(delta(ENDPOINT_TYPE, ["old"]))
    await client.send(delta(CLUSTER_TYPE, nonce=cds.nonce))
    eds = await client.recv()
    await client.send(delta(ENDPOINT_TYPE, nonce=eds.nonce))
    lds = await client.recv()
    await client.send(delta(ROUTE_TYPE, ["ingress_http"]))
    await client.send(delta(LISTENER_TYPE, nonce=lds.nonce))
    rds = await client.recv()
    await client.send(delta(ROUTE_TYPE, nonce=rds.nonce))
    timeline = await timeline_of(server, client)

    timeline.publish(cache, with_new_route())
    cds = await client.recv()
    assert names_of(cds) == ["new"]  # delta: the new cluster only
    await client.nothing()
    await client.send(delta(ENDPOINT_TYPE, ["new"]))
    await client.send(delta(CLUSTER_TYPE, nonce=cds.nonce))
    eds = await client.recv()
    assert (eds.type_url, names_of(eds)) == (ENDPOINT_TYPE, ["new"])
    await client.nothing()
    await client.send(delta(ENDPOINT_TYPE, nonce=eds.nonce))
    rds = await client.recv()
    assert (rds.type_url, names_of(rds)) == (ROUTE_TYPE, ["ingress_http"])
    await client.send(delta(ROUTE_TYPE, nonce=rds.nonce))
    await client.nothing()

    published = timeline.index(lambda e: e.what == "published")
    cds_sent = timeline.sent("cds", published)
    eds_asked = timeline.handled("eds", "subscribe new", published)
    eds_sent = timeline.sent("eds", published)
    eds_acked = timeline.handled("eds", "ack", eds_sent)
    rds_sent = timeline.sent("rds", published)
    timeline.assert_at_once(published, cds_sent)
    timeline.assert_at_once(eds_asked, eds_sent)
    timeline.assert_at_once(eds_acked, rds_sent)
    assert cds_sent < eds_asked < eds_sent < eds_acked < rds_sent
    assert [e.type for e in timeline.events if e.what == "sent"] == ["cds", "eds", "rds"]
