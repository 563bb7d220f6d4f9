"""The publisher: DAG → Envoy resources → the snapshot Envoys are served, and nothing else.

    publisher = Publisher(TranslateOptions(), cache)
    snapshot = publisher.publish(dag, objects)           # after each build
    publisher.publish_endpoints(service, slices, endpoints)   # the EDS fast path
    publisher.sequence                                   # counts publishes; tests wait on it
    cache.listen(publisher)                              # (done by the constructor) NACKs in
    publisher.quarantine.entries()                       # what Envoys rejected, left out

The only package that joins `envoy` (the translator) and `xds` (the snapshot).
"""

from controlplane.publisher.publisher import Prepared, Publisher, PublishReport
from controlplane.publisher.quarantine import Quarantine, Quarantined, Unit

__all__ = ["Prepared", "PublishReport", "Publisher", "Quarantine", "Quarantined", "Unit"]
