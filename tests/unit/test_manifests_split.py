"""The split deployment (manifests/overlays/split) is wired together, offline.

- certgen: the Job's arguments are flags the CLI knows; the Secrets it writes are the ones the
  controller and Envoy pods mount; its ServiceAccount has the certgen Role.
- The controller: two replicas behind a PodDisruptionBudget and a headless Service; `serve`
  arguments the CLI accepts, xDS on every address over mTLS with the three files of the
  `controlplanecert` Secret; the Service's port is the container's.
- Envoy (DaemonSet): the bootstrap arguments the CLI accepts; the controller address is the
  headless Service's name and port; the client certificate is the `envoycert` Secret; the SDS
  files land next to the bootstrap Envoy reads; the bootstrap the init container writes, with
  certificates in place, passes `envoy --mode validate`; no API token; the admin socket is
  shared with the shutdown-manager only, whose drain is the colocated one, word for word.
- NetworkPolicies: everything is denied by default; the xDS port admits Envoy pods only, the
  health and stats ports the monitoring namespace only, Envoy's ingress ports anyone; every
  port a pod listens on is covered by a rule for its pod.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from manifest_support import (
    JSON,
    NAMESPACE,
    POD_ENV,
    container_of,
    expand,
    flags,
    mounted_file,
    named,
    objects,
    pod_labels,
    pod_spec,
    pod_templates,
    selects,
    volume,
)

from controlplane import certgen
from controlplane.cli import build_parser, main
from controlplane.config import ServeSettings
from controlplane.envoy.bootstrap import parse_address, render_bootstrap, unix_socket_path

OVERLAY = "split"


def controller() -> JSON:
    return named(OVERLAY, "Deployment", "controlplane")


def envoy() -> JSON:
    return named(OVERLAY, "DaemonSet", "envoy")


def job() -> JSON:
    (found,) = objects(OVERLAY, "Job")
    return found


def _args(workload: JSON, container: str) -> list[str]:
    return expand(container_of(workload, container)["args"], POD_ENV)


def _secret_of(workload: JSON, container: str, path: str) -> tuple[str, str]:
    """(Secret name, key) behind a file path a container reads."""
    name, key = mounted_file(workload, container, path)
    return volume(workload, name)["secret"]["secretName"], key


# -- certgen ---------------------------------------------------------------------------------


def test_certgen_job_runs_certgen_into_this_namespace() -> None:
    args = build_parser().parse_args(_args(job(), "certgen"))
    assert args.command == "certgen" and args.kubernetes and args.dir is None
    assert args.namespace == NAMESPACE and not args.overwrite
    spec = pod_spec(job())
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "controlplane-certgen"
    (binding,) = [b for b in objects(OVERLAY, "RoleBinding")
                  if b["roleRef"]["name"] == "controlplane-certgen"]  # fmt: skip
    assert binding["subjects"][0]["name"] == "controlplane-certgen"


def test_the_pods_mount_the_secrets_certgen_writes() -> None:
    serve = flags(_args(controller(), "controlplane"))
    for flag, key in (("--xds-ca", "ca.crt"), ("--xds-cert", "tls.crt"), ("--xds-key", "tls.key")):
        assert _secret_of(controller(), "controlplane", serve[flag]) == (
            certgen.CONTROLPLANE_SECRET,
            key,
        )
    bootstrap = flags(_args(envoy(), "envoy-bootstrap"))
    for flag, key in (("--xds-ca", "ca.crt"), ("--xds-cert", "tls.crt"), ("--xds-key", "tls.key")):
        assert _secret_of(envoy(), "envoy-bootstrap", bootstrap[flag]) == (
            certgen.ENVOY_SECRET,
            key,
        )
        # Envoy itself reads the same files (through the SDS files), at the same paths.
        assert _secret_of(envoy(), "envoy", bootstrap[flag]) == (certgen.ENVOY_SECRET, key)


# -- the controller --------------------------------------------------------------------------


def test_serve_arguments_are_flags_the_cli_accepts_and_serve_mtls_to_the_pod_network() -> None:
    args = build_parser().parse_args(_args(controller(), "controlplane"))
    given = {
        name: value
        for name in ServeSettings.model_fields
        if (value := getattr(args, name, None)) is not None
    }
    settings = ServeSettings(**given)
    assert settings.xds_ca and settings.xds_cert and settings.xds_key
    assert parse_address(settings.xds_address) == ("0.0.0.0", 8001)
    assert settings.envoy_service == f"{NAMESPACE}/envoy"
    assert settings.leader_election and settings.leader_election_namespace == NAMESPACE
    assert settings.kubeconfig is None and settings.manifests is None


def test_two_replicas_a_budget_and_a_headless_service_for_the_xds_port() -> None:
    deployment = controller()
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (budget,) = objects(OVERLAY, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert selects(budget["spec"]["selector"], pod_labels(deployment))
    assert not selects(budget["spec"]["selector"], pod_labels(envoy()))
    service = named(OVERLAY, "Service", "controlplane")
    assert service["spec"]["clusterIP"] == "None"
    assert [w["metadata"]["name"] for w in pod_templates(OVERLAY)
            if selects(service["spec"]["selector"], pod_labels(w))] == ["controlplane"]  # fmt: skip
    (port,) = service["spec"]["ports"]
    ports = {
        p["name"]: p["containerPort"] for p in container_of(deployment, "controlplane")["ports"]
    }
    xds_port = parse_address(flags(_args(deployment, "controlplane"))["--xds-address"])[1]
    assert port["port"] == ports[port["targetPort"]] == xds_port


# -- Envoy -----------------------------------------------------------------------------------


def test_envoy_dials_every_replica_by_the_services_name_over_mtls() -> None:
    args = build_parser().parse_args(_args(envoy(), "envoy-bootstrap"))
    assert args.command == "bootstrap"
    (address,) = args.xds_address
    host, port = parse_address(address)
    service = named(OVERLAY, "Service", "controlplane")
    assert host == f"{service['metadata']['name']}.{NAMESPACE}.svc"
    assert port == service["spec"]["ports"][0]["port"]
    assert args.xds_ca and args.xds_cert and args.xds_key
    # The server certificate certgen writes carries the name the bootstrap checks, and the one
    # Envoy dials.
    assert {"controlplane", host} <= set(certgen.controlplane_names(NAMESPACE))


def test_the_bootstrap_and_its_sds_files_are_where_envoy_reads_them() -> None:
    args = build_parser().parse_args(_args(envoy(), "envoy-bootstrap"))
    config_dir = str(Path(args.path).parent)
    assert args.resources_dir is None  # the SDS files go beside the bootstrap
    (mount,) = [m for m in container_of(envoy(), "envoy-bootstrap")["volumeMounts"]
                if m["mountPath"] == config_dir]  # fmt: skip
    envoy_args = container_of(envoy(), "envoy")["args"]
    assert envoy_args[envoy_args.index("-c") + 1] == args.path
    assert mounted_file(envoy(), "envoy", args.path)[0] == mount["name"]


def test_envoy_accepts_the_configuration_the_daemonset_gives_it(
    envoy_binary: str, tmp_path: Path
) -> None:
    """The init container's command, with certgen's files at stand-in paths, then validate."""
    certgen.write_directory(tmp_path / "certs")
    args = _args(envoy(), "envoy-bootstrap")
    assert args[:2] == ["bootstrap", "/config/envoy.yaml"]
    local = {
        "--xds-ca": tmp_path / "certs" / "ca.crt",
        "--xds-cert": tmp_path / "certs" / "envoy" / "tls.crt",
        "--xds-key": tmp_path / "certs" / "envoy" / "tls.key",
    }
    rest = [
        f"{arg.split('=')[0]}={local[arg.split('=')[0]]}" if arg.split("=")[0] in local else arg
        for arg in args[2:]
    ]
    config = tmp_path / "config" / "envoy.yaml"
    assert main(["bootstrap", str(config), *rest]) == 0
    envoy_args = expand(container_of(envoy(), "envoy")["args"], POD_ENV)
    envoy_args[envoy_args.index("-c") + 1] = str(config)
    result = subprocess.run(
        [envoy_binary, "--mode", "validate", *envoy_args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_envoy_pods_have_no_api_token_and_share_the_admin_socket_with_the_drain_only() -> None:
    spec = pod_spec(envoy())
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec
    socket = unix_socket_path(flags(_args(envoy(), "envoy-bootstrap"))["--admin-address"])
    assert socket is not None
    users = {
        c["name"]: m
        for c in spec["containers"]
        for m in c.get("volumeMounts", [])
        if m["mountPath"] == str(Path(socket).parent)
    }
    assert set(users) == {"envoy", "shutdown-manager"}
    assert users["shutdown-manager"]["readOnly"] is True
    assert set(volume(envoy(), users["envoy"]["name"])) == {"name", "emptyDir"}


def test_the_drain_is_the_colocated_one_and_fits_in_the_grace_period() -> None:
    colocated = named("colocated", "Deployment", "controlplane")
    hook = container_of(envoy(), "shutdown-manager")["lifecycle"]["preStop"]["exec"]["command"]
    reference = container_of(colocated, "controlplane")["lifecycle"]["preStop"]["exec"]["command"]
    assert hook == reference  # tests/e2e/test_admin_socket.py runs it against a real Envoy
    command = container_of(envoy(), "shutdown-manager")["command"]
    compile(command[2], "shutdown-manager", "exec")
    envoy_wait = container_of(envoy(), "envoy")["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod_spec(envoy())["terminationGracePeriodSeconds"] >= envoy_wait + 10


def test_the_envoy_service_selects_the_daemonset() -> None:
    service = named(OVERLAY, "Service", "envoy")
    assert selects(service["spec"]["selector"], pod_labels(envoy()))
    assert not selects(service["spec"]["selector"], pod_labels(controller()))
    ports = {p["name"] for p in container_of(envoy(), "envoy")["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


# -- NetworkPolicies -------------------------------------------------------------------------

MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def _policies_for(workload: JSON) -> list[JSON]:
    return [
        p
        for p in objects(OVERLAY, "NetworkPolicy")
        if not p["spec"]["podSelector"] or selects(p["spec"]["podSelector"], pod_labels(workload))
    ]


def _admitted(workload: JSON) -> dict[int, list[JSON]]:
    """port → the `from` peers allowed to reach it (``[]``: anyone)."""
    found: dict[int, list[JSON]] = {}
    for policy in _policies_for(workload):
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        for rule in policy["spec"].get("ingress", []):
            for port in rule["ports"]:
                assert port["protocol"] == "TCP"
                found.setdefault(port["port"], []).extend(rule.get("from", []))
    return found


def test_everything_is_denied_unless_a_policy_admits_it() -> None:
    deny = named(OVERLAY, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert _admitted(job()) == {}


def test_only_envoy_pods_reach_xds_and_only_monitoring_the_health_port() -> None:
    admitted = _admitted(controller())
    xds = parse_address(flags(_args(controller(), "controlplane"))["--xds-address"])[1]
    health = parse_address(flags(_args(controller(), "controlplane"))["--health-address"])[1]
    assert set(admitted) == {xds, health}
    (peer,) = admitted[xds]
    assert set(peer) == {"podSelector"}  # this namespace's pods, and of those only Envoys
    chosen = [w["metadata"]["name"] for w in pod_templates(OVERLAY)
              if selects(peer["podSelector"], pod_labels(w))]  # fmt: skip
    assert chosen == ["envoy"]
    assert admitted[health] == [MONITORING]


def test_envoy_takes_traffic_from_anyone_and_stats_scrapes_from_monitoring() -> None:
    admitted = _admitted(envoy())
    ports = {p["name"]: p["containerPort"] for p in container_of(envoy(), "envoy")["ports"]}
    assert set(admitted) == set(ports.values())
    assert admitted[ports["http"]] == [] and admitted[ports["https"]] == []
    assert admitted[ports["stats-health"]] == [MONITORING]


@pytest.mark.parametrize("name", ["controlplane", "envoy"])
def test_every_listening_port_is_covered_by_a_policy(name: str) -> None:
    workload = controller() if name == "controlplane" else envoy()
    listening = {p["containerPort"] for c in pod_spec(workload)["containers"]
                 for p in c.get("ports", [])}  # fmt: skip
    assert listening == set(_admitted(workload))


def test_render_bootstrap_accepts_the_address_the_daemonset_uses() -> None:
    (address,) = build_parser().parse_args(_args(envoy(), "envoy-bootstrap")).xds_address
    cluster = render_bootstrap(xds_address=[address])["static_resources"]["clusters"][0]
    assert cluster["type"] == "STRICT_DNS"
