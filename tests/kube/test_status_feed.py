"""The build listeners of cluster mode (`kube_wiring.build_listener`) look at what a build
changed, never at every IngressRoute: a pass over 20,000 statuses per build held the event loop
for tens of milliseconds (issue 13).

Through a real `Runtime` (the DAG built in its build thread, the listeners called after each
publish), with the status writer and the Event recorder spied on: the tests assert on what is
handed to them. Followers, so nothing is written or posted (`test_status.py` and
`test_events.py` cover that side, and what a handout makes them do).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from controlplane.dag import BuildOptions, DagBuilder
from controlplane.envoy import TranslateOptions
from controlplane.kube_wiring import StatusListeners
from controlplane.metrics import loop_metrics, status_metrics
from controlplane.publisher import PublishReport
from controlplane.runtime import Runtime
from controlplane.sources import EventRecorder, StatusUpdate, StatusWriter
from controlplane.store import Store
from controlplane.xds import SnapshotCache

Key = tuple[str, str]
ROUTES = 300


class SpyWriter(StatusWriter):
    """A status writer that records what it is handed."""

    def __init__(self, api: client.ApiClient, store: Store) -> None:
        super().__init__(api, store=store, metrics=status_metrics(CollectorRegistry()))
        self.submitted: list[tuple[list[Key], list[Key]]] = []
        self.rechecked: list[list[Key]] = []
        self.wishes: list[StatusUpdate] = []

    def submit(self, updates: Sequence[StatusUpdate], removed: Iterable[Key] = ()) -> None:
        removed = list(removed)
        self.submitted.append(([(u.namespace, u.name) for u in updates], removed))
        self.wishes += updates
        super().submit(updates, removed)

    def recheck(self, keys: Iterable[Key]) -> None:
        keys = list(keys)
        self.rechecked.append(keys)
        super().recheck(keys)


class SpyRecorder(EventRecorder):
    """An Event recorder that records what it is handed."""

    def __init__(self, api: client.ApiClient, store: Store) -> None:
        super().__init__(api, store=store, instance="test")
        self.observed: list[tuple[list[Key], list[Key], list[Key]]] = []
        self.wishes: list[StatusUpdate] = []

    def observe_statuses(
        self,
        updates: Sequence[StatusUpdate],
        removed: Iterable[Key] = (),
        recheck: Iterable[Key] = (),
    ) -> None:
        removed, recheck = list(removed), list(recheck)
        self.observed.append(([(u.namespace, u.name) for u in updates], removed, recheck))
        self.wishes += updates
        super().observe_statuses(updates, removed, recheck)


def root(name: str, service: str = "web", generation: int = 1, routes: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default", "uid": name, "generation": generation},
        "spec": {
            "virtualhost": {"fqdn": f"{name}.example.com"},
            "routes": [
                {"match": f"/{index}", "services": [{"name": service, "port": 80}]}
                for index in range(routes)
            ],
        },
    }


async def settled(listeners: StatusListeners) -> None:
    """Let the build listener's turns run (each piece is a turn of its own)."""
    await asyncio.sleep(0)  # the runtime calls the build listeners on the loop's next turn
    for _ in range(10_000):
        if not listeners.pending():
            return
        await asyncio.sleep(0)
    raise AssertionError("the build listener's turns never ran out")


async def rebuilt(runtime: Runtime, listeners: StatusListeners) -> None:
    await runtime.rebuild()
    await settled(listeners)


def new_runtime(store: Store) -> Runtime:
    return Runtime(
        build_options=BuildOptions(),
        translate_options=TranslateOptions(),
        cache=SnapshotCache(),
        store=store,
        lag_metrics=loop_metrics(CollectorRegistry()),
    )


WEB = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"ports": [{"port": 80}]},
}


async def test_the_listeners_are_handed_what_a_build_changed_not_every_status(
    api: client.ApiClient,
) -> None:
    store = Store()
    store.apply_raw(WEB)
    for index in range(ROUTES):
        store.apply_raw(root(f"r{index}"))
    runtime = new_runtime(store)
    writer, recorder = SpyWriter(api, store), SpyRecorder(api, store)
    listeners = StatusListeners(store, writer, recorder, BuildOptions())
    runtime.build_listeners.append(listeners)

    def handed() -> tuple[Any, ...]:
        """What each was handed since the last call."""
        found = (writer.submitted[:], writer.rechecked[:], recorder.observed[:])
        writer.submitted.clear(), writer.rechecked.clear(), recorder.observed.clear()
        return found

    await rebuilt(runtime, listeners)  # the first build: every status is new
    submitted, rechecked, observed = handed()
    assert [len(updates) for updates, _ in submitted] == [ROUTES]
    assert [len(updates) for updates, _, _ in observed] == [ROUTES]
    assert rechecked == []

    store.apply_raw(root("r7", "missing", generation=2))  # its status changes: invalid
    await rebuilt(runtime, listeners)
    assert handed() == ([([("default", "r7")], [])], [], [([("default", "r7")], [], [])])

    store.apply_raw(root("r8", routes=2))  # changed, but its status did not (generation 1)
    await rebuilt(runtime, listeners)
    assert handed() == ([], [[("default", "r8")]], [([], [], [("default", "r8")])])

    store.delete("IngressRoute", "default", "r9")
    await rebuilt(runtime, listeners)
    assert handed() == ([([], [("default", "r9")])], [], [([], [("default", "r9")], [])])

    store.apply_raw(  # not an IngressRoute, and no status changes: nothing to hand over
        {**WEB, "metadata": {"name": "other", "namespace": "default"}}
    )
    await rebuilt(runtime, listeners)
    assert runtime.publisher.sequence == 5
    assert handed() == ([], [], [])
    assert writer.pending() == ROUTES - 1  # every wish kept (none met), the deleted one forgotten


async def test_a_large_handout_is_cut_into_turns_and_builds_reach_the_listeners_in_order(
    api: client.ApiClient,
) -> None:
    """The first build hands out every status: in pieces, one per loop turn, and a second
    build published before they all ran never overtakes them."""
    store = Store()
    store.apply_raw(WEB)
    for index in range(50):
        store.apply_raw(root(f"r{index}"))
    writer, recorder = SpyWriter(api, store), SpyRecorder(api, store)
    listeners = StatusListeners(store, writer, recorder, BuildOptions(), turn=7)
    builder = DagBuilder()

    def publish() -> None:
        objects = store.object_set()
        dag = builder.build(objects)
        listeners(PublishReport(dag, 0, 0.0, statuses=dag.statuses), objects)

    publish()
    assert listeners.pending() == 2 * 8 + 1  # a piece per listener, and the Ingress problems
    assert writer.submitted == [] and recorder.observed == []  # nothing in the build's turn
    store.apply_raw(root("r49", "missing", generation=2))
    publish()
    await asyncio.sleep(0)
    assert len(writer.submitted) == 1  # one piece per turn
    await settled(listeners)

    assert [len(updates) for updates, _ in writer.submitted] == [7] * 7 + [1, 1]
    assert [len(updates) for updates, _, _ in recorder.observed] == [7] * 7 + [1, 1]
    for heard in (writer.wishes, recorder.wishes):
        r49 = [u.status.current_status for u in heard if u.name == "r49"]
        assert r49 == ["valid", "invalid"]  # the later build's last
