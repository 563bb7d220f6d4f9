"""The rendered bootstrap: its shape per xDS mode, and Envoy's own verdict on it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.envoy.bootstrap import (
    XDS_CLUSTER,
    XDS_MODES,
    XdsMode,
    parse_address,
    render_bootstrap,
    resource_config_source,
    write_bootstrap,
)

REPO = Path(__file__).resolve().parents[2]
GRPC_TO_XDS = {
    "transport_api_version": "V3",
    "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
}


def _xds_cluster(bootstrap: dict[str, Any]) -> dict[str, Any]:
    (cluster,) = bootstrap["static_resources"]["clusters"]
    assert cluster["name"] == XDS_CLUSTER
    return dict(cluster)


@pytest.mark.parametrize(
    ("mode", "ads_config", "source"),
    [
        (
            "ads",
            {"api_type": "GRPC", **GRPC_TO_XDS, "set_node_on_first_message_only": True},
            {"ads": {}, "resource_api_version": "V3"},
        ),
        (
            "delta",
            {"api_type": "DELTA_GRPC", **GRPC_TO_XDS, "set_node_on_first_message_only": True},
            {"ads": {}, "resource_api_version": "V3"},
        ),
        (
            "separate",
            None,
            {
                "api_config_source": {"api_type": "GRPC", **GRPC_TO_XDS},
                "resource_api_version": "V3",
            },
        ),
    ],
)
def test_dynamic_resources_per_mode(
    mode: XdsMode, ads_config: dict[str, Any] | None, source: dict[str, Any]
) -> None:
    dynamic = render_bootstrap(mode=mode)["dynamic_resources"]
    assert dynamic.get("ads_config") == ads_config
    # Envoy waits for the controller however long it takes instead of going LIVE empty.
    waiting = {**source, "initial_fetch_timeout": "0s"}
    assert dynamic["lds_config"] == waiting
    assert dynamic["cds_config"] == waiting
    assert resource_config_source(mode) == source


def test_xds_cluster_speaks_http2_with_keepalive() -> None:
    bootstrap = render_bootstrap(xds_address="10.0.0.7:8001", admin_address="127.0.0.1:9001")
    cluster = _xds_cluster(bootstrap)
    options = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert "http2_protocol_options" in options["explicit_http_config"]
    assert cluster["upstream_connection_options"]["tcp_keepalive"]
    assert cluster["type"] == "STATIC"
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"] == {"socket_address": {"address": "10.0.0.7", "port_value": 8001}}
    assert bootstrap["admin"]["address"]["socket_address"]["port_value"] == 9001
    assert "overload_manager" not in bootstrap


@pytest.mark.parametrize(
    ("address", "cluster_type", "host", "port"),
    [
        ("127.0.0.1:8001", "STATIC", "127.0.0.1", 8001),
        ("[::1]:8001", "STATIC", "::1", 8001),
        ("contour.projectcontour:8001", "STRICT_DNS", "contour.projectcontour", 8001),
        ("localhost:1", "STRICT_DNS", "localhost", 1),
    ],
)
def test_xds_cluster_type_follows_address(
    address: str, cluster_type: str, host: str, port: int
) -> None:
    assert parse_address(address) == (host, port)
    cluster = _xds_cluster(render_bootstrap(xds_address=address))
    assert cluster["type"] == cluster_type
    assert ("dns_lookup_family" in cluster) == (cluster_type == "STRICT_DNS")


@pytest.mark.parametrize("address", ["8001", "host:", ":8001", "host:port", "host:70000"])
def test_malformed_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        render_bootstrap(xds_address=address)


def test_unknown_mode_and_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown xDS mode"):
        render_bootstrap(mode="rest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        render_bootstrap(max_downstream_connections=0)


def test_node_and_overload_manager() -> None:
    bootstrap = render_bootstrap(node_id="edge-1", cluster="edge", max_downstream_connections=500)
    assert bootstrap["node"] == {"id": "edge-1", "cluster": "edge"}
    (monitor,) = bootstrap["overload_manager"]["resource_monitors"]
    assert monitor["typed_config"]["max_active_downstream_connections"] == 500


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_write_bootstrap_picks_format_by_suffix(tmp_path: Path, suffix: str) -> None:
    bootstrap = render_bootstrap()
    path = write_bootstrap(tmp_path / "nested" / f"envoy{suffix}", bootstrap)
    text = path.read_text(encoding="utf-8")
    loaded = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    assert loaded == bootstrap
    assert text.lstrip().startswith("{") == (suffix == ".json")


def test_checked_in_default_bootstrap_is_current() -> None:
    rendered = yaml.safe_load((REPO / "envoy-bootstrap" / "envoy.yaml").read_text())
    assert rendered == render_bootstrap(
        xds_address="127.0.0.1:8001", admin_address="127.0.0.1:9001"
    ), "envoy-bootstrap/envoy.yaml is stale: run `make envoy-bootstrap`"


@pytest.mark.parametrize("mode", XDS_MODES)
def test_envoy_accepts_bootstrap(mode: XdsMode, tmp_path: Path, envoy_binary: str) -> None:
    bootstrap = render_bootstrap(
        mode=mode, xds_address="localhost:8001", max_downstream_connections=1000
    )
    # A static EDS cluster proves the config source the translator will emit for this mode too.
    bootstrap["static_resources"]["clusters"].append(
        {
            "name": "probe",
            "type": "EDS",
            "connect_timeout": "1s",
            "eds_cluster_config": {"eds_config": resource_config_source(mode)},
        }
    )
    path = write_bootstrap(tmp_path / "envoy.yaml", bootstrap)
    result = subprocess.run(
        [envoy_binary, "--mode", "validate", "--config-path", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
