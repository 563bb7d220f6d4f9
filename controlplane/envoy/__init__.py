"""Pure translation of the DAG into Envoy v3 resources (xds-protos messages).

    config = translate(dag, TranslateOptions())            # listeners, routes, clusters, secrets
    assignments = load_assignments(dag, objects)           # EDS, separately (the fast path)
    encoded = IncrementalTranslator(options).translate(dag, objects)   # bytes, cached per value

Modules, one job each: `options` (TranslateOptions, Timeouts, shared sub-messages), `routes`,
`listeners`, `clusters`, `endpoints`, `secrets`, `translate` (EnvoyConfig), `incremental`
(IncrementalTranslator), `jsonview` (to_json, static_bootstrap), and `bootstrap` (the Envoy
bootstrap). This package imports `controlplane.dag` and `controlplane.model` only.
"""

from controlplane.envoy.endpoints import cluster_load_assignment, eds_services, load_assignments
from controlplane.envoy.incremental import IncrementalTranslator
from controlplane.envoy.jsonview import static_bootstrap, to_json
from controlplane.envoy.options import Timeouts, TranslateOptions
from controlplane.envoy.translate import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SECRET_TYPE,
    Encoded,
    EnvoyConfig,
    encode_endpoints,
    translate,
)

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
    "ROUTE_TYPE",
    "SECRET_TYPE",
    "Encoded",
    "EnvoyConfig",
    "IncrementalTranslator",
    "Timeouts",
    "TranslateOptions",
    "cluster_load_assignment",
    "eds_services",
    "encode_endpoints",
    "load_assignments",
    "static_bootstrap",
    "to_json",
    "translate",
]
