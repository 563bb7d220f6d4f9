"""The publisher: DAG → Envoy resources → the snapshot Envoys are served, and nothing else.

    publisher = Publisher(TranslateOptions(), cache)
    snapshot = publisher.publish(dag, objects)           # after each build
    publisher.publish_endpoints(service, slices, endpoints)   # the EDS fast path
    publisher.sequence                                   # counts publishes; tests wait on it
    cache.listen(publisher)                              # (done by the constructor) NACKs in
    publisher.quarantine.entries()                       # what Envoys rejected, left out
    status_changes(last.statuses, report.statuses)       # what the build listeners look at

The only package that joins `envoy` (the translator) and `xds` (the snapshot).
"""

from controlplane.publisher.publisher import Prepared, Publisher, PublishReport
from controlplane.publisher.quarantine import Quarantine, Quarantined, Unit
from controlplane.publisher.status_changes import NO_STATUS_CHANGES, StatusChanges, status_changes

__all__ = [
    "NO_STATUS_CHANGES",
    "Prepared",
    "PublishReport",
    "Publisher",
    "Quarantine",
    "Quarantined",
    "StatusChanges",
    "Unit",
    "status_changes",
]
