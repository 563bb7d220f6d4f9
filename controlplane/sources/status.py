"""Writing status back: IngressRoute `.status` and Ingress `.status.loadBalancer`.

Both writers share one engine (`PatchWriter`): callers `submit` what they want each object's status
to be (non-blocking; the latest wish per object wins), and a background task (`run`) patches the
`status` subresource with a JSON merge patch, under these rules:

- **Write only what changed.** A wish is compared with the status the informer last saw in the
  store, and with what we wrote last (our own write takes a moment to come back through the watch;
  until the store's copy of the object moves past the version it had when we wrote, a wish equal
  to our last write counts as done). Submitting a wish already met costs no request.
- **Look only at what changed.** At 20,000 IngressRoutes a pass over every wish holds the event
  loop for tens of milliseconds, so nothing here walks them all after a build or a watch event:
  `StatusWriter.submit` takes the statuses a build changed and the objects that no longer have
  one (forgotten: their status is left as it is), and `recheck(keys)` judges the kept wish of
  those objects again against the store. Its callers (`kube_wiring.py`): the store's status
  listener, for an update that changed only `.status` (someone else wrote it: it is put back,
  without a rebuild), and each build, for the objects whose stored copy changed (a re-created
  object holds no status yet, though ours for it did not change).
- **Only the leader writes.** `set_leader(False)` cancels writes in flight at once; wishes are kept,
  and `set_leader(True)` re-checks them all against the store, once each (the previous leader may
  have written some already, or not at all, so our memory of past writes is dropped).
- **Never flood the API server.** Writes pass a token bucket (50/s, burst 100 by default) and at
  most `concurrency` are in flight; a burst of 10,000 changes drains at the bucket's rate.
- **Failures.** 404 (the object went away) drops the wish; 409, 429, 5xx and transport errors are
  retried with capped, jittered backoff; any other answer (a 422) is logged and dropped until the
  wish changes.
- Our own write does not trigger a rebuild: the store ignores updates that touch only `.status`
  and `resourceVersion` (tested in tests/kube/test_status.py).
- **Progress is observable.** `writes` counts the patches that succeeded, and `drain()` waits
  until the writer is idle: its loop waits for work and has none it could start (nothing in
  flight and, while leading, nothing queued or waiting for a retry). Until a wish or the
  leadership changes, an idle writer sends nothing, so "nothing more gets written" is checked
  against `writes` after a drain, never after a sleep. The bucket and the retry timers run on the
  event loop's clock.

`StatusWriter` writes IngressRoute statuses (`StatusUpdate`s, built by the runtime from the DAG's
statuses: sources never import the DAG). `IngressStatusWriter` puts the address Envoy is reached at
on every Ingress of our class, from `--ingress-status-address` (IP or hostname, comma-separated for
several) or from `.status.loadBalancer` of the Envoy Service (`--envoy-service namespace/name`),
which it watches itself. Ingresses that leave our class keep the address last written (we do not
clear what another controller may now own).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from kubernetes_asyncio import client

from controlplane.metrics import StatusMetrics, status_metrics
from controlplane.model import Ingress, IngressRoute, IngressRouteStatus, KubeObject, Service
from controlplane.sources.kube import (
    INGRESS_ROUTES,
    INGRESSES,
    SERVICES,
    Informer,
    InformerOptions,
    Resource,
)
from controlplane.sources.kubeclient import (
    MERGE_PATCH,
    Backoff,
    KubeApiError,
    is_transient,
    loop_time,
    request_json,
    resource_path,
)
from controlplane.store import Store

log = structlog.get_logger(__name__)

Key = tuple[str, str]
Body = Any
"""What a writer wants one object's status to be: a typed status or a JSON mapping."""


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """The `.status` wanted for one IngressRoute, typed as the model types it."""

    namespace: str
    name: str
    status: IngressRouteStatus


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; it starts full.

    `clock` defaults to the running event loop's, the clock `acquire` sleeps on, so the bucket
    runs on a test's fake loop clock too; it is first read at the first `reserve`, which may
    therefore not be called outside a running loop unless another clock is given.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = loop_time) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated: float | None = None  # full until first used: refills beyond are capped

    def reserve(self) -> float:
        """Take a token, possibly one not there yet; returns how long to wait until it is."""
        now = self._clock()
        elapsed = 0.0 if self._updated is None else now - self._updated
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now
        self._tokens -= 1.0
        return max(0.0, -self._tokens / self.rate)

    async def acquire(self) -> None:
        await asyncio.sleep(self.reserve())


@dataclass(frozen=True)
class WriterOptions:
    rate: float = 50.0
    """Status writes per second (token bucket refill)."""
    burst: int = 100
    concurrency: int = 4
    request_timeout: float = 10.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    rand: Callable[[], float] = random.random


class PatchWriter:
    """The engine: wishes per object, diffed, rate-limited, leader-gated merge patches of a
    status subresource. Subclasses say where an object lives and what its status is now."""

    resource: Resource

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        store: Store | None = None,
        options: WriterOptions | None = None,
        leader: bool = False,
        clock: Callable[[], float] = loop_time,
        metrics: StatusMetrics | None = None,
    ) -> None:
        self.api_client = api_client
        self.metrics = metrics if metrics is not None else status_metrics()
        self.metrics.leader.set(int(leader))
        self.store = store
        self.options = options or WriterOptions()
        self.bucket = TokenBucket(self.options.rate, self.options.burst, clock=clock)
        self.writes = 0
        self._leader = leader
        self._desired: dict[Key, Body] = {}
        self._checked: dict[Key, tuple[Body, KubeObject | None]] = {}
        """(wish, the store's object) of wishes found satisfied: the same wish against the same
        object needs no second look (the Ingress writer's whole-set submits cost dict lookups,
        not compares)."""
        self._pending: dict[Key, None] = {}  # an ordered set: oldest wish first
        self._inflight: dict[Key, asyncio.Task[None]] = {}
        self._written: dict[Key, tuple[Hashable, str | None]] = {}
        self._retries: dict[Key, Backoff] = {}
        self._retrying: dict[Key, asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()  # work for `run`: a wish, a lead, a write ended, a retry due
        self._progress = asyncio.Event()  # for `drain`: something may have become idle
        self._parked = False  # `run` is waiting for `_wake`
        self._log = log.bind(kind=self.resource.kind)

    # -- what subclasses provide ----------------------------------------------------------

    def comparable(self, body: Body) -> Hashable:
        """The part of a status patch body that decides whether a write is needed."""
        raise NotImplementedError

    def observed(self, obj: KubeObject) -> Hashable:
        """The same, for the object as the store has it."""
        raise NotImplementedError

    def patch_body(self, body: Body) -> Mapping[str, Any]:
        """The JSON `.status` to send for a wish."""
        return dict(body)

    # -- the public side -------------------------------------------------------------------

    @property
    def leader(self) -> bool:
        return self._leader

    def set_leader(self, leader: bool) -> None:
        """Start (True) or stop (False, at once: writes in flight are cancelled) writing."""
        if leader == self._leader:
            return
        self._leader = leader
        self.metrics.leader.set(int(leader))
        if leader:
            self._written.clear()
            self._checked.clear()
            self._pending = dict.fromkeys(self._desired)
            self._wake.set()
        else:
            for task in self._inflight.values():
                task.cancel()
        self._progress.set()
        self._log.info("status.leader", leader=leader, wishes=len(self._desired))

    def pending(self) -> int:
        """Wishes not yet known to be written (queued or in flight)."""
        return len(self._pending) + len(self._inflight)

    def idle(self) -> bool:
        """`run` waits for work and has none it could start: no write in flight and, while
        leading, none queued or waiting for its retry (without leadership, wishes wait)."""
        if not self._parked or self._wake.is_set() or self._inflight:
            return False
        return not self._leader or not (self._pending or self._retrying)

    async def drain(self) -> None:
        """Wait until `idle()`; `run()` must be running to get there."""
        while not self.idle():
            self._progress.clear()
            await self._progress.wait()

    def _want(self, key: Key, body: Body) -> None:
        current = self._current(key)
        checked = self._checked.get(key)
        if checked is not None and checked[0] is body and checked[1] is current:
            return  # found satisfied before, and neither the wish nor the object changed since
        self._desired[key] = body
        if key in self._inflight or key in self._pending:
            return  # looked at again when the write in flight ends, or when its turn comes
        if not self._satisfied(key, body):
            self._checked.pop(key, None)
            self._pending[key] = None
            self._wake.set()
        else:
            self._checked[key] = (body, current)

    def _forget(self, key: Key) -> None:
        self._desired.pop(key, None)
        self._checked.pop(key, None)
        self._pending.pop(key, None)
        self._written.pop(key, None)
        self._retries.pop(key, None)
        if (retry := self._retrying.pop(key, None)) is not None:
            retry.cancel()
        self._progress.set()

    def recheck(self, keys: Iterable[Key]) -> None:
        """The store's copy of these objects changed: judge their kept wishes again (a status
        someone else wrote is put back). Keys without a wish are skipped."""
        for key in keys:
            body = self._desired.get(key)
            if body is not None:
                self._want(key, body)

    # -- deciding ------------------------------------------------------------------------

    def _current(self, key: Key) -> KubeObject | None:
        return None if self.store is None else self.store.get(self.resource.kind, *key)

    def _satisfied(self, key: Key, body: Body) -> bool:
        wanted = self.comparable(body)
        current = self._current(key)
        if current is not None and self.observed(current) == wanted:
            return True
        written = self._written.get(key)
        if written is None or written[0] != wanted:
            return False
        # We wrote this; done unless the store has since seen a newer version that differs.
        version = current.metadata.resource_version if current is not None else None
        return self.store is None or version == written[1]

    def _needs_write(self, key: Key) -> bool:
        body = self._desired.get(key)
        if body is None or key in self._inflight or self._satisfied(key, body):
            return False
        if self.store is not None and self._current(key) is None:
            self._forget(key)  # deleted meanwhile: nothing to write to
            return False
        return True

    # -- writing -------------------------------------------------------------------------

    async def run(self) -> None:
        """Write wishes while leader, until cancelled."""
        try:
            while True:
                self._parked = True
                self._progress.set()  # the end of a pass: `drain` looks again
                await self._wake.wait()
                self._parked = False
                self._wake.clear()
                while (
                    self._leader
                    and self._pending
                    and len(self._inflight) < self.options.concurrency
                ):
                    key = next(iter(self._pending))
                    if not self._needs_write(key):
                        self._pending.pop(key, None)
                        continue
                    await self.bucket.acquire()
                    if not self._leader:
                        break  # the key stays pending for when we lead again
                    # The wish may have changed (or been met) while we waited for a token.
                    self._pending.pop(key, None)
                    body = self._desired.get(key)
                    if body is None or not self._needs_write(key):
                        continue
                    task = asyncio.create_task(self._write(key, body))
                    self._inflight[key] = task
                    task.add_done_callback(functools.partial(self._write_done, key))
        finally:
            self._parked = False
            tasks = list(self._inflight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _write(self, key: Key, body: Body) -> None:
        current = self._current(key)
        version = current.metadata.resource_version if current is not None else None
        namespace, name = key
        path = resource_path(
            self.resource.group,
            self.resource.version,
            self.resource.plural,
            namespace=namespace,
            name=name,
            subresource="status",
        )
        retry: float | None = None
        try:
            await request_json(
                self.api_client,
                "PATCH",
                path,
                body={"status": self.patch_body(body)},
                content_type=MERGE_PATCH,
                request_timeout=self.options.request_timeout,
            )
            self.writes += 1
            self.metrics.writes.labels(kind=self.resource.kind).inc()
            self._written[key] = (self.comparable(body), version)
            self._retries.pop(key, None)
            self._log.debug("status.written", namespace=namespace, name=name)
        except asyncio.CancelledError:
            self._pending[key] = None  # leadership lost: look at it again if we lead again
            raise
        except KubeApiError as error:
            if error.status == 404:
                self._log.info("status.object_gone", namespace=namespace, name=name)
                self._forget(key)
            elif is_transient(error):
                if error.status == 409:
                    self.metrics.conflicts.labels(kind=self.resource.kind).inc()
                retry = self._retry_delay(key, error)
            else:
                self._log.error("status.rejected", namespace=namespace, name=name, error=str(error))
        except Exception as error:  # transport failures: retried like a 5xx
            retry = self._retry_delay(key, error)
        finally:
            self._inflight.pop(key, None)
            if retry is not None:
                if (earlier := self._retrying.pop(key, None)) is not None:
                    earlier.cancel()
                later = asyncio.get_running_loop().call_later(retry, self._requeue, key)
                self._retrying[key] = later
            elif key in self._desired and self._desired[key] is not body:
                self._pending[key] = None  # a newer wish arrived while we wrote
            self._wake.set()
            self._progress.set()

    def _write_done(self, key: Key, task: asyncio.Task[None]) -> None:
        """A write cancelled before it started (leadership lost just after it was handed out)
        never reaches its own `finally`: forget it here, and keep the wish for the next lead."""
        if self._inflight.get(key) is task:
            del self._inflight[key]
            self._pending[key] = None
            self._wake.set()
            self._progress.set()

    def _retry_delay(self, key: Key, error: BaseException) -> float:
        backoff = self._retries.setdefault(
            key,
            Backoff(self.options.backoff_initial, self.options.backoff_max, rand=self.options.rand),
        )
        delay = backoff.next()
        self._log.warning(
            "status.retry",
            namespace=key[0],
            name=key[1],
            error=f"{type(error).__name__}: {error}",
            delay=round(delay, 3),
        )
        return delay

    def _requeue(self, key: Key) -> None:
        self._retrying.pop(key, None)
        if key in self._desired and key not in self._inflight:
            self._pending[key] = None
            self._wake.set()
        self._progress.set()


class StatusWriter(PatchWriter):
    """IngressRoute `.status`, written through the status subresource by the leader."""

    resource = INGRESS_ROUTES

    def submit(self, updates: Sequence[StatusUpdate], removed: Iterable[Key] = ()) -> None:
        """Record the wanted statuses of the objects in `updates` and forget the wishes for
        `removed` (non-blocking); only real changes become writes. Wishes for other objects
        are kept as they are: a build hands over only what it changed."""
        for key in removed:
            self._forget(key)
        for update in updates:
            self._want((update.namespace, update.name), update.status)

    def comparable(self, body: Body) -> Hashable:
        status: IngressRouteStatus = body
        return status

    def observed(self, obj: KubeObject) -> Hashable:
        return obj.status if isinstance(obj, IngressRoute) else None

    def patch_body(self, body: Body) -> Mapping[str, Any]:
        dumped: dict[str, Any] = body.model_dump(by_alias=True, mode="json")
        return dumped


LoadBalancer = tuple[tuple[str | None, str | None], ...]
"""`.status.loadBalancer.ingress` as (ip, hostname) pairs."""


def parse_addresses(addresses: str) -> LoadBalancer:
    """`--ingress-status-address`: comma-separated IPs and/or hostnames."""
    found: list[tuple[str | None, str | None]] = []
    for item in (part.strip() for part in addresses.split(",")):
        if not item:
            continue
        try:
            found.append((str(ipaddress.ip_address(item)), None))
        except ValueError:
            found.append((None, item))
    return tuple(found)


def parse_service_ref(ref: str) -> Key:
    """`--envoy-service namespace/name`."""
    namespace, _, name = ref.partition("/")
    if not namespace or not name or "/" in name:
        raise ValueError(f"expected namespace/name, got {ref!r}")
    return namespace, name


def _load_balancer_body(addresses: LoadBalancer) -> Body:
    entries = [
        {"ip": ip} if ip is not None else {"hostname": hostname} for ip, hostname in addresses
    ]
    return {"loadBalancer": {"ingress": entries}}


class _EnvoyServiceSink:
    """The Informer sink for the one Envoy Service: tracks its load balancer addresses."""

    def __init__(self, on_address: Callable[[LoadBalancer | None], None]) -> None:
        self._on_address = on_address

    def replace(self, kind: str, objects: list[KubeObject], namespace: str | None) -> None:
        if objects:
            self.apply(objects[0])
        else:
            self._on_address(None)

    def apply(self, obj: KubeObject) -> None:
        if isinstance(obj, Service):
            ingress = obj.status.load_balancer.ingress
            self._on_address(tuple((entry.ip, entry.hostname) for entry in ingress))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._on_address(None)


class IngressStatusWriter(PatchWriter):
    """Ingress `.status.loadBalancer`: where Envoy is reached, for `kubectl get ingress`."""

    resource = INGRESSES

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        address: str | None = None,
        envoy_service: Key | None = None,
        store: Store | None = None,
        options: WriterOptions | None = None,
        informer_options: InformerOptions | None = None,
        leader: bool = False,
        clock: Callable[[], float] = loop_time,
    ) -> None:
        if (address is None) == (envoy_service is None):
            raise ValueError("give exactly one of address and envoy_service")
        super().__init__(api_client, store=store, options=options, leader=leader, clock=clock)
        self.address: LoadBalancer | None = parse_addresses(address) if address else None
        self.envoy_service = envoy_service
        self._informer_options = informer_options
        self._ingresses: tuple[Key, ...] = ()

    def submit(self, ingresses: Iterable[Key]) -> None:
        """The (namespace, name) of every Ingress of our class (the whole set, each time)."""
        self._ingresses = tuple(ingresses)
        wanted = set(self._ingresses)
        for key in [k for k in self._desired if k not in wanted]:
            self._forget(key)  # no longer ours: leave its status alone from now on
        self._refresh()

    def set_address(self, address: LoadBalancer | None) -> None:
        if address != self.address:
            self._log.info("status.envoy_address", address=address)
            self.address = address
            self._refresh()

    def _refresh(self) -> None:
        if self.address is None:
            return  # not known yet (or the Envoy Service is gone): leave statuses as they are
        body = _load_balancer_body(self.address)
        for key in self._ingresses:
            self._want(key, body)

    def comparable(self, body: Body) -> Hashable:
        entries = body.get("loadBalancer", {}).get("ingress", [])
        return tuple((e.get("ip"), e.get("hostname")) for e in entries)

    def observed(self, obj: KubeObject) -> Hashable:
        if not isinstance(obj, Ingress):
            return None
        return tuple((e.ip, e.hostname) for e in obj.status.load_balancer.ingress)

    async def run(self) -> None:
        if self.envoy_service is None:
            await super().run()
            return
        namespace, name = self.envoy_service
        informer = Informer(
            self.api_client,
            SERVICES,
            _EnvoyServiceSink(self.set_address),
            namespace=namespace,
            field_selector=f"metadata.name={name}",
            options=self._informer_options,
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(informer.run(), name="envoy-service-informer")
            group.create_task(super().run(), name="ingress-status-writer")
