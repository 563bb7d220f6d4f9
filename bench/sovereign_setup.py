"""sovereign, the peer of `bench/peer_sovereign.py`: installing it into its own virtualenv
under `bench/.peer/` (never a dependency of ours), its Python templates (STATIC clusters, one
listener taking routes over REST RDS, one RouteConfiguration), its file source and
configuration, the launcher that gives its poller a sub-second rate, and the discovery requests
an Envoy sends it. See `bench/peer_sovereign.py` for how it is measured.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

SOVEREIGN_VERSION = "0.32.12"
PEER_DIR = Path(__file__).resolve().parent / ".peer"


def install_sovereign() -> Path | str:
    """The peer's virtualenv (made once, reused), or why it could not be made."""
    venv = PEER_DIR / f"sovereign-{SOVEREIGN_VERSION}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120
        )
        subprocess.run(
            [
                str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--timeout", "30", f"sovereign=={SOVEREIGN_VERSION}",
            ],
            check=True, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    except subprocess.CalledProcessError as error:
        lines = (error.stderr or error.stdout or "").strip().splitlines()
        errors = [line for line in lines if "ERROR" in line] or lines
        reason = errors[-1] if errors else f"exit status {error.returncode}"
        return (
            f"pip could not install sovereign=={SOVEREIGN_VERSION} (is PyPI reachable?): {reason}"
        )
    except subprocess.TimeoutExpired:
        return f"installing sovereign=={SOVEREIGN_VERSION} timed out (is PyPI reachable?)"
    marker.touch()
    return python


_CLUSTERS = """
def call(instances, discovery_request, **kwargs):
    for instance in instances:
        yield {
            "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": instance["name"],
            "connect_timeout": "2s",
            "type": "STATIC",
            "load_assignment": {
                "cluster_name": instance["name"],
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1", "port_value": instance["port"]}}}}]}],
            },
        }
"""


_ROUTES = """
def call(instances, discovery_request, **kwargs):
    yield {
        "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        "name": "ingress_http",
        "virtual_hosts": [
            {
                "name": instance["domain"],
                "domains": [instance["domain"]],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": instance["name"]}}],
            }
            for instance in instances
        ],
    }
"""


_LISTENERS = """
import os

def call(instances, discovery_request, **kwargs):
    yield {
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": "ingress_http",
        "address": {"socket_address": {
            "address": "127.0.0.1", "port_value": int(os.environ["BENCH_HTTP_PORT"])}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network."
                "http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "ingress_http",
                "rds": {
                    "route_config_name": "ingress_http",
                    "config_source": {
                        "resource_api_version": "V3",
                        "api_config_source": {
                            "api_type": "REST",
                            "transport_api_version": "V3",
                            "cluster_names": ["sovereign"],
                            "refresh_delay": os.environ["BENCH_RDS_REFRESH"],
                        },
                    },
                },
                "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/"
                        "envoy.extensions.filters.http.router.v3.Router"},
                }],
            },
        }]}],
    }
"""


LAUNCHER = """
import os, sovereign
sovereign.poller.source_refresh_rate = float(os.environ["BENCH_SOURCE_REFRESH_S"])
from sovereign.server import main
main()
"""


def instances(count: int, port: int, new: int = 0) -> list[dict[str, Any]]:
    found = [
        {"name": f"app{index}", "domain": f"app{index}.example.com", "port": port}
        for index in range(count)
    ]
    found += [
        {"name": f"new{index}", "domain": f"new{index}.example.com", "port": port}
        for index in range(new)
    ]
    return found


def seconds(value: float) -> str:
    return f"{value:g}s"


def sovereign_bootstrap(port: int, refresh: dict[str, float]) -> dict[str, Any]:
    def source(delay: float) -> dict[str, Any]:
        return {
            "resource_api_version": "V3",
            "api_config_source": {
                "api_type": "REST",
                "transport_api_version": "V3",
                "cluster_names": ["sovereign"],
                "refresh_delay": seconds(delay),
            },
        }

    return {
        "node": {"id": "envoy", "cluster": "bench"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "lds_config": source(refresh["lds"]),
            "cds_config": source(refresh["cds"]),
        },
        "static_resources": {
            "clusters": [
                {
                    "name": "sovereign",
                    "connect_timeout": "2s",
                    "type": "STATIC",
                    "load_assignment": {
                        "cluster_name": "sovereign",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": "127.0.0.1",
                                                    "port_value": port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ]
        },
    }


def prepare_sovereign(work: Path, backend_port: int, routes: int) -> Path:
    """Write sovereign's templates, source and configuration into ``work``; the source."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name, text in (("clusters", _CLUSTERS), ("routes", _ROUTES), ("listeners", _LISTENERS)):
        (work / f"{name}.py").write_text(text)
    source = work / "instances.json"
    source.write_text(json.dumps(instances(routes, backend_port)))
    config = {
        "templates": {
            "default": [
                {"type": kind, "spec": {"protocol": "python", "path": str(work / f"{kind}.py")}}
                for kind in ("clusters", "routes", "listeners")
            ]
        },
        "sources": [
            {
                "type": "file",
                "scope": "default",
                "config": {
                    "spec": {"protocol": "file", "serialization": "json", "path": str(source)}
                },
            }
        ],
        "matching": {"enabled": False},
        "logging": {"access_logs": {"enabled": False}},
    }
    (work / "sovereign.yaml").write_text(yaml.safe_dump(config))
    return source


def discovery_request(kind: str, version: str = "0") -> dict[str, Any]:
    request: dict[str, Any] = {
        "node": {
            "id": "envoy",
            "cluster": "bench",
            "user_agent_name": "envoy",
            "user_agent_build_version": {"version": {"major_number": 1, "minor_number": 40}},
        },
        "version_info": version,
        "resource_names": ["ingress_http"] if kind == "routes" else [],
    }
    return request


async def until_discovery(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/v3/discovery:clusters"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.monotonic() < deadline:
            try:
                async with session.post(url, json=discovery_request("clusters")) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"sovereign not answering on {port} within {timeout_s} s")
