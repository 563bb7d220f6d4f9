"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does it.

Every replica runs a `LeaderElector`; the one holding the Lease is the leader, and only the
leader writes status (the runtime toggles `StatusWriter.set_leader` from the callbacks).

- **Acquire.** Every `retry_period` (jittered up to +20%) a candidate reads the Lease. It takes
  it when it is absent (create), released (no holder), or expired, and renews it when it already
  holds it. Every write is a create or an update carrying the `resourceVersion` just read, so two
  candidates racing for the Lease cannot both win: the loser gets 409 Conflict.
- **Expiry is judged on our own clock.** A Lease is expired when its record (holder, renew time,
  resourceVersion) has not changed for `leaseDurationSeconds` *as measured locally since we first
  saw that record*, never by comparing the holder's timestamps with our wall clock, so clock skew
  between nodes cannot make two leaders.
- **Renew or step down.** The leader renews every `retry_period`. When no renewal has succeeded
  for `renew_deadline` (each attempt is cut off at that deadline), or the Lease turns out to be
  held by someone else, it calls `on_stopped_leading` at once and goes back to trying to acquire.
  `renew_deadline < lease_duration` leaves the old leader time to stop before anyone else may
  take over.
- **Release on clean shutdown.** Cancelling `run()` steps down (callback first, so writes stop)
  and then clears the holder and sets `leaseDurationSeconds: 1`, so another replica takes over on
  its next retry instead of waiting out the lease. A crash releases nothing: the others wait for
  expiry (`release_on_exit=False` simulates that in tests).

**Where the Lease lives.** By default in the controller's own namespace (`lease_namespace`):
`$POD_NAMESPACE` (the Deployment sets it from the downward API), else the service account's
namespace file, else the namespace of the kubeconfig's current context, else `projectcontour`.
So a controller started with `--kubeconfig` against any cluster elects itself where its
credentials most likely may write, and in a pod the Role of `manifests/03-rbac.yaml` matches.

**A Lease that cannot be taken is the operator's to fix.** Only another holder is a normal reason
not to lead. Anything else (the namespace does not exist: 404 on create; RBAC: 403; bad
credentials: 401; the API server unreachable) is logged once as a `leader.lease_unavailable`
warning that names the cause and the fix, and again only when the cause changes; recovery is
logged once (`leader.lease_available`). `Leadership` holds the same facts for `/debug/leader`
and the `controlplane_leader` gauge: whether this replica writes status, and if not, why.

Lease durations are whole seconds in the API; fractional values are rounded up there. Durations
are measured on `clock`, by default the running event loop's (the clock the retry sleeps and the
attempt timeouts follow), so a whole election runs on a test's fast-forwarded loop clock; `now`
gives the timestamps written into the Lease. Both, and the jitter's `rand`, are injectable.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
import structlog
import yaml
from kubernetes_asyncio import client
from prometheus_client import Gauge

from controlplane.sources.kubeclient import (
    JSON,
    KubeApiError,
    loop_time,
    request_json,
    resource_path,
)

log = structlog.get_logger(__name__)

Callback = Callable[[], None]


def default_identity() -> str:
    """The pod name (or hostname) plus a random suffix: unique even across restarts."""
    base = os.environ.get("POD_NAME") or socket.gethostname() or "controlplane"
    return f"{base}_{secrets.token_hex(4)}"


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_LEASE_NAMESPACE = "projectcontour"


def lease_namespace(
    kubeconfig: Path | None,
    *,
    environ: Mapping[str, str] = os.environ,
    service_account: Path = SERVICE_ACCOUNT_NAMESPACE,
) -> tuple[str, str]:
    """The controller's own namespace, for the Lease, and where it came from (for messages):
    `$POD_NAMESPACE`, the service account's namespace file, the namespace of the kubeconfig's
    current context, else `projectcontour`."""
    if namespace := environ.get("POD_NAMESPACE", "").strip():
        return namespace, "$POD_NAMESPACE"
    try:
        namespace = service_account.read_text(encoding="utf-8").strip()
    except OSError:
        namespace = ""
    if namespace:
        return namespace, f"the service account ({service_account})"
    if kubeconfig is not None and (namespace := _context_namespace(kubeconfig)):
        return namespace, f"the current context of {kubeconfig}"
    return DEFAULT_LEASE_NAMESPACE, "the default"


def _context_namespace(kubeconfig: Path) -> str:
    try:
        loaded = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ""  # make_api_client reports an unreadable kubeconfig
    if not isinstance(loaded, dict):
        return ""
    current = loaded.get("current-context")
    for entry in loaded.get("contexts") or ():
        if isinstance(entry, dict) and entry.get("name") == current:
            context = entry.get("context")
            namespace = context.get("namespace") if isinstance(context, dict) else None
            return namespace.strip() if isinstance(namespace, str) else ""
    return ""


@dataclass
class Leadership:
    """Whether this replica writes status, and why not when it does not (`/debug/leader`).

    `mode` is `files` (manifests: no status to write), `single` (`--no-leader-election`: writes
    at once) or `elected` (writes while it holds the Lease). The elector keeps `holder` and
    `problem` current; `gauge` (`controlplane_leader`) follows `writes_status`.
    """

    mode: Literal["files", "single", "elected"] = "files"
    writes_status: bool = False
    lease: str | None = None
    identity: str | None = None
    holder: str | None = None
    problem: str | None = None
    gauge: Gauge | None = field(default=None, repr=False, compare=False)

    def set_writes_status(self, writes: bool) -> None:
        self.writes_status = writes
        if self.gauge is not None:
            self.gauge.set(1 if writes else 0)

    def as_dict(self) -> dict[str, Any]:
        """The JSON `/debug/leader` serves (camelCase, as Kubernetes writes its objects)."""
        return {
            "writesStatus": self.writes_status,
            "mode": self.mode,
            "lease": self.lease,
            "identity": self.identity,
            "holder": self.holder,
            "problem": self.problem,
        }


def lease_problem(error: BaseException, namespace: str, origin: str) -> tuple[str, str]:
    """Why a Lease in `namespace` cannot be taken, and how to fix it, as (cause, message)."""
    where = f"namespace {namespace} (from {origin})"
    if isinstance(error, KubeApiError):
        detail = error.message or error.reason
        if error.status == 404:
            return "namespace_missing", (
                f"cannot create the Lease: {detail or 'not found'}; create {where} or set "
                "--leader-election-namespace (or POD_NAMESPACE) to the controller's own namespace"
            )
        if error.status == 403:
            return "forbidden", (
                f"forbidden: {detail}; grant get, create and update on leases "
                f"(coordination.k8s.io) in {where} to this controller's identity, as the Role "
                "in manifests/03-rbac.yaml does, or run a single replica with "
                "--no-leader-election"
            )
        if error.status == 401:
            return "unauthorized", (
                f"unauthorized: {detail or 'the API server refused the credentials'}; check the "
                "kubeconfig (or the service account token)"
            )
        return f"api_{error.status}", f"the API server answered {error}; retrying"
    if isinstance(error, TimeoutError):
        return "timeout", "the API server did not answer in time; retrying"
    if isinstance(error, aiohttp.ClientError | OSError):
        return "unreachable", f"cannot reach the API server ({error}); retrying"
    return type(error).__name__, f"{type(error).__name__}: {error}"


def micro_time(moment: datetime) -> str:
    """A `MicroTime` as the API server parses it: always six fraction digits, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Takes and renews a coordination.k8s.io Lease; calls back on gaining and losing it."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started_leading: Callback = lambda: None,
        on_stopped_leading: Callback = lambda: None,
        release_on_exit: bool = True,
        leadership: Leadership | None = None,
        namespace_origin: str = "--leader-election-namespace",
        clock: Callable[[], float] = loop_time,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        self.api_client = api_client
        self.namespace, self.name = namespace, name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.release_on_exit = release_on_exit
        self.is_leader = False
        self.namespace_origin = namespace_origin
        self.leadership = leadership if leadership is not None else Leadership()
        self.leadership.mode = "elected"
        self.leadership.lease = f"{namespace}/{name}"
        self.leadership.identity = self.identity
        self._cause: str | None = None  # of the problem logged last, so it is logged once
        self._clock, self._now, self._rand = clock, now, rand
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._held_by_other = False
        self._log = log.bind(lease=f"{namespace}/{name}", identity=self.identity)

    @property
    def _collection(self) -> str:
        return resource_path("coordination.k8s.io", "v1", "leases", namespace=self.namespace)

    @property
    def _path(self) -> str:
        return resource_path(
            "coordination.k8s.io", "v1", "leases", namespace=self.namespace, name=self.name
        )

    async def run(self) -> None:
        """Elect until cancelled; on cancellation step down and (by default) release."""
        try:
            while True:
                await self._acquire()
                self._start_leading()
                reason = await self._keep_renewing()
                self._stop_leading(reason)
        finally:
            if self.is_leader:
                self._stop_leading("shutting down")
                if self.release_on_exit:
                    await self._release()

    # -- the loops --------------------------------------------------------------------------

    async def _acquire(self) -> None:
        while True:
            if await self._attempt(self.renew_deadline):
                return
            await asyncio.sleep(self.retry_period * (1.0 + 0.2 * self._rand()))

    async def _keep_renewing(self) -> str:
        """Renew every retry period; return why leadership was lost."""
        last_renewal = self._clock()
        while True:
            await asyncio.sleep(self.retry_period)
            deadline = last_renewal + self.renew_deadline
            if await self._attempt(deadline - self._clock()):
                last_renewal = self._clock()
            elif self._held_by_other:
                return "the lease is held by another replica"
            elif self._clock() >= deadline:
                return "renew deadline exceeded"

    def _start_leading(self) -> None:
        self.is_leader = True
        self.leadership.set_writes_status(True)
        self._log.info("leader.started")
        self._call(self.on_started_leading)

    def _stop_leading(self, reason: str) -> None:
        self.is_leader = False
        self.leadership.set_writes_status(False)
        self._log.warning("leader.stopped", reason=reason)
        self._call(self.on_stopped_leading)

    def _problem(self, error: BaseException | None) -> None:
        """Log a new reason the Lease cannot be taken once (with its fix), and its end once."""
        if error is None:
            if self._cause is not None:
                self._log.info("leader.lease_available", previously=self._cause)
            self._cause = self.leadership.problem = None
            return
        cause, message = lease_problem(error, self.namespace, self.namespace_origin)
        self.leadership.problem = message
        if cause != self._cause:
            self._cause = cause
            self._log.warning("leader.lease_unavailable", cause=cause, message=message)

    def _call(self, callback: Callback) -> None:
        try:
            callback()
        except Exception:  # a broken callback must not stop the election
            self._log.exception("leader.callback_failed")

    # -- one attempt ------------------------------------------------------------------------

    async def _attempt(self, within: float) -> bool:
        """Try once to acquire or renew, giving up after `within` seconds; True if we hold it."""
        self._held_by_other = False
        if within <= 0:
            return False
        try:
            async with asyncio.timeout(within):
                held = await self._try_acquire_or_renew(within)
        except Exception as error:  # timeouts, API errors, transport: try again next period
            self._problem(error)
            return False
        self._problem(None)
        return held

    async def _try_acquire_or_renew(self, request_timeout: float) -> bool:
        now = micro_time(self._now())
        try:
            lease = await request_json(
                self.api_client, "GET", self._path, request_timeout=request_timeout
            )
        except KubeApiError as error:
            if error.status != 404:
                raise
            return await self._create(now, request_timeout)

        spec: JSON = dict(lease.get("spec") or {})
        metadata: JSON = dict(lease.get("metadata") or {})
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), metadata.get("resourceVersion"))
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        self.leadership.holder = holder or None
        if holder and holder != self.identity:
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            if self._clock() < self._observed_at + duration:
                self._held_by_other = True
                return False

        transitions = int(spec.get("leaseTransitions") or 0)
        ours = holder == self.identity
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=math.ceil(self.lease_duration),
            renewTime=now,
            acquireTime=spec.get("acquireTime") if ours else now,
            leaseTransitions=transitions if ours else transitions + 1,
        )
        body = {**lease, "metadata": metadata, "spec": spec}
        try:
            updated = await request_json(
                self.api_client, "PUT", self._path, body=body, request_timeout=request_timeout
            )
        except KubeApiError as error:
            if error.status == 409:  # someone else wrote it first
                return False
            raise
        if not ours:
            self._log.info("leader.acquired", previous=holder or None)
        self._remember(updated)
        return True

    async def _create(self, now: str, request_timeout: float) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": math.ceil(self.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            created = await request_json(
                self.api_client,
                "POST",
                self._collection,
                body=body,
                request_timeout=request_timeout,
            )
        except KubeApiError as error:
            if error.status == 409:  # created by another candidate in the meantime
                return False
            raise
        self._log.info("leader.acquired", previous=None)
        self._remember(created)
        return True

    def _remember(self, lease: JSON) -> None:
        spec = lease.get("spec") or {}
        metadata = lease.get("metadata") or {}
        self.leadership.holder = spec.get("holderIdentity") or None
        self._observed = (
            spec.get("holderIdentity") or "",
            spec.get("renewTime"),
            metadata.get("resourceVersion"),
        )
        self._observed_at = self._clock()

    async def _release(self) -> None:
        """Give the lease up so another replica need not wait for it to expire."""
        try:
            async with asyncio.timeout(self.retry_period * 2):
                lease = await request_json(self.api_client, "GET", self._path)
                spec: JSON = dict(lease.get("spec") or {})
                if spec.get("holderIdentity") != self.identity:
                    return
                now = micro_time(self._now())
                spec.update(leaseDurationSeconds=1, renewTime=now, acquireTime=now)
                spec.pop("holderIdentity", None)
                await request_json(self.api_client, "PUT", self._path, body={**lease, "spec": spec})
                self._log.info("leader.released")
        except Exception as error:  # best effort: the lease expires anyway
            self._log.warning("leader.release_failed", error=f"{type(error).__name__}: {error}")
