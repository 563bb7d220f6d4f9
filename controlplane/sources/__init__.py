"""Where objects come from: a watched manifest directory, or a cluster's API server.

    FileSource(directory, store).run(synced)           # files: the operator's own manifests
    KubeSource(api, store).run(synced)                 # informers: list, watch, 410 → relist
    StatusWriter(api, store=store).submit(updates)     # IngressRoute status, leader only
    EventRecorder(api, store=store, instance=...)      # Events: problems, status changes
    LeaderElector(api, namespace=..., name=...).run()  # a Lease; Leadership: who writes status
    await list_once(api, store, ["IngressRoute"])      # one list, no watch (`status`)

The only package that imports `kubernetes_asyncio` (with the test API server); it fills the store
and never sees the DAG, the translator or xDS (import-linter).
"""

from controlplane.sources.events import EventRecorder, Finding, reporting_instance
from controlplane.sources.files import FileSource, manifest_files, read_documents
from controlplane.sources.kube import INGRESSES, KubeSource
from controlplane.sources.kubeclient import KubeApiError, make_api_client
from controlplane.sources.leader import LeaderElector, Leadership, lease_namespace
from controlplane.sources.listing import list_once
from controlplane.sources.status import (
    IngressStatusWriter,
    StatusUpdate,
    StatusWriter,
    parse_service_ref,
)

__all__ = [
    "INGRESSES",
    "EventRecorder",
    "FileSource",
    "Finding",
    "IngressStatusWriter",
    "KubeApiError",
    "KubeSource",
    "LeaderElector",
    "Leadership",
    "StatusUpdate",
    "StatusWriter",
    "lease_namespace",
    "list_once",
    "make_api_client",
    "manifest_files",
    "parse_service_ref",
    "read_documents",
    "reporting_instance",
]
