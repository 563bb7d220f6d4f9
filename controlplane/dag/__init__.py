"""The DAG: Kubernetes objects → what Envoy should do, in Envoy's terms, before any protobuf.

    dag = build(objects, BuildOptions())        # cold: what `translate` runs
    builder = DagBuilder()                      # warm: what `serve` keeps, build after build
    dag = builder.build(objects, options)

Pure: no I/O, no clocks, deterministic output order. `reference.py` is a test oracle only.
"""

from controlplane.dag.builder import DagBuilder, build
from controlplane.dag.classes import class_of
from controlplane.dag.ingress import ingresses_of_our_class
from controlplane.dag.options import BuildOptions
from controlplane.dag.regexes import re2_problem
from controlplane.dag.status import with_rejections
from controlplane.dag.types import (
    CATCH_ALL,
    DAG,
    HTTPS_REDIRECT,
    INFINITE,
    INTERNAL_ERROR,
    REDIRECT_CODES,
    CircuitBreakers,
    Cluster,
    CorsPolicy,
    HeaderMatch,
    HealthCheck,
    LoadBalancerPolicy,
    ObjectStatus,
    Origin,
    PathMatch,
    PathMatchKind,
    Problem,
    RateLimit,
    Redirect,
    RegexRewrite,
    RetryPolicy,
    Route,
    SecureVirtualHost,
    SessionCookie,
    SourceRanges,
    StatusKind,
    TCPProxy,
    TLSSecret,
    TLSVersion,
    UpstreamProtocol,
    UpstreamValidation,
    VirtualHost,
    WeightedCluster,
    host_order,
)

__all__ = [
    "CATCH_ALL",
    "DAG",
    "HTTPS_REDIRECT",
    "INFINITE",
    "INTERNAL_ERROR",
    "REDIRECT_CODES",
    "BuildOptions",
    "CircuitBreakers",
    "Cluster",
    "CorsPolicy",
    "DagBuilder",
    "HeaderMatch",
    "HealthCheck",
    "LoadBalancerPolicy",
    "ObjectStatus",
    "Origin",
    "PathMatch",
    "PathMatchKind",
    "Problem",
    "RateLimit",
    "Redirect",
    "RegexRewrite",
    "RetryPolicy",
    "Route",
    "SecureVirtualHost",
    "SessionCookie",
    "SourceRanges",
    "StatusKind",
    "TCPProxy",
    "TLSSecret",
    "TLSVersion",
    "UpstreamProtocol",
    "UpstreamValidation",
    "VirtualHost",
    "WeightedCluster",
    "build",
    "class_of",
    "host_order",
    "ingresses_of_our_class",
    "re2_problem",
    "with_rejections",
]
