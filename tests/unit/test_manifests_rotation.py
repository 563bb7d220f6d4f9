"""The certificate rotation CronJob of the split overlays (manifests/overlays/split), offline.

- It runs `certgen --kubernetes --rotate` (flags the CLI accepts) into this namespace, with the
  key type and lifetime of the certgen Job, and a wait between the steps of at least two
  kubelet sync periods.
- The schedule rotates well inside the lifetime: monthly, against a lifetime of a year, so the
  certificates are never older than a month and missing several runs is harmless.
- One run at a time (Forbid), a run that hangs is stopped after the wait has long passed, and
  a pod that fails is not restarted in place (each retry starts from what the Secrets hold).
- Its ServiceAccount is its own, bound to a Role that reads and replaces exactly the two
  Secrets the certgen Job writes and the pods mount (names from `controlplane.certgen`).
- It is in both split overlays (Envoy as a DaemonSet or as a Deployment).
"""

from __future__ import annotations

import pytest
from manifest_support import (
    JSON,
    NAMESPACE,
    POD_ENV,
    container_of,
    expand,
    named,
    objects,
    pod_spec,
    pod_templates,
)

from controlplane import certgen
from controlplane.cli import build_parser

NAME = "controlplane-certgen-rotate"
KUBELET_SYNC_S = 60


def cronjob(overlay: str = "split") -> JSON:
    return named(overlay, "CronJob", NAME)


def _job(overlay: str = "split") -> JSON:
    """The CronJob as `pod_templates` gives it: the Job it creates."""
    (found,) = [w for w in pod_templates(overlay) if w["kind"] == "CronJob"]
    return found


def _args(workload: JSON) -> list[str]:
    return expand(container_of(workload, "certgen")["args"], POD_ENV)


@pytest.mark.parametrize("overlay", ["split", "split-deployment"])
def test_both_split_overlays_rotate(overlay: str) -> None:
    assert cronjob(overlay) == cronjob("split")


def test_the_cronjob_runs_certgen_rotate_as_the_job_runs_certgen() -> None:
    args = build_parser().parse_args(_args(_job()))
    assert args.command == "certgen" and args.kubernetes and args.rotate
    assert args.namespace == NAMESPACE and not args.overwrite
    assert args.rotate_wait >= 2 * KUBELET_SYNC_S
    (job,) = objects("split", "Job")
    initial = build_parser().parse_args(_args(job))
    assert (args.rsa, args.lifetime) == (initial.rsa, initial.lifetime)
    assert container_of(_job(), "certgen")["image"] == container_of(job, "certgen")["image"]


def test_the_schedule_is_well_inside_the_lifetime() -> None:
    spec = cronjob()["spec"]
    minute, hour, day, month, weekday = spec["schedule"].split()
    assert (month, weekday) == ("*", "*") and day.isdigit() and 1 <= int(day) <= 28
    assert minute.isdigit() and hour.isdigit()
    assert spec["timeZone"] == "Etc/UTC"
    lifetime = build_parser().parse_args(_args(_job())).lifetime
    assert lifetime >= 6 * 31, "at least six monthly runs before the certificates expire"
    assert spec["startingDeadlineSeconds"] >= 3600


def test_one_rotation_at_a_time_and_a_stuck_one_ends() -> None:
    spec = cronjob()["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    job_spec = spec["jobTemplate"]["spec"]
    wait = build_parser().parse_args(_args(_job())).rotate_wait
    assert job_spec["activeDeadlineSeconds"] >= 2 * wait
    assert pod_spec(_job())["restartPolicy"] == "Never"


def test_its_role_reads_and_replaces_the_two_secrets_the_pods_mount() -> None:
    assert pod_spec(_job())["serviceAccountName"] == NAME
    assert named("split", "ServiceAccount", NAME)
    binding = named("split", "RoleBinding", NAME)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": NAME}  # fmt: skip
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    (rule,) = named("split", "Role", NAME)["rules"]
    assert rule == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": [certgen.CONTROLPLANE_SECRET, certgen.ENVOY_SECRET],
        "verbs": ["get", "update"],
    }
    mounted = {
        volume["secret"]["secretName"]
        for workload in pod_templates("split")
        for volume in pod_spec(workload).get("volumes", [])
        if "secret" in volume
    }
    assert mounted == set(rule["resourceNames"])
