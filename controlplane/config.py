"""`controlplane serve` settings: flags > environment (`CONTROLPLANE_*`) > config file > defaults.

Every setting is a field of `ServeSettings` with its default and a description; the CLI builds
its flags from these fields (so `--help` cannot drift from the code), passes only the flags the
user gave, and pydantic-settings layers the environment and the YAML file named by `--config`
(or `CONTROLPLANE_CONFIG`) underneath.

**The config file speaks Contour too** (`read_config_file`), so a Contour 0.15 `contour.yaml`
(the ConfigMap users already have) works unchanged. Its keys are mapped onto ours where we have
the feature: `incluster`, `kubeconfig`, `leaderelection.{configmap-name, configmap-namespace,
lease-duration, renew-deadline, retry-period}` (Go durations), `debug`, and the keys Contour 1.x
added that we honour (`ingress-status-address`, `envoy-service-name`/`-namespace`,
`enableExternalNameService`), plus the `serve` flags users put there (`ingress-class-name`,
`ingressroute-root-namespaces`, `ingressroute.root-namespaces`). A value that asks for what we
do anyway is accepted (`disablePermitInsecure: false`, `tls.minimum-protocol-version: "1.2"`,
`accesslog-format: envoy`). Every other Contour key, or a value we cannot honour, is kept out
and reported by name (`ConfigNotice`: `serve` logs each as a warning, `translate` prints it);
it never stops the controller. A key that is neither ours nor Contour's fails with one message
naming it. Our own keys work in snake_case and with dashes, as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "CONTROLPLANE_"


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    config: Path | None = Field(
        None, description="YAML file of settings (keys as below, snake_case)"
    )
    kubeconfig: Path | None = Field(
        None, description="kubeconfig to reach the API server (default: in-cluster config)"
    )
    manifests: Path | None = Field(
        None, description="read objects from this directory of YAML files instead of a cluster"
    )
    xds_address: str = Field("127.0.0.1:8001", description="where Envoys connect for xDS (gRPC)")
    xds_ca: Path | None = Field(
        None,
        description="CA bundle (PEM) that Envoys' client certificates must chain to; with "
        "--xds-cert and --xds-key, xDS is served over mutual TLS (controlplane certgen)",
    )
    xds_cert: Path | None = Field(
        None, description="the xDS server's certificate (PEM), re-read when the file changes"
    )
    xds_key: Path | None = Field(None, description="the private key (PEM) of --xds-cert")
    xds_mode: Literal["ads", "delta", "separate"] = Field(
        "ads",
        description="how the Envoys are bootstrapped (controlplane bootstrap --xds-mode): sets "
        "the config sources of routes, endpoints and secrets; ads and delta both use ADS",
    )
    health_address: str = Field(
        "0.0.0.0:8000", description="serves /healthz, /readyz, /metrics, /debug/nacks"
    )
    envoy_http_port: int = Field(8080, description="port of Envoy's ingress_http listener")
    envoy_https_port: int = Field(8443, description="port of Envoy's ingress_https listener")
    ingress_class: str = Field(
        "contour",
        description="the ingress class(es) this controller serves, comma-separated "
        "(e.g. contour,nginx to take over a migrating class)",
    )
    root_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="namespaces where root IngressRoutes may live (all)"
    )
    watch_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="namespaces to watch (all)"
    )
    enable_external_name_services: bool = Field(
        False, description="allow ExternalName Services as backends (they can point anywhere)"
    )
    refuse_local_endpoints: bool | None = Field(
        None,
        description="leave out endpoint addresses (and refuse ExternalName targets) that lead "
        "back into the pod: 127.0.0.0/8, ::1, 0.0.0.0/8, ::, 169.254.0.0/16, fe80::/10, and "
        "localhost names (default: on with a cluster, off with --manifests; docs/security.md)",
    )
    refuse_endpoint_cidrs: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="more networks refused the same way, in either mode (comma-separated "
        "CIDRs, e.g. 10.96.0.0/12,fd00:ec2::254/128)",
    )
    ingress_status_address: str | None = Field(
        None, description="address written to Ingress .status.loadBalancer"
    )
    envoy_service: str | None = Field(
        None, description="namespace/name of Envoy's Service, whose address goes to Ingress status"
    )
    leader_election: bool = Field(True, description="elect a leader to write status (cluster only)")
    leader_election_namespace: str | None = Field(
        None,
        description="namespace of the leader election Lease (default: the controller's own: "
        "$POD_NAMESPACE, the service account's namespace, the kubeconfig context's namespace, "
        "else projectcontour)",
    )
    leader_election_name: str = Field("controlplane-leader", description="name of the Lease")
    lease_duration: float = Field(15.0, description="leader lease duration, seconds")
    renew_deadline: float = Field(10.0, description="leader renew deadline, seconds")
    retry_period: float = Field(2.0, description="leader election retry period, seconds")
    holdoff_delay: float = Field(
        0.1, description="rebuild this long after the last change, seconds"
    )
    holdoff_max_delay: float = Field(0.5, description="rebuild at most this long after the first")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="least severe log level shown"
    )
    log_json: bool | None = Field(None, description="JSON logs (default: unless stderr is a TTY)")

    def config_notices(self) -> tuple[ConfigNotice, ...]:
        """What the config file asked for that is not honoured (Contour keys we lack)."""
        return read_config_file(self.config).notices if self.config is not None else ()

    @field_validator("root_namespaces", "watch_namespaces", "refuse_endpoint_cidrs", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _xds_tls_all_or_none(self) -> ServeSettings:
        given = [self.xds_ca, self.xds_cert, self.xds_key]
        if any(given) and not all(given):
            names = ("--xds-ca", "--xds-cert", "--xds-key")
            missing = ", ".join(n for n, v in zip(names, given, strict=True) if not v)
            raise ValueError(
                "--xds-ca, --xds-cert and --xds-key go together (mutual TLS needs all three); "
                f"missing {missing}"
            )
        return self

    @model_validator(mode="after")
    def _leader_timings(self) -> ServeSettings:
        elected = self.leader_election and self.manifests is None
        if elected and not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                f"leader election needs --lease-duration ({self.lease_duration:g}) > "
                f"--renew-deadline ({self.renew_deadline:g}) > --retry-period "
                f"({self.retry_period:g}) > 0"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, ConfigFileSource(settings_cls, init_settings))


class ConfigFileSource(PydanticBaseSettingsSource):
    """The YAML file named by the `config` flag or `CONTROLPLANE_CONFIG`, lowest precedence
    (its Contour keys mapped onto ours by `read_config_file`)."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        given = init.init_kwargs.get("config") if isinstance(init, InitSettingsSource) else None
        self._path = given or os.environ.get(f"{ENV_PREFIX}CONFIG")

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        return dict(read_config_file(Path(self._path)).values) if self._path else {}


# -- the config file, ours and Contour's ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigNotice:
    """A key of the config file that is read but not honoured, and why."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


@dataclass(frozen=True, slots=True)
class ConfigFile:
    values: Mapping[str, Any]
    """Our settings (field names), as the file sets them."""
    notices: tuple[ConfigNotice, ...] = ()


def read_config_file(path: Path) -> ConfigFile:
    """The settings of a config file; raises ValueError (one line) for what it cannot be."""
    with open(path, encoding="utf-8") as stream:
        try:
            loaded = yaml.safe_load(stream) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not YAML: {' '.join(str(error).split())}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config file must be a YAML mapping")
    try:
        return translate_config(loaded)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def translate_config(raw: Mapping[Any, Any]) -> ConfigFile:
    """A config file's mapping as our settings: our keys as they are, Contour's mapped."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    notices: list[ConfigNotice] = []
    unknown: list[str] = []

    def put(field: str, value: Any, key: str) -> None:
        if field in values:
            raise ValueError(f"{field} is set twice in the file ({origin[field]} and {key})")
        values[field], origin[field] = value, key

    contour: dict[str, Any] = {}
    for raw_key, value in raw.items():
        key = str(raw_key)
        ours = key.replace("-", "_")
        if ours in ServeSettings.model_fields and ours != "config":
            put(ours, value, key)
        elif key in _CONTOUR_SECTIONS:
            if value is None:
                continue  # `tls:` with every key commented out, as Contour's example has it
            if not isinstance(value, dict):
                raise ValueError(f"{key}: expected a mapping, got {value!r}")
            contour.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            contour[key] = value
    for key, value in contour.items():
        rule = _CONTOUR_KEYS.get(key)
        if rule is None:
            if key in _CONTOUR_UNIMPLEMENTED or key.split(".")[0] in _CONTOUR_UNIMPLEMENTED:
                notices.append(ConfigNotice(key, _UNIMPLEMENTED))
            else:
                unknown.append(key)
            continue
        try:
            mapped = rule(value)
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
        if isinstance(mapped, ConfigNotice):
            notices.append(ConfigNotice(key, mapped.message))
        elif mapped is not None:
            put(mapped[0], mapped[1], key)
    if unknown:
        raise ValueError(
            f"unknown key{'s' * (len(unknown) > 1)} {', '.join(sorted(unknown))}: neither a "
            "setting of controlplane serve (see --help) nor a Contour config-file key"
        )
    _envoy_service(contour, values, origin, put)
    if contour.get("incluster") is True and "kubeconfig" in values:
        notices.append(
            ConfigNotice("kubeconfig", "ignored: incluster is true, as Contour reads it")
        )
        del values["kubeconfig"]
    return ConfigFile(values, tuple(notices))


Mapped = tuple[str, Any] | ConfigNotice | None
"""What a Contour key becomes: (our field, value), a notice, or nothing (what we do anyway)."""

_UNIMPLEMENTED = "a Contour setting this controller does not implement; ignored"
_CONTOUR_SECTIONS = frozenset({"tls", "leaderelection", "ingressroute"})


def _to(field: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[Any], Mapped]:
    return lambda value: (field, convert(value))


def _seconds(value: Any) -> float:
    """A Go duration (`15s`, `1m30s`, `500ms`) or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration (e.g. 15s, 1m30s, 500ms)")
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(number) * scale[unit] for number, unit in parts)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _incluster(value: Any) -> Mapped:
    _flag(value)
    return None  # in-cluster config is what we use without a kubeconfig


def _debug(value: Any) -> Mapped:
    return ("log_level", "debug") if _flag(value) else None


def _disable_permit_insecure(value: Any) -> Mapped:
    if not _flag(value):
        return None
    return ConfigNotice(
        "", "not implemented: routes with permitInsecure are still served over plain HTTP"
    )


def _minimum_tls(value: Any) -> Mapped:
    version = str(value or "").strip()
    if version in ("", "1.2"):
        return None  # TLS 1.2 is our minimum everywhere unless an object asks for more
    if version == "1.3":
        return ConfigNotice(
            "", "not implemented: the minimum stays TLS 1.2 unless an object asks for 1.3"
        )
    return ConfigNotice("", f"{version!r}: TLS below 1.2 is never served; the minimum is 1.2")


def _access_log_format(value: Any) -> Mapped:
    if str(value) == "envoy":
        return None  # Envoy's default text format is what we log
    return ConfigNotice("", f"{value!r} is not implemented: Envoy's text format is logged")


def _combined(value: Any) -> Mapped:
    return None  # read with the keys it goes with (`_envoy_service`)


def _envoy_service(
    contour: Mapping[str, Any],
    values: Mapping[str, Any],
    origin: Mapping[str, str],
    put: Callable[[str, Any, str], None],
) -> None:
    """Contour's `envoy-service-name` and `-namespace` (defaults envoy, projectcontour) are our
    `envoy_service` namespace/name."""
    name, namespace = contour.get("envoy-service-name"), contour.get("envoy-service-namespace")
    if name is None and namespace is None:
        return
    put("envoy_service", f"{namespace or 'projectcontour'}/{name or 'envoy'}", "envoy-service-*")


_CONTOUR_KEYS: dict[str, Callable[[Any], Mapped]] = {
    "incluster": _incluster,
    "debug": _debug,
    "disablePermitInsecure": _disable_permit_insecure,
    "tls.minimum-protocol-version": _minimum_tls,
    "tls.minimumProtocolVersion": _minimum_tls,  # as the comment in Contour's example spells it
    "accesslog-format": _access_log_format,
    "leaderelection.configmap-name": _to("leader_election_name"),
    "leaderelection.configmap-namespace": _to("leader_election_namespace"),
    "leaderelection.lease-duration": _to("lease_duration", _seconds),
    "leaderelection.renew-deadline": _to("renew_deadline", _seconds),
    "leaderelection.retry-period": _to("retry_period", _seconds),
    "ingress-class-name": _to("ingress_class"),
    "ingressroute-root-namespaces": _to("root_namespaces"),
    "ingressroute.root-namespaces": _to("root_namespaces"),
    "enableExternalNameService": _to("enable_external_name_services"),
    "envoy-service-name": _combined,
    "envoy-service-namespace": _combined,
}
_CONTOUR_UNIMPLEMENTED = frozenset(
    {
        "json-fields",
        "accesslog-format-string",
        "accesslog-level",
        "request-timeout",
        "timeouts",
        "tls.fallback-certificate",
        "tls.cipher-suites",
        "tls.envoy-client-certificate",
        "default-http-versions",
        "disableAllowChunkedLength",
        "disableMergeSlashes",
        "serverHeaderTransformation",
        "cluster",
        "network",
        "listener",
        "server",
        "gateway",
        "policy",
        "rateLimitService",
        "tracing",
        "featureFlags",
        "global-circuit-breaker-defaults",
        "compression",
        "health",
        "metrics",
        "accesslog-format-extensions",
    }
)
