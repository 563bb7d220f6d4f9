"""Issue 13, item 3: start → ready with 10,000 roots + 10,000 delegates listed from an API server.

The Kubernetes API test server runs in its own process (`python -m bench.start_ready api N
KUBECONFIG`), seeded in-process with the CRDs and the `ingressroute_scale` shape: N root
IngressRoutes (2 routes, one delegated), N delegates, N Services and N EndpointSlices (3
endpoints each), in 100 namespaces. Each IngressRoute already carries the status the controller
would write (a restart in a live cluster), so nothing is written back. Once it listens it
writes the kubeconfig.

This process then runs the controller as `controlplane serve --kubeconfig` does (`serve()`, no
leader election, logs at warning) and times from the call to the first `/readyz` 200 (every
source listed, the first snapshot built from it and published), polling every 5 ms. The
longest event-loop lag over that time (a `LoopLag` every millisecond) says whether the start
stalls the loop too (the lists are parsed on it). Interpreter start-up and imports are not
included (about 1 s, the same for any size).

Then, 3 times, one root IngressRoute is edited through the API (a merge patch adding a route):
the longest loop lag in the second after each edit is the stall a one-object change causes in
cluster mode, where the build listeners (status writer, Events) run on the loop after each
publish. Each edit moves the root's generation, so its status (`observedGeneration`) is written
once: 3 status writes after the edits, none for the 19,999 others.

`python -m bench.start_ready 10000` prints one row (a dict) as its last line.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.common import (
    endpoint_slice,
    ingressroute_delegate,
    ingressroute_root,
    peak_rss_mib,
    service,
)
from controlplane.config import ServeSettings
from controlplane.dag import build
from controlplane.metrics import LoopLag
from controlplane.model import ObjectSet, parse_object
from controlplane.runtime import serve
from controlplane.testing.apiserver import TestApiServer
from controlplane.testing.envoy import free_port

ROOT = Path(__file__).resolve().parents[1]
NAMESPACES = 100


async def run_api(count: int, kubeconfig: Path) -> None:
    """The API server process: seed, listen, write the kubeconfig, serve until killed."""
    api = TestApiServer(bookmark_interval=60.0, history_limit=1_000)
    raws = [
        raw
        for index in range(count)
        for raw in (
            service(f"ns{index % NAMESPACES}", f"app{index}"),
            endpoint_slice(f"ns{index % NAMESPACES}", f"app{index}", index),
            ingressroute_root(
                f"ns{index % NAMESPACES}", f"app{index}", f"app{index}.example.com", f"app{index}"
            ),
            ingressroute_delegate(f"ns{index % NAMESPACES}", f"app{index}", f"app{index}"),
        )
    ]
    created = (
        parse_object({**raw, "metadata": {**raw["metadata"], "generation": 1}}) for raw in raws
    )  # as the API server stores them
    statuses = {
        (s.namespace, s.name): s.status.model_dump(by_alias=True, mode="json")
        for s in build(ObjectSet.from_objects(created)).statuses
    }
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                api.put_object(doc)
    for index in range(NAMESPACES):
        api.put_object(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns{index}"}}
        )
    for raw in raws:
        meta = raw["metadata"]
        status = statuses.get((meta["namespace"], meta["name"]))
        api.put_object(raw if status is None else {**raw, "status": status})
    await api.start("127.0.0.1", 0)
    api.write_kubeconfig(kubeconfig)
    await asyncio.Event().wait()


async def status_writes(api: str, session: aiohttp.ClientSession) -> int:
    """Status patches the controller sent so far (none, if the seeded statuses are right)."""
    async with session.get(f"{api}/_test/requests") as answer:
        counts: list[dict[str, Any]] = (await answer.json())["requests"]
    return sum(
        c.get("count", 0)
        for c in counts
        if c.get("verb") == "patch" and c.get("subresource") == "status"
    )


async def until_ready(url: str, session: aiohttp.ClientSession) -> None:
    while True:
        try:
            async with session.get(url) as answer:
                if answer.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):  # a stalled loop answers late
            pass
        await asyncio.sleep(0.005)


async def edit_lags(api: str, session: aiohttp.ClientSession, lag: LoopLag) -> float:
    """The longest loop lag in the second after each of 3 edits of one root."""
    path = f"{api}/apis/contour.heptio.com/v1beta1/namespaces/ns7/ingressroutes/app7"
    longest = 0.0
    for edit in range(3):
        routes = ingressroute_root("ns7", "app7", "app7.example.com", "app7")["spec"]["routes"]
        routes.append({"match": f"/edit-{edit}", "services": [{"name": "app7", "port": 80}]})
        lag.reset()
        async with session.patch(
            path,
            data=json.dumps({"spec": {"routes": routes}}),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as answer:
            answer.raise_for_status()
        await asyncio.sleep(1.0)
        longest = max(longest, lag.max_lag)
    return longest


async def measure(count: int, kubeconfig: Path, api: str) -> dict[str, Any]:
    health = f"127.0.0.1:{free_port()}"
    settings = ServeSettings(
        kubeconfig=kubeconfig,
        refuse_local_endpoints=False,
        xds_address=f"127.0.0.1:{free_port()}",
        health_address=health,
        leader_election=False,
        log_level="warning",
        log_json=True,
    )
    stop = asyncio.Event()
    lag = LoopLag(interval=0.001)
    lag.start()
    started = time.perf_counter()
    controller = asyncio.create_task(serve(settings, stop=stop))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        await asyncio.wait_for(until_ready(f"http://{health}/readyz", session), 120)
        ready = time.perf_counter() - started
        start_lag = lag.max_lag
        await asyncio.sleep(1.0)  # the first build's listeners are done
        writes = await status_writes(api, session)
        edit_lag = await edit_lags(api, session, lag)
        edit_writes = await status_writes(api, session) - writes
    lag.stop()
    stop.set()
    await controller
    return {
        "roots+delegates": f"{count}+{count}",
        "objects listed": 4 * count,
        "start → ready s": ready,
        "max loop lag during start ms": start_lag * 1000,
        "status writes at start": writes,
        "one root edited via API: max loop lag ms": edit_lag * 1000,
        "status writes after the edits": edit_writes,
        "peak RSS MiB": peak_rss_mib(),
    }


def main(count: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-start-"))
    kubeconfig = work / "kubeconfig"
    api = subprocess.Popen(
        [sys.executable, "-m", "bench.start_ready", "api", str(count), str(kubeconfig)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not kubeconfig.exists():
            if api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        api_url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        return asyncio.run(measure(count, kubeconfig, api_url))
    finally:
        os.kill(api.pid, signal.SIGTERM)
        api.wait()


if __name__ == "__main__":
    if sys.argv[1] == "api":
        asyncio.run(run_api(int(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.stdout.write(repr(main(int(sys.argv[1]))) + "\n")
