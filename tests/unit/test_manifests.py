"""The deployment manifests (manifests/): valid, least-privileged, locked down, and wired together.

Four kinds of check, all offline:

- Every object validates against the Kubernetes OpenAPI schemas bundled with kubernetes-validate
  (the newest version it ships, strict: unknown fields fail). Custom resources are skipped;
  CustomResourceDefinitions themselves validate like any built-in object.
- RBAC: the controller reads exactly the kinds its informers watch, and writes only the status of
  IngressRoutes and Ingresses (cluster-wide) and Leases (in its own namespace). No wildcards.
- Pods: every container is non-root with a read-only root filesystem, no privilege escalation and
  no capabilities.
- Wiring: the flags in the Deployment are flags the CLI knows, the addresses and ports agree
  across the controller, the bootstrap, Envoy, the probes and the Services, Envoy's admin API is
  a unix socket in a volume shared only with the controller (whose preStop drain uses it), and
  the Envoy configuration the Deployment gives Envoy passes `envoy --mode validate` (when Envoy
  is installed). The Dockerfile builds the image those containers expect (user, entrypoint).

And one check that is not offline: the real kubectl applies the directory, then the NodePort
variant, to the Kubernetes API test server (skipped without kubectl).

manifests/01-crds.yaml is a copy of crds/*.yaml (kubectl applies one flat directory, in name
order, so the CRDs must sit there, before anything that needs them); a test keeps the copy in
sync and its failure message says how to regenerate it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from controlplane.cli import build_parser, main
from controlplane.config import ServeSettings
from controlplane.dag.options import CONTROLLER_NAMES
from controlplane.envoy.bootstrap import (
    ADMIN_CLUSTER,
    STATS_LISTENER,
    STATS_PATHS,
    parse_address,
    render_bootstrap,
    unix_socket_path,
)
from controlplane.model import MODEL_TYPES
from controlplane.sources.kube import RESOURCES
from controlplane.testing.apiserver import TestApiServer

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
CRDS = ROOT / "crds"
CRD_COPY = MANIFESTS / "01-crds.yaml"
HEADER = "# Generated from crds/*.yaml (tests/unit/test_manifests.py): edit those, not this file."
NAMESPACE = "projectcontour"
KUBECTL = shutil.which("kubectl")

KUBE_VERSION = kubernetes_validate.utils.latest_version()
CUSTOM_GROUPS = {"contour.heptio.com"}
WRITE_VERBS = {
    "create", "update", "patch", "delete", "deletecollection",
    "bind", "escalate", "impersonate", "approve", "sign", "*",
}  # fmt: skip
STATUS_WRITES = {
    ("networking.k8s.io", "ingresses/status"),
    ("contour.heptio.com", "ingressroutes/status"),
}

JSON = dict[str, Any]


# -- loading ---------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    """Every manifest, the optional variants in subdirectories included."""
    return sorted(p for p in MANIFESTS.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))


def load(path: Path) -> list[JSON]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def documents() -> Iterator[tuple[Path, JSON]]:
    for path in manifest_files():
        for doc in load(path):
            yield path, doc


def objects(kind: str) -> list[JSON]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


def only(kind: str) -> JSON:
    found = objects(kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def deployment() -> JSON:
    return only("Deployment")


def pod_spec() -> JSON:
    spec: JSON = deployment()["spec"]["template"]["spec"]
    return spec


def container(name: str) -> JSON:
    spec = pod_spec()
    for item in spec.get("initContainers", []) + spec["containers"]:
        if item["name"] == name:
            return item
    raise AssertionError(f"no container {name!r}")


def all_containers() -> list[JSON]:
    spec = pod_spec()
    return [*spec.get("initContainers", []), *spec["containers"]]


def flags(args: list[str]) -> dict[str, str]:
    """`--name=value` and `--name value` arguments as a dict (last one wins)."""
    found: dict[str, str] = {}
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            continue
        if "=" in arg:
            name, value = arg.split("=", 1)
            found[name] = value
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            found[arg] = args[i + 1]
        else:
            found[arg] = ""
    return found


def expand(args: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' `$(VAR)` expansion of command arguments."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), arg) for arg in args]


POD_ENV = {"POD_NAME": "controlplane-7d9f-abcde", "POD_NAMESPACE": NAMESPACE}


# -- schema ----------------------------------------------------------------------------------


def _label(item: tuple[Path, JSON]) -> str:
    path, doc = item
    return f"{path.relative_to(MANIFESTS)}:{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("item", list(documents()), ids=_label)
def test_object_validates_against_the_kubernetes_schema(item: tuple[Path, JSON]) -> None:
    _, doc = item
    group = doc["apiVersion"].rpartition("/")[0]
    if group in CUSTOM_GROUPS:
        pytest.skip("custom resource: no bundled schema")
    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(p) for p in error.path)
        pytest.fail(f"{_label(item)} at {path or '(root)'}: {error.message}")


def test_manifests_exist_and_are_namespaced_in_projectcontour() -> None:
    names = [p.name for p in manifest_files()]
    for expected in (
        "00-namespace.yaml",
        "02-serviceaccount.yaml",
        "03-rbac.yaml",
        "04-deployment.yaml",
        "05-service.yaml",
        "05-service-nodeport.yaml",
    ):
        assert expected in names
    assert only("Namespace")["metadata"]["name"] == NAMESPACE
    cluster_scoped = {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
    }
    for _, doc in documents():
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace") == NAMESPACE, _label((MANIFESTS, doc))


def test_the_top_level_directory_holds_exactly_one_envoy_service() -> None:
    """`kubectl apply -f manifests/` does not recurse: the NodePort variant must stay out of it."""
    top = [
        doc
        for path in manifest_files()
        if path.parent == MANIFESTS
        for doc in load(path)
        if doc["kind"] == "Service" and doc["metadata"]["name"] == "envoy"
    ]
    assert [doc["spec"]["type"] for doc in top] == ["LoadBalancer"]
    assert top[0]["spec"]["externalTrafficPolicy"] == "Local"


# -- CRDs ------------------------------------------------------------------------------------


def test_crd_copy_matches_crds_directory() -> None:
    sources = sorted(CRDS.glob("*.yaml"))
    if not sources:
        pytest.skip("crds/ holds no CRDs yet")
    regenerate = (
        f"regenerate it: (echo '{HEADER}';"
        " for f in crds/*.yaml; do echo ---; cat $f; done) > manifests/01-crds.yaml"
    )
    assert CRD_COPY.exists(), f"manifests/01-crds.yaml is missing; {regenerate}"
    expected = [doc for path in sources for doc in load(path)]
    assert load(CRD_COPY) == expected, f"manifests/01-crds.yaml is stale; {regenerate}"
    assert CRD_COPY.read_text(encoding="utf-8").startswith(HEADER + "\n"), regenerate


def test_crds_are_applied_before_anything_else_but_the_namespace() -> None:
    order = [p.name for p in manifest_files() if p.parent == MANIFESTS]
    assert order[0] == "00-namespace.yaml"
    if CRD_COPY.exists():
        assert order[1] == CRD_COPY.name
        kinds = {doc["spec"]["names"]["kind"] for doc in load(CRD_COPY)}
        assert {"IngressRoute", "TLSCertificateDelegation"} <= kinds


# -- RBAC ------------------------------------------------------------------------------------


def _rules(kind: str) -> list[JSON]:
    return [rule for role in objects(kind) for rule in role["rules"]]


def _grants(rules: list[JSON]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every combination a list of rules allows."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def test_rbac_uses_no_wildcards_or_non_resource_urls() -> None:
    for rule in _rules("ClusterRole") + _rules("Role"):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), rule
        assert "nonResourceURLs" not in rule, rule


def test_controller_reads_exactly_the_kinds_its_informers_watch() -> None:
    reads = {g for g in _grants(_rules("ClusterRole")) if g[2] not in WRITE_VERBS}
    watched = {(r.group, r.plural) for r in RESOURCES}
    assert reads == {(group, plural, verb) for group, plural in watched
                     for verb in ("get", "list", "watch")}  # fmt: skip


def test_every_kind_the_informers_watch_is_one_the_model_parses() -> None:
    modelled = {(api_version, model.KIND) for model in MODEL_TYPES
                for api_version in model.API_VERSIONS}  # fmt: skip
    assert {(r.api_version, r.kind) for r in RESOURCES} <= modelled


def test_cluster_wide_writes_are_status_patches_only() -> None:
    writes = {g for g in _grants(_rules("ClusterRole")) if g[2] in WRITE_VERBS}
    assert writes == {(group, resource, "patch") for group, resource in STATUS_WRITES}
    # and the rules that name a status subresource grant nothing else
    for rule in _rules("ClusterRole"):
        if any(r.endswith("/status") for r in rule["resources"]):
            assert rule["verbs"] == ["patch"], rule


def test_secrets_are_read_only() -> None:
    verbs = {verb for group, res, verb in _grants(_rules("ClusterRole")) if res == "secrets"}
    assert verbs == {"get", "list", "watch"}


def test_namespaced_writes_are_leases_in_our_namespace() -> None:
    for role in objects("Role"):
        assert role["metadata"]["namespace"] == NAMESPACE
    writes = {g for g in _grants(_rules("Role")) if g[2] in WRITE_VERBS}
    assert writes == {("coordination.k8s.io", "leases", "create"),
                      ("coordination.k8s.io", "leases", "update")}  # fmt: skip
    assert ("coordination.k8s.io", "leases", "get") in _grants(_rules("Role"))


def test_roles_are_bound_to_the_deployments_service_account() -> None:
    account = pod_spec()["serviceAccountName"]
    assert only("ServiceAccount")["metadata"]["name"] == account
    roles = {(r["kind"], r["metadata"]["name"]) for r in objects("ClusterRole") + objects("Role")}
    bindings = objects("ClusterRoleBinding") + objects("RoleBinding")
    assert {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bindings} == roles
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]


# -- pod security ----------------------------------------------------------------------------


def test_pod_runs_non_root_with_the_runtime_default_seccomp_profile() -> None:
    spec = pod_spec()
    context = spec["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] > 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(field), field
    for volume in spec["volumes"]:
        assert set(volume) - {"name"} <= {"emptyDir", "projected"}, volume


@pytest.mark.parametrize("name", ["envoy-bootstrap", "controlplane", "envoy"])
def test_container_is_non_root_read_only_and_without_capabilities(name: str) -> None:
    context = container(name)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] > 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert not context.get("privileged")


def test_every_container_is_covered_by_the_security_checks() -> None:
    assert {c["name"] for c in all_containers()} == {"envoy-bootstrap", "controlplane", "envoy"}


def test_no_container_needs_a_privileged_port() -> None:
    for item in all_containers():
        for port in item.get("ports", []):
            assert port["containerPort"] >= 1024, (item["name"], port)


def test_only_the_controller_gets_the_service_account_token() -> None:
    spec = pod_spec()
    assert spec["automountServiceAccountToken"] is False
    token_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    mounted = {
        item["name"]
        for item in all_containers()
        for mount in item.get("volumeMounts", [])
        if mount["mountPath"] == token_dir
    }
    assert mounted == {"controlplane"}


# -- wiring ----------------------------------------------------------------------------------


def _serve_args() -> list[str]:
    return expand(container("controlplane")["args"], POD_ENV)


def _bootstrap_args() -> list[str]:
    return expand(container("envoy-bootstrap")["args"], POD_ENV)


def _bootstrap_config() -> JSON:
    """The bootstrap the init container writes: its arguments, through the CLI's parser."""
    args = build_parser().parse_args(_bootstrap_args())
    return render_bootstrap(
        xds_address=args.xds_address,
        admin_address=args.admin_address,
        stats_address=args.stats_address,
        mode=args.xds_mode,
        node_id=args.node_id,
        cluster=args.cluster,
    )


def _admin_socket() -> str:
    path = unix_socket_path(flags(_bootstrap_args())["--admin-address"])
    assert path is not None, "Envoy's admin API must be a unix socket in the pod"
    return path


def _stats_listener() -> JSON:
    listeners = _bootstrap_config()["static_resources"]["listeners"]
    [listener] = [item for item in listeners if item["name"] == STATS_LISTENER]
    return dict(listener)


def _mounts(volume: str) -> dict[str, JSON]:
    """container name → its mount of `volume`."""
    return {
        item["name"]: mount
        for item in all_containers()
        for mount in item.get("volumeMounts", [])
        if mount["name"] == volume
    }


def test_serve_arguments_are_flags_the_cli_accepts() -> None:
    args = build_parser().parse_args(_serve_args())
    assert args.command == "serve"
    given = {
        name: value
        for name in ServeSettings.model_fields
        if (value := getattr(args, name, None)) is not None
    }
    settings = ServeSettings(**given)
    assert settings.ingress_class == "contour"
    assert settings.envoy_service == f"{NAMESPACE}/envoy"
    assert settings.leader_election and settings.leader_election_namespace == NAMESPACE
    assert settings.kubeconfig is None and settings.manifests is None  # in-cluster config


def test_bootstrap_arguments_are_flags_the_cli_accepts() -> None:
    args = build_parser().parse_args(_bootstrap_args())
    assert args.command == "bootstrap"
    mount = container("envoy-bootstrap")["volumeMounts"][0]
    assert Path(args.path).parent == Path(mount["mountPath"])
    envoy_args = container("envoy")["args"]
    assert envoy_args[envoy_args.index("-c") + 1] == args.path


def test_envoy_reaches_the_controller_and_nothing_else_does() -> None:
    serve = flags(_serve_args())
    bootstrap = flags(_bootstrap_args())
    xds_host, xds_port = parse_address(serve["--xds-address"])
    assert xds_host == "127.0.0.1", "xDS carries TLS keys: keep it inside the pod"
    assert parse_address(bootstrap["--xds-address"]) == ("127.0.0.1", xds_port)
    # The admin API has no address at all: a unix socket, not a (loopback) port.
    assert bootstrap["--admin-address"].startswith("unix:/")


def test_probes_hit_the_ports_that_serve_them() -> None:
    controller = container("controlplane")
    health_host, health_port = parse_address(flags(_serve_args())["--health-address"])
    assert health_host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in controller["ports"]}
    assert controller["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert controller["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert ports[controller[probe]["httpGet"]["port"]] == health_port

    envoy = container("envoy")
    envoy_ports = {p["name"]: p["containerPort"] for p in envoy["ports"]}
    probe = envoy["readinessProbe"]["httpGet"]
    assert probe["path"] == "/ready" and probe["path"] in STATS_PATHS
    stats_host, stats_port = parse_address(flags(_bootstrap_args())["--stats-address"])
    assert stats_host == "0.0.0.0"  # the kubelet and scrapers come over the pod IP
    assert _stats_listener()["address"]["socket_address"]["port_value"] == stats_port
    assert envoy_ports[probe["port"]] == stats_port


def test_stats_listener_exposes_only_ready_and_stats_of_the_admin_socket() -> None:
    [chain] = _stats_listener()["filter_chains"]
    [manager] = chain["filters"]
    [vhost] = manager["typed_config"]["route_config"]["virtual_hosts"]
    assert [r["match"]["path"] for r in vhost["routes"]] == list(STATS_PATHS)
    for route in vhost["routes"]:
        assert set(route["match"]) == {"path", "headers"}  # exact paths, GET only
        assert route["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
        assert route["route"] == {"cluster": ADMIN_CLUSTER}
    clusters = {c["name"]: c for c in _bootstrap_config()["static_resources"]["clusters"]}
    [endpoint] = clusters[ADMIN_CLUSTER]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"] == {"pipe": {"path": _admin_socket()}}
    # Nothing merged into the bootstrap on Envoy's command line can add a listener or route.
    assert not {"--config-yaml", "--admin-address"} & set(container("envoy")["args"])


def test_the_admin_socket_is_shared_with_the_controller_only() -> None:
    socket_dir = str(Path(_admin_socket()).parent)
    mounts = _mounts("envoy-admin")
    assert set(mounts) == {"envoy", "controlplane"}
    assert {name: mount["mountPath"] for name, mount in mounts.items()} == {
        "envoy": socket_dir,
        "controlplane": socket_dir,
    }
    assert not mounts["envoy"].get("readOnly")  # Envoy creates the socket
    assert mounts["controlplane"]["readOnly"] is True  # connecting needs no write access
    [volume] = [v for v in pod_spec()["volumes"] if v["name"] == "envoy-admin"]
    assert set(volume) == {"name", "emptyDir"}
    # Envoy creates the socket with mode 0600: both containers must run as the same user.
    users = {container(name)["securityContext"]["runAsUser"] for name in mounts}
    assert len(users) == 1


def test_envoy_listens_where_the_controller_says_and_the_services_point() -> None:
    serve = flags(_serve_args())
    envoy_ports = {p["name"]: p["containerPort"] for p in container("envoy")["ports"]}
    assert envoy_ports["http"] == int(serve["--envoy-http-port"])
    assert envoy_ports["https"] == int(serve["--envoy-https-port"])
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert deployment()["spec"]["selector"]["matchLabels"].items() <= labels.items()
    services = [s for s in objects("Service") if s["metadata"]["name"] == "envoy"]
    assert len(services) == 2  # the LoadBalancer and its NodePort variant
    for service in services:
        assert service["spec"]["selector"].items() <= labels.items()
        assert {(p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
            (80, "http"),
            (443, "https"),
        }


def test_envoy_node_is_the_pod() -> None:
    envoy = container("envoy")
    args = flags(envoy["args"])
    assert args["--service-node"] == "$(POD_NAME)"
    defined = {item["name"] for item in envoy["env"]}
    used = set(re.findall(r"\$\((\w+)\)", " ".join(envoy["args"])))
    assert used <= defined
    used = set(re.findall(r"\$\((\w+)\)", " ".join(container("controlplane")["args"])))
    assert used <= {item["name"] for item in container("controlplane")["env"]}


def test_drain_fails_envoys_health_check_and_fits_in_the_grace_period() -> None:
    spec = pod_spec()
    hook = container("controlplane")["lifecycle"]["preStop"]["exec"]["command"]
    assert hook[:2] == ["python", "-c"]
    source = hook[2]
    compile(source, "preStop", "exec")  # the hook is Python; a syntax error would skip the drain
    assert f'admin.connect("{_admin_socket()}")' in source
    assert 'b"POST /healthcheck/fail HTTP/1.1' in source
    controller_wait = float(re.search(r"time\.sleep\((\d+)\)", source)[1])  # type: ignore[index]
    envoy_wait = container("envoy")["lifecycle"]["preStop"]["sleep"]["seconds"]
    # Envoy must outlive the drain the controller started, and both must end before SIGKILL.
    assert envoy_wait >= controller_wait
    assert spec["terminationGracePeriodSeconds"] >= envoy_wait + 10


def test_ingress_class_names_this_controller() -> None:
    ingress_class = only("IngressClass")
    assert ingress_class["spec"]["controller"] in CONTROLLER_NAMES
    assert ingress_class["metadata"]["name"] == flags(_serve_args())["--ingress-class"]


def test_both_images_are_pinned() -> None:
    for item in all_containers():
        image = item["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


def test_the_image_runs_as_the_user_the_pod_asks_for() -> None:
    """runAsNonRoot can only be verified by the kubelet for a numeric USER."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    [user] = re.findall(r"^USER (\d+):(\d+)$", dockerfile, flags=re.MULTILINE)
    for name in ("envoy-bootstrap", "controlplane"):
        context = container(name)["securityContext"]
        assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user
    assert re.search(r'^ENTRYPOINT \["controlplane"\]$', dockerfile, flags=re.MULTILINE)
    # the package itself, without the test and dev extras (its dependencies: requirements.lock)
    assert re.search(r"pip install --no-compile --no-deps \.\s", dockerfile)


def test_the_build_context_keeps_what_the_dockerfile_copies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    copied = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    ]
    assert copied, "no COPY from the build context"
    for source in copied:
        assert source not in ignored and (ROOT / source).exists(), source
    assert {".git", ".venv", "tests"} <= ignored


def test_envoy_accepts_the_configuration_the_deployment_gives_it(
    envoy_binary: str, tmp_path: Path
) -> None:
    """`envoy --mode validate` on what the init container writes plus Envoy's arguments."""
    bootstrap_args = _bootstrap_args()
    config = tmp_path / "envoy.yaml"
    assert bootstrap_args[:2] == ["bootstrap", "/config/envoy.yaml"]
    assert main(["bootstrap", str(config), *bootstrap_args[2:]]) == 0
    envoy = container("envoy")
    args = expand(envoy["args"], POD_ENV)
    args[args.index("-c") + 1] = str(config)
    result = subprocess.run(
        [envoy_binary, "--mode", "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


# -- the real kubectl against the Kubernetes API test server ----------------------------------


async def _kubectl(kubeconfig: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL or "kubectl",
        f"--kubeconfig={kubeconfig}",
        f"--cache-dir={kubeconfig.parent / 'kube-cache'}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
async def test_kubectl_applies_the_directory_and_then_the_nodeport_variant(
    tmp_path: Path,
) -> None:
    server = TestApiServer()
    await server.start("127.0.0.1", 0)
    try:
        kubeconfig = tmp_path / "kubeconfig"
        server.write_kubeconfig(kubeconfig)

        out = await _kubectl(kubeconfig, "apply", "-f", str(MANIFESTS))
        top_level = [doc for path in manifest_files() if path.parent == MANIFESTS
                     for doc in load(path)]  # fmt: skip
        assert out.count(" created") == len(top_level), out
        deployed = server.get_object("apps/v1", "Deployment", "controlplane", NAMESPACE)
        assert deployed["spec"]["replicas"] == 2
        envoy = server.get_object("v1", "Service", "envoy", NAMESPACE)
        assert envoy["spec"]["type"] == "LoadBalancer"

        again = await _kubectl(kubeconfig, "apply", "-f", str(MANIFESTS))
        assert "deployment.apps/controlplane unchanged" in again

        await _kubectl(kubeconfig, "apply", "-f", str(MANIFESTS / "nodeport"))
        envoy = server.get_object("v1", "Service", "envoy", NAMESPACE)
        assert envoy["spec"]["type"] == "NodePort"
        assert sorted(p["nodePort"] for p in envoy["spec"]["ports"]) == [30080, 30443]
    finally:
        await server.stop()
