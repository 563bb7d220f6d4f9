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

from controlplane.dag import BuildOptions
from controlplane.envoy import TranslateOptions
from controlplane.kube_wiring import build_listener
from controlplane.metrics import loop_metrics, status_metrics
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

    def submit(self, updates: Sequence[StatusUpdate], removed: Iterable[Key] = ()) -> None:
        removed = list(removed)
        self.submitted.append(([(u.namespace, u.name) for u in updates], removed))
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

    def observe_statuses(
        self,
        updates: Sequence[StatusUpdate],
        removed: Iterable[Key] = (),
        recheck: Iterable[Key] = (),
    ) -> None:
        removed, recheck = list(removed), list(recheck)
        self.observed.append(([(u.namespace, u.name) for u in updates], removed, recheck))
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


async def rebuilt(runtime: Runtime) -> None:
    """Rebuild, and let the build listeners (called on the loop's next turn) run."""
    await runtime.rebuild()
    for _ in range(3):
        await asyncio.sleep(0)


async def test_the_listeners_are_handed_what_a_build_changed_not_every_status(
    api: client.ApiClient,
) -> None:
    store = Store()
    store.apply_raw(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    for index in range(ROUTES):
        store.apply_raw(root(f"r{index}"))
    runtime = Runtime(
        build_options=BuildOptions(),
        translate_options=TranslateOptions(),
        cache=SnapshotCache(),
        store=store,
        lag_metrics=loop_metrics(CollectorRegistry()),
    )
    writer, recorder = SpyWriter(api, store), SpyRecorder(api, store)
    runtime.build_listeners.append(build_listener(store, writer, recorder, BuildOptions()))

    await rebuilt(runtime)  # the first build: every status is new
    assert len(writer.submitted) == 1 and len(writer.submitted[0][0]) == ROUTES
    assert len(recorder.observed) == 1 and len(recorder.observed[0][0]) == ROUTES
    assert writer.rechecked == [[]] and recorder.observed[0][1:] == ([], [])

    store.apply_raw(root("r7", "missing", generation=2))  # its status changes: invalid
    await rebuilt(runtime)
    assert writer.submitted[-1] == ([("default", "r7")], [])
    assert recorder.observed[-1] == ([("default", "r7")], [], [])
    assert writer.rechecked[-1] == []

    store.apply_raw(root("r8", routes=2))  # changed, but its status did not (generation 1)
    await rebuilt(runtime)
    assert writer.submitted[-1] == ([], [])
    assert writer.rechecked[-1] == [("default", "r8")]
    assert recorder.observed[-1] == ([], [], [("default", "r8")])

    store.delete("IngressRoute", "default", "r9")
    await rebuilt(runtime)
    assert writer.submitted[-1] == ([], [("default", "r9")])
    assert recorder.observed[-1] == ([], [("default", "r9")], [])

    handed = len(writer.submitted), len(recorder.observed)
    store.apply_raw(  # not an IngressRoute, and no status changes: nothing to hand over
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "other", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    await rebuilt(runtime)
    assert runtime.publisher.sequence == 5
    assert (len(writer.submitted), len(recorder.observed)) == handed
    assert writer.pending() == ROUTES - 1  # every wish kept (none met), the deleted one forgotten
