"""What a translation may be told: ports, the xDS mode, access logging, timeouts, and the
networks no endpoint may be in.

`TranslateOptions` is a frozen value, so a translator (and the incremental cache in
`incremental.py`) can key its work on it: the same DAG and the same options always give the
same bytes.

`CommonMessages` holds the small sub-messages every resource of a build repeats (the
ConfigSource that EDS, RDS and SDS references carry, the stdout access log). It is built once per
translator from the options and passed down explicitly: no module-level caches. Assigning a
message to a field copies it (protobuf semantics), so sharing one instance between resources is
safe.

The ConfigSource comes from `bootstrap.resource_config_source`, so a translation always matches
the bootstrap Envoy was started with for the same `XdsMode` ("ads" and "delta" reference `ads`,
"separate" references an `api_config_source` of type GRPC to `xds_cluster`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from google.protobuf import any_pb2, duration_pb2, json_format
from google.protobuf.message import Message

from controlplane.addresses import NetworkSet
from controlplane.dag import INFINITE
from controlplane.envoy.bootstrap import XDS_MODES, XdsMode, resource_config_source

STDOUT_ACCESS_LOG = "envoy.access_loggers.stdout"
TLS_TRANSPORT_SOCKET = "envoy.transport_sockets.tls"


def type_url(message_type: type[Message]) -> str:
    """The `type.googleapis.com/...` URL of a generated message class."""
    name: str = message_type.DESCRIPTOR.full_name
    return "type.googleapis.com/" + name


def pack(message: Message) -> any_pb2.Any:
    """An `Any` holding `message` (deterministic encoding: maps in key order)."""
    return any_pb2.Any(
        type_url=type_url(type(message)), value=message.SerializeToString(deterministic=True)
    )


def duration(seconds: float) -> duration_pb2.Duration:
    """A Duration; `INFINITE` becomes 0s, which Envoy reads as "disabled" for every timeout."""
    if seconds == INFINITE:
        return duration_pb2.Duration()
    whole = int(seconds)
    nanos = round((seconds - whole) * 1_000_000_000)
    return duration_pb2.Duration(seconds=whole, nanos=nanos)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Every timeout the translator sets. docs/timeouts.md explains each value.

    `None` leaves Envoy's default in place (the field is not set at all).
    """

    connection_idle_seconds: float | None = 60.0
    """HCM `common_http_protocol_options.idle_timeout`: close a downstream connection that has
    had no active stream for this long (Envoy's default is 1 h; Contour's is 60 s)."""
    stream_idle_seconds: float | None = 300.0
    """HCM `stream_idle_timeout`: reset a stream with no bytes either way for this long. Envoy's
    default (5 min), set explicitly so it is visible in config dumps."""
    request_seconds: float | None = None
    """HCM `request_timeout`: the whole downstream request must arrive within this. Unset:
    Envoy's default, disabled (slow uploads are legitimate)."""
    drain_seconds: float | None = 5.0
    """HCM `drain_timeout`: grace between GOAWAY and close on HTTP/2 drains (Envoy default)."""
    websocket_idle_seconds: float | None = 3600.0
    """Per-route `idle_timeout` of websocket routes: a silent websocket lives this long,
    overriding `stream_idle_seconds` (INFINITE disables it)."""


@dataclass(frozen=True, slots=True)
class TranslateOptions:
    http_port: int = 8080
    https_port: int = 8443
    address: str = "0.0.0.0"
    xds_mode: XdsMode = "ads"
    access_log: bool = True
    """Log every request to Envoy's stdout (Envoy's default text format)."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    refused_endpoint_networks: NetworkSet = field(default_factory=NetworkSet)
    """Endpoint addresses in these networks are left out of every ClusterLoadAssignment
    (`endpoints.py`). Empty (the default, and file mode): only invalid endpoints are. `serve`
    in cluster mode passes `addresses.LOCAL_NETWORKS` plus `--refuse-endpoint-cidrs`."""

    def __post_init__(self) -> None:
        if self.xds_mode not in XDS_MODES:
            raise ValueError(f"unknown xDS mode {self.xds_mode!r}; expected one of {XDS_MODES}")


@dataclass(frozen=True, slots=True)
class CommonMessages:
    """Sub-messages repeated across one translation, built once from the options."""

    options: TranslateOptions
    config_source: config_source_pb2.ConfigSource
    access_logs: tuple[accesslog_pb2.AccessLog, ...]

    @classmethod
    def of(cls, options: TranslateOptions) -> CommonMessages:
        source = config_source_pb2.ConfigSource()
        json_format.ParseDict(resource_config_source(options.xds_mode), source)
        logs: tuple[accesslog_pb2.AccessLog, ...] = ()
        if options.access_log:
            logs = (
                accesslog_pb2.AccessLog(
                    name=STDOUT_ACCESS_LOG, typed_config=pack(stream_pb2.StdoutAccessLog())
                ),
            )
        return cls(options=options, config_source=source, access_logs=logs)
