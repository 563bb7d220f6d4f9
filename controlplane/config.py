"""`controlplane serve` settings: flags > environment (`CONTROLPLANE_*`) > config file > defaults.

Every setting is a field of `ServeSettings` with its default and a description; the CLI builds
its flags from these fields (so `--help` cannot drift from the code), passes only the flags the
user gave, and pydantic-settings layers the environment and the YAML file named by `--config`
(or `CONTROLPLANE_CONFIG`) underneath.
"""

from __future__ import annotations

import os
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

    @field_validator("root_namespaces", "watch_namespaces", "refuse_endpoint_cidrs", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

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
    """The YAML file named by the `config` flag or `CONTROLPLANE_CONFIG`, lowest precedence."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        given = init.init_kwargs.get("config") if isinstance(init, InitSettingsSource) else None
        self._path = given or os.environ.get(f"{ENV_PREFIX}CONFIG")

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        if not self._path:
            return {}
        with open(self._path, encoding="utf-8") as stream:
            loaded = yaml.safe_load(stream) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{self._path}: a config file must be a YAML mapping")
        return {str(key).replace("-", "_"): value for key, value in loaded.items()}
