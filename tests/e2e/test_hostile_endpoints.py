"""Issue 9 end to end: hostile EndpointSlices beside good Services, and an Envoy started after them.

Before, a slice with port 70000, `addressType: FQDN` or a non-IP address made Envoy reject the
whole EDS update: a freshly started Envoy lost every endpoint of every Service. Now such endpoints
never reach a ClusterLoadAssignment: the Envoy goes live, routes the good Services (and the good
endpoints of a Service that also has hostile slices), rejects nothing, and later edits apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pipeline import Pipeline, endpoint_slice, ingress, service

from controlplane.testing.backends import Backend

pytestmark = pytest.mark.e2e


def hostile_slice(
    service_name: str, name: str, addresses: list[str], *, port: int, address_type: str = "IPv4"
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-{name}",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": address_type,
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": addresses, "conditions": {"ready": True}}],
    }


def hostile_slices(service_name: str, port: int) -> list[dict[str, Any]]:
    return [
        hostile_slice(service_name, "port", ["127.0.0.1"], port=70000),
        hostile_slice(service_name, "fqdn", ["example.com"], port=port, address_type="FQDN"),
        hostile_slice(service_name, "name", ["not-an-ip"], port=port),
    ]


def landed(name: str) -> object:
    return lambda answer: answer.status == 200 and answer.backend == name


async def test_a_new_envoy_goes_live_beside_hostile_endpoint_slices(tmp_path: Path) -> None:
    async with Backend("good") as good, Backend("mixed") as mixed:
        apps = [
            service("good", good.port),
            endpoint_slice("good", good.port),
            ingress("good", "good.local", [("/", "Prefix", "good")]),
            # The same Service has a good slice and hostile ones: the good one is served.
            service("mixed", mixed.port),
            endpoint_slice("mixed", mixed.port),
            *hostile_slices("mixed", mixed.port),
            ingress("mixed", "mixed.local", [("/", "Prefix", "mixed")]),
            # Nothing but hostile slices: no endpoint at all, and nobody else harmed.
            service("hostile", mixed.port),
            *hostile_slices("hostile", mixed.port),
            ingress("hostile", "hostile.local", [("/", "Prefix", "hostile")]),
        ]
        (tmp_path / "apps.yaml").write_text("", encoding="utf-8")
        pipe = Pipeline(tmp_path)
        pipe.write("apps.yaml", *apps)
        async with pipe:  # the controller starts with the hostile slices, then a new Envoy
            await pipe.eventually("good.local", "/", landed("good"))
            await pipe.eventually("mixed.local", "/", landed("mixed"))
            assert (await pipe.get("hostile.local", "/")).status == 503  # no healthy upstream

            # An edit of the good tenant still applies.
            apps[2] = ingress("good", "good.local", [("/", "Prefix", "mixed")])
            pipe.write("apps.yaml", *apps)
            await pipe.eventually("good.local", "/", landed("mixed"))

            assert pipe.envoy is not None
            stats = await pipe.envoy.stats()
            rejected = {name: value for name, value in stats.items() if "update_rejected" in name}
            assert rejected, "Envoy reports its rejections under *update_rejected"
            assert all(value == 0 for value in rejected.values()), rejected
