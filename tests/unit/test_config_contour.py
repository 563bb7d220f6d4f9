"""The `--config` file speaks Contour: a Contour 0.15 `contour.yaml` works unchanged, its keys
mapped onto our settings where we have the feature, the others named in a warning (`serve` logs
them, `translate` prints them), an unknown key one clear error; our own keys work as before."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from controlplane.cli import main
from controlplane.config import ConfigNotice, ServeSettings, read_config_file
from controlplane.runtime import serve

# The file of Contour 0.15's example ConfigMap (examples/contour/01-contour-config.yaml), with
# values filled in where the example leaves them commented out.
CONTOUR_015 = """
# should contour expect to be running inside a k8s cluster
incluster: true
#
# disable ingressroute permitInsecure field
disablePermitInsecure: false
tls:
  # minimum TLS version that Contour will negotiate
  # minimumProtocolVersion: "1.1"
# The following config shows the defaults for the leader election.
leaderelection:
  configmap-name: leader-elect
  configmap-namespace: projectcontour
  lease-duration: 15s
  renew-deadline: 10s
  retry-period: 2s
"""


def write(tmp_path: Path, text: str | dict[str, Any], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text if isinstance(text, str) else yaml.safe_dump(text), encoding="utf-8")
    return path


def settings(tmp_path: Path, text: str | dict[str, Any], **flags: Any) -> ServeSettings:
    return ServeSettings(config=write(tmp_path, text), **flags)


def notices(tmp_path: Path, text: str | dict[str, Any]) -> list[str]:
    return [str(n) for n in read_config_file(write(tmp_path, text)).notices]


def test_contour_015s_example_config_is_read_unchanged(tmp_path: Path) -> None:
    read = settings(tmp_path, CONTOUR_015)
    assert read.kubeconfig is None  # in-cluster
    assert (read.leader_election_name, read.leader_election_namespace) == (
        "leader-elect",
        "projectcontour",
    )
    assert (read.lease_duration, read.renew_deadline, read.retry_period) == (15.0, 10.0, 2.0)
    assert read.config_notices() == ()  # everything in it is what we do


@pytest.mark.parametrize(
    ("config", "field", "value"),
    [
        ({"ingressroute": {"root-namespaces": "platform, teams"}}, "root_namespaces",
         ["platform", "teams"]),
        ({"ingressroute-root-namespaces": "platform"}, "root_namespaces", ["platform"]),
        ({"ingress-class-name": "contour,nginx"}, "ingress_class", "contour,nginx"),
        ({"kubeconfig": "/etc/kube/config"}, "kubeconfig", Path("/etc/kube/config")),
        ({"debug": True}, "log_level", "debug"),
        ({"ingress-status-address": "203.0.113.7"}, "ingress_status_address", "203.0.113.7"),
        ({"envoy-service-name": "envoy"}, "envoy_service", "projectcontour/envoy"),
        ({"envoy-service-name": "edge", "envoy-service-namespace": "ingress"}, "envoy_service",
         "ingress/edge"),
        ({"enableExternalNameService": True}, "enable_external_name_services", True),
        ({"leaderelection": {"lease-duration": "1m30s"}}, "lease_duration", 90.0),
        ({"leaderelection": {"retry-period": "500ms"}}, "retry_period", 0.5),
        # our own keys, snake_case and dashed
        ({"root_namespaces": "a,b"}, "root_namespaces", ["a", "b"]),
        ({"envoy-http-port": 9080}, "envoy_http_port", 9080),
    ],
)  # fmt: skip
def test_each_contour_key_we_implement_sets_our_setting(
    tmp_path: Path, config: dict[str, Any], field: str, value: Any
) -> None:
    read = settings(tmp_path, config)
    assert getattr(read, field) == value
    assert read.config_notices() == ()


def test_flags_and_environment_still_win_over_contour_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"ingress-class-name": "file", "ingressroute": {"root-namespaces": "file"}}
    monkeypatch.setenv("CONTROLPLANE_ROOT_NAMESPACES", "env")
    read = settings(tmp_path, config, ingress_class="flag")
    assert read.ingress_class == "flag" and read.root_namespaces == ["env"]


@pytest.mark.parametrize(
    ("config", "notice"),
    [
        ({"disablePermitInsecure": True},
         "disablePermitInsecure: not implemented: routes with permitInsecure are still served"),
        ({"tls": {"minimum-protocol-version": "1.3"}},
         "tls.minimum-protocol-version: not implemented: the minimum stays TLS 1.2"),
        ({"tls": {"minimumProtocolVersion": "1.1"}},
         "tls.minimumProtocolVersion: '1.1': TLS below 1.2 is never served"),
        ({"tls": {"fallback-certificate": {"name": "f", "namespace": "n"}}},
         "tls.fallback-certificate: a Contour setting this controller does not implement"),
        ({"accesslog-format": "json"}, "accesslog-format: 'json' is not implemented"),
        ({"json-fields": ["@timestamp"]}, "json-fields: a Contour setting"),
        ({"request-timeout": "30s"}, "request-timeout: a Contour setting"),
        ({"timeouts": {"request-timeout": "30s"}}, "timeouts: a Contour setting"),
        ({"incluster": True, "kubeconfig": "/k"}, "kubeconfig: ignored: incluster is true"),
    ],
)  # fmt: skip
def test_contour_keys_we_lack_are_named_never_fatal(
    tmp_path: Path, config: dict[str, Any], notice: str
) -> None:
    [told] = notices(tmp_path, config)
    assert told.startswith(notice)
    ServeSettings(config=tmp_path / "config.yaml")  # and the settings are still made


@pytest.mark.parametrize(
    "config",
    [
        {"disablePermitInsecure": False},
        {"tls": {"minimum-protocol-version": "1.2"}},
        {"accesslog-format": "envoy"},
        {"incluster": False},
        "tls:\n  # minimum-protocol-version: '1.1'\n",
    ],
)
def test_what_we_do_anyway_is_accepted_silently(
    tmp_path: Path, config: str | dict[str, Any]
) -> None:
    assert notices(tmp_path, config) == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"foo": 1, "tls": {"bar": 2}},
         "unknown keys foo, tls.bar: neither a setting of controlplane serve (see --help) nor a "
         "Contour config-file key"),
        ({"leaderelection": {"lease-duration": "soon"}},
         "leaderelection.lease-duration: 'soon' is not a duration"),
        ({"disablePermitInsecure": "yes"}, "disablePermitInsecure: expected true or false"),
        ({"root_namespaces": "a", "ingressroute": {"root-namespaces": "b"}},
         "root_namespaces is set twice in the file (root_namespaces and "
         "ingressroute.root-namespaces)"),
        ({"tls": "1.2"}, "tls: expected a mapping"),
        ("- a list", "a config file must be a YAML mapping"),
    ],
)  # fmt: skip
def test_a_file_we_cannot_read_is_one_clear_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: Any, message: str
) -> None:
    path = write(tmp_path, config)
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"controlplane serve: --config {path}: {message}" in err


async def test_serve_logs_each_contour_key_it_does_not_honour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    config = write(tmp_path, {"disablePermitInsecure": True, "json-fields": ["a"]})
    stop = asyncio.Event()
    stop.set()
    configured = structlog.get_config()  # serve configures logging for the process
    try:
        await serve(
            ServeSettings(
                config=config,
                manifests=manifests,
                xds_address="127.0.0.1:0",
                health_address="127.0.0.1:0",
                log_json=True,
            ),
            stop=stop,
        )
    finally:
        structlog.configure(**configured)
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    ignored = [(e["key"], e["level"]) for e in logged if e["event"] == "config.ignored"]
    assert ignored == [("disablePermitInsecure", "warning"), ("json-fields", "warning")]


def test_notices_render_with_their_key() -> None:
    assert str(ConfigNotice("tls.x", "why")) == "tls.x: why"
