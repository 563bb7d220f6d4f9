"""Compact OpenAPI schemas of the built-in kinds the test API server describes: data only.

`kubectl explain` reads a kind's fields, their types and their descriptions from the server's
OpenAPI documents (`apiserver_openapi` builds those). Kubernetes publishes schemas of hundreds of
kilobytes; this module keeps what `explain` shows for the kinds controlplane reads or writes
(Service, EndpointSlice, Secret, Ingress, IngressClass, Namespace, both Events, Lease) and every
definition they reach, each description cut to its first sentence. `managedFields` is left out
of ObjectMeta (its entries are the server's bookkeeping).

The entries were generated from the Kubernetes 1.32 definitions that the `kubernetes-validate`
test dependency ships (tests/testapi/test_apiserver_openapi.py checks every field here against
them: same names, same types, same required fields), so a hand edit that drifts from Kubernetes
fails a test.

The data lives in two modules by API group, `apiserver_schemas_core` (core v1, meta v1, intstr)
and `apiserver_schemas_groups` (discovery, networking, events, coordination), in the notation of
`apiserver_schema_notation` (keys without their package prefix, fields as
`"TYPE[!] description"`); this module joins them into `SCHEMAS` and re-exports the notation's
names. A key is defined in exactly one part.
"""

from __future__ import annotations

from controlplane.testing.apiserver_schema_notation import (
    ObjectSchema,
    Primitive,
    full_name,
    short_name,
)
from controlplane.testing.apiserver_schemas_core import CORE_SCHEMAS
from controlplane.testing.apiserver_schemas_groups import GROUP_SCHEMAS

__all__ = ["SCHEMAS", "ObjectSchema", "Primitive", "full_name", "short_name"]

SCHEMAS: dict[str, Primitive | ObjectSchema] = {**CORE_SCHEMAS, **GROUP_SCHEMAS}
assert not CORE_SCHEMAS.keys() & GROUP_SCHEMAS.keys(), "a schema key defined twice"
