"""Pure translation of the DAG into Envoy v3 resources (xds-protos messages).

    encoded = IncrementalTranslator(options).translate(dag, objects)   # the one translator: bytes
    config = translate(dag, TranslateOptions(), objects)   # the same, cold, decoded to messages
    topology = EdsTopology.of(dag.clusters())              # which EDS names feed which clusters
    translator.endpoint_refusals                           # endpoints left out, and why (values)
    split_parts(ROUTE_TYPE, body), named_resources(message, names), owner_of(dag, ...)
                                                           # what a NACK blames, and whose it is

Modules, one job each: `options` (TranslateOptions, Timeouts, common sub-messages), `routes`,
`listeners`, `clusters`, `endpoints`, `secrets`, `incremental` (IncrementalTranslator),
`translate` (EnvoyConfig, the decoded view), `blame` (what Envoy's NACKs blame, and whose it
is), `jsonview` (to_json, static_bootstrap), `bootstrap` (the Envoy bootstrap) and `bootstrap_tls`
(its mutual TLS to the controller: the xds cluster's transport socket and SDS files). This
package imports `controlplane.dag`, `controlplane.model` the wire-level leaves
`controlplane.protowire` and `controlplane.typeurls`, and `controlplane.addresses` (IP
literals, refused networks) only.
"""

from controlplane.envoy.blame import (
    COMPOSITE_TYPES,
    Parts,
    named_resources,
    owner_of,
    part_index,
    split_parts,
    summarize,
)
from controlplane.envoy.bootstrap import (
    ADMIN_CLUSTER,
    DEFAULT_ADMIN_ADDRESS,
    DEFAULT_STATS_ADDRESS,
    STATS_LISTENER,
    STATS_PATHS,
    XdsMode,
    render_bootstrap,
    sds_resources,
    unix_socket_path,
    write_bootstrap,
    xds_addresses,
)
from controlplane.envoy.bootstrap_tls import XdsClientTls
from controlplane.envoy.checked import Rejection, Rejections
from controlplane.envoy.endpoints import (
    EdsTopology,
    LoadAssignment,
    RefusalReason,
    RefusedEndpoint,
    cluster_load_assignment,
    load_assignments,
    service_port_of,
)
from controlplane.envoy.incremental import Encoded, IncrementalTranslator
from controlplane.envoy.jsonview import static_bootstrap, to_json
from controlplane.envoy.options import Timeouts, TranslateOptions
from controlplane.envoy.translate import EnvoyConfig, translate

__all__ = [
    "ADMIN_CLUSTER",
    "COMPOSITE_TYPES",
    "DEFAULT_ADMIN_ADDRESS",
    "DEFAULT_STATS_ADDRESS",
    "STATS_LISTENER",
    "STATS_PATHS",
    "EdsTopology",
    "Encoded",
    "EnvoyConfig",
    "IncrementalTranslator",
    "LoadAssignment",
    "Parts",
    "RefusalReason",
    "RefusedEndpoint",
    "Rejection",
    "Rejections",
    "Timeouts",
    "TranslateOptions",
    "XdsClientTls",
    "XdsMode",
    "cluster_load_assignment",
    "load_assignments",
    "named_resources",
    "owner_of",
    "part_index",
    "render_bootstrap",
    "sds_resources",
    "service_port_of",
    "split_parts",
    "static_bootstrap",
    "summarize",
    "to_json",
    "translate",
    "unix_socket_path",
    "write_bootstrap",
    "xds_addresses",
]
