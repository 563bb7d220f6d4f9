"""Envoy as a Deployment (manifests/overlays/split-deployment) is the split Envoy pod, offline.

The overlay reuses ../split and derives an Envoy Deployment from its DaemonSet (the pod
template is copied by kustomize, not written twice). What a user relies on:

- Everything but Envoy's workload is the split overlay's, object for object; the DaemonSet is
  gone and a Deployment of the same name runs the same pod: the same init container, Envoy,
  shutdown-manager, probes, volumes and labels, plus a spread across zones and nodes (the only
  difference, checked field by field so that a later change to the DaemonSet's pod reaches the
  Deployment or fails here).
- Several replicas, a rolling update that starts a new Envoy before draining an old one, and a
  PodDisruptionBudget that lets one go at a time and selects only Envoy pods.
- The spread constraints select this Deployment's pods (a selector that matched nothing would
  spread nothing).
- The Services and NetworkPolicies pick the Deployment's pods exactly as they picked the
  DaemonSet's: the envoy Service, the controller's xDS port (Envoy pods only), Envoy's ports.

Schema validation, pod security and `kubectl kustomize` equality cover this overlay with the
others (test_manifests.py, parametrized over `OVERLAYS`).
"""

from __future__ import annotations

from typing import Any

import pytest
from manifest_support import (
    JSON,
    named,
    objects,
    pod_labels,
    pod_spec,
    pod_templates,
    render,
    selects,
)

OVERLAY = "split-deployment"


def deployment() -> JSON:
    return named(OVERLAY, "Deployment", "envoy")


def daemonset() -> JSON:
    return named("split", "DaemonSet", "envoy")


def _key(doc: JSON) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def test_only_envoys_workload_differs_from_the_split_overlay() -> None:
    split = {_key(doc): doc for _, doc in render("split")}
    here = {_key(doc): doc for _, doc in render(OVERLAY)}
    assert set(split) - set(here) == {("DaemonSet", "envoy")}
    assert set(here) - set(split) == {("Deployment", "envoy"), ("PodDisruptionBudget", "envoy")}
    for key in set(split) & set(here):
        assert here[key] == split[key], key
    assert not objects(OVERLAY, "DaemonSet")


def test_the_pod_is_the_daemonsets_plus_a_spread() -> None:
    template = deployment()["spec"]["template"]
    reference = daemonset()["spec"]["template"]
    assert template["metadata"] == reference["metadata"]
    spec: dict[str, Any] = dict(template["spec"])
    assert spec.pop("topologySpreadConstraints")
    assert spec == reference["spec"]
    names = [c["name"] for c in [*spec["initContainers"], *spec["containers"]]]
    assert names == ["envoy-bootstrap", "envoy", "shutdown-manager"]


def test_replicas_roll_without_losing_capacity_behind_a_budget() -> None:
    spec = deployment()["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert selects(spec["selector"], pod_labels(deployment()))
    budgets = {b["metadata"]["name"]: b for b in objects(OVERLAY, "PodDisruptionBudget")}
    assert set(budgets) == {"controlplane", "envoy"}
    budget = budgets["envoy"]["spec"]
    assert budget["maxUnavailable"] == 1
    chosen = [
        w["metadata"]["name"] for w in pod_templates(OVERLAY)
        if selects(budget["selector"], pod_labels(w))
    ]  # fmt: skip
    assert chosen == ["envoy"]
    # and the controller's budget does not count Envoys
    controller_budget = budgets["controlplane"]["spec"]["selector"]
    assert not selects(controller_budget, pod_labels(deployment()))


def test_replicas_spread_across_zones_and_nodes_without_ever_staying_pending() -> None:
    constraints = pod_spec(deployment())["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
    for constraint in constraints:
        assert constraint["maxSkew"] == 1
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert selects(constraint["labelSelector"], pod_labels(deployment()))
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]


@pytest.mark.parametrize("kind", ["Service", "NetworkPolicy"])
def test_services_and_policies_pick_the_deployment_as_they_picked_the_daemonset(
    kind: str,
) -> None:
    def picked(overlay: str) -> dict[str, list[str]]:
        found = {}
        for item in objects(overlay, kind):
            selector = item["spec"].get("selector") or item["spec"].get("podSelector") or {}
            found[item["metadata"]["name"]] = sorted(
                f"{w['metadata']['name']}" for w in pod_templates(overlay)
                if not selector or selects(selector, pod_labels(w))
            )  # fmt: skip
        return found

    assert picked(OVERLAY) == picked("split")
    if kind == "Service":
        assert picked(OVERLAY)["envoy"] == ["envoy"]


def test_only_envoy_pods_reach_the_controllers_xds_port() -> None:
    policy = named(OVERLAY, "NetworkPolicy", "controlplane")
    (xds_rule,) = [r for r in policy["spec"]["ingress"] if {"port": 8001, "protocol": "TCP"}
                   in r["ports"]]  # fmt: skip
    (peer,) = xds_rule["from"]
    chosen = [(w["kind"], w["metadata"]["name"]) for w in pod_templates(OVERLAY)
              if selects(peer["podSelector"], pod_labels(w))]  # fmt: skip
    assert chosen == [("Deployment", "envoy")]
