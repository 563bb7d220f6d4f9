"""The Envoy v3 bootstrap: how an Envoy finds this control plane.

The bootstrap is the only configuration Envoy reads from disk. It names the node, opens the admin
listener, and defines one static cluster, ``xds_cluster``, through which everything else
(listeners, routes, clusters, endpoints, secrets) arrives over gRPC. ``render_bootstrap`` is pure:
it returns a plain JSON-able ``dict`` (the protobuf JSON mapping, snake_case field names) and does
no I/O; ``write_bootstrap`` is the one explicit write.

Invariants, each measured on Envoy 1.40 (ARCHITECTURE.md §8):

- ``xds_cluster`` speaks HTTP/2 through ``typed_extension_protocol_options`` /
  ``envoy.extensions.upstreams.http.v3.HttpProtocolOptions`` /
  ``explicit_http_config.http2_protocol_options``. Without it gRPC fails and Envoy sits in
  ``PRE_INITIALIZING`` without logging why.
- The ADS config source sets ``set_node_on_first_message_only: true``; otherwise Envoy resends its
  ~61 KB Node on every request. The server takes the node from the first request of a stream.
- ``xds_cluster`` is ``STATIC`` when the address is an IP literal and ``STRICT_DNS`` otherwise
  (``V4_PREFERRED``, so ``localhost`` reaches a server bound to 127.0.0.1). TCP keepalive is on so
  a control plane that vanished without a FIN is noticed. HTTP/2 PING keepalive stays off on
  purpose: a gRPC server counts pings on a quiet stream as abuse (``too_many_pings`` GOAWAY after
  two strikes within its 5-minute minimum), which would cut idle ADS streams.

What the translator must emit per mode (``XdsMode``)
----------------------------------------------------
A bootstrap only points the *wildcard* types (LDS, CDS) at the control plane. Every resource that
references another one carries its own ``ConfigSource``: ``Cluster.eds_cluster_config.eds_config``
(EDS), ``HttpConnectionManager.rds.config_source`` (RDS) and, in TLS contexts,
``SdsSecretConfig.sds_config`` (SDS). Those must match the mode the Envoy was bootstrapped with,
or Envoy opens a second, unexpected stream (or none at all). ``resource_config_source(mode)``
returns the right one as a JSON dict (``json_format.ParseDict`` it into a ``ConfigSource``):

- ``"ads"``  (default): one SotW ADS stream. Resources reference ``{"ads": {}}`` with
  ``resource_api_version: V3``.
- ``"delta"``: one incremental (``DELTA_GRPC``) ADS stream. Resources reference ``{"ads": {}}``
  exactly as in ``"ads"``; only the bootstrap differs.
- ``"separate"`` (the Contour way): no ADS; one SotW stream per type. Resources reference an
  ``api_config_source`` of ``api_type: GRPC`` to ``xds_cluster``, the same source the bootstrap
  uses for LDS and CDS. Ordering across types is then Envoy's business, not ours.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from typing import Any, Final, Literal, get_args

import yaml

XdsMode = Literal["ads", "delta", "separate"]
"""How Envoy talks xDS to us; see the module docstring for what each mode asks of the translator."""

XDS_MODES: Final[tuple[XdsMode, ...]] = get_args(XdsMode)
XDS_CLUSTER: Final = "xds_cluster"
DEFAULT_XDS_ADDRESS: Final = "127.0.0.1:8001"
DEFAULT_ADMIN_ADDRESS: Final = "127.0.0.1:9001"

_HTTP_PROTOCOL_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_DOWNSTREAM_CONNECTIONS_MONITOR: Final = "envoy.resource_monitors.global_downstream_max_connections"
_DOWNSTREAM_CONNECTIONS_CONFIG: Final = (
    "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
)


def parse_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (or ``[V6]:PORT``) into host and port; ``ValueError`` if malformed."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"address {address!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"address {address!r} has port {port} outside 0..65535")
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def socket_address(address: str) -> dict[str, Any]:
    """An Envoy ``Address`` for ``HOST:PORT``."""
    host, port = parse_address(address)
    return {"socket_address": {"address": host, "port_value": port}}


def _api_config_source(api_type: Literal["GRPC", "DELTA_GRPC"]) -> dict[str, Any]:
    return {
        "api_type": api_type,
        "transport_api_version": "V3",
        "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
    }


def resource_config_source(mode: XdsMode) -> dict[str, Any]:
    """The ``ConfigSource`` that EDS, RDS and SDS references must carry for ``mode``."""
    if mode == "separate":
        return {"api_config_source": _api_config_source("GRPC"), "resource_api_version": "V3"}
    if mode in ("ads", "delta"):
        return {"ads": {}, "resource_api_version": "V3"}
    raise ValueError(f"unknown xDS mode {mode!r}; expected one of {', '.join(XDS_MODES)}")


def _dynamic_resources(mode: XdsMode) -> dict[str, Any]:
    # initial_fetch_timeout 0s: wait for the controller however long it takes. Envoy's default
    # (15 s) would turn it LIVE with an empty configuration when the controller is slow to come
    # up, and it would then answer 404 to everything instead of staying unready.
    source = {**resource_config_source(mode), "initial_fetch_timeout": "0s"}
    dynamic: dict[str, Any] = {"lds_config": source, "cds_config": copy.deepcopy(source)}
    if mode != "separate":
        ads = _api_config_source("DELTA_GRPC" if mode == "delta" else "GRPC")
        ads["set_node_on_first_message_only"] = True
        dynamic["ads_config"] = ads
    return dynamic


def _xds_cluster(address: str, connect_timeout_s: float) -> dict[str, Any]:
    host, _ = parse_address(address)
    cluster: dict[str, Any] = {
        "name": XDS_CLUSTER,
        "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
        "connect_timeout": f"{connect_timeout_s:g}s",
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(address)}}]}],
        },
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_PROTOCOL_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "upstream_connection_options": {
            "tcp_keepalive": {"keepalive_probes": 3, "keepalive_time": 30, "keepalive_interval": 5}
        },
    }
    if not _is_ip(host):
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


def render_bootstrap(
    *,
    xds_address: str = DEFAULT_XDS_ADDRESS,
    admin_address: str = DEFAULT_ADMIN_ADDRESS,
    mode: XdsMode = "ads",
    node_id: str = "envoy",
    cluster: str = "controlplane",
    connect_timeout_s: float = 5.0,
    max_downstream_connections: int | None = None,
) -> dict[str, Any]:
    """Render an Envoy v3 bootstrap as a JSON-able dict.

    ``max_downstream_connections`` adds an overload manager with the global downstream connection
    monitor (Envoy warns at start-up when there is none; production should set it).
    """
    if mode not in XDS_MODES:
        raise ValueError(f"unknown xDS mode {mode!r}; expected one of {', '.join(XDS_MODES)}")
    bootstrap: dict[str, Any] = {
        "node": {"id": node_id, "cluster": cluster},
        "admin": {"address": socket_address(admin_address)},
        "static_resources": {"clusters": [_xds_cluster(xds_address, connect_timeout_s)]},
        "dynamic_resources": _dynamic_resources(mode),
        "layered_runtime": {
            "layers": [
                # Upper bounds on regex program size as Contour sets them: large generated
                # regexes warn instead of being rejected outright.
                {
                    "name": "static",
                    "static_layer": {
                        "re2.max_program_size.error_level": 1 << 20,
                        "re2.max_program_size.warn_level": 1000,
                    },
                },
                # Lets tests and operators flip runtime keys through POST /runtime_modify.
                {"name": "admin", "admin_layer": {}},
            ]
        },
    }
    if max_downstream_connections is not None:
        if max_downstream_connections <= 0:
            raise ValueError("max_downstream_connections must be positive")
        bootstrap["overload_manager"] = {
            "resource_monitors": [
                {
                    "name": _DOWNSTREAM_CONNECTIONS_MONITOR,
                    "typed_config": {
                        "@type": f"type.googleapis.com/{_DOWNSTREAM_CONNECTIONS_CONFIG}",
                        "max_active_downstream_connections": max_downstream_connections,
                    },
                }
            ]
        }
    return bootstrap


def dumps_bootstrap(bootstrap: dict[str, Any], *, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """Serialize a bootstrap; keys keep their order so the rendered file reads top-down."""
    if fmt == "json":
        return json.dumps(bootstrap, indent=2) + "\n"
    return yaml.safe_dump(bootstrap, sort_keys=False, default_flow_style=False)


def write_bootstrap(path: str | Path, bootstrap: dict[str, Any]) -> Path:
    """Write ``bootstrap`` to ``path``: JSON for ``.json``, YAML otherwise. Returns the path."""
    target = Path(path)
    fmt: Literal["yaml", "json"] = "json" if target.suffix.lower() == ".json" else "yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps_bootstrap(bootstrap, fmt=fmt), encoding="utf-8")
    return target
