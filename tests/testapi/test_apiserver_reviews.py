"""`kubectl auth can-i` and `kubectl auth whoami` against the test API server: the reviews are
answered (yes to everything), never stored, and served for `create` only."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from testapi_support import Kubectl

from controlplane.testing.apiserver import TestApiServer

REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
CRDS = str(Path(__file__).resolve().parents[2] / "crds")


async def test_can_i_answers_yes(kubectl: Kubectl, server: TestApiServer) -> None:
    await kubectl("apply", "-f", CRDS)

    answers = [
        (await kubectl.run("auth", "can-i", *args)).out.strip()
        for args in (
            ["create", "ingressroutes"],
            ["patch", "ingressroutes/status", "-n", "demo"],
            ["delete", "services", "--all-namespaces"],
            ["get", "/healthz"],
        )
    ]

    assert answers == ["yes"] * 4
    assert server.request_count(verb="create", resource="selfsubjectaccessreviews") == 4
    assert server.request_count(verb="list", resource="selfsubjectaccessreviews") == 0


async def test_can_i_list_and_whoami(kubectl: Kubectl) -> None:
    rules = (await kubectl("auth", "can-i", "--list", "-n", "demo")).splitlines()
    whoami = json.loads(await kubectl("auth", "whoami", "-o", "json"))

    assert rules[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert rules[1].split() == ["*.*", "[]", "[]", "[*]"]
    assert whoami["status"]["userInfo"]["username"] == "testapi"


async def test_reviews_are_created_only(server: TestApiServer) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "get", "resource": "secrets"}},
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}{REVIEWS}", json=review) as response:
            created = (response.status, await response.json())
        async with http.get(f"{server.url}{REVIEWS}") as response:
            listed = response.status
        async with http.get(f"{server.url}/apis/authorization.k8s.io/v1") as response:
            discovery = await response.json()

    assert created[0] == 201
    assert created[1]["status"]["allowed"] is True
    assert created[1]["spec"] == review["spec"]
    assert listed == 405
    verbs = {r["name"]: r["verbs"] for r in discovery["resources"]}
    assert verbs == {"selfsubjectaccessreviews": ["create"], "selfsubjectrulesreviews": ["create"]}
