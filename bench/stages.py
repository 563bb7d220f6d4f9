"""Where a change's time goes: timestamps of every pipeline stage, for the propagation benches.

A bench calls `StageTrace.install()` once in the process that runs the controller, before the
`Runtime` exists; it wraps a few methods (class attributes, in this process only) to append
`(time, event, type, nonce)` to one list:

    store apply       `Store.apply` of any object (the informer's, or the bench's own)
    holdoff fired     `Runtime.rebuild` entered (the holdoff's action)
    built             `Publisher.publish` entered (the DAG is built)
    published         `SnapshotCache.publish` returned (the snapshot swapped, streams woken)
    rebuild returned  `Runtime.rebuild` returned: what runs after the publish (the build
                      listeners: status writer, events) is done and the loop is free again
    push TYPE         an xDS session hands a response of TYPE to gRPC (`Session._send`)
    request TYPE      an xDS session has applied a request of TYPE (`Session._handle`)

`start()` clears the list and gives the time a sample starts from; `sample(t0, done)` reads that
change out of the events: the first of each stage, in pipeline order, each looked for after the
one it depends on, so `CDS ACK` is the ACK of the nonce of the first CDS push after the publish,
and `EDS asked` the first EDS request after that push (Envoy names the new cluster's assignment
before it ACKs the clusters). A bench may add its own stages (`kubectl launched`, `kubectl
returned`); stages that did not happen (a change that needs no new cluster sends no CDS) are left
out. `breakdown(samples)` gives, per stage, the p50 and p99 of its step (the time since the
latest earlier stage of `STAGES` that came before it) and of its time since `t0`.

Timestamps are `time.perf_counter()` (CLOCK_MONOTONIC on Linux), the clock the benches time
with. The wrappers cost a list append per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from bench.common import percentile
from controlplane.publisher import Publisher
from controlplane.runtime import Runtime
from controlplane.store import Store
from controlplane.typeurls import CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE, TYPE_NAMES
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.session import Session

STAGES = (
    "kubectl launched",
    "store apply",
    "kubectl returned",
    "holdoff fired",
    "built",
    "published",
    "rebuild returned",
    "CDS sent",
    "EDS asked",
    "CDS ACK",
    "EDS sent",
    "EDS ACK",
    "RDS sent",
    "RDS ACK",
    "first 200",
)

Event = tuple[float, str, str, str]
"""(time, event, type name, nonce)."""


class StageTrace:
    """The events of this process; `install()` once per process, before the Runtime exists
    (the holdoff keeps the `rebuild` it was given)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def install(self) -> None:
        events = self.events
        now = time.perf_counter

        def wrap(owner: type, name: str, make: Callable[[Any], Any]) -> None:
            setattr(owner, name, make(getattr(owner, name)))

        def apply(original: Any) -> Any:
            def traced(store: Store, obj: Any) -> Any:
                events.append((now(), "store apply", obj.KIND, obj.metadata.name))
                return original(store, obj)

            return traced

        def publish(original: Any) -> Any:
            def traced(publisher: Publisher, *args: Any) -> Any:
                events.append((now(), "built", "", ""))
                return original(publisher, *args)

            return traced

        def rebuild(original: Any) -> Any:
            async def traced(runtime: Runtime) -> None:
                events.append((now(), "holdoff fired", "", ""))
                await original(runtime)
                events.append((now(), "rebuild returned", "", ""))

            return traced

        def swap(original: Any) -> Any:
            def traced(cache: SnapshotCache, snapshot: Any) -> None:
                original(cache, snapshot)
                events.append((now(), "published", "", ""))

            return traced

        def handle(original: Any) -> Any:
            def traced(session: Session, request: Any) -> None:
                original(session, request)
                kind = TYPE_NAMES.get(request.type_url, request.type_url)
                events.append((now(), "request", kind, request.response_nonce))

            return traced

        def send(original: Any) -> Any:
            async def traced(session: Session, out: Any, context: Any) -> bool:
                kind = TYPE_NAMES.get(out.type_url, out.type_url)
                events.append((now(), "push", kind, out.nonce))
                sent: bool = await original(session, out, context)
                return sent

            return traced

        wrap(Store, "apply", apply)
        wrap(Publisher, "publish", publish)
        wrap(Runtime, "rebuild", rebuild)
        wrap(SnapshotCache, "publish", swap)
        wrap(Session, "_handle", handle)
        wrap(Session, "_send", send)

    def start(self) -> float:
        """Forget what came before; the time a sample starts from."""
        self.events.clear()
        return time.perf_counter()

    def sample(self, t0: float, done: float) -> dict[str, float]:
        """Stage → ms since ``t0`` for the change that started at ``t0`` and ended at ``done``."""
        events = self.events
        found: dict[str, float] = {}

        def find(stage: str, start: int, match: Callable[[Event], bool]) -> int:
            """Index of the first match at or after ``start`` (recorded), or ``start``."""
            for index in range(start, len(events)):
                if match(events[index]):
                    found[stage] = (events[index][0] - t0) * 1000
                    return index
            return start

        def push(kind: str) -> Callable[[Event], bool]:
            return lambda e: e[1] == "push" and e[2] == _name(kind)

        def request(kind: str) -> Callable[[Event], bool]:
            return lambda e: e[1] == "request" and e[2] == _name(kind)

        def acked(index: int) -> Callable[[Event], bool]:
            nonce = events[index][3]
            return lambda e: e[1] == "request" and e[3] == nonce

        # The informer may deliver the object before kubectl returns: the bench clears the
        # events before it starts kubectl, and `t0` may come later.
        first = find("store apply", 0, lambda e: e[1] == "store apply")
        fired = find("holdoff fired", first, lambda e: e[1] == "holdoff fired")
        built = find("built", fired, lambda e: e[1] == "built")
        published = find("published", built, lambda e: e[1] == "published")
        find("rebuild returned", published, lambda e: e[1] == "rebuild returned")
        cds = find("CDS sent", published, push(CLUSTER_TYPE))
        if "CDS sent" in found:
            find("EDS asked", cds, request(ENDPOINT_TYPE))
            find("CDS ACK", cds, acked(cds))
            eds = find("EDS sent", cds, push(ENDPOINT_TYPE))
            if "EDS sent" in found:
                find("EDS ACK", eds, acked(eds))
        rds = find("RDS sent", published, push(ROUTE_TYPE))
        if "RDS sent" in found:
            find("RDS ACK", rds, acked(rds))
        found["first 200"] = (done - t0) * 1000
        return found


def _name(type_url: str) -> str:
    return TYPE_NAMES.get(type_url, type_url)


def breakdown(samples: Iterable[dict[str, float]]) -> list[dict[str, Any]]:
    """One row per stage: p50/p99 of ms since the previous stage and since the start."""
    samples = list(samples)
    rows: list[dict[str, Any]] = []
    for index, stage in enumerate(STAGES):
        since_start = [s[stage] for s in samples if stage in s]
        if not since_start:
            continue
        steps = []
        for s in samples:
            if stage not in s:
                continue
            previous = [s[p] for p in STAGES[:index] if p in s and s[p] <= s[stage]]
            steps.append(s[stage] - max(previous) if previous else s[stage])
        rows.append(
            {
                "stage": stage,
                "seen": len(since_start),
                "step ms (p50)": percentile(steps, 0.5),
                "step ms (p99)": percentile(steps, 0.99),
                "since start ms (p50)": percentile(since_start, 0.5),
                "since start ms (p99)": percentile(since_start, 0.99),
            }
        )
    return rows
