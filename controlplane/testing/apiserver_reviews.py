"""The review APIs kubectl asks before it acts: `kubectl auth can-i` and `kubectl auth whoami`.

A review is created and answered at once; nothing is stored and no other verb is served (the
registry marks these types with `ResourceType.review`, and discovery lists only `create`). The
test server has no authorization and one user, so every answer is yes:

- `SelfSubjectAccessReview` (`kubectl auth can-i VERB RESOURCE`, or a non-resource URL):
  `status.allowed: true`, with the request's `spec` echoed as the apiserver does;
- `SelfSubjectRulesReview` (`kubectl auth can-i --list`): every verb on every resource and URL;
- `SelfSubjectReview` (`kubectl auth whoami`): the kubeconfig's user, `testapi`, in
  `system:masters`.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["USER", "access_review", "rules_review", "subject_review"]

JSON = dict[str, Any]
USER = "testapi"
GROUPS = ["system:masters", "system:authenticated"]
_REASON = "the test API server allows every request"


def _answer(body: JSON, status: JSON) -> JSON:
    return {
        "kind": body.get("kind", ""),
        "apiVersion": body.get("apiVersion", ""),
        "metadata": {"creationTimestamp": None},
        "spec": copy.deepcopy(body.get("spec") or {}),
        "status": status,
    }


def access_review(body: JSON) -> JSON:
    """`POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: allowed."""
    return _answer(body, {"allowed": True, "reason": _REASON})


def rules_review(body: JSON) -> JSON:
    """`POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews`: everything."""
    return _answer(
        body,
        {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        },
    )


def subject_review(body: JSON) -> JSON:
    """`POST /apis/authentication.k8s.io/v1/selfsubjectreviews`: who the client is."""
    answer = _answer(body, {"userInfo": {"username": USER, "groups": list(GROUPS)}})
    del answer["spec"]
    return answer
