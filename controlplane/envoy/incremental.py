"""`IncrementalTranslator`: translate only what changed, assemble the rest from cached bytes.

ARCHITECTURE.md §4.3: the cost of one object changing must not grow with the number of objects.
DAG values are frozen and compared by value, so they are their own cache keys:

- virtual host `(fqdn, routes)` → the encoded `virtual_hosts` field (field 2) of a
  RouteConfiguration. A RouteConfiguration is re-assembled as `name` field bytes followed by the
  cached fields in host order: protobuf defines the concatenation of encoded fields as the
  message with those fields, so this parses exactly like the plain translation (and, since
  fields are written in field-number order, is byte-identical to it);
- SecureVirtualHost → the encoded `filter_chains` field (3) of `ingress_https`, spliced between
  the listener's own fields 1-2 (name, address) and 9 (listener filters);
  A chain names its certificate by the Secret's `namespace/name`, not by its material, so a
  renewal misses this cache (the host value holds the material) and encodes the very same
  bytes: the listener is unchanged and only the SDS resource is new;
- Cluster → encoded Cluster; TLSSecret → encoded Secret;
- EDS name → encoded ClusterLoadAssignment, reused while the Service's slices, Endpoints and port
  name are the same objects (the store's objects are immutable, so identity means unchanged; the
  cache holds them, so an id is never reused while it is a key). The endpoints left out of it
  (`RefusedEndpoint`, see `endpoints.py`) are cached with it and listed by `endpoint_refusals`.

A route configuration whose hosts are the very objects of the last call but for a few replaced
by hosts of the same fqdn (a one-object edit: the DAG hands back its hosts sorted, as they were)
is the last one's parts with those few spliced in: the cost of an edit is one comparison per
host at C speed plus the replaced hosts, not a Python step per host.

Each `translate` keeps only the entries the current DAG used, so memory follows the DAG, not its
history. A translator is bound to one `TranslateOptions` (the cached bytes depend on them).
Hashing a DAG value walks it; that is the one O(N) cost left, far below translating.

The output is what the snapshot needs: type URL → name → serialized resource, names in order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import compress
from operator import attrgetter, is_, is_not
from typing import Generic, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc

from controlplane.dag import (
    CATCH_ALL,
    DAG,
    Cluster,
    Origin,
    Route,
    SecureVirtualHost,
    TLSSecret,
    VirtualHost,
)
from controlplane.envoy.checked import Rejection, Rejections, checked
from controlplane.envoy.clusters import cluster
from controlplane.envoy.endpoints import EdsTopology, RefusedEndpoint, encoded_load_assignment
from controlplane.envoy.listeners import (
    HTTP_LISTENER,
    HTTPS_LISTENER,
    filter_chain,
    http_listener,
    https_listener_frame,
    https_manager_filter,
    secure_host_order,
)
from controlplane.envoy.options import CommonMessages, TranslateOptions
from controlplane.envoy.routes import https_hosts, route, virtual_host_of
from controlplane.envoy.secrets import secret
from controlplane.envoy.validation import violations
from controlplane.model import Endpoints, EndpointSlice, ObjectSet
from controlplane.protowire import field_bytes
from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SECRET_TYPE,
)

_LISTENER_FILTER_CHAINS = 3
_ROUTE_CONFIGURATION_NAME = 1
_ROUTE_CONFIGURATION_VIRTUAL_HOSTS = 2

Encoded = dict[str, Mapping[str, bytes]]
"""type URL → resource name → serialized resource, names in order."""

HostKey = tuple[str, tuple[Route, ...]]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class _Encoding:
    """One value's encoded field or resource (b"" when it contributes nothing), and the parts of
    it left out because Envoy would reject them."""

    body: bytes
    rejections: Rejections = ()


_NOTHING = _Encoding(b"")


def _in_host_order(
    hosts: Sequence[VirtualHost | SecureVirtualHost],
) -> list[VirtualHost | SecureVirtualHost]:
    """`hosts` in `host_order` (by fqdn, the `*` catch-all last), sorted by a C-level key: DNS
    names hold only `[a-z0-9.-]` after an optional `*.`, so plain string order is host order
    except that `*` itself sorts first, and is moved to the end."""
    ordered = sorted(hosts, key=_FQDN)
    if ordered and ordered[0].fqdn == CATCH_ALL:
        ordered.append(ordered.pop(0))
    return ordered


_FQDN = attrgetter("fqdn")


class _ValueCache(Generic[K]):
    """Encodings by DAG value, keeping only what the current generation used.

    Two lookups, cheapest first:
    - by identity: a DAG value (or the host object a key was made from, its `anchor`) that is
      the very object seen last time is a hit without hashing anything. An incremental DAG
      build hands back the same objects for everything that did not change, so a warm
      translation costs one dict lookup per value, not a walk of it. The entry holds the
      anchor, so its id cannot be reused while it is a key.
    - by value: entries are keyed by the value's hash, computed once per lookup (a frozen
      dataclass does not cache its hash, and hashing a virtual host walks every route in it).
      A hit is confirmed with `==`; a hash collision simply leaves the second value uncached.
    """

    __slots__ = ("_current", "_ids_current", "_ids_next", "_next")

    def __init__(self) -> None:
        self._current: dict[int, tuple[K, _Encoding]] = {}
        self._next: dict[int, tuple[K, _Encoding]] = {}
        self._ids_current: dict[int, tuple[object, int, K, _Encoding]] = {}
        self._ids_next: dict[int, tuple[object, int, K, _Encoding]] = {}

    def get(self, key: K, anchor: object | None = None) -> tuple[int, _Encoding | None]:
        anchor = key if anchor is None else anchor
        for ids in (self._ids_next, self._ids_current):
            hit = ids.get(id(anchor))
            if hit is not None and hit[0] is anchor:
                self._ids_next[id(anchor)] = hit
                self._next.setdefault(hit[1], (hit[2], hit[3]))
                return hit[1], hit[3]
        digest = hash(key)
        for generation in (self._next, self._current):
            entry = generation.get(digest)
            if entry is not None and entry[0] == key:
                self._next[digest] = entry
                self._ids_next[id(anchor)] = (anchor, digest, entry[0], entry[1])
                return digest, entry[1]
        return digest, None

    def put(self, digest: int, key: K, encoded: _Encoding, anchor: object | None = None) -> None:
        anchor = key if anchor is None else anchor
        self._next.setdefault(digest, (key, encoded))
        self._ids_next[id(anchor)] = (anchor, digest, key, encoded)

    def end_generation(self) -> None:
        """Forget every entry the generation that just ended did not use."""
        self._current, self._next = self._next, {}
        self._ids_current, self._ids_next = self._ids_next, {}


@dataclass(frozen=True, slots=True)
class _RouteConfiguration:
    """What one route configuration was made of last time, to make the next one from."""

    hosts: tuple[VirtualHost | SecureVirtualHost, ...] | None
    """The hosts it was given, when they were in host order already (else None)."""
    memo: dict[int, tuple[VirtualHost | SecureVirtualHost, _Encoding]]
    """id(host) → (host, its encoding), for every host it holds."""
    parts: list[bytes]
    """Its name field, then each host's encoded field in host order."""
    rejected: dict[int, Rejections]
    """Position in host order → what was left out of that host (only hosts that left any)."""


_SPLICE_MAX = 64
"""At most this many hosts replaced, a configuration is spliced rather than assembled again."""


@dataclass(frozen=True, slots=True)
class _CachedAssignment:
    port_name: str
    slices: Sequence[EndpointSlice]
    endpoints: Endpoints | None
    body: bytes
    refused: tuple[RefusedEndpoint, ...]


class IncrementalTranslator:
    """Translates DAGs one after another, re-translating only values it has not seen last time."""

    def __init__(self, options: TranslateOptions | None = None) -> None:
        self._shared = CommonMessages.of(options or TranslateOptions())
        self._manager_filter = https_manager_filter(self._shared)
        self._http_listener = http_listener(self._shared).SerializeToString(deterministic=True)
        # Fields 1-2 (name, address) before the chains (3), listener filters (9) after them.
        frame = https_listener_frame(self._shared)
        tail = listener_pb2.Listener()
        tail.listener_filters.extend(frame.listener_filters)
        frame.ClearField("listener_filters")
        self._https_head = frame.SerializeToString(deterministic=True)
        self._https_tail = tail.SerializeToString(deterministic=True)
        self._hosts: _ValueCache[HostKey] = _ValueCache()
        self._route_memo: dict[str, _RouteConfiguration] = {}
        self._chains: _ValueCache[SecureVirtualHost] = _ValueCache()
        self._clusters: _ValueCache[Cluster] = _ValueCache()
        self._secrets: _ValueCache[TLSSecret] = _ValueCache()
        self._assignments: dict[str, _CachedAssignment] = {}
        self._refusals: dict[str, tuple[RefusedEndpoint, ...]] = {}
        # Per type: the DAG inputs of the last translation and its result. The incremental DAG
        # builder hands back the very same tuples when nothing of a kind changed, so an identity
        # check skips a whole type (and hands back the same mapping, which the runtime's
        # snapshot diff skips in turn).
        self._last: dict[str, tuple[tuple[object, ...], dict[str, bytes], Rejections]] = {}
        self._rejections: dict[str, Rejections] = {}
        self._endpoint_inputs: tuple[object, object] | None = None
        self._topology: tuple[object, EdsTopology] = ((), EdsTopology())

    @property
    def options(self) -> TranslateOptions:
        return self._shared.options

    @property
    def endpoint_refusals(self) -> Mapping[str, tuple[RefusedEndpoint, ...]]:
        """EDS name → the endpoints left out of its ClusterLoadAssignment, as of the last
        translation with objects; only names that left any out (usually none)."""
        return self._refusals

    def eds_topology(self, dag: DAG) -> EdsTopology:
        """The EDS topology of `dag`'s clusters, computed once per clusters tuple.

        Aggregate clusters (a fallback set) have no EDS: their members, listed beside them,
        have (so no EDS name is lost by leaving the aggregates out)."""
        clusters = dag.clusters()
        if self._topology[0] is not clusters:
            eds_clusters = [cluster for cluster in clusters if cluster.fallback is None]
            self._topology = (clusters, EdsTopology.of(eds_clusters))
        return self._topology[1]

    def _unchanged(self, kind: str, *inputs: object) -> dict[str, bytes] | None:
        last = self._last.get(kind)
        if (
            last is not None
            and len(last[0]) == len(inputs)
            and all(a is b for a, b in zip(last[0], inputs, strict=True))
        ):
            self._rejections[kind] = last[2]
            return last[1]
        return None

    def _remember(
        self,
        kind: str,
        inputs: tuple[object, ...],
        result: dict[str, bytes],
        rejections: list[Rejection],
    ) -> None:
        self._last[kind] = (inputs, result, tuple(rejections))
        self._rejections[kind] = tuple(rejections)

    def rejections(self) -> Rejections:
        """What the last `translate` left out because Envoy would reject it."""
        return tuple(r for found in self._rejections.values() for r in found)

    def translate(
        self,
        dag: DAG,
        objects: ObjectSet | None = None,
        *,
        secret_filter: Callable[[Mapping[str, bytes]], Mapping[str, bytes]] | None = None,
    ) -> Encoded:
        """Every resource of `dag` (and its endpoints, when `objects` is given), serialized.

        `secret_filter` decides which of the encoded secrets are published (the publisher's
        quarantine, for a secret an Envoy rejected); it must hand back the same mapping for the
        same input while its decision stands. A host whose secret is left out gets no chain."""
        secrets: Mapping[str, bytes] = self._encode_secrets(dag)  # first: see _listeners
        if secret_filter is not None:
            secrets = secret_filter(secrets)
        result: Encoded = {
            LISTENER_TYPE: self._listeners(dag, secrets),
            ROUTE_TYPE: self._routes(dag),
            CLUSTER_TYPE: self._encode_clusters(dag),
            SECRET_TYPE: secrets,
        }
        if objects is not None:
            result[ENDPOINT_TYPE] = self._encode_assignments(dag, objects)
        else:
            self._rejections.pop("assignments", None)
        return result

    # -- routes --------------------------------------------------------------------------

    def _encode_host(self, host: VirtualHost | SecureVirtualHost) -> _Encoding:
        """A virtual host, route by route: a route Envoy would reject is left out alone.

        Nearly every host is clean, so it is first built whole and checked once (a virtual
        host's rules are its own fields' plus each route's, none across them: clean whole
        means every route clean alone); only a host that fails is built and checked again
        route by route, which says which routes to leave out and why."""
        whole = self._clean_host(host)
        if whole is not None:
            body = whole.SerializeToString(deterministic=True)
            return _Encoding(field_bytes(_ROUTE_CONFIGURATION_VIRTUAL_HOSTS, body))
        routes: list[rc.Route] = []
        rejections: list[Rejection] = []
        for value in host.routes:
            message, found = checked(
                partial(route, value, self._shared), value.origin, ROUTE_TYPE, host.fqdn
            )
            rejections.extend(found)
            if message is not None:
                routes.append(message)
        if rejections and not routes:
            return _Encoding(b"", tuple(rejections))
        message, found = checked(
            partial(virtual_host_of, host, []), host.origin, ROUTE_TYPE, host.fqdn
        )
        if message is None:
            return _Encoding(b"", (*rejections, *found))
        message.routes.extend(routes)
        body = message.SerializeToString(deterministic=True)
        return _Encoding(field_bytes(_ROUTE_CONFIGURATION_VIRTUAL_HOSTS, body), tuple(rejections))

    def _clean_host(self, host: VirtualHost | SecureVirtualHost) -> rc.VirtualHost | None:
        """The whole virtual host when it builds and Envoy would take all of it, else None."""
        try:
            message = virtual_host_of(host, [route(value, self._shared) for value in host.routes])
        except Exception:  # the route-by-route way says which and why
            return None
        if not message.routes or violations(message):
            return None
        return message

    def _route_configuration(
        self,
        name: str,
        hosts: Sequence[VirtualHost | SecureVirtualHost],
        rejections: list[Rejection],
    ) -> bytes:
        last = self._route_memo.get(name)
        if last is not None:
            spliced = self._spliced(name, last, hosts, rejections)
            if spliced is not None:
                return spliced
        # One dict lookup per host that is the very object of the last call (this
        # configuration's own memo, by identity); only the others go through `_hosts` (by
        # identity across configurations, then by value) or get encoded.
        memo = last.memo if last is not None else {}
        ordered = _in_host_order(hosts)
        parts = [field_bytes(_ROUTE_CONFIGURATION_NAME, name.encode())]
        rejected: dict[int, Rejections] = {}
        encodings: dict[int, tuple[VirtualHost | SecureVirtualHost, _Encoding]] = {}
        for position, host in enumerate(ordered):
            hit = memo.get(id(host))
            encoded = hit[1] if hit is not None and hit[0] is host else self._host_encoding(host)
            encodings[id(host)] = (host, encoded)
            parts.append(encoded.body)
            if encoded.rejections:
                rejected[position] = encoded.rejections
                rejections.extend(encoded.rejections)
        in_order = len(ordered) == len(hosts) and all(map(is_, ordered, hosts))
        self._route_memo[name] = _RouteConfiguration(
            tuple(hosts) if in_order else None, encodings, parts, rejected
        )
        return b"".join(parts)

    def _spliced(
        self,
        name: str,
        last: _RouteConfiguration,
        hosts: Sequence[VirtualHost | SecureVirtualHost],
        rejections: list[Rejection],
    ) -> bytes | None:
        """The hot path of a one-object edit at 10,000 hosts: the last call's hosts were in
        host order already (as the DAG's are) and these are the same ones, position by
        position, but for a few replaced by a host of the same fqdn (the order stays): only
        those are looked up, and their encodings spliced into the last call's parts. None when
        that does not hold (the full path then runs)."""
        before = last.hosts
        if before is None or len(before) != len(hosts):
            return None
        changed = list(compress(range(len(hosts)), map(is_not, hosts, before)))
        if len(changed) > _SPLICE_MAX or any(hosts[i].fqdn != before[i].fqdn for i in changed):
            return None
        parts, memo, rejected = list(last.parts), last.memo, dict(last.rejected)
        for position in changed:
            host = hosts[position]
            encoded = self._host_encoding(host)
            memo.pop(id(before[position]), None)
            memo[id(host)] = (host, encoded)
            parts[position + 1] = encoded.body
            rejected.pop(position, None)
            if encoded.rejections:
                rejected[position] = encoded.rejections
        for position in sorted(rejected):
            rejections.extend(rejected[position])
        self._route_memo[name] = _RouteConfiguration(tuple(hosts), memo, parts, rejected)
        return b"".join(parts)

    def _host_encoding(self, host: VirtualHost | SecureVirtualHost) -> _Encoding:
        """`host` encoded: found in `_hosts` (by identity, then by value) or encoded now."""
        key = (host.fqdn, host.routes)
        digest, found = self._hosts.get(key, anchor=host)
        if found is None:
            found = self._encode_host(host)
            self._hosts.put(digest, key, found, anchor=host)
        return found

    def _routes(self, dag: DAG) -> dict[str, bytes]:
        inputs = (dag.virtual_hosts, dag.secure_virtual_hosts)
        if (same := self._unchanged("routes", *inputs)) is not None:
            return same
        rejections: list[Rejection] = []
        result = {
            HTTP_LISTENER: self._route_configuration(HTTP_LISTENER, dag.virtual_hosts, rejections),
            HTTPS_LISTENER: self._route_configuration(
                HTTPS_LISTENER, https_hosts(dag.secure_virtual_hosts), rejections
            ),
        }
        self._hosts.end_generation()
        self._remember("routes", inputs, result, rejections)
        return result

    # -- listeners -----------------------------------------------------------------------

    def _listeners(self, dag: DAG, secrets: Mapping[str, bytes]) -> Mapping[str, bytes]:
        inputs = (dag.secure_virtual_hosts, secrets)
        if (same := self._unchanged("listeners", *inputs)) is not None:
            return same
        rejections: list[Rejection] = []
        result = {HTTP_LISTENER: self._http_listener}
        chains: list[bytes] = []
        for host in secure_host_order(dag.secure_virtual_hosts):
            if host.secret is not None and host.secret.sds_name not in secrets:
                # Its certificate was left out: a chain naming it would hold the listener
                # warming (and every other tenant's HTTPS changes with it).
                reason = f"its TLS secret {host.secret.namespace}/{host.secret.name} is left out"
                rejections.append(Rejection(host.origin, LISTENER_TYPE, host.fqdn, "", reason))
                continue
            digest, encoded = self._chains.get(host)
            if encoded is None:
                encoded = self._encode_chain(host)
                self._chains.put(digest, host, encoded)
            if encoded.body:
                chains.append(encoded.body)
            rejections.extend(encoded.rejections)
        self._chains.end_generation()
        if chains:
            result[HTTPS_LISTENER] = b"".join([self._https_head, *chains, self._https_tail])
        self._remember("listeners", inputs, result, rejections)
        return result

    def _encode_chain(self, host: SecureVirtualHost) -> _Encoding:
        chain, found = checked(
            lambda: filter_chain(host, self._shared, self._manager_filter),
            host.origin,
            LISTENER_TYPE,
            host.fqdn,
        )
        # b"": the host serves nothing (or nothing Envoy would take), so it has no chain.
        if chain is None:
            return _Encoding(b"", found)
        body = chain.SerializeToString(deterministic=True)
        return _Encoding(field_bytes(_LISTENER_FILTER_CHAINS, body))

    # -- clusters, secrets, endpoints ----------------------------------------------------

    def _encode_clusters(self, dag: DAG) -> dict[str, bytes]:
        if (same := self._unchanged("clusters", dag.clusters())) is not None:
            return same
        result: dict[str, bytes] = {}
        rejections: list[Rejection] = []
        for value in dag.clusters():  # sorted by name
            digest, encoded = self._clusters.get(value)
            if encoded is None:
                encoded = self._encode_cluster(value)
                self._clusters.put(digest, value, encoded)
            if encoded.body:
                result[value.name] = encoded.body
            rejections.extend(encoded.rejections)
        self._clusters.end_generation()
        self._remember("clusters", (dag.clusters(),), result, rejections)
        return result

    def _encode_cluster(self, value: Cluster) -> _Encoding:
        """One cluster; a clean one (nearly all) without making its report's origin first."""
        try:
            message: cluster_pb2.Cluster | None = cluster(value, self._shared)
        except Exception:  # `checked` below says why
            message = None
        if message is not None and not violations(message):
            return _Encoding(message.SerializeToString(deterministic=True))
        origin = Origin("Service", value.namespace, value.service)
        message, found = checked(
            partial(cluster, value, self._shared), origin, CLUSTER_TYPE, value.name
        )
        body = b"" if message is None else message.SerializeToString(deterministic=True)
        return _Encoding(body, found)

    def _encode_secrets(self, dag: DAG) -> dict[str, bytes]:
        if (same := self._unchanged("secrets", dag.secrets())) is not None:
            return same
        result: dict[str, bytes] = {}
        rejections: list[Rejection] = []
        for value in dag.secrets():  # sorted by SDS name
            digest, encoded = self._secrets.get(value)
            if encoded is None:
                origin = Origin("Secret", value.namespace, value.name)
                message, found = checked(
                    partial(secret, value), origin, SECRET_TYPE, value.sds_name
                )
                body = b"" if message is None else message.SerializeToString(deterministic=True)
                encoded = _Encoding(body, found)
                self._secrets.put(digest, value, encoded)
            if encoded.body:
                result[value.sds_name] = encoded.body
            rejections.extend(encoded.rejections)
        self._secrets.end_generation()
        self._remember("secrets", (dag.secrets(),), result, rejections)
        return result

    def _encode_assignments(self, dag: DAG, objects: ObjectSet) -> dict[str, bytes]:
        clusters = dag.clusters()
        # Equal maps of the very same slice tuples (a C-speed comparison): no endpoint changed
        # since the last translation, so a known EDS name keeps its encoding unchecked.
        endpoints_same = (objects.endpoint_slices, objects.endpoints) == self._endpoint_inputs
        if endpoints_same and (same := self._unchanged("assignments", clusters)) is not None:
            return same
        used: dict[str, _CachedAssignment] = {}
        refusals: dict[str, tuple[RefusedEndpoint, ...]] = {}
        networks = self._shared.options.refused_endpoint_networks
        for eds_name, (service, port_name) in self.eds_topology(dag).by_eds_name.items():
            cached = self._assignments.get(eds_name)
            if endpoints_same and cached is not None and cached.port_name == port_name:
                used[eds_name] = cached
                if cached.refused:
                    refusals[eds_name] = cached.refused
                continue
            slices = objects.endpoint_slices.get(service, ())
            endpoints = objects.endpoints.get(service)
            if (
                cached is None
                or cached.port_name != port_name
                or cached.endpoints is not endpoints
                or len(cached.slices) != len(slices)
                or any(a is not b for a, b in zip(cached.slices, slices, strict=True))
            ):
                body, refused = encoded_load_assignment(
                    eds_name, port_name, slices, endpoints, networks
                )
                cached = _CachedAssignment(port_name, slices, endpoints, body, refused)
            used[eds_name] = cached
            if cached.refused:
                refusals[eds_name] = cached.refused
        self._assignments = used
        self._refusals = refusals
        self._endpoint_inputs = (objects.endpoint_slices, objects.endpoints)
        result = {name: cached.body for name, cached in used.items()}
        self._remember("assignments", (clusters,), result, [])
        return result
