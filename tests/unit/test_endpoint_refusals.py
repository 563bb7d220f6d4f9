"""Refused endpoints through the runtime: left out of what is published, logged and counted once.

The translator decides (tests/unit/test_envoy_endpoints.py has the table); these tests hold the
publisher to its half: each refusal is reported when it first appears (by a build or by the EDS
fast path), never again while it stays, again if it goes away and comes back; and the good
endpoints of the same Service are published as usual.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kube_manifests
import pytest
import structlog
import yaml
from envoy.config.endpoint.v3 import endpoint_pb2
from prometheus_client import CollectorRegistry
from waiting import eventually

from controlplane.addresses import ip_literal, refused_networks
from controlplane.cli import main
from controlplane.config import ServeSettings
from controlplane.dag.options import BuildOptions
from controlplane.envoy import TranslateOptions
from controlplane.metrics import pipeline_metrics
from controlplane.runtime import Runtime, build_options_from, translate_options_from
from controlplane.typeurls import ENDPOINT_TYPE
from controlplane.xds.cache import SnapshotCache

JSON = dict[str, Any]
EDS_NAME = "default/kuard/http"


def endpoint_slice(
    name: str, addresses: list[str], *, port: int = 8080, address_type: str = "IPv4"
) -> JSON:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kuard"},
        },
        "addressType": address_type,
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": addresses}],
    }


INGRESS: JSON = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "kuard", "namespace": "default"},
    "spec": {
        "rules": [
            {
                "host": "kuard.local",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "kuard", "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ]
    },
}


class Rig:
    def __init__(self, runtime: Runtime, registry: CollectorRegistry) -> None:
        self.runtime = runtime
        self.registry = registry

    def counted(self, reason: str) -> float:
        value = self.registry.get_sample_value(
            "controlplane_endpoints_refused_total", {"reason": reason}
        )
        return value or 0.0

    def published(self) -> list[str]:
        snapshot = self.runtime.cache.current
        assert snapshot is not None
        assignment = endpoint_pb2.ClusterLoadAssignment.FromString(
            snapshot.resources(ENDPOINT_TYPE)[EDS_NAME].body
        )
        return [
            f"{e.endpoint.address.socket_address.address}:"
            f"{e.endpoint.address.socket_address.port_value}"
            for locality in assignment.endpoints
            for e in locality.lb_endpoints
        ]

    def apply(self, *raws: JSON) -> None:
        for raw in raws:
            self.runtime.store.apply_raw(raw)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    registry = CollectorRegistry()
    runtime = Runtime(
        build_options=BuildOptions(),
        translate_options=TranslateOptions(refused_endpoint_networks=refused_networks(local=True)),
        cache=SnapshotCache(),
        metrics=pipeline_metrics(registry),
    )
    for raw in (kube_manifests.service("kuard", ports=[("http", 80, 8080)]), INGRESS):
        runtime.store.apply_raw(raw)
    runtime.store.apply_raw(endpoint_slice("good", ["10.0.0.1"]))
    runtime.source_synced_event().set()
    await eventually(lambda: runtime.synced)  # endpoint edits take the fast path from now on
    yield Rig(runtime, registry)


def refused_lines(logs: list[JSON]) -> list[tuple[str, str, str, str]]:
    return [
        (line["namespace"], line["service"], line["address"], line["reason"])
        for line in logs
        if line["event"] == "endpoint.refused"
    ]


async def test_a_refusal_is_logged_and_counted_once_and_the_good_endpoints_are_published(
    rig: Rig,
) -> None:
    rig.apply(
        endpoint_slice("bad", ["127.0.0.1", "169.254.169.254", "10.0.0.2"]),
        endpoint_slice("fqdn", ["example.com"], address_type="FQDN"),
        endpoint_slice("port", ["10.0.0.3"], port=70000),
    )
    with structlog.testing.capture_logs() as logs:
        await rig.runtime.rebuild()
        await rig.runtime.rebuild()  # nothing changed: nothing new to say
        rig.runtime.store.apply_raw(kube_manifests.service("other"))  # an unrelated change
        await rig.runtime.rebuild()
    assert rig.published() == ["10.0.0.1:8080", "10.0.0.2:8080"]
    assert refused_lines(logs) == [
        ("default", "kuard", "127.0.0.1", "refused_network"),
        ("default", "kuard", "169.254.169.254", "refused_network"),
        ("default", "kuard", "example.com", "fqdn_address_type"),
        ("default", "kuard", "*", "port_out_of_range"),
    ]
    (line,) = [line for line in logs if line.get("address") == "127.0.0.1"]
    assert line["log_level"] == "warning"
    assert line["source"] == "EndpointSlice/bad"
    assert line["detail"] == "in 127.0.0.0/8, where no endpoint may be"
    assert rig.counted("refused_network") == 2
    assert rig.counted("fqdn_address_type") == 1
    assert rig.counted("port_out_of_range") == 1
    assert [r.address for r in rig.runtime.publisher.refused_endpoints] == [
        "127.0.0.1",
        "169.254.169.254",
        "example.com",
        "*",
    ]


async def test_the_fast_path_reports_new_refusals_once_and_forgets_fixed_ones(rig: Rig) -> None:
    await rig.runtime.rebuild()
    with structlog.testing.capture_logs() as logs:
        rig.apply(endpoint_slice("bad", ["127.0.0.1", "10.0.0.2"]))  # the EDS fast path
        assert rig.published() == ["10.0.0.1:8080", "10.0.0.2:8080"]
        rig.apply(endpoint_slice("bad", ["127.0.0.1", "10.0.0.4"]))  # still refused: quiet
        await rig.runtime.rebuild()  # the build sees the same refusal: quiet
        assert rig.published() == ["10.0.0.1:8080", "10.0.0.4:8080"]
    assert refused_lines(logs) == [("default", "kuard", "127.0.0.1", "refused_network")]
    assert rig.counted("refused_network") == 1

    with structlog.testing.capture_logs() as logs:
        rig.apply(endpoint_slice("bad", ["10.0.0.2"]))  # fixed
        assert rig.runtime.publisher.refused_endpoints == ()
        rig.apply(endpoint_slice("bad", ["127.0.0.1"]))  # and broken again
    assert refused_lines(logs) == [("default", "kuard", "127.0.0.1", "refused_network")]
    assert rig.counted("refused_network") == 2


async def test_a_refusal_in_two_ports_of_one_service_is_one_line(rig: Rig) -> None:
    rig.apply(
        kube_manifests.service("kuard", ports=[("http", 80, 8080), ("admin", 81, 9001)]),
        {
            **INGRESS,
            "metadata": {"name": "admin", "namespace": "default"},
            "spec": {
                "rules": [
                    {
                        "host": "admin.local",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "kuard", "port": {"name": "admin"}}
                                    },
                                }
                            ]
                        },
                    }
                ]
            },
        },
        {
            **endpoint_slice("bad", ["127.0.0.1"]),
            "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9001}],
        },
    )
    with structlog.testing.capture_logs() as logs:
        await rig.runtime.rebuild()
    assert refused_lines(logs) == [("default", "kuard", "127.0.0.1", "refused_network")]
    assert rig.counted("refused_network") == 1


@pytest.mark.parametrize(
    ("settings", "refused", "allowed"),
    [
        pytest.param(
            {"kubeconfig": "kubeconfig"}, ["127.0.0.1", "::1"], ["10.96.0.1"], id="cluster"
        ),
        pytest.param({"manifests": "."}, [], ["127.0.0.1", "169.254.169.254"], id="files"),
        pytest.param(
            {"kubeconfig": "kubeconfig", "refuse_endpoint_cidrs": "10.96.0.0/12, fd00::/8"},
            ["127.0.0.1", "10.96.0.1", "fd00::1"],
            ["10.0.0.1"],
            id="cluster-widened",
        ),
        pytest.param(
            {"manifests": ".", "refuse_endpoint_cidrs": "10.96.0.0/12"},
            ["10.96.0.1"],
            ["127.0.0.1"],
            id="files-widened",
        ),
        pytest.param(
            {"manifests": ".", "refuse_local_endpoints": True},
            ["127.0.0.1", "fe80::1"],
            ["10.0.0.1"],
            id="files-opt-in",
        ),
        pytest.param(
            {"kubeconfig": "kubeconfig", "refuse_local_endpoints": False},
            [],
            ["127.0.0.1"],
            id="cluster-opt-out",
        ),
    ],
)
def test_settings_choose_the_refused_networks(
    settings: dict[str, Any], refused: list[str], allowed: list[str]
) -> None:
    parsed = ServeSettings(**settings)
    networks = translate_options_from(parsed).refused_endpoint_networks
    assert build_options_from(parsed).refused_networks == networks
    for address in refused:
        packed = ip_literal(address)
        assert packed is not None and networks.match(packed) is not None, address
    for address in allowed:
        packed = ip_literal(address)
        assert packed is not None and networks.match(packed) is None, address


def test_a_malformed_cidr_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="refuse_endpoint_cidrs"):
        ServeSettings(refuse_endpoint_cidrs="10.0.0.1/8")


# -- `controlplane translate`: the same decisions, offline -----------------------------------


@pytest.mark.parametrize(
    ("flags", "sent", "problems"),
    [
        pytest.param(
            [],
            ["10.0.0.1:8080", "127.0.0.1:8080"],
            [("EndpointSlice", "fqdn", "addressType", '"example.com"')],
            id="file-mode",
        ),
        pytest.param(
            ["--refuse-local-endpoints"],
            ["10.0.0.1:8080"],
            [
                ("EndpointSlice", "bad", "endpoints.addresses", '"127.0.0.1"'),
                ("EndpointSlice", "fqdn", "addressType", '"example.com"'),
            ],
            id="cluster-mode",
        ),
        pytest.param(
            ["--refuse-endpoint-cidrs", "10.0.0.0/24"],
            ["127.0.0.1:8080"],
            [
                ("EndpointSlice", "fqdn", "addressType", '"example.com"'),
                ("EndpointSlice", "good", "endpoints.addresses", '"10.0.0.1"'),
            ],
            id="widened",
        ),
    ],
)
def test_translate_prints_what_is_left_out(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    sent: list[str],
    problems: list[tuple[str, str, str, str]],
) -> None:
    documents = [
        kube_manifests.service("kuard", ports=[("http", 80, 8080)]),
        INGRESS,
        endpoint_slice("good", ["10.0.0.1"]),
        endpoint_slice("bad", ["127.0.0.1"]),
        endpoint_slice("fqdn", ["example.com"], address_type="FQDN"),
    ]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    assert main(["translate", "-f", str(tmp_path), *flags]) == 0
    printed = json.loads(capsys.readouterr().out)
    (assignment,) = printed["endpoints"]
    assert [
        f"{e['endpoint']['address']['socket_address']['address']}:"
        f"{e['endpoint']['address']['socket_address']['port_value']}"
        for e in assignment["endpoints"][0]["lb_endpoints"]
    ] == sent
    assert [
        (p["kind"], p["name"], p["field"], p["reason"].partition(":")[0])
        for p in printed["problems"]
    ] == problems


def test_translate_refuses_a_malformed_cidr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["translate", "-f", str(tmp_path), "--refuse-endpoint-cidrs", "10.0.0.1/8"]) == 2
    assert "--refuse-endpoint-cidrs" in capsys.readouterr().err
