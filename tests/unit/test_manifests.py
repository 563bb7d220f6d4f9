"""The deployment manifests (manifests/): valid, least-privileged, locked down, and wired together.

manifests/ is a kustomize base with three overlays, `split` (the default: an Envoy DaemonSet fed
over mTLS by a replicated controller Deployment; its wiring is in test_manifests_split.py),
`split-deployment` (the same with Envoy as a Deployment; test_manifests_split_deployment.py) and
`colocated` (a controller beside every Envoy in one pod; its wiring is here). All offline:

- Every object of every overlay, and the NodePort variant, validates against the Kubernetes
  OpenAPI schemas bundled with kubernetes-validate (the newest version it ships, strict:
  unknown fields fail). Custom resources are skipped; CRDs validate like any built-in object.
  The overlays render offline (`manifest_support.render`), equal to `kubectl kustomize`.
- RBAC: the controller reads exactly the kinds its informers watch, and writes only the status
  of IngressRoutes and Ingresses (cluster-wide) and Leases (in its own namespace); the certgen
  Job writes its two Secrets and nothing else, the rotation CronJob reads and replaces them
  and nothing else. No wildcards.
- Pods: every pod of every overlay, and every container, is non-root with a read-only root
  filesystem, no privilege escalation and no capabilities.
- Colocated wiring: the flags in the Deployment are flags the CLI knows, the addresses and
  ports agree across the controller, the bootstrap, Envoy, the probes and the Services, Envoy's
  admin API is a unix socket in a volume shared only with the controller (whose preStop drain
  uses it), and the Envoy configuration the Deployment gives Envoy passes `envoy --mode
  validate` (when Envoy is installed). The Dockerfile builds the image the containers expect.

And one check that is not offline: the real kubectl applies each overlay (`apply -k`), then the
NodePort variant, to the Kubernetes API test server (skipped without kubectl).

manifests/base/01-crds.yaml is a copy of crds/*.yaml; a test keeps the copy in sync and its
failure message says how to regenerate it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from manifest_support import (
    JSON,
    MANIFESTS,
    NAMESPACE,
    NODEPORT,
    OVERLAYS,
    POD_ENV,
    ROOT,
    container_of,
    containers_of,
    expand,
    flags,
    load,
    named,
    objects,
    pod_labels,
    pod_templates,
    render,
    selects,
)

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

CRDS = ROOT / "crds"
CRD_COPY = MANIFESTS / "base" / "01-crds.yaml"
HEADER = "# Generated from crds/*.yaml (tests/unit/test_manifests.py): edit those, not this file."
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
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "IngressClass",
}  # fmt: skip


def _everything() -> list[tuple[str, Path, JSON]]:
    """(overlay, file, object) for every overlay, and the NodePort variant."""
    found = [(overlay, path, doc) for overlay in OVERLAYS for path, doc in render(overlay)]
    return found + [("nodeport", NODEPORT, doc) for doc in load(NODEPORT)]


def _label(item: tuple[str, Path, JSON]) -> str:
    overlay, path, doc = item
    return f"{overlay}:{path.relative_to(MANIFESTS)}:{doc['kind']}/{doc['metadata']['name']}"


def _unique(kind: str) -> list[JSON]:
    """Every object of ``kind`` in either overlay, once per name."""
    seen: dict[str, JSON] = {}
    for overlay in OVERLAYS:
        for doc in objects(overlay, kind):
            seen.setdefault(doc["metadata"]["name"], doc)
    return list(seen.values())


# -- the colocated deployment -----------------------------------------------------------------


def deployment() -> JSON:
    return named("colocated", "Deployment", "controlplane")


def pod_spec() -> JSON:
    spec: JSON = deployment()["spec"]["template"]["spec"]
    return spec


def container(name: str) -> JSON:
    return container_of(deployment(), name)


def all_containers() -> list[JSON]:
    return containers_of(deployment())


# -- schema and layout -----------------------------------------------------------------------


@pytest.mark.parametrize("item", _everything(), ids=_label)
def test_object_validates_against_the_kubernetes_schema(item: tuple[str, Path, JSON]) -> None:
    _, _, doc = item
    group = doc["apiVersion"].rpartition("/")[0]
    if group in CUSTOM_GROUPS:
        pytest.skip("custom resource: no bundled schema")
    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(p) for p in error.path)
        pytest.fail(f"{_label(item)} at {path or '(root)'}: {error.message}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_namespaced_in_projectcontour(overlay: str) -> None:
    assert named(overlay, "Namespace", NAMESPACE)
    for path, doc in render(overlay):
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == NAMESPACE, _label((overlay, path, doc))
    names = [(doc["kind"], doc["metadata"]["name"]) for _, doc in render(overlay)]
    assert len(names) == len(set(names)), "an object is listed twice"


def test_the_default_is_the_split_overlay() -> None:
    (root,) = load(MANIFESTS / "kustomization.yaml")
    assert root["resources"] == ["overlays/split"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_holds_exactly_one_envoy_service_selecting_the_envoy_pods(
    overlay: str,
) -> None:
    services = [s for s in objects(overlay, "Service") if s["metadata"]["name"] == "envoy"]
    assert [s["spec"]["type"] for s in services] == ["LoadBalancer"]
    assert services[0]["spec"]["externalTrafficPolicy"] == "Local"
    (nodeport,) = load(NODEPORT)
    for service in (services[0], nodeport):
        running_envoy = [
            w["metadata"]["name"] for w in pod_templates(overlay)
            if selects(service["spec"]["selector"], pod_labels(w))
        ]  # fmt: skip
        assert running_envoy == (["envoy"] if overlay != "colocated" else ["controlplane"])
        assert all(
            any(c["name"] == "envoy" for c in containers_of(w))
            for w in pod_templates(overlay)
            if selects(service["spec"]["selector"], pod_labels(w))
        )
        assert {(p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
            (80, "http"),
            (443, "https"),
        }


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_offline_rendering_is_what_kubectl_kustomize_renders(overlay: str) -> None:
    result = subprocess.run(
        [KUBECTL or "kubectl", "kustomize", str(MANIFESTS / "overlays" / overlay)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]

    def key(doc: JSON) -> str:
        return f"{doc['kind']}/{doc['metadata'].get('namespace', '')}/{doc['metadata']['name']}"

    assert sorted(rendered, key=key) == sorted((doc for _, doc in render(overlay)), key=key)
    # kubectl orders what it applies: the namespace first, then the CRDs, then the rest.
    kinds = [doc["kind"] for doc in rendered]
    assert kinds[0] == "Namespace"
    assert kinds.index("CustomResourceDefinition") < min(
        i for i, doc in enumerate(rendered) if doc["metadata"].get("namespace")
    )


# -- CRDs ------------------------------------------------------------------------------------


def test_crd_copy_matches_crds_directory() -> None:
    sources = sorted(CRDS.glob("*.yaml"))
    if not sources:
        pytest.skip("crds/ holds no CRDs yet")
    regenerate = (
        f"regenerate it: (echo '{HEADER}';"
        " for f in crds/*.yaml; do echo ---; cat $f; done) > manifests/base/01-crds.yaml"
    )
    assert CRD_COPY.exists(), f"manifests/base/01-crds.yaml is missing; {regenerate}"
    expected = [doc for path in sources for doc in load(path)]
    assert load(CRD_COPY) == expected, f"manifests/base/01-crds.yaml is stale; {regenerate}"
    assert CRD_COPY.read_text(encoding="utf-8").startswith(HEADER + "\n"), regenerate


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_both_overlays_install_the_crds(overlay: str) -> None:
    kinds = {doc["spec"]["names"]["kind"] for doc in objects(overlay, "CustomResourceDefinition")}
    assert {"IngressRoute", "TLSCertificateDelegation"} <= kinds


# -- RBAC ------------------------------------------------------------------------------------


def _rules(kind: str) -> list[JSON]:
    return [rule for role in _unique(kind) for rule in role["rules"]]


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


def test_cluster_wide_writes_are_status_patches_and_events_only() -> None:
    writes = {g for g in _grants(_rules("ClusterRole")) if g[2] in WRITE_VERBS}
    events = {("events.k8s.io", "events", "create"), ("events.k8s.io", "events", "patch")}
    assert writes == {(group, resource, "patch") for group, resource in STATUS_WRITES} | events
    # and the rules that name a status subresource grant nothing else
    for rule in _rules("ClusterRole"):
        if any(r.endswith("/status") for r in rule["resources"]):
            assert rule["verbs"] == ["patch"], rule


def test_cluster_wide_secrets_are_read_only() -> None:
    verbs = {verb for group, res, verb in _grants(_rules("ClusterRole")) if res == "secrets"}
    assert verbs == {"get", "list", "watch"}


def test_namespaced_writes_are_the_lease_and_the_two_certificate_secrets() -> None:
    roles = {role["metadata"]["name"]: role for role in _unique("Role")}
    for role in roles.values():
        assert role["metadata"]["namespace"] == NAMESPACE
    writes = {
        name: {g for g in _grants(role["rules"]) if g[2] in WRITE_VERBS}
        for name, role in roles.items()
    }
    assert writes == {
        "controlplane-leader-election": {
            ("coordination.k8s.io", "leases", "create"),
            ("coordination.k8s.io", "leases", "update"),
        },
        "controlplane-certgen": {("", "secrets", "create"), ("", "secrets", "update")},
        "controlplane-certgen-rotate": {("", "secrets", "update")},
    }
    for name in ("controlplane-certgen", "controlplane-certgen-rotate"):
        for rule in roles[name]["rules"]:
            if "create" not in rule["verbs"]:  # create alone cannot name its object
                assert rule["resourceNames"] == ["controlplanecert", "envoycert"], rule
    # The rotation reads and replaces the two Secrets: nothing more.
    assert _grants(roles["controlplane-certgen-rotate"]["rules"]) == {
        ("", "secrets", "get"),
        ("", "secrets", "update"),
    }
    grants = _grants(roles["controlplane-leader-election"]["rules"])
    assert ("coordination.k8s.io", "leases", "get") in grants


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_roles_are_bound_to_the_service_accounts_of_the_pods_that_need_them(overlay: str) -> None:
    accounts = {a["metadata"]["name"] for a in objects(overlay, "ServiceAccount")}
    roles = {(r["kind"], r["metadata"]["name"])
             for r in objects(overlay, "ClusterRole") + objects(overlay, "Role")}  # fmt: skip
    bindings = objects(overlay, "ClusterRoleBinding") + objects(overlay, "RoleBinding")
    assert {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bindings} == roles
    used = {pod_spec_of(w).get("serviceAccountName") for w in pod_templates(overlay)} - {None}
    assert used == accounts
    for binding in bindings:
        (subject,) = binding["subjects"]
        assert subject["kind"] == "ServiceAccount" and subject["namespace"] == NAMESPACE
        assert subject["name"] in accounts
        # each certgen Role goes to the account of its own name, the others to the controller
        name = binding["metadata"]["name"]
        expected = name if "certgen" in name else "controlplane"
        assert subject["name"] == expected


def pod_spec_of(workload: JSON) -> JSON:
    spec: JSON = workload["spec"]["template"]["spec"]
    return spec


# -- pod security ----------------------------------------------------------------------------


def _workloads() -> list[tuple[str, JSON]]:
    return [(overlay, w) for overlay in OVERLAYS for w in pod_templates(overlay)]


def _workload_id(item: tuple[str, JSON]) -> str:
    return f"{item[0]}:{item[1]['kind']}/{item[1]['metadata']['name']}"


@pytest.mark.parametrize("item", _workloads(), ids=_workload_id)
def test_pod_runs_non_root_with_the_runtime_default_seccomp_profile(
    item: tuple[str, JSON],
) -> None:
    spec = pod_spec_of(item[1])
    context = spec["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] > 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(field), field
    for volume in spec.get("volumes", []):
        assert set(volume) - {"name"} <= {"emptyDir", "projected", "secret"}, volume


def _containers() -> list[tuple[str, JSON, JSON]]:
    return [(overlay, w, c) for overlay, w in _workloads() for c in containers_of(w)]


@pytest.mark.parametrize(
    "item", _containers(), ids=lambda i: f"{_workload_id((i[0], i[1]))}:{i[2]['name']}"
)
def test_container_is_non_root_read_only_and_without_capabilities(
    item: tuple[str, JSON, JSON],
) -> None:
    context = item[2]["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] > 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert not context.get("privileged")


def test_every_container_is_covered_by_the_security_checks() -> None:
    names = {(o, w["metadata"]["name"], c["name"]) for o, w, c in _containers()}
    assert names == {
        ("colocated", "controlplane", "envoy-bootstrap"),
        ("colocated", "controlplane", "controlplane"),
        ("colocated", "controlplane", "envoy"),
        ("split", "controlplane", "controlplane"),
        ("split", "envoy", "envoy-bootstrap"),
        ("split", "envoy", "envoy"),
        ("split", "envoy", "shutdown-manager"),
        ("split", "controlplane-certgen-v0-1-0", "certgen"),
        ("split", "controlplane-certgen-rotate", "certgen"),
        ("split-deployment", "controlplane-certgen-rotate", "certgen"),
        ("split-deployment", "controlplane", "controlplane"),
        ("split-deployment", "envoy", "envoy-bootstrap"),
        ("split-deployment", "envoy", "envoy"),
        ("split-deployment", "envoy", "shutdown-manager"),
        ("split-deployment", "controlplane-certgen-v0-1-0", "certgen"),
    }


@pytest.mark.parametrize("item", _containers(), ids=lambda i: f"{i[0]}:{i[2]['name']}")
def test_no_container_needs_a_privileged_port(item: tuple[str, JSON, JSON]) -> None:
    for port in item[2].get("ports", []):
        assert port["containerPort"] >= 1024, port


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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_both_images_are_pinned_and_the_same_everywhere(overlay: str) -> None:
    images = {c["image"] for w in pod_templates(overlay) for c in containers_of(w)}
    for image in images:
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
    assert images == {
        "ghcr.io/controlplane-dev/controlplane:0.1.0",
        "envoyproxy/envoy:distroless-v1.40.0",
    }


# -- colocated wiring --------------------------------------------------------------------------


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
    services = [s for s in objects("colocated", "Service") if s["metadata"]["name"] == "envoy"]
    services += load(NODEPORT)  # the LoadBalancer and its NodePort variant
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
    (ingress_class,) = objects("colocated", "IngressClass")
    assert ingress_class["spec"]["controller"] in CONTROLLER_NAMES
    assert ingress_class["metadata"]["name"] == flags(_serve_args())["--ingress-class"]


def test_the_image_runs_as_the_user_the_pod_asks_for() -> None:
    """runAsNonRoot can only be verified by the kubelet for a numeric USER."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    [user] = re.findall(r"^USER (\d+):(\d+)$", dockerfile, flags=re.MULTILINE)
    for _, _, item in _containers():
        if item["image"].startswith("ghcr.io/controlplane-dev/controlplane:"):
            context = item["securityContext"]
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
@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_kubectl_applies_the_overlay_and_then_the_nodeport_variant(
    overlay: str, tmp_path: Path
) -> None:
    server = TestApiServer()
    await server.start("127.0.0.1", 0)
    try:
        kubeconfig = tmp_path / "kubeconfig"
        server.write_kubeconfig(kubeconfig)
        target = str(MANIFESTS / "overlays" / overlay)

        out = await _kubectl(kubeconfig, "apply", "-k", target)
        assert out.count(" created") == len(render(overlay)), out
        if overlay != "colocated":
            deployed = server.get_object("apps/v1", "Deployment", "controlplane", NAMESPACE)
            assert deployed["spec"]["replicas"] == 2
            envoy_kind = "DaemonSet" if overlay == "split" else "Deployment"
            assert server.get_object("apps/v1", envoy_kind, "envoy", NAMESPACE)
            assert server.get_object("batch/v1", "Job", "controlplane-certgen-v0-1-0", NAMESPACE)
            rotation = server.get_object(
                "batch/v1", "CronJob", "controlplane-certgen-rotate", NAMESPACE
            )
            assert rotation["spec"]["concurrencyPolicy"] == "Forbid"
            xds = server.get_object("v1", "Service", "controlplane", NAMESPACE)
            assert xds["spec"]["clusterIP"] == "None"
        envoy = server.get_object("v1", "Service", "envoy", NAMESPACE)
        assert envoy["spec"]["type"] == "LoadBalancer"

        again = await _kubectl(kubeconfig, "apply", "-k", target)
        assert "deployment.apps/controlplane unchanged" in again
        assert " created" not in again, again
        if overlay != "colocated":
            assert f"{envoy_kind.lower()}.apps/envoy unchanged" in again
            assert "job.batch/controlplane-certgen-v0-1-0 unchanged" in again

        await _kubectl(kubeconfig, "apply", "-f", str(NODEPORT.parent))
        envoy = server.get_object("v1", "Service", "envoy", NAMESPACE)
        assert envoy["spec"]["type"] == "NodePort"
        assert sorted(p["nodePort"] for p in envoy["spec"]["ports"]) == [30080, 30443]
    finally:
        await server.stop()
