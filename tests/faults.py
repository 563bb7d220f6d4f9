"""Fault injection: make the translator emit what Envoy rejects although our checks pass it.

The DAG refuses every hostile value it knows of and the translator's checks (`envoy/checked.py`)
everything Envoy's `validate` rules forbid, so nothing a tenant writes reaches Envoy broken.
NACK containment is the backstop for what both miss; to test it, `envoy_rejects` stands in for
such a miss: the checks accept everything, and every route (or cluster) of one namespace is
built with a flaw Envoy refuses:

- `header`: a route adds a request header whose value holds a newline; Envoy's `validate` rules
  refuse it and its message names the RouteConfiguration and the index of the virtual host;
- `regex`: a route rewrites with the RE2 pattern `(`; Envoy's message (`missing ): (`) names
  nothing, so the controller must bisect;
- `cluster`: a cluster gets an HTTP health check whose path holds a newline; Envoy's message
  prints the cluster (with its name).

Patches the translator's module-level builders for the duration of the `with` block only; the
controller under test runs in this process (tests/e2e/pipeline.py, tests/xds).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal
from unittest import mock

from envoy.config.core.v3 import health_check_pb2

import controlplane.envoy.checked
import controlplane.envoy.incremental

Fault = Literal["header", "regex", "cluster"]


@contextlib.contextmanager
def envoy_rejects(namespace: str, fault: Fault = "header") -> Iterator[None]:
    """While active, what `namespace` owns is translated with `fault` (see the module)."""
    incremental: Any = controlplane.envoy.incremental
    build_route, build_cluster = incremental.route, incremental.cluster

    def route(value: Any, shared: Any) -> Any:
        message = build_route(value, shared)
        if value.origin is None or value.origin.namespace != namespace:
            return message
        if fault == "header":
            header = message.request_headers_to_add.add().header
            header.key, header.value = "x-injected", "a\nb"
        elif fault == "regex" and message.HasField("route"):
            message.route.regex_rewrite.pattern.regex = "("
            message.route.regex_rewrite.substitution = "/"
        return message

    def cluster(value: Any, shared: Any) -> Any:
        message = build_cluster(value, shared)
        if fault == "cluster" and value.namespace == namespace:
            check = message.health_checks.add()
            check.timeout.FromSeconds(1)
            check.interval.FromSeconds(5)
            check.unhealthy_threshold.value = check.healthy_threshold.value = 1
            check.http_health_check.CopyFrom(
                health_check_pb2.HealthCheck.HttpHealthCheck(path="/h\nx")
            )
        return message

    with (
        mock.patch.object(controlplane.envoy.checked, "violations", lambda message: ()),
        mock.patch.object(incremental, "route", route),
        mock.patch.object(incremental, "cluster", cluster),
    ):
        yield
