"""The Envoy v3 bootstrap: how an Envoy finds this control plane.

The bootstrap is the only configuration Envoy reads from disk. It names the node, opens the admin
interface, defines the static cluster ``xds_cluster`` through which everything else (listeners,
routes, clusters, endpoints, secrets) arrives over gRPC, and the static stats listener.
``render_bootstrap`` is pure: it returns a plain JSON-able ``dict`` (the protobuf JSON mapping,
snake_case field names) and does no I/O; ``write_bootstrap`` is the one explicit write.

The admin interface, and what reaches it
----------------------------------------
Envoy's admin API can dump every configuration (``/config_dump``), change runtime values, drain
or stop the server (``/quitquitquit``): nothing on the network may reach it. As Contour does:

- The admin listens on a unix socket (``--admin-address unix:PATH``, the default
  ``DEFAULT_ADMIN_ADDRESS``), created with mode 0600: only Envoy's own user can connect. Being no
  IP address, no route, EndpointSlice or ExternalName Service can ever point Envoy back at it.
  A TCP address stays possible for local use (the demo) but only on loopback: anything else is
  refused.
- A static listener, ``stats-health`` on ``--stats-address`` (``0.0.0.0:8002``), serves exactly
  ``GET /ready`` (the readiness probe), ``GET /stats`` and ``GET /stats/prometheus`` (metrics) by
  routing them to the static cluster ``envoy-admin``, whose one endpoint is the admin address.
  The routes match whole paths (``path``, not ``prefix``), so ``/stats/recentlookups/clear`` and
  friends stay out; any query string is passed on (``/stats?format=json``). The connection
  manager normalizes the path first (``normalize_path``, ``merge_slashes``; an escaped slash is
  refused), so ``/stats/../config_dump`` or ``//config_dump`` is matched as ``/config_dump``: no
  route, a 404 from Envoy's router, and the admin never sees it. Any other method is a 404 too.
- Static listeners and clusters cannot be replaced over xDS, and no name we translate collides
  with them: dynamic listeners are ``ingress_http``/``ingress_https``, dynamic clusters always
  contain a ``/``.

Invariants, each measured on Envoy 1.40 (ARCHITECTURE.md §8):

- ``xds_cluster`` speaks HTTP/2 through ``typed_extension_protocol_options`` /
  ``envoy.extensions.upstreams.http.v3.HttpProtocolOptions`` /
  ``explicit_http_config.http2_protocol_options``. Without it gRPC fails and Envoy sits in
  ``PRE_INITIALIZING`` without logging why.
- The ADS config source sets ``set_node_on_first_message_only: true``; otherwise Envoy resends its
  ~61 KB Node on every request. The server takes the node from the first request of a stream.
- ``xds_cluster`` is ``STATIC`` when every address is an IP literal and ``STRICT_DNS`` otherwise
  (``V4_PREFERRED``, so ``localhost`` reaches a server bound to 127.0.0.1). TCP keepalive is on so
  a control plane that vanished without a FIN is noticed. HTTP/2 PING keepalive stays off on
  purpose: a gRPC server counts pings on a quiet stream as abuse (``too_many_pings`` GOAWAY after
  two strikes within its 5-minute minimum), which would cut idle ADS streams.

Several controllers, one Envoy
------------------------------
``xds_address`` may name several controller replicas (``--xds-address`` repeated): each is one
endpoint of ``xds_cluster``, balanced round robin. A DNS name resolved by Envoy does the same
with ``STRICT_DNS`` (a headless Service gives one address per replica). Envoy holds one ADS
stream; when its replica goes away, the stream is re-established on the next endpoint after
the ADS ``retry_policy`` back-off (0.25 s doubling to at most 5 s, jittered: Envoy's own default
waits up to 30 s). Every replica publishes byte-identical resources and versions for the same
cluster state (versions are content hashes), so the failed-over Envoy is sent what it already
has: no listener or cluster is modified, nothing drains.

mutual TLS
----------
With ``xds_tls`` (``--xds-ca --xds-cert --xds-key``) ``xds_cluster`` connects over mutual TLS,
its certificates coming from file-based SDS so that they rotate without restarting Envoy:
``controlplane.envoy.bootstrap_tls`` has the details and the two resource files, which
``write_bootstrap`` writes with the bootstrap. Without it the connection is plaintext, which is
only safe to a controller on loopback in the same pod (the ``colocated`` deployment).

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, get_args

import yaml

from controlplane.envoy.bootstrap_tls import XdsClientTls

XdsMode = Literal["ads", "delta", "separate"]
"""How Envoy talks xDS to us; see the module docstring for what each mode asks of the translator."""

XDS_MODES: Final[tuple[XdsMode, ...]] = get_args(XdsMode)
XDS_CLUSTER: Final = "xds_cluster"
DEFAULT_XDS_ADDRESS: Final = "127.0.0.1:8001"
DEFAULT_ADMIN_ADDRESS: Final = "unix:/tmp/envoy-admin.sock"
"""Writable for anyone running Envoy locally; pods pass a path in a shared ``emptyDir``."""
DEFAULT_STATS_ADDRESS: Final = "0.0.0.0:8002"
UNIX_PREFIX: Final = "unix:"
ADMIN_SOCKET_MODE: Final = 0o600
ADMIN_CLUSTER: Final = "envoy-admin"
STATS_LISTENER: Final = "stats-health"
STATS_PATHS: Final = ("/ready", "/stats", "/stats/prometheus")
"""The only admin paths the stats listener routes (whole paths, ``GET`` only)."""

_HTTP_PROTOCOL_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_HTTP_CONNECTION_MANAGER: Final = (
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
_ROUTER: Final = "envoy.extensions.filters.http.router.v3.Router"
# sun_path holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
_MAX_SOCKET_PATH_BYTES: Final = 103
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


def unix_socket_path(address: str) -> str | None:
    """The path of ``unix:PATH``; ``None`` for any other address; ``ValueError`` if unusable."""
    if not address.startswith(UNIX_PREFIX):
        return None
    path = address.removeprefix(UNIX_PREFIX)
    if not path.startswith("/"):
        # Envoy would resolve a relative path against its working directory, which nobody reads
        # from the bootstrap; an abstract socket ("@name") has no file permissions at all.
        raise ValueError(f"address {address!r}: the socket path must be absolute")
    if "\x00" in path or len(path.encode()) > _MAX_SOCKET_PATH_BYTES:
        raise ValueError(
            f"address {address!r}: a unix socket path must be at most "
            f"{_MAX_SOCKET_PATH_BYTES} bytes without NUL"
        )
    return path


def _admin_endpoint(address: str) -> dict[str, Any]:
    """The admin interface's ``Address``: a pipe for ``unix:PATH``, else a loopback ``IP:PORT``."""
    path = unix_socket_path(address)
    if path is not None:
        return {"pipe": {"path": path}}
    host, _ = parse_address(address)
    if not _is_ip(host) or not ipaddress.ip_address(host).is_loopback:
        raise ValueError(
            f"admin address {address!r} is neither unix:PATH nor a loopback IP:PORT: the admin "
            "API can reconfigure and stop Envoy, it must not be reachable from the network"
        )
    return socket_address(address)


def _listener_address(address: str, what: str) -> dict[str, Any]:
    host, _ = parse_address(address)
    if not _is_ip(host):
        raise ValueError(f"{what} address {address!r}: Envoy binds listeners to IP:PORT only")
    return socket_address(address)


def _overlaps(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two socket addresses would claim the same port (port 0 never clashes)."""
    a, b = one.get("socket_address"), other.get("socket_address")
    if a is None or b is None or a["port_value"] == 0 or a["port_value"] != b["port_value"]:
        return False
    wildcard = {"0.0.0.0", "::"}
    return bool(a["address"] == b["address"] or {a["address"], b["address"]} & wildcard)


def _stats_listener(address: dict[str, Any]) -> dict[str, Any]:
    get_only = [{"name": ":method", "string_match": {"exact": "GET"}}]
    manager = {
        "@type": f"type.googleapis.com/{_HTTP_CONNECTION_MANAGER}",
        "stat_prefix": "stats",
        # Match the path a request resolves to, not the bytes it was spelled with.
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "route_config": {
            "name": STATS_LISTENER,
            "virtual_hosts": [
                {
                    "name": STATS_LISTENER,
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"path": path, "headers": copy.deepcopy(get_only)},
                            "route": {"cluster": ADMIN_CLUSTER},
                        }
                        for path in STATS_PATHS
                    ],
                }
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"type.googleapis.com/{_ROUTER}"},
            }
        ],
    }
    return {
        "name": STATS_LISTENER,
        "address": address,
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _admin_cluster(admin: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "0.25s",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": copy.deepcopy(admin)}}]}],
        },
    }


def _api_config_source(api_type: Literal["GRPC", "DELTA_GRPC"]) -> dict[str, Any]:
    return {
        "api_type": api_type,
        "transport_api_version": "V3",
        "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
    }


# How soon Envoy re-opens a broken ADS stream (on the next replica): see the module docstring.
ADS_RETRY_BACK_OFF: Final = {"base_interval": "0.25s", "max_interval": "5s"}


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
        ads["grpc_services"][0]["envoy_grpc"]["retry_policy"] = {
            "retry_back_off": dict(ADS_RETRY_BACK_OFF)
        }
        ads["set_node_on_first_message_only"] = True
        dynamic["ads_config"] = ads
    return dynamic


def xds_addresses(address: str | Sequence[str]) -> list[str]:
    """The controller addresses, validated: one ``HOST:PORT`` or several, no repeats."""
    addresses = [address] if isinstance(address, str) else list(address)
    if not addresses:
        raise ValueError("at least one --xds-address is needed")
    for item in addresses:
        parse_address(item)
    repeated = sorted({item for item in addresses if addresses.count(item) > 1})
    if repeated:
        raise ValueError(f"--xds-address {repeated[0]} given twice")
    return addresses


def _xds_cluster(
    address: str | Sequence[str], connect_timeout_s: float, tls: XdsClientTls | None
) -> dict[str, Any]:
    addresses = xds_addresses(address)
    all_ips = all(_is_ip(parse_address(item)[0]) for item in addresses)
    cluster: dict[str, Any] = {
        "name": XDS_CLUSTER,
        "type": "STATIC" if all_ips else "STRICT_DNS",
        "connect_timeout": f"{connect_timeout_s:g}s",
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": socket_address(item)}} for item in addresses
                    ]
                }
            ],
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
    if not all_ips:
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if tls is not None:
        cluster["transport_socket"] = tls.transport_socket()
    return cluster


def render_bootstrap(
    *,
    xds_address: str | Sequence[str] = DEFAULT_XDS_ADDRESS,
    admin_address: str = DEFAULT_ADMIN_ADDRESS,
    stats_address: str = DEFAULT_STATS_ADDRESS,
    mode: XdsMode = "ads",
    node_id: str = "envoy",
    cluster: str = "controlplane",
    connect_timeout_s: float = 5.0,
    max_downstream_connections: int | None = None,
    xds_tls: XdsClientTls | None = None,
) -> dict[str, Any]:
    """Render an Envoy v3 bootstrap as a JSON-able dict.

    ``xds_address`` is one controller ``HOST:PORT`` or several (replicas); ``xds_tls`` makes
    ``xds_cluster`` mutual TLS (``sds_resources`` gives the files it then needs).
    ``admin_address`` is ``unix:PATH`` (the default) or a loopback ``IP:PORT``;
    ``stats_address`` (``IP:PORT``) is where the stats listener serves ``STATS_PATHS``.
    ``max_downstream_connections`` adds an overload manager with the global downstream connection
    monitor (Envoy warns at start-up when there is none; production should set it).
    """
    if mode not in XDS_MODES:
        raise ValueError(f"unknown xDS mode {mode!r}; expected one of {', '.join(XDS_MODES)}")
    admin = _admin_endpoint(admin_address)
    stats = _listener_address(stats_address, "stats")
    if _overlaps(admin, stats):
        raise ValueError(f"stats address {stats_address!r} clashes with the admin address")
    admin_listen = copy.deepcopy(admin)
    if "pipe" in admin_listen:
        admin_listen["pipe"]["mode"] = ADMIN_SOCKET_MODE
    bootstrap: dict[str, Any] = {
        "node": {"id": node_id, "cluster": cluster},
        "admin": {"address": admin_listen},
        "static_resources": {
            "listeners": [_stats_listener(stats)],
            "clusters": [
                _xds_cluster(xds_address, connect_timeout_s, xds_tls),
                _admin_cluster(admin),
            ],
        },
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


def sds_resources(xds_tls: XdsClientTls | None) -> dict[str, dict[str, Any]]:
    """The file-based SDS resources a bootstrap with ``xds_tls`` names, by absolute path."""
    return xds_tls.sds_resources() if xds_tls is not None else {}


def write_bootstrap(
    path: str | Path,
    bootstrap: dict[str, Any],
    resources: Mapping[str, dict[str, Any]] | None = None,
) -> Path:
    """Write ``bootstrap`` to ``path``: JSON for ``.json``, YAML otherwise. Returns the path.

    ``resources`` (``sds_resources(...)``) are written first, each as YAML at its path: Envoy
    refuses a bootstrap whose SDS file does not exist.
    """
    for resource_path, resource in (resources or {}).items():
        target = Path(resource_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dumps_bootstrap(resource), encoding="utf-8")
    target = Path(path)
    fmt: Literal["yaml", "json"] = "json" if target.suffix.lower() == ".json" else "yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps_bootstrap(bootstrap, fmt=fmt), encoding="utf-8")
    return target
