"""The rendered bootstrap: its shape per xDS mode, where the admin API and the stats listener
are, what the stats listener lets through, and Envoy's own verdict on it (`--mode validate`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.cli import build_parser, main
from controlplane.envoy.bootstrap import (
    ADMIN_CLUSTER,
    DEFAULT_ADMIN_ADDRESS,
    DEFAULT_STATS_ADDRESS,
    STATS_LISTENER,
    STATS_PATHS,
    XDS_CLUSTER,
    XDS_MODES,
    XdsMode,
    parse_address,
    render_bootstrap,
    resource_config_source,
    unix_socket_path,
    write_bootstrap,
)

REPO = Path(__file__).resolve().parents[2]
GRPC_TO_XDS = {
    "transport_api_version": "V3",
    "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
}
# The ADS stream comes back (on the next replica) within 0.25 s to 5 s, not Envoy's 30 s.
ADS_TO_XDS = {
    "transport_api_version": "V3",
    "grpc_services": [
        {
            "envoy_grpc": {
                "cluster_name": XDS_CLUSTER,
                "retry_policy": {
                    "retry_back_off": {"base_interval": "0.25s", "max_interval": "5s"}
                },
            }
        }
    ],
}


def _cluster(bootstrap: dict[str, Any], name: str) -> dict[str, Any]:
    clusters = bootstrap["static_resources"]["clusters"]
    assert [c["name"] for c in clusters] == [XDS_CLUSTER, ADMIN_CLUSTER]
    return dict(next(c for c in clusters if c["name"] == name))


def _xds_cluster(bootstrap: dict[str, Any]) -> dict[str, Any]:
    return _cluster(bootstrap, XDS_CLUSTER)


def _admin_target(bootstrap: dict[str, Any]) -> dict[str, Any]:
    """The address the envoy-admin cluster (behind the stats listener) sends requests to."""
    (endpoint,) = _cluster(bootstrap, ADMIN_CLUSTER)["load_assignment"]["endpoints"]
    (lb_endpoint,) = endpoint["lb_endpoints"]
    return dict(lb_endpoint["endpoint"]["address"])


def _stats_listener(bootstrap: dict[str, Any]) -> dict[str, Any]:
    (listener,) = bootstrap["static_resources"]["listeners"]
    assert listener["name"] == STATS_LISTENER
    return dict(listener)


def _stats_manager(bootstrap: dict[str, Any]) -> dict[str, Any]:
    (chain,) = _stats_listener(bootstrap)["filter_chains"]
    (network_filter,) = chain["filters"]
    assert network_filter["name"] == "envoy.filters.network.http_connection_manager"
    return dict(network_filter["typed_config"])


@pytest.mark.parametrize(
    ("mode", "ads_config", "source"),
    [
        (
            "ads",
            {"api_type": "GRPC", **ADS_TO_XDS, "set_node_on_first_message_only": True},
            {"ads": {}, "resource_api_version": "V3"},
        ),
        (
            "delta",
            {"api_type": "DELTA_GRPC", **ADS_TO_XDS, "set_node_on_first_message_only": True},
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
    assert "overload_manager" not in bootstrap


# -- the admin API and the stats listener ------------------------------------------------------

SOCKET = {"pipe": {"path": "/tmp/envoy-admin.sock"}}


@pytest.mark.parametrize(
    ("admin_address", "target"),
    [
        (DEFAULT_ADMIN_ADDRESS, SOCKET),
        ("unix:/admin/admin.sock", {"pipe": {"path": "/admin/admin.sock"}}),
        ("127.0.0.1:9001", {"socket_address": {"address": "127.0.0.1", "port_value": 9001}}),
        ("127.0.0.9:9001", {"socket_address": {"address": "127.0.0.9", "port_value": 9001}}),
        ("[::1]:9001", {"socket_address": {"address": "::1", "port_value": 9001}}),
    ],
)
def test_admin_listens_where_asked_and_the_stats_listener_forwards_there(
    admin_address: str, target: dict[str, Any]
) -> None:
    bootstrap = render_bootstrap(admin_address=admin_address)
    listen = bootstrap["admin"]["address"]
    if "pipe" in target:
        # Only Envoy's own user may connect to the socket.
        assert listen == {"pipe": {**target["pipe"], "mode": 0o600}}
    else:
        assert listen == target
    assert _admin_target(bootstrap) == target


def test_the_default_admin_is_a_unix_socket() -> None:
    bootstrap = render_bootstrap()
    assert bootstrap["admin"]["address"] == {"pipe": {"path": "/tmp/envoy-admin.sock", "mode": 384}}
    assert unix_socket_path(DEFAULT_ADMIN_ADDRESS) == "/tmp/envoy-admin.sock"
    assert unix_socket_path("127.0.0.1:9001") is None


@pytest.mark.parametrize(
    ("admin_address", "message"),
    [
        ("0.0.0.0:9001", "loopback"),
        ("10.0.0.7:9001", "loopback"),
        ("[::]:9001", "loopback"),
        ("localhost:9001", "loopback"),  # Envoy binds IP literals; and no resolver decides this
        ("9001", "HOST:PORT"),
        ("unix:admin.sock", "absolute"),
        ("unix:@envoy-admin", "absolute"),  # abstract sockets have no permissions
        ("unix:", "absolute"),
        ("unix:/" + "a" * 103, "at most 103 bytes"),
        ("unix:/tmp/a\x00b", "without NUL"),
    ],
)
def test_admin_addresses_that_would_expose_or_break_it_are_refused(
    admin_address: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_bootstrap(admin_address=admin_address)


def test_stats_listener_serves_only_ready_and_stats_from_the_admin() -> None:
    bootstrap = render_bootstrap()
    listener = _stats_listener(bootstrap)
    assert listener["address"] == {"socket_address": {"address": "0.0.0.0", "port_value": 8002}}
    manager = _stats_manager(bootstrap)
    # The router matches the path a request resolves to: /stats/../config_dump is /config_dump.
    assert manager["normalize_path"] is True
    assert manager["merge_slashes"] is True
    assert manager["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    assert [f["name"] for f in manager["http_filters"]] == ["envoy.filters.http.router"]
    (vhost,) = manager["route_config"]["virtual_hosts"]
    assert vhost["domains"] == ["*"]
    assert STATS_PATHS == ("/ready", "/stats", "/stats/prometheus")
    assert [route["match"]["path"] for route in vhost["routes"]] == list(STATS_PATHS)
    for route in vhost["routes"]:
        # Whole paths, GET only: no prefix, no regex, nothing that could widen the match.
        assert set(route["match"]) == {"path", "headers"}
        assert route["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
        assert route["route"] == {"cluster": ADMIN_CLUSTER}
    assert set(vhost) == {"name", "domains", "routes"}


@pytest.mark.parametrize(
    ("stats_address", "socket_address"),
    [
        ("0.0.0.0:8002", {"address": "0.0.0.0", "port_value": 8002}),
        ("127.0.0.1:0", {"address": "127.0.0.1", "port_value": 0}),
        ("[::]:18002", {"address": "::", "port_value": 18002}),
    ],
)
def test_stats_listener_address(stats_address: str, socket_address: dict[str, Any]) -> None:
    listener = _stats_listener(render_bootstrap(stats_address=stats_address))
    assert listener["address"] == {"socket_address": socket_address}


@pytest.mark.parametrize(
    ("admin_address", "stats_address", "message"),
    [
        (DEFAULT_ADMIN_ADDRESS, "localhost:8002", "IP:PORT"),
        (DEFAULT_ADMIN_ADDRESS, "8002", "HOST:PORT"),
        ("127.0.0.1:8002", "0.0.0.0:8002", "clashes"),
        ("127.0.0.1:9001", "127.0.0.1:9001", "clashes"),
    ],
)
def test_unusable_stats_addresses_are_refused(
    admin_address: str, stats_address: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_bootstrap(admin_address=admin_address, stats_address=stats_address)


def test_different_loopback_ports_and_port_zero_do_not_clash() -> None:
    render_bootstrap(admin_address="127.0.0.1:9001", stats_address="0.0.0.0:8002")
    render_bootstrap(admin_address="127.0.0.1:0", stats_address="127.0.0.1:0")


# -- the command ---------------------------------------------------------------------------------


def test_bootstrap_command_defaults_are_the_modules() -> None:
    args = build_parser().parse_args(["bootstrap", "envoy.yaml"])
    assert (args.admin_address, args.stats_address) == (
        DEFAULT_ADMIN_ADDRESS,
        DEFAULT_STATS_ADDRESS,
    )
    assert render_bootstrap() == render_bootstrap(
        admin_address=args.admin_address, stats_address=args.stats_address
    )


def test_bootstrap_command_writes_the_socket_and_stats_addresses(tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    argv = ["bootstrap", str(path), "--admin-address", "unix:/run/admin/admin.sock",
            "--stats-address", "0.0.0.0:18002"]  # fmt: skip
    assert main(argv) == 0
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert written == render_bootstrap(
        admin_address="unix:/run/admin/admin.sock", stats_address="0.0.0.0:18002"
    )


def test_bootstrap_command_refuses_an_admin_on_the_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "envoy.yaml"
    assert main(["bootstrap", str(path), "--admin-address", "0.0.0.0:9001"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("controlplane bootstrap: admin address '0.0.0.0:9001'")
    assert len(err.strip().splitlines()) == 1
    assert not path.exists()


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
    assert rendered == render_bootstrap(), (
        "envoy-bootstrap/envoy.yaml is stale: run `make envoy-bootstrap`"
    )


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


@pytest.mark.parametrize(
    ("admin_address", "stats_address"),
    [
        (DEFAULT_ADMIN_ADDRESS, DEFAULT_STATS_ADDRESS),
        ("unix:/admin/admin.sock", "0.0.0.0:8002"),
        ("127.0.0.1:9001", "127.0.0.1:8002"),
        ("[::1]:9001", "[::]:8002"),
    ],
    ids=["default", "socket", "tcp", "tcp-v6"],
)
def test_envoy_accepts_admin_and_stats_variants(
    admin_address: str, stats_address: str, tmp_path: Path, envoy_binary: str
) -> None:
    path = tmp_path / "envoy.yaml"
    argv = ["bootstrap", str(path), "--admin-address", admin_address,
            "--stats-address", stats_address]  # fmt: skip
    assert main(argv) == 0
    result = subprocess.run(
        [envoy_binary, "--mode", "validate", "--config-path", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
