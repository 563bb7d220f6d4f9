"""The bootstrap for the split deployment: mutual TLS through file-based SDS, several replicas.

- `--xds-ca --xds-cert --xds-key` put a TLS transport socket on `xds_cluster` whose client
  certificate and validation context come from two SDS resource files written next to the
  bootstrap (or in `--resources-dir`): Envoy watches the certificate files they name (and the
  Secret volume's directory, for the `..data` swap), so rotation needs no restart. The server
  must present the name `controlplane`.
- `--xds-address` repeated gives `xds_cluster` one endpoint per replica (STATIC for IPs,
  STRICT_DNS as soon as one is a name).
- Envoy itself accepts what the command writes (`envoy --mode validate`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane import certgen
from controlplane.cli import main
from controlplane.envoy import XdsClientTls, render_bootstrap, sds_resources
from controlplane.envoy.bootstrap import XDS_CLUSTER

TLS = XdsClientTls(
    ca="/certs/envoy/ca.crt",
    cert="/certs/envoy/tls.crt",
    key="/certs/envoy/tls.key",
    resources_dir="/config/sds",
)
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def _xds_cluster(bootstrap: dict[str, Any]) -> dict[str, Any]:
    return dict(bootstrap["static_resources"]["clusters"][0])


def _endpoints(cluster: dict[str, Any]) -> list[tuple[str, int]]:
    (locality,) = cluster["load_assignment"]["endpoints"]
    return [
        (e["endpoint"]["address"]["socket_address"]["address"],
         e["endpoint"]["address"]["socket_address"]["port_value"])
        for e in locality["lb_endpoints"]
    ]  # fmt: skip


def test_mtls_socket_takes_its_certificates_from_sds_files() -> None:
    cluster = _xds_cluster(render_bootstrap(xds_address="controlplane:8001", xds_tls=TLS))
    socket = cluster["transport_socket"]
    assert socket["name"] == "envoy.transport_sockets.tls"
    context = socket["typed_config"]
    assert context["@type"] == UPSTREAM_TLS
    assert context["sni"] == "controlplane"
    common = context["common_tls_context"]
    assert common["alpn_protocols"] == ["h2"]
    assert common["tls_params"]["tls_maximum_protocol_version"] == "TLSv1_3"
    assert common["tls_certificate_sds_secret_configs"] == [
        {
            "name": "xds_client_certificate",
            "sds_config": {
                "path_config_source": {"path": "/config/sds/xds-client-certificate.yaml"},
                "resource_api_version": "V3",
            },
        }
    ]
    assert common["validation_context_sds_secret_config"] == {
        "name": "xds_server_validation",
        "sds_config": {
            "path_config_source": {"path": "/config/sds/xds-server-validation.yaml"},
            "resource_api_version": "V3",
        },
    }
    assert "tls_certificates" not in common  # never the files directly: they could not rotate


def test_sds_files_name_the_certificates_and_the_server_name() -> None:
    resources = sds_resources(TLS)
    assert sorted(resources) == [
        "/config/sds/xds-client-certificate.yaml",
        "/config/sds/xds-server-validation.yaml",
    ]
    (certificate,) = resources["/config/sds/xds-client-certificate.yaml"]["resources"]
    assert certificate == {
        "@type": SECRET,
        "name": "xds_client_certificate",
        "tls_certificate": {
            "certificate_chain": {"filename": "/certs/envoy/tls.crt"},
            "private_key": {"filename": "/certs/envoy/tls.key"},
            "watched_directory": {"path": "/certs/envoy"},
        },
    }
    (validation,) = resources["/config/sds/xds-server-validation.yaml"]["resources"]
    assert validation == {
        "@type": SECRET,
        "name": "xds_server_validation",
        "validation_context": {
            "trusted_ca": {"filename": "/certs/envoy/ca.crt"},
            "watched_directory": {"path": "/certs/envoy"},
            "match_typed_subject_alt_names": [
                {"san_type": "DNS", "matcher": {"exact": "controlplane"}}
            ],
        },
    }
    assert sds_resources(None) == {}


def test_without_tls_the_cluster_is_plaintext() -> None:
    assert "transport_socket" not in _xds_cluster(render_bootstrap())


@pytest.mark.parametrize("field", ["ca", "cert", "key", "resources_dir"])
def test_relative_paths_are_refused(field: str) -> None:
    values = {"ca": "/a", "cert": "/b", "key": "/c", "resources_dir": "/d", field: "relative"}
    with pytest.raises(ValueError, match="absolute path"):
        XdsClientTls(**values)


# -- several replicas --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addresses", "cluster_type", "endpoints"),
    [
        (["10.0.0.1:8001"], "STATIC", [("10.0.0.1", 8001)]),
        (["10.0.0.1:8001", "10.0.0.2:8001"], "STATIC", [("10.0.0.1", 8001), ("10.0.0.2", 8001)]),
        (["127.0.0.1:1", "[::1]:2"], "STATIC", [("127.0.0.1", 1), ("::1", 2)]),
        (["controlplane.projectcontour:8001"], "STRICT_DNS",
         [("controlplane.projectcontour", 8001)]),
        (["a.example:8001", "10.0.0.2:8001"], "STRICT_DNS",
         [("a.example", 8001), ("10.0.0.2", 8001)]),
    ],
)  # fmt: skip
def test_each_address_is_an_endpoint_of_the_xds_cluster(
    addresses: list[str], cluster_type: str, endpoints: list[tuple[str, int]]
) -> None:
    cluster = _xds_cluster(render_bootstrap(xds_address=addresses))
    assert cluster["name"] == XDS_CLUSTER
    assert cluster["type"] == cluster_type
    assert _endpoints(cluster) == endpoints
    assert ("dns_lookup_family" in cluster) == (cluster_type == "STRICT_DNS")


@pytest.mark.parametrize(
    ("addresses", "message"),
    [([], "at least one --xds-address"), (["a:1", "b:2", "a:1"], "--xds-address a:1 given twice")],
)
def test_unusable_address_lists_are_refused(addresses: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_bootstrap(xds_address=addresses)


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    certgen.write_directory(directory)
    return directory


def _tls_flags(certs: Path) -> list[str]:
    return ["--xds-ca", str(certs / "ca.crt"), "--xds-cert", str(certs / "envoy" / "tls.crt"),
            "--xds-key", str(certs / "envoy" / "tls.key")]  # fmt: skip


def test_the_command_writes_the_sds_files_beside_the_bootstrap(
    tmp_path: Path, certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config" / "envoy.yaml"
    argv = ["bootstrap", str(path), "--xds-address", "10.0.0.1:8001",
            "--xds-address", "10.0.0.2:8001", *_tls_flags(certs)]  # fmt: skip
    assert main(argv) == 0
    written = sorted(p.name for p in path.parent.iterdir())
    assert written == ["envoy.yaml", "xds-client-certificate.yaml", "xds-server-validation.yaml"]
    bootstrap = yaml.safe_load(path.read_text())
    cluster = _xds_cluster(bootstrap)
    assert _endpoints(cluster) == [("10.0.0.1", 8001), ("10.0.0.2", 8001)]
    context = cluster["transport_socket"]["typed_config"]["common_tls_context"]
    sds_path = context["tls_certificate_sds_secret_configs"][0]["sds_config"]
    assert sds_path["path_config_source"]["path"] == str(path.parent / written[1])
    certificate = yaml.safe_load((path.parent / written[1]).read_text())["resources"][0]
    assert certificate["tls_certificate"]["private_key"] == {
        "filename": str(certs / "envoy" / "tls.key")
    }
    assert capsys.readouterr().err.count("wrote ") == 3


def test_resources_dir_moves_the_sds_files(tmp_path: Path, certs: Path) -> None:
    path = tmp_path / "envoy.json"
    resources = tmp_path / "sds"
    argv = ["bootstrap", str(path), "--resources-dir", str(resources), *_tls_flags(certs)]
    assert main(argv) == 0
    assert sorted(p.name for p in resources.iterdir()) == [
        "xds-client-certificate.yaml",
        "xds-server-validation.yaml",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resources-dir", "/x"], "--resources-dir is for the SDS files"),
        (["--xds-address", "a:1", "--xds-address", "a:1"], "--xds-address a:1 given twice"),
    ],
)
def test_command_mistakes(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bootstrap", str(tmp_path / "envoy.yaml"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "envoy.yaml").exists()


def test_a_relative_resources_dir_is_refused(
    tmp_path: Path, certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bootstrap", str(tmp_path / "envoy.yaml"), "--resources-dir", "sds", *_tls_flags(certs)]
    assert main(argv) == 2
    assert "Envoy needs an absolute path" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["ads", "delta", "separate"])
def test_envoy_accepts_the_mtls_bootstrap(
    mode: str, tmp_path: Path, certs: Path, envoy_binary: str
) -> None:
    path = tmp_path / "envoy.yaml"
    argv = ["bootstrap", str(path), "--xds-mode", mode, "--xds-address", "127.0.0.1:8001",
            "--xds-address", "controlplane.projectcontour:8001", *_tls_flags(certs)]  # fmt: skip
    assert main(argv) == 0
    result = subprocess.run(
        [envoy_binary, "--mode", "validate", "--config-path", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
