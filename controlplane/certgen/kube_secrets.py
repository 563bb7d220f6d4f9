"""`controlplane certgen --kubernetes`: the certificates as two ``kubernetes.io/tls`` Secrets.

``controlplanecert`` and ``envoycert``, each with a ``ca.crt`` key, through kubernetes-asyncio
(the certgen Job and the rotation CronJob in ``manifests/``). Every replace carries the
resourceVersion read before it, so a Secret changed meanwhile by another writer fails the
replace (409) rather than being clobbered; the API server's refusals become one ``ValueError``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from controlplane.certgen.certificates import (
    CONTROLPLANE_SECRET,
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_NAMESPACE,
    DEFAULT_ROTATE_WAIT_S,
    ENVOY_SECRET,
    Bundle,
    KeyType,
    Leaf,
    Outcome,
    Progress,
    check_bundle,
    generate,
    nothing_to_rotate,
    plan_rotation,
    quiet,
    rotation_reason,
    valid_until,
)

__all__ = ["rotate_secrets", "secret_manifests", "write_secrets"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def secret_manifests(bundle: Bundle, namespace: str) -> dict[str, dict[str, Any]]:
    """The two ``kubernetes.io/tls`` Secrets (with ``ca.crt``), by name."""

    def secret(name: str, leaf: Leaf) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/part-of": "controlplane",
                    "app.kubernetes.io/managed-by": "controlplane-certgen",
                },
            },
            "type": "kubernetes.io/tls",
            "data": {
                "ca.crt": _b64(bundle.ca_pem),
                "tls.crt": _b64(leaf.cert_pem),
                "tls.key": _b64(leaf.key_pem),
            },
        }

    return {
        CONTROLPLANE_SECRET: secret(CONTROLPLANE_SECRET, bundle.controlplane),
        ENVOY_SECRET: secret(ENVOY_SECRET, bundle.envoy),
    }


def _from_secret(data: Mapping[str, str] | None) -> tuple[bytes, Leaf] | None:
    if not data or not {"ca.crt", "tls.crt", "tls.key"} <= set(data):
        return None
    try:
        ca, cert, key = (base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key"))
    except ValueError:
        return None
    return ca, Leaf(cert, key)


async def write_secrets(
    api_client: Any,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    overwrite: bool = False,
    now: datetime.datetime | None = None,
    request_timeout: float = 30.0,
) -> Outcome:
    """Write (or keep) the two Secrets in ``namespace`` through ``api_client`` (kubernetes-
    asyncio's ``ApiClient``). A refusal of the API server is a ``ValueError`` saying which."""
    from kubernetes_asyncio import client

    return await _api_errors(
        namespace,
        _write_secrets(
            client.CoreV1Api(api_client),
            namespace=namespace,
            key_type=key_type,
            lifetime_days=lifetime_days,
            overwrite=overwrite,
            moment=now or datetime.datetime.now(datetime.UTC),
            request_timeout=request_timeout,
        ),
    )


async def rotate_secrets(
    api_client: Any,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    wait_s: float = DEFAULT_ROTATE_WAIT_S,
    now: datetime.datetime | None = None,
    request_timeout: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    progress: Progress = quiet,
) -> Outcome:
    """Rotate the two Secrets in two steps (module docstring). Only reads and replaces them
    (``get`` and ``update``, the CronJob's Role); each replace carries the resourceVersion of
    the previous read or write, so a Secret changed meanwhile stops the rotation (409)."""
    from kubernetes_asyncio import client

    core = client.CoreV1Api(api_client)

    async def rotate() -> Outcome:
        found = await _read_secrets(core, namespace, request_timeout)
        server = (
            _from_secret(found[CONTROLPLANE_SECRET].data) if CONTROLPLANE_SECRET in found else None
        )
        envoy = _from_secret(found[ENVOY_SECRET].data) if ENVOY_SECRET in found else None
        if server is None or envoy is None:
            raise nothing_to_rotate(f"Secrets {namespace}/{CONTROLPLANE_SECRET} and {ENVOY_SECRET}")
        versions = {name: secret.metadata.resource_version for name, secret in found.items()}
        rotation = plan_rotation(
            server, envoy, namespace=namespace, key_type=key_type, lifetime_days=lifetime_days,
            now=now,
        )  # fmt: skip

        async def replace(bundle: Bundle) -> None:
            for name, manifest in secret_manifests(bundle, namespace).items():
                manifest["metadata"]["resourceVersion"] = versions[name]
                body: Any = manifest
                written = await core.replace_namespaced_secret(
                    name, namespace, body, _request_timeout=request_timeout
                )
                versions[name] = written.metadata.resource_version

        if rotation.kept:
            await replace(rotation.trust)
            progress(
                f"Secrets {namespace}/{CONTROLPLANE_SECRET} and {ENVOY_SECRET}: ca.crt trusts "
                f"the new CA; new leaves in {wait_s:g} s, once every pod has seen it"
            )
            await sleep(wait_s)
        await replace(rotation.leaves)
        return Outcome(True, rotation_reason(rotation), valid_until(rotation.leaves))

    return await _api_errors(namespace, rotate())


async def _api_errors(namespace: str, work: Awaitable[Outcome]) -> Outcome:
    """``work``'s outcome; the API server's refusals and connection errors as ``ValueError``."""
    from kubernetes_asyncio import client

    try:
        return await work
    except client.ApiException as error:
        reason = f"{error.status} {error.reason}"
        with contextlib.suppress(TypeError, ValueError, KeyError):
            reason += ": " + str(json.loads(error.body or b"")["message"])
        if error.status == 409:
            reason += " (a Secret changed meanwhile: run again)"
        raise ValueError(f"writing Secrets in {namespace}: {reason}") from None
    except OSError as error:  # aiohttp's connection errors and timeouts are OSErrors
        raise ValueError(f"writing Secrets in {namespace}: {error}") from None


async def _write_secrets(
    core: Any,
    *,
    namespace: str,
    key_type: KeyType,
    lifetime_days: int,
    overwrite: bool,
    moment: datetime.datetime,
    request_timeout: float,
) -> Outcome:
    found = await _read_secrets(core, namespace, request_timeout)
    sides = {name: _from_secret(secret.data) for name, secret in found.items()}
    server, envoy = sides.get(CONTROLPLANE_SECRET), sides.get(ENVOY_SECRET)
    reason = "no certificates yet" if not found else "incomplete Secrets"
    if server is not None and envoy is not None:
        invalid, not_after = check_bundle(server, envoy, moment)
        if invalid is None and not overwrite:
            return Outcome(False, "valid Secrets already there", not_after)
        reason = invalid or "--overwrite"
    bundle = generate(
        namespace=namespace, key_type=key_type, lifetime_days=lifetime_days, now=moment
    )
    for name, manifest in secret_manifests(bundle, namespace).items():
        if name in found:
            # The resourceVersion read above: a Secret changed meanwhile is a 409, not lost.
            manifest["metadata"]["resourceVersion"] = found[name].metadata.resource_version
        # A plain manifest: the client serializes a dict body as it is (typed as V1Secret).
        body: Any = manifest
        if name in found:
            await core.replace_namespaced_secret(
                name, namespace, body, _request_timeout=request_timeout
            )
        else:
            await core.create_namespaced_secret(namespace, body, _request_timeout=request_timeout)
    return Outcome(True, reason, valid_until(bundle))


async def _read_secrets(core: Any, namespace: str, request_timeout: float) -> dict[str, Any]:
    """The two Secrets that exist, by name (a missing one is left out)."""
    from kubernetes_asyncio import client

    found: dict[str, Any] = {}
    for name in (CONTROLPLANE_SECRET, ENVOY_SECRET):
        try:
            found[name] = await core.read_namespaced_secret(
                name, namespace, _request_timeout=request_timeout
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
    return found
