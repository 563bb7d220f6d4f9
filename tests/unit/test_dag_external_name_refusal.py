"""ExternalName Services that lead back into Envoy's pod are refused (cluster mode).

One row per `externalName`: with the networks `serve` refuses in cluster mode (or a widened or
empty set), is the Service usable, and if not, what does the IngressRoute's status say? Every row
runs through the production builder (cold and warm) and the reference build.
"""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from dag_support import build_manifests
from ingressroute_support import build, ingressroute, route, service, statuses, to

from controlplane.addresses import NetworkSet, refused_networks
from controlplane.dag.options import BuildOptions
from controlplane.dag.services import refused_external_name
from controlplane.dag.types import Problem

CLUSTER = refused_networks(local=True)
WIDENED = refused_networks(local=True, extra=[ip_network("10.96.0.0/12")])
FILE = NetworkSet()
FLAG_ONLY = NetworkSet.of([ip_network("169.254.0.0/16")])
LOCAL_NAME = "a name of Envoy's own host"

ROWS = [
    # (externalName, refused networks, why it is refused or None)
    ("localhost", CLUSTER, LOCAL_NAME),
    ("LOCALHOST.", CLUSTER, LOCAL_NAME),
    ("app.localhost", CLUSTER, LOCAL_NAME),
    ("localhost.localdomain", CLUSTER, LOCAL_NAME),
    ("localhost6.localdomain6", CLUSTER, LOCAL_NAME),
    ("ip6-localhost", CLUSTER, LOCAL_NAME),
    ("ip6-loopback", CLUSTER, LOCAL_NAME),
    ("local.projectcontour.io", CLUSTER, LOCAL_NAME),
    ("127.0.0.1", CLUSTER, "in 127.0.0.0/8"),
    ("127.1", CLUSTER, "in 127.0.0.0/8"),
    ("2130706433", CLUSTER, "in 127.0.0.0/8"),
    ("0x7f.0.0.1", CLUSTER, "in 127.0.0.0/8"),
    ("::1", CLUSTER, "in ::1/128"),
    ("[::1]", CLUSTER, "in ::1/128"),
    ("::ffff:127.0.0.1", CLUSTER, "in 127.0.0.0/8"),
    ("169.254.169.254", CLUSTER, "in 169.254.0.0/16"),
    ("0.0.0.0", CLUSTER, "in 0.0.0.0/8"),
    ("::", CLUSTER, "in ::/128"),
    ("fe80::1", CLUSTER, "in fe80::/10"),
    ("fe80::1%eth0", CLUSTER, "in fe80::/10"),
    ("10.96.0.10", WIDENED, "in 10.96.0.0/12"),
    ("10.96.0.10", CLUSTER, None),
    ("example.org", CLUSTER, None),
    ("localhost.example.org", CLUSTER, None),
    ("my-localhost", CLUSTER, None),
    ("10.0.0.1", CLUSTER, None),
    ("localhost", FILE, None),
    ("127.0.0.1", FILE, None),
    ("localhost", FLAG_ONLY, None),
    ("169.254.169.254", FLAG_ONLY, "in 169.254.0.0/16"),
]


@pytest.mark.parametrize(
    ("external_name", "networks", "why"),
    [pytest.param(*row, id=f"{row[0]}-{'refused' if row[2] else 'allowed'}") for row in ROWS],
)
def test_external_name_refusal(external_name: str, networks: NetworkSet, why: str | None) -> None:
    assert refused_external_name(external_name, networks) == why
    options = BuildOptions(enable_external_name_services=True, refused_networks=networks)
    dag = build(
        [
            service("ext", external_name=external_name),
            ingressroute("root", fqdn="www.example.com", routes=[route("/", to("ext"))]),
        ],
        options,
    )
    if why is None:
        assert statuses(dag) == {"default/root": ("valid", "valid IngressRoute")}
        assert [c.external_name for c in dag.clusters()] == [external_name]
    else:
        assert statuses(dag) == {
            "default/root": (
                "invalid",
                f'Service [ext:80] is of type ExternalName and points at "{external_name}" '
                f"({why}), which is refused",
            )
        }
        assert dag.clusters() == ()


def test_disabled_external_names_say_so_first() -> None:
    dag = build(
        [
            service("ext", external_name="localhost"),
            ingressroute("root", fqdn="www.example.com", routes=[route("/", to("ext"))]),
        ],
        BuildOptions(refused_networks=CLUSTER),
    )
    assert "which is disabled" in statuses(dag)["default/root"][1]


def test_an_ingress_on_a_refused_external_name_has_a_problem_and_so_has_the_service() -> None:
    dag = build_manifests(
        [
            service("ext", external_name="169.254.169.254"),
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "ing", "namespace": "default"},
                "spec": {
                    "rules": [
                        {
                            "host": "foo.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": "ext", "port": {"number": 80}}
                                        },
                                    }
                                ]
                            },
                        }
                    ]
                },
            },
        ],
        BuildOptions(enable_external_name_services=True, refused_networks=CLUSTER),
    )
    assert dag.virtual_hosts == ()
    assert set(dag.problems) == {
        Problem(
            "Ingress",
            "default",
            "ing",
            "spec.rules[0].http.paths[0].backend.service.name",
            'Service [ext:80] is of type ExternalName and points at "169.254.169.254" '
            "(in 169.254.0.0/16), which is refused",
        ),
        Problem(
            "Service",
            "default",
            "ext",
            "spec.externalName",
            '"169.254.169.254" (in 169.254.0.0/16) is refused: no backend may point there',
        ),
    }


def test_build_options_with_networks_stay_hashable() -> None:
    assert hash(BuildOptions(refused_networks=CLUSTER)) == hash(
        BuildOptions(refused_networks=refused_networks(local=True))
    )
    assert BuildOptions(refused_networks=CLUSTER) != BuildOptions(refused_networks=WIDENED)
