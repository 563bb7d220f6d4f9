"""The errors of the test API server: `ApiError`, answered as a Kubernetes `Status` object.

Every layer of the server (store, selectors, HTTP handlers) raises `ApiError` with the HTTP
code, the `reason` and the message the apiserver would send; the HTTP layer turns it into the
`Status` body with `status_object`, which also builds the success Status of a delete.
"""

from __future__ import annotations

from typing import Any

from controlplane.testing.apiserver_registry import ResourceType

__all__ = ["ApiError", "not_found", "status_object"]

JSON = dict[str, Any]


class ApiError(Exception):
    """An error the server answers with a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> JSON:
        return status_object(self.code, self.reason, self.message, self.details)


def status_object(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    out: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        out["details"] = details
    return out


def not_found(rtype: ResourceType, name: str) -> ApiError:
    details = {"name": name, "group": rtype.group, "kind": rtype.plural}
    return ApiError(404, "NotFound", f'{rtype.group_resource} "{name}" not found', details)
