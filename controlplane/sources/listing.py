"""Listing a cluster's objects once, without watching: what `controlplane status` reads.

The informers' own list (`Informer.list_objects`: pages, parsing, trimming) fills the store, so a
one-off look at a cluster sees exactly what `serve` would; no watch is opened. A kind whose CRD
is not installed (404 for IngressRoute or TLSCertificateDelegation) is listed as empty and
named in the result; every other failure raises (`KubeApiError`, `aiohttp.ClientError`,
`TimeoutError`, `OSError`), for the caller to report in one line.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubernetes_asyncio import client

from controlplane.sources.kube import RESOURCES, Informer, InformerOptions, StoreSink
from controlplane.sources.kubeclient import KubeApiError
from controlplane.store import Store


async def list_once(
    api_client: client.ApiClient,
    store: Store,
    kinds: Iterable[str],
    *,
    namespace: str | None = None,
    request_timeout: float = 30.0,
) -> tuple[str, ...]:
    """List every object of `kinds` (in `namespace`, or cluster-wide) into `store`; returns the
    kinds that are not served (their CRD is missing)."""
    wanted = set(kinds)
    missing: list[str] = []
    options = InformerOptions(request_timeout=request_timeout)
    for resource in RESOURCES:
        if resource.kind not in wanted:
            continue
        informer = Informer(
            api_client, resource, StoreSink(store), namespace=namespace, options=options
        )
        try:
            await informer.list_objects()
        except KubeApiError as error:
            if error.status != 404 or not resource.optional:
                raise
            missing.append(resource.kind)
    return tuple(missing)
