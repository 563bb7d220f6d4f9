"""The checks that take a whole snapshot outside `check`: what Envoy says of it, and what
`controlplane translate` prints for the same manifests.

- `envoy_rejects(envoy, snapshot)` runs `envoy --mode validate` on the snapshot turned into a
  static bootstrap (`static_bootstrap`), written in binary so that values JSON cannot carry reach
  Envoy as they would over xDS; None when Envoy accepts it, else the end of what it said.
- `translate_differs(manifests, encoded)` writes the manifests to a YAML file, runs the
  `translate` path on it (`offline.translate_manifests`: the file reader, the store, the one
  builder and publisher) and compares what it prints with the resources `check` published in
  file mode: the same manifests must give the same resources, however hostile (and `translate`
  must not die on them). The store's warnings about unparseable objects are captured, not
  printed.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format
from structlog.testing import capture_logs

from controlplane.envoy import EnvoyConfig, static_bootstrap, to_json
from controlplane.offline import translate_manifests
from controlplane.xds import Snapshot

Bodies = dict[str, dict[str, bytes]]
"""Resource bytes by type URL, then name."""


def bodies(snapshot: Snapshot) -> Bodies:
    return {
        type_url: {name: r.body for name, r in snapshot.resources(type_url).items()}
        for type_url in sorted(snapshot.type_urls)
    }


def translate_differs(manifests: Sequence[Mapping[str, Any]], encoded: Bodies) -> str | None:
    """None if `translate` of `manifests` prints the resources `encoded`, else which differ."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "manifests.yaml"
        path.write_text(yaml.safe_dump_all(list(manifests)), encoding="utf-8")
        with capture_logs():
            printed = translate_manifests([path])
    expected = to_json(EnvoyConfig.decode(encoded))
    differing = [kind for kind, resources in expected.items() if printed.get(kind) != resources]
    return f"{', '.join(differing)} differ from the published snapshot" if differing else None


def envoy_rejects(envoy: str, snapshot: Snapshot, directory: Path | None = None) -> str | None:
    """None if `envoy --mode validate` accepts the snapshot, else the end of what it said."""
    config = EnvoyConfig.decode(bodies(snapshot))
    bootstrap = json_format.ParseDict(static_bootstrap(config), bootstrap_pb2.Bootstrap())
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        path = Path(scratch) / "bootstrap.pb"
        path.write_bytes(bootstrap.SerializeToString())
        completed = subprocess.run(
            [envoy, "--mode", "validate", "--config-path", str(path), "-l", "critical"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if completed.returncode == 0:
        return None
    said = (completed.stdout + completed.stderr).strip()
    # Envoy prints the whole bootstrap before its reason: keep what follows it.
    return said.rpartition("\n}\n")[2][-1000:] or said[-1000:]
