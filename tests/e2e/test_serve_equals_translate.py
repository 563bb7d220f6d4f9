"""What `controlplane translate -f DIR` prints is what `serve --manifests DIR` streams.

For every example and test fixture directory: the controller serves the directory, the debug
client fetches everything over ADS as an Envoy would, and each resource must equal, resource for
resource, what the offline translation of the same directory printed (keys redacted aside).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from pipeline import Pipeline

from controlplane.envoy import TranslateOptions
from controlplane.offline import translate_manifests
from controlplane.xds.client import fetch_config

ROOT = Path(__file__).resolve().parents[2]
DIRECTORIES = [
    *sorted(path for path in (ROOT / "examples").iterdir() if path.is_dir()),
    ROOT / "tests" / "testapi" / "fixtures",
]
TYPES = {
    "listeners": "lds",
    "routes": "rds",
    "clusters": "cds",
    "endpoints": "eds",
    "secrets": "sds",
}
REDACTED = base64.b64encode(b"[redacted]").decode()


def _name(resource: dict[str, Any]) -> str:
    return str(resource.get("name") or resource.get("cluster_name"))


def _redacted(secret: dict[str, Any]) -> dict[str, Any]:
    certificate = secret.get("tls_certificate")
    if certificate is not None:
        certificate["private_key"] = {"inline_bytes": REDACTED}
    return secret


@pytest.mark.parametrize("directory", DIRECTORIES, ids=lambda path: path.name)
async def test_serve_streams_what_translate_prints(directory: Path) -> None:
    rig = Pipeline(directory)
    options = TranslateOptions(http_port=rig.http_port, https_port=rig.https_port)
    printed = translate_manifests([directory], translate_options=options)
    await rig.start_controller()
    try:
        served = await fetch_config(rig.settings.xds_address)
    finally:
        await rig.stop_controller()
    for key, type_name in TYPES.items():
        expected = {_name(r): r for r in printed[key]}
        if key == "secrets":
            expected = {name: _redacted(secret) for name, secret in expected.items()}
        if key == "routes" and "ingress_https" not in {_name(r) for r in printed["listeners"]}:
            # Published (empty) but no listener refers to it, so no Envoy asks for it.
            assert expected.pop("ingress_https") == {"name": "ingress_https"}
        got = {_name(r): r for r in served.get(type_name, [])}
        assert got == expected, f"{directory.name}: {key} differ"
    assert printed["listeners"], "every directory serves something"
