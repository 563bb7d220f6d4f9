"""`IngressProcessor`: the Ingress half of the builder: per-Ingress readings, per-host settlements.

An Ingress build reads every Ingress, then settles conflicts across all of them (`reference.py`
does exactly that). Both steps decompose, which is what this module exploits:

- Reading an Ingress (`read_ingress`) depends on that Ingress and on the objects it looks up
  (its Services, Secrets, IngressClass, and every TLSCertificateDelegation when it names a
  Secret in another namespace). The reading is kept with a record of those reads
  (`reads.py`) and redone only when the Ingress or one of them changed.
- Settling is per host: which claim wins a (host, match), and which certificate a host gets,
  only compares claims for that host. So a host is settled again only when an Ingress claiming
  it (now or before) was read again; its claims are taken oldest first, as the full build takes
  them, so the winners, losers and their problems are the same.

Problem order is the full build's: every reading's problems, oldest Ingress first, then the
losing route claims in claim order (rules before default backends, oldest first, first path
first), then the losing TLS claims; each problem once. Only Ingresses and hosts that have
problems are kept for that, so a build without problems pays nothing for it.

A host an IngressRoute owns is settled differently (`ingress_merge.py`): the builder tells
which namespaces its owner trusts (`set_trust`, after the IngressRoute half has settled who
owns what), only the Ingresses of those namespaces are settled among themselves, their TLS
claims are not settled at all (the IngressRoute owns the certificate), and the outcome is kept
as claims (`owned`) for the builder to merge into the IngressRoute's hosts; `plain` and
`secure` hold nothing for such a host. A change of trust settles the host again.

A host whose settled values equal the previous ones keeps the previous objects, so the
translator's identity cache hits for it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from controlplane.dag.ingress import (
    IngressReading,
    RouteClaim,
    TLSClaim,
    host_values,
    is_ours,
    read_ingress,
    route_claim_order,
    settle_routes,
    settle_tls,
    tls_claim_order,
)
from controlplane.dag.ingress_merge import OwnedHostClaims
from controlplane.dag.options import BuildOptions
from controlplane.dag.reads import (
    BuildInputs,
    Dependents,
    RecordingInputs,
    discard,
    replace_host,
)
from controlplane.dag.types import Problem, SecureVirtualHost, VirtualHost
from controlplane.model import AgeKey, Ingress, NamespacedName, ObjectSet


@dataclass(frozen=True, slots=True)
class _ReadIngress:
    """One Ingress and what reading it gave."""

    ingress: Ingress
    reading: IngressReading | None
    """None when the Ingress is not of our class."""


@dataclass(frozen=True, slots=True)
class _HostLosers:
    routes: tuple[tuple[RouteClaim, Problem], ...]
    tls: tuple[tuple[TLSClaim, Problem], ...]


class IngressProcessor:
    """The Ingress virtual hosts and problems, kept up to date build after build."""

    def __init__(self, options: BuildOptions) -> None:
        self.options = options
        self.plain: dict[str, VirtualHost] = {}
        self.secure: dict[str, SecureVirtualHost] = {}
        self._units: dict[NamespacedName, _ReadIngress] = {}
        self._dependents: Dependents[NamespacedName] = Dependents()
        self._host_units: dict[str, set[NamespacedName]] = {}
        self._unit_problems: dict[NamespacedName, tuple[Problem, ...]] = {}
        self._host_losers: dict[str, _HostLosers] = {}
        self._problems: tuple[Problem, ...] = ()
        self._problems_stale = False
        self.oldest: dict[str, AgeKey] = {}
        """host → the `age_key` of the oldest Ingress claiming it (what settles it against
        IngressRoute roots claiming the same fqdn, `settle_fqdn`)."""
        self.oldest_changed: set[str] = set()
        """The hosts whose `oldest` entry changed (added, replaced or removed) in the last
        `update`."""
        self._trust: dict[str, frozenset[str]] = {}
        """Host an IngressRoute owns → the namespaces whose Ingresses may add paths to it."""
        self.owned: dict[str, OwnedHostClaims] = {}
        """Host an IngressRoute owns and some Ingress claims → what the Ingresses ask of it."""

    def update(
        self, objects: ObjectSet, changes: Mapping[str, Collection[NamespacedName]]
    ) -> set[str]:
        """Bring the Ingress hosts up to date with `objects`; returns the hosts whose claims
        changed (their values may or may not have).

        `changes`: per ObjectSet field, the keys added, modified or deleted since last time.
        """
        dirty = self._dependents.affected(changes)
        dirty.update(changes.get("ingresses", ()))
        recording = RecordingInputs(BuildInputs(objects))
        touched: set[str] = set()
        for key in dirty:
            self._read(key, objects, recording, touched)
        self.oldest_changed = set()
        for host in touched:
            self._settle(host)
            self._update_oldest(host)
        return touched

    def _update_oldest(self, host: str) -> None:
        keys = self._host_units.get(host)
        oldest = min(self._units[key].ingress.age_key for key in keys) if keys else None
        if self.oldest.get(host) == oldest:
            return
        self.oldest_changed.add(host)
        if oldest is None:
            del self.oldest[host]
        else:
            self.oldest[host] = oldest

    def trust(self, host: str) -> frozenset[str] | None:
        """The namespaces trusted on `host`, if an IngressRoute owns it (see `set_trust`)."""
        return self._trust.get(host)

    def set_trust(self, host: str, trusted: frozenset[str] | None) -> bool:
        """`host` is owned by an IngressRoute trusting the Ingresses of `trusted` namespaces
        (None: no IngressRoute owns it); settles it again if that changed. Changed?"""
        if self._trust.get(host) == trusted:
            return False
        if trusted is None:
            del self._trust[host]
        else:
            self._trust[host] = trusted
        self._settle(host)
        return True

    def problems(self) -> tuple[Problem, ...]:
        """The problems of the Ingress part, in the order the full build finds them."""
        if self._problems_stale:
            self._problems = self._ordered_problems()
            self._problems_stale = False
        return self._problems

    # -- reading -------------------------------------------------------------------------

    def _read(
        self,
        key: NamespacedName,
        objects: ObjectSet,
        recording: RecordingInputs,
        touched: set[str],
    ) -> None:
        old = self._units.pop(key, None)
        if old is not None and old.reading is not None:
            for host in old.reading.hosts:
                discard(self._host_units, host, key)
                touched.add(host)
        ingress = objects.ingresses.get(key)
        if ingress is None:
            self._dependents.forget(key)
            self._set_unit_problems(key, ())
            return
        recording.start()
        reading = None
        view = recording.view.objects
        if is_ours(ingress, view, self.options):
            reading = read_ingress(ingress, view, self.options)
        self._dependents.record(key, recording.stop())
        self._units[key] = _ReadIngress(ingress, reading)
        self._set_unit_problems(key, reading.problems if reading is not None else ())
        if reading is not None:
            for host in reading.hosts:
                self._host_units.setdefault(host, set()).add(key)
                touched.add(host)

    def _set_unit_problems(self, key: NamespacedName, problems: tuple[Problem, ...]) -> None:
        old = self._unit_problems.get(key, ())
        if problems:
            self._unit_problems[key] = problems
        else:
            self._unit_problems.pop(key, None)
        if old or problems:
            self._problems_stale = True

    # -- settling ------------------------------------------------------------------------

    def _settle(self, host: str) -> bool:
        """Settle `host` again; whether its plain or secure virtual host changed."""
        units = self._host_units.get(host)
        if not units:  # no Ingress claims it (an IngressRoute's host, usually): nothing to settle
            self.owned.pop(host, None)
            if self._host_losers.pop(host, None) is not None:
                self._problems_stale = True
            plain_changed = replace_host(self.plain, host, None)
            secure_changed = replace_host(self.secure, host, None)
            return plain_changed or secure_changed
        readings = []
        for key in units:
            reading = self._units[key].reading
            assert reading is not None  # only Ingresses of our class claim hosts
            readings.append(reading)
        readings.sort(key=lambda reading: reading.ingress.age_key)
        trusted = self._trust.get(host)
        untrusted: list[NamespacedName] = []
        if trusted is not None:
            untrusted = sorted(
                (r.ingress.namespace, r.ingress.name)
                for r in readings
                if r.ingress.namespace not in trusted
            )
            readings = [r for r in readings if r.ingress.namespace in trusted]
        claims = [reading.for_host(host) for reading in readings]
        routes, route_losers = settle_routes(claims)
        tls_losers: list[tuple[TLSClaim, Problem]] = []
        plain, secure = (None, None)
        if trusted is not None:
            self.owned.pop(host, None)
            if readings or untrusted:
                self.owned[host] = OwnedHostClaims(
                    tuple(sorted(routes.get(host, ()), key=route_claim_order)),
                    tuple(sorted((c for r in claims for c in r.tls), key=tls_claim_order)),
                    tuple(untrusted),
                )
        else:
            self.owned.pop(host, None)
            tls, tls_losers = settle_tls(claims)
            winners = routes.get(host)
            if winners:
                plain, secure = host_values(host, winners, tls.get(host))
        old_losers = self._host_losers.pop(host, None)
        if route_losers or tls_losers:
            self._host_losers[host] = _HostLosers(tuple(route_losers), tuple(tls_losers))
        if old_losers is not None or route_losers or tls_losers:
            self._problems_stale = True
        plain_changed = replace_host(self.plain, host, plain)
        secure_changed = replace_host(self.secure, host, secure)
        return plain_changed or secure_changed

    def _ordered_problems(self) -> tuple[Problem, ...]:
        with_problems = sorted(
            self._unit_problems.items(), key=lambda item: self._units[item[0]].ingress.age_key
        )
        route_losers = [loser for found in self._host_losers.values() for loser in found.routes]
        route_losers.sort(key=lambda loser: route_claim_order(loser[0]))
        tls_losers = [loser for found in self._host_losers.values() for loser in found.tls]
        tls_losers.sort(key=lambda loser: tls_claim_order(loser[0]))
        ordered = [problem for _, problems in with_problems for problem in problems]
        ordered.extend(problem for _, problem in route_losers)
        ordered.extend(problem for _, problem in tls_losers)
        return tuple(dict.fromkeys(ordered))
