"""IP literals, and the networks a backend may not point at ("no way back into the pod").

The public listener proxies to whatever address an EndpointSlice (or an ExternalName Service)
names. Pointed at `127.0.0.1:<xDS port>` it would hand the outside world the controller's SDS
(every tenant's private keys); at Envoy's admin port, `/config_dump`. In cluster mode such
addresses are refused; both the DAG (ExternalName targets) and the translator (endpoint
addresses) decide with what this module holds, so the two can never disagree.

Invariants:
- `ip_literal` accepts exactly what Envoy's own parser accepts for an endpoint address
  (`inet_pton`: dotted-quad IPv4 without leading zeros, IPv6 without a zone). Anything else is
  not an address Envoy can dial, and is left out before it can make Envoy reject an update.
- `lenient_ip` reads a *name* the way a resolver would (`inet_aton`: `127.1`, `0x7f000001`,
  `2130706433`; an IPv6 zone is ignored): a refusal check must see through every spelling.
- A `NetworkSet` matches an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it
  carries: the kernel connects to it over IPv4, so `::ffff:127.0.0.1` is loopback.
- Matching costs a few integer operations per address: the networks are reduced to (value,
  mask) pairs once, when the set is made, and a set is a frozen, hashable value (it is part of
  the build and translate options, which key caches).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network

__all__ = [
    "LOCAL_NETWORKS",
    "LOOPBACK_NETWORKS",
    "Network",
    "NetworkSet",
    "ip_literal",
    "lenient_ip",
    "refused_networks",
]

Network = IPv4Network | IPv6Network

LOOPBACK_NETWORKS: tuple[Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
"""Where `localhost` and its aliases resolve."""

LOCAL_NETWORKS: tuple[Network, ...] = (
    *LOOPBACK_NETWORKS,
    ip_network("0.0.0.0/8"),  # "this host": Linux connects 0.0.0.0 to a local socket
    ip_network("::/128"),  # the IPv6 unspecified address, the same
    ip_network("169.254.0.0/16"),  # link-local: cloud metadata (169.254.169.254), node-local
    ip_network("fe80::/10"),  # IPv6 link-local
)
"""Addresses that lead back into the pod (or its node's metadata service): refused in cluster
mode unless `--no-refuse-local-endpoints`."""

_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def ip_literal(text: str) -> bytes | None:
    """The packed address (4 or 16 bytes) if `text` is an IP literal Envoy accepts, else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, text)
        except (OSError, ValueError):  # ValueError: an embedded NUL
            continue
    return None


def lenient_ip(name: str) -> bytes | None:
    """The packed address a resolver would read `name` as, if it is any spelling of an IP."""
    host = name.strip().removeprefix("[").removesuffix("]").partition("%")[0]
    try:
        return socket.inet_pton(socket.AF_INET6, host)
    except (OSError, ValueError):
        pass
    try:
        return socket.inet_aton(host)
    except (OSError, ValueError):
        return None


def _masks(networks: Iterable[Network], version: int) -> tuple[tuple[int, int, Network], ...]:
    return tuple(
        (int(n.network_address), int(n.netmask), n) for n in networks if n.version == version
    )


@dataclass(frozen=True, slots=True)
class NetworkSet:
    """Networks that addresses are checked against; empty matches nothing."""

    networks: tuple[Network, ...] = ()
    """Sorted, without duplicates (use `NetworkSet.of`)."""
    _v4: tuple[tuple[int, int, Network], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    _v6: tuple[tuple[int, int, Network], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_v4", _masks(self.networks, 4))
        object.__setattr__(self, "_v6", _masks(self.networks, 6))

    @classmethod
    def of(cls, *groups: Iterable[Network]) -> NetworkSet:
        """The union of `groups`, in a canonical order (equal sets compare equal)."""
        unique = {network for group in groups for network in group}
        return cls(tuple(sorted(unique, key=lambda n: (n.version, n))))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def match(self, packed: bytes) -> Network | None:
        """The first network holding the packed address (IPv4-mapped IPv6 counts as IPv4)."""
        if len(packed) == 16:
            value = int.from_bytes(packed, "big")
            for network_value, mask, network in self._v6:
                if value & mask == network_value:
                    return network
            if not packed.startswith(_MAPPED_PREFIX):
                return None
            packed = packed[12:]
        value = int.from_bytes(packed, "big")
        for network_value, mask, network in self._v4:
            if value & mask == network_value:
                return network
        return None

    def refuses_loopback(self) -> bool:
        """True when 127.0.0.1 or ::1 is refused: then so is every name for this host."""
        return any(self.match(n.network_address.packed) for n in LOOPBACK_NETWORKS)


def refused_networks(*, local: bool, extra: Iterable[Network] = ()) -> NetworkSet:
    """What `serve` refuses: `LOCAL_NETWORKS` when `local` (cluster mode), plus `extra`."""
    return NetworkSet.of(LOCAL_NETWORKS if local else (), extra)
