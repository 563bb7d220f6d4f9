"""Hostile Kubernetes objects of every kind the controller reads, as Hypothesis strategies, and
the one good tenant they are thrown at (issue 9, item 7: fuzz at scale).

    from hostile import good_tenant, hostile_sets
    @given(hostile_sets())
    def test(manifests): ...   # raw manifests (dicts), as `kubectl apply` or a file sends them

Kinds: IngressRoute (virtualhost, TLS, routes, services with weights, strategies, health checks
and upstream validation, delegation, tcpproxy, timeouts, retries), Ingress (rules, paths, TLS,
default backend, class, and annotations of Contour's `contour.heptio.com/` and
`projectcontour.io/` families and of other controllers, `nginx.ingress.kubernetes.io/`), Service
(ports, ExternalName, circuit-breaker and upstream-protocol annotations), Secret (valid pairs,
mismatched keys, weak or unsupported keys, broken PEM, garbage base64), EndpointSlice (FQDN and
unknown address types, names and garbage for addresses, loopback and link-local, huge ports),
Endpoints, IngressClass and TLSCertificateDelegation.

Modules: `tenant` (the good tenant, and what no other tenant can create), `values` (pools of
good and hostile values, `Hostility`, key material), `objects` (one strategy per kind), `sets`
(hostile tenants and loose objects together), `checks` (what must hold for any such set beside
the good tenant, and `envoy --mode validate`). tests/unit/test_hostile_fuzz.py runs the checks
with a small budget in `make test`; `python -m bench hostile_fuzz` runs them at scale.

This directory is importable by every test tier (pytest puts tests/ on `sys.path` for the root
conftest) and by the bench (which adds it).
"""

from .objects import (
    certificate_delegations,
    endpoint_slices,
    endpoints,
    ingress_classes,
    ingresses,
    ingressroutes,
    secrets,
    services,
)
from .sets import ANY_OBJECT, hostile_sets, keep_clear_of_good_tenant, moved_apart, tenants
from .tenant import (
    GOOD_FQDN,
    GOOD_INGRESS_HOST,
    GOOD_NAMESPACE,
    GOOD_SERVICES,
    collides_with_good_tenant,
    good_tenant,
)

__all__ = [
    "ANY_OBJECT",
    "GOOD_FQDN",
    "GOOD_INGRESS_HOST",
    "GOOD_NAMESPACE",
    "GOOD_SERVICES",
    "certificate_delegations",
    "collides_with_good_tenant",
    "endpoint_slices",
    "endpoints",
    "good_tenant",
    "hostile_sets",
    "ingress_classes",
    "ingresses",
    "ingressroutes",
    "keep_clear_of_good_tenant",
    "moved_apart",
    "secrets",
    "services",
    "tenants",
]
