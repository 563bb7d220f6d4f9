"""What Envoy blamed when it rejected a response, and whose object that is.

The publisher contains a NACK (`publisher/quarantine.py`); this module knows the Envoy side of
it, as pure functions over bytes and strings:

- **Which resource.** Envoy 1.40's messages (measured, SotW and delta alike; a delta NACK has
  one `error_detail` per type, so neither framing says more than the other):

  - a `validate` rule broken (protoc-gen-validate, checked while decoding, so the whole response
    is refused and nothing of it applied): ``goo.gle/debug…`` then the offending resource in
    text format, then ``: Proto constraint validation failed (RouteConfigurationValidationError.
    VirtualHosts[1]: embedded message failed validation | caused by …)``. The resource's own
    name is the first top-level ``name:`` (``cluster_name:`` for a ClusterLoadAssignment) line;
    the first ``[i]`` of the path is the index of the virtual host or filter chain at fault.
  - a listener or cluster Envoy cannot add: ``Error adding/updating listener(s) ingress_https:
    error adding listener '0.0.0.0:8443': multiple filter chains with overlapping matching
    rules are defined`` (``cluster(s) NAME: …`` alike): the resource is named, the part is not.
  - anything else names neither: ``missing ): (`` (an RE2 pattern of a route), ``Failed to load
    private key from <inline>, Cause: …KEY_VALUES_MISMATCH`` (a Secret), ``Only unique values
    for domains are permitted. Duplicate entry of domain a.local in route ingress_http`` (which
    names the *innocent* host, the one the newcomer collides with).

  `named_resources` reads the first two forms; the caller falls back to the only resource of
  the response, or to bisection.
- **Which part.** A RouteConfiguration holds every tenant's virtual hosts and `ingress_https`
  every tenant's filter chain. `split_parts` takes such a resource apart on the wire (field 2,
  `virtual_hosts`; field 3, `filter_chains`) into parts keyed by fqdn (the virtual host's name,
  the chain's first SNI server name), and `Parts.join` puts it back together with some parts
  left out or replaced: protobuf defines a message as the concatenation of its fields, so no
  decoding is needed. `part_index` reads the index of the first form above.
- **Whose object.** `owner_of` maps a resource (or part) back to the Kubernetes object it came
  from, through the DAG: a virtual host or chain → its host's origin, a cluster or
  ClusterLoadAssignment → its Service, a secret → its Secret (its SDS name is the Secret's
  `namespace/name`; which material was rejected is the quarantine's business, by version).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from controlplane.dag import DAG, Origin, SecureVirtualHost, VirtualHost
from controlplane.envoy.endpoints import EdsTopology
from controlplane.envoy.listeners import HTTPS_LISTENER
from controlplane.protowire import fields, first_string
from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SECRET_TYPE,
)

__all__ = [
    "COMPOSITE_TYPES",
    "Parts",
    "named_resources",
    "owner_of",
    "part_index",
    "split_parts",
    "summarize",
]

# type URL → (the repeated field holding the parts, the path to a part's key inside it)
_PART_FIELDS: dict[str, tuple[int, tuple[int, ...]]] = {
    ROUTE_TYPE: (2, (1,)),  # RouteConfiguration.virtual_hosts → VirtualHost.name
    LISTENER_TYPE: (3, (1, 11)),  # Listener.filter_chains → .filter_chain_match.server_names
}
COMPOSITE_TYPES = frozenset(_PART_FIELDS)
"""Types whose resources hold many owners' parts (virtual hosts, filter chains)."""

_PATH_INDEX = {
    ROUTE_TYPE: re.compile(r"RouteConfigurationValidationError\.VirtualHosts\[(\d+)\]"),
    LISTENER_TYPE: re.compile(r"ListenerValidationError\.FilterChains\[(\d+)\]"),
}
# A resource printed in text format: its top-level fields start a line, unindented.
_TOP_LEVEL_NAME = re.compile(r'^(?:name|cluster_name): "((?:[^"\\]|\\.)*)"$', re.MULTILINE)
_DEBUG_PREFIX = re.compile(r"^goo\.gle/debug\S*\s*\n")
_PGV = re.compile(r"\n: (Proto constraint validation failed.*)\Z", re.DOTALL)
# What may stand right before and after a name Envoy mentions in its prose.
_BEFORE = frozenset(" '\"(,\n\t")
_AFTER = frozenset(" '\":,)\n\t")
_SUMMARY_LENGTH = 240


@dataclass(frozen=True, slots=True)
class Parts:
    """A composite resource taken apart: its own fields and its parts, in order."""

    head: bytes
    parts: tuple[tuple[str, bytes], ...]
    """(key, the encoded field) of each part; the key is an fqdn, or "" if it has none."""
    tail: bytes

    def keys(self) -> list[str]:
        return [key for key, _ in self.parts]

    def by_key(self) -> dict[str, bytes]:
        return dict(self.parts)

    def join(self, choose: Callable[[str, bytes], bytes | None]) -> bytes:
        """The resource with each part replaced by `choose(key, field)` (None leaves it out)."""
        chosen = (choose(key, body) for key, body in self.parts)
        return b"".join([self.head, *(body for body in chosen if body is not None), self.tail])


def split_parts(type_url: str, body: bytes) -> Parts | None:
    """`body` (a resource of a composite type) taken apart; None for other types."""
    spec = _PART_FIELDS.get(type_url)
    if spec is None:
        return None
    number, key_path = spec
    head: list[bytes] = []
    tail: list[bytes] = []
    parts: list[tuple[str, bytes]] = []
    for found, whole, payload in fields(body):
        if found == number:
            parts.append((first_string(payload, key_path) or "", whole))
        else:
            (tail if parts else head).append(whole)
    return Parts(b"".join(head), tuple(parts), b"".join(tail))


def part_index(type_url: str, message: str) -> int | None:
    """The index of the part a broken `validate` rule is in, when Envoy's message says it."""
    pattern = _PATH_INDEX.get(type_url)
    found = pattern.search(message) if pattern is not None else None
    return int(found.group(1)) if found is not None else None


def named_resources(message: str, names: Iterable[str]) -> list[str]:
    """Which of `names` (the resources of the rejected response) Envoy's message blames.

    A resource printed in text format is the one blamed, and only it; otherwise every name the
    prose mentions as a whole word (so `ingress_http` is not found in `ingress_https`)."""
    candidates = names if isinstance(names, (set, frozenset, dict)) else set(names)
    if _DEBUG_PREFIX.match(message):
        printed = _TOP_LEVEL_NAME.search(message)
        if printed is None:
            return []
        name = _unescape(printed.group(1))
        return [name] if name in candidates else []
    found: list[tuple[int, str]] = []
    for name in candidates:
        at = _mention(message, name)
        if at is not None:
            found.append((at, name))
    return [name for _, name in sorted(found)]


def _mention(message: str, name: str) -> int | None:
    if not name:
        return None
    start = message.find(name)
    while start >= 0:
        end = start + len(name)
        before_ok = start == 0 or message[start - 1] in _BEFORE
        after_ok = end == len(message) or message[end] in _AFTER
        if before_ok and after_ok:
            return start
        start = message.find(name, start + 1)
    return None


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    try:
        return codecs.escape_decode(text.encode())[0].decode("utf-8", "replace")
    except ValueError:
        return text


def summarize(message: str) -> str:
    """Envoy's message, short enough for a status: without the resource it may print, and
    only the innermost clause of a `validate` failure (which names the field)."""
    text = message
    if _DEBUG_PREFIX.match(text):
        pgv = _PGV.search(text)
        text = pgv.group(1) if pgv is not None else text.rsplit("\n: ", 1)[-1]
    if text.startswith("Proto constraint validation failed"):
        clauses = text.rstrip(")").split(" | caused by ")
        if len(clauses) > 1:
            text = f"Proto constraint validation failed: {clauses[-1]}"
    text = " ".join(text.split())
    if len(text) > _SUMMARY_LENGTH:
        text = text[: _SUMMARY_LENGTH - 1] + "…"
    return text


def owner_of(
    dag: DAG, topology: EdsTopology, type_url: str, name: str, part: str = ""
) -> Origin | None:
    """The Kubernetes object a resource (or a part of one) of `dag` came from, if known.

    Walks the DAG: meant for the rare moment a NACK is attributed, not for every build."""
    if type_url in COMPOSITE_TYPES:
        if not part:
            return None
        hosts: Sequence[VirtualHost | SecureVirtualHost] = dag.virtual_hosts
        if type_url == LISTENER_TYPE or name == HTTPS_LISTENER:
            hosts = dag.secure_virtual_hosts
        return next((host.origin for host in hosts if host.fqdn == part), None)
    if type_url == CLUSTER_TYPE:
        for cluster in dag.clusters():
            if cluster.name == name:
                return Origin("Service", cluster.namespace, cluster.service)
        return None
    if type_url == ENDPOINT_TYPE:
        entry = topology.by_eds_name.get(name)
        return Origin("Service", *entry[0]) if entry is not None else None
    if type_url == SECRET_TYPE:
        for secret in dag.secrets():
            if secret.sds_name == name:
                return Origin("Secret", secret.namespace, secret.name)
    return None
