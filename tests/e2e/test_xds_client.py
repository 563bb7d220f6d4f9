"""`controlplane xds`: the debug client gets everything a real controller serves, keys redacted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from pipeline import Pipeline

from controlplane.xds.client import fetch_config

ROOT = Path(__file__).resolve().parents[2]


async def test_the_debug_client_sees_what_envoy_would_and_no_private_key() -> None:
    rig = Pipeline(ROOT / "examples" / "ingressroute")
    await rig.start_controller()
    try:
        config = await fetch_config(rig.settings.xds_address)
        assert [listener["name"] for listener in config["lds"]] == ["ingress_http", "ingress_https"]
        assert [route["name"] for route in config["rds"]] == ["ingress_http", "ingress_https"]
        assert {c["cluster_name"] for c in config["eds"]} >= {"blog/blog/http", "shop/shop/http"}
        (secret,) = config["sds"]
        assert secret["name"] == "platform/www-tls"
        key = secret["tls_certificate"]["private_key"]["inline_bytes"]
        assert key == "W3JlZGFjdGVkXQ=="  # base64 of "[redacted]"

        # The same through the command line, filtered by type.
        completed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "controlplane", "xds", "--xds-address",
             rig.settings.xds_address, "--type", "lds"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        assert list(json.loads(completed.stdout)) == ["lds"]
    finally:
        await rig.stop_controller()
