"""Checks Envoy makes when it loads a resource that no `validate` rule expresses.

Each was found by feeding the real Envoy 1.40 a translation with one value changed
(tests/unit/test_envoy_validation_live.py keeps them honest):

- a route's `weighted_clusters`: the weights must sum to more than 0 and at most 2^32 - 1
  (`Sum of weights in the weighted_cluster must be greater than 0.`);
- a RouteConfiguration: a domain may appear once across all its virtual hosts, compared without
  case, and only one virtual host may be the `*` wildcard (`Only unique values for domains are
  permitted`);
- a Listener: two filter chains (or one chain twice) may not match the same server name with
  otherwise identical matches, compared without case (`multiple filter chains with overlapping
  matching rules are defined`). Only exact equality is checked: that is all our chains differ by;
- a ClusterLoadAssignment sent over EDS, and the endpoints of a STATIC cluster: every socket
  address must be an IP address (`malformed IP address: example.com`). STRICT_DNS clusters
  resolve names, so their endpoints are left alone; so are endpoints with a `resolver_name`;
- every RE2 pattern (`RegexMatcher`, wherever it is: route and header matches, `regex_rewrite`,
  string matchers in filter configs) must compile with RE2 and within Envoy's program size
  (`dag.regexes.re2_problem`, Google's RE2 itself: `regex ... is too large` / `invalid regex`).

Every check returns `(relative path, reason)` pairs; the walker in `validation` prefixes them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.type.matcher.v3 import regex_pb2

from controlplane.dag import re2_problem
from controlplane.envoy.validation_rules import is_ip

Found = list[tuple[str, str]]
"""(path relative to the checked message, reason) pairs."""

_MAX_WEIGHT_SUM: Final = 2**32 - 1
_WILDCARD: Final = "*"


def weighted_cluster(message: Any) -> Found:
    total = sum(int(weighted.weight.value) for weighted in message.clusters)
    if total == 0:
        return [(".clusters", "the sum of the weights must be greater than 0")]
    if total > _MAX_WEIGHT_SUM:
        return [(".clusters", f"the sum of the weights must be at most {_MAX_WEIGHT_SUM}")]
    return []


def route_configuration(message: Any) -> Found:
    domains = [domain.lower() for host in message.virtual_hosts for domain in host.domains]
    if len(set(domains)) == len(domains):  # the usual case, at C speed
        return []
    found: Found = []
    owners: dict[str, int] = {}
    wildcard: int | None = None
    for host_index, host in enumerate(message.virtual_hosts):
        for domain_index, domain in enumerate(host.domains):
            path = f".virtual_hosts[{host_index}].domains[{domain_index}]"
            if domain == _WILDCARD:
                if wildcard is not None:
                    reason = (
                        f"only one virtual host may have the domain *, as virtual_hosts[{wildcard}]"
                    )
                    found.append((path, reason))
                wildcard = host_index
                continue
            owner = owners.get(key := domain.lower())
            if owner is None:
                owners[key] = host_index
            else:
                found.append(
                    (path, f"domain {domain!r} is already a domain of virtual_hosts[{owner}]")
                )
    return found


def listener(message: Any) -> Found:
    found: Found = []
    owners: dict[tuple[bytes, str], int] = {}
    for chain_index, chain in enumerate(message.filter_chains):
        match = chain.filter_chain_match
        key = _match_without_server_names(match)
        for name in [name.lower() for name in match.server_names] or [""]:
            owner = owners.get((key, name))
            if owner is None:
                owners[key, name] = chain_index
                continue
            what = f"server name {name!r}" if name else "connections"
            path = f".filter_chains[{chain_index}].filter_chain_match"
            found.append((path, f"matches the same {what} as filter_chains[{owner}]"))
            break
    return found


def _match_without_server_names(match: Any) -> bytes:
    if all(field.name == "server_names" for field, _ in match.ListFields()):
        return b""
    rest = listener_components_pb2.FilterChainMatch()
    rest.CopyFrom(match)
    rest.ClearField("server_names")
    data: bytes = rest.SerializeToString(deterministic=True)
    return data


def endpoint_addresses(assignment: Any, prefix: str = "") -> Found:
    """Every socket address of `assignment` must be an IP (EDS and STATIC clusters)."""
    found: Found = []
    for locality_index, locality in enumerate(assignment.endpoints):
        for endpoint_index, lb_endpoint in enumerate(locality.lb_endpoints):
            if lb_endpoint.WhichOneof("host_identifier") != "endpoint":
                continue
            socket_address = lb_endpoint.endpoint.address.socket_address
            address = socket_address.address
            if socket_address.resolver_name or not address or _is_ip_address(address):
                continue
            path = (
                f"{prefix}.endpoints[{locality_index}].lb_endpoints[{endpoint_index}]"
                ".endpoint.address.socket_address.address"
            )
            found.append((path, f"{address!r} is not an IP address"))
    return found


def _is_ip_address(address: str) -> bool:
    # Envoy accepts an IPv6 scope (`fe80::1%eth0`); inet_pton does not.
    host = address.partition("%")[0] if ":" in address else address
    return is_ip(host)


def cluster(message: Any) -> Found:
    if message.WhichOneof("cluster_discovery_type") != "type":
        return []
    if message.type != cluster_pb2.Cluster.STATIC or not message.HasField("load_assignment"):
        return []
    return endpoint_addresses(message.load_assignment, ".load_assignment")


@functools.lru_cache(maxsize=4096)
def _regex_problem(pattern: str) -> str | None:
    return re2_problem(pattern)


def regex_matcher(message: Any) -> Found:
    problem = _regex_problem(message.regex)
    return [] if problem is None else [(".regex", f"{message.regex!r} {problem}")]


BY_MESSAGE: Final[dict[str, Callable[[Any], Found]]] = {
    regex_pb2.RegexMatcher.DESCRIPTOR.full_name: regex_matcher,
    route_components_pb2.WeightedCluster.DESCRIPTOR.full_name: weighted_cluster,
    route_pb2.RouteConfiguration.DESCRIPTOR.full_name: route_configuration,
    listener_pb2.Listener.DESCRIPTOR.full_name: listener,
    cluster_pb2.Cluster.DESCRIPTOR.full_name: cluster,
}
"""Checks run wherever a message of that type appears (top level or nested)."""

TOP_LEVEL: Final[dict[str, Callable[[Any], Found]]] = {
    endpoint_pb2.ClusterLoadAssignment.DESCRIPTOR.full_name: endpoint_addresses,
}
"""Checks run only on the resource itself: an EDS assignment needs IPs, while the load
assignment inside a STRICT_DNS cluster holds names."""
