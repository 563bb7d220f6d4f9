"""The quarantine: what an Envoy rejected although our checks passed it, left out until it changes.

Envoy rejects a whole response when one value in it breaks a rule, and keeps its old
configuration; a new Envoy never goes live. The translator's checks (`envoy/checked.py`) keep
everything they know of out; this is the backstop for what they miss. Roles:

- **Who detects**: the xDS server. Each stream reports a NACK with what the rejected response
  carried and what that Envoy had accepted before; the cache records it (`/debug/nacks`, the
  metric, the log) and hands the record to its verdict listener, the publisher.
- **Who decides**: this class, owned by the publisher, which owns what is published. It keeps
  a set of *units* left out, each a `Unit` (type, resource name, and for a RouteConfiguration or
  the HTTPS listener the fqdn of one virtual host or filter chain), with the content version
  Envoy rejected.
- **Granularity**: a whole resource for clusters, ClusterLoadAssignments and secrets (each is one
  Service port, one Service's endpoints, one Secret); one virtual host or filter chain inside a
  RouteConfiguration or `ingress_https`, which hold every tenant's. Our own listener
  `ingress_http` and a RouteConfiguration as a whole are never left out: that would punish
  everyone for one.

How the culprit is found, cheapest first (see `envoy/blame.py` for Envoy's messages):

1. The resource: the one Envoy's message names (printed in text format, or as `Error
   adding/updating cluster(s) NAME`), else the only one of the rejected response that is still
   published at the rejected version; else nothing is attributed (logged, shown as such).
2. Inside a composite resource: the virtual host (filter chain) at the index a broken `validate`
   rule names; else **bisection** over the parts that differ from what this Envoy last
   accepted (every part when it accepted none), in the resource the message names, or in every
   rejected resource of the type when it names none. A bisection is per type, over the whole
   table (`ingress_http` and `ingress_https` together): the client holds what it accepted plus
   what the response carried, and the stream sends every resource of a rejected diff again with
   the next change (`xds/stream.py`), so each verdict is about the published table as a whole.
   Each round publishes a *probe*: the rejected table with some of the suspects *withheld*
   (reverted to the bytes that Envoy accepted, or left out if they are new), so no Envoy ever
   loses what it had. Invariant: with `cleared` the suspects shown harmless, "accepted +
   cleared" was accepted and "accepted + cleared + suspects" was rejected. A probe adds the
   first half of the suspects; an ACK clears that half, a NACK makes it the suspects (and, if
   the message names a resource, only its parts). One suspect left is the culprit. Every Envoy
   gets the probes (a verdict from any of them counts, if its response was all probe); a build
   that changes the type's resources ends the bisection (the next NACK starts a new one, from
   what was accepted meanwhile). ACKs are only heard for a type while it is being bisected.

Leaving out: a held unit is removed from the translator's output by `apply` on every build and
republish (a part is cut out of its resource on the wire, `envoy/blame.py`), and by `admits` on
the EDS fast path. A held ClusterLoadAssignment is absent, so streams send an empty one (the
Service has no endpoints); a held secret is filtered inside the translation, so the chain that
names it goes too (it would hold `ingress_https` warming) and its host's owner is told.

Release: a unit is left out only while the translator produces the very bytes Envoy rejected.
When its owner changes (or goes away) the unit is released and the new value published: a
fixed object is tried again, a still-broken one is caught again. So the quarantine never holds
more than what the current configuration contains, and `limit` caps it besides (an Envoy that
rejects everything must not make the controller withdraw everything). One Envoy's NACK counts
for all: the fleet is assumed to run one Envoy version.

Not attributed (logged as `nack.unattributed`, shown in `/debug/nacks`): several whole resources
rejected in one response by a message naming none of them, and a composite resource rejected
without a changed part (our own `ingress_http` listener, or the resource's frame).

No clock and no network: it returns whether what is published must change, and the publisher
republishes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from controlplane.dag import Origin
from controlplane.envoy import (
    COMPOSITE_TYPES,
    Parts,
    named_resources,
    part_index,
    split_parts,
    summarize,
)
from controlplane.typeurls import LISTENER_TYPE, ROUTE_TYPE, TYPE_NAMES
from controlplane.xds import NackRecord, Resource, version_of

__all__ = ["Quarantine", "Quarantined", "Unit"]

log = structlog.get_logger(__name__)

_KINDS = {
    "cds": "cluster",
    "eds": "ClusterLoadAssignment",
    "sds": "secret",
    "lds": "listener",
    "rds": "RouteConfiguration",
}
_PART_KINDS = {ROUTE_TYPE: "virtual host", LISTENER_TYPE: "filter chain"}

OwnerOf = Callable[["Unit"], Origin | None]


@dataclass(frozen=True, slots=True)
class Unit:
    """What can be left out: a resource, or one part (`part`: an fqdn) of a composite one."""

    type_url: str
    name: str
    part: str = ""

    def describe(self) -> str:
        kind = _KINDS.get(TYPE_NAMES.get(self.type_url, ""), self.type_url)
        if self.part:
            return f"{_PART_KINDS.get(self.type_url, 'part')} {self.part} of {kind} {self.name}"
        return f"{kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A unit left out because an Envoy rejected it, until its bytes change."""

    unit: Unit
    version: str
    """The content version of the bytes Envoy rejected (of the part, for a part)."""
    owner: Origin | None
    reason: str
    """Envoy's message, summarized."""
    node_id: str
    since: float
    cause: NackRecord = field(compare=False, repr=False)

    def describe(self) -> str:
        """One sentence for a status or a problem."""
        return f"Envoy rejected {self.unit.describe()}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `/debug/quarantine` (and of `contained` in `/debug/nacks`)."""
        owner = self.owner
        return {
            "type_url": self.unit.type_url,
            "resource": self.unit.name,
            "part": self.unit.part,
            "owner": None if owner is None else f"{owner.kind} {owner.namespace}/{owner.name}",
            "version": self.version,
            "reason": self.reason,
            "node_id": self.node_id,
            "since": self.since,
        }


Part = tuple[str, str]
"""(resource name, part key) within a type being bisected."""


@dataclass
class _Bisection:
    """One composite type being bisected (see the module docstring)."""

    type_url: str
    rejected: dict[str, bytes]
    """The published table when the NACK came: name → encoded resource."""
    parts: dict[str, Parts]
    accepted: dict[str, dict[str, bytes]]
    """name → key → the part's bytes this Envoy had accepted."""
    changed: frozenset[Part]
    suspects: list[Part]
    cause: NackRecord
    cleared: set[Part] = field(default_factory=set)
    probe: frozenset[Part] = frozenset()
    probe_bodies: dict[str, bytes] = field(default_factory=dict)
    probe_versions: dict[str, str] = field(default_factory=dict)
    rounds: int = 0

    def show(self, included: frozenset[Part]) -> None:
        """Publish a probe: the rejected table with only `included` of the suspects (and the
        cleared) as rejected, the other changed parts as the Envoy had them."""
        self.probe = included
        shown = frozenset(self.cleared | included)
        bodies: dict[str, bytes] = {}
        for name, parts in self.parts.items():
            bodies[name] = parts.join(partial(self._choose, name, shown))
        self.probe_bodies = bodies
        self.probe_versions = {name: version_of(body) for name, body in bodies.items()}
        self.rounds += 1

    def _choose(self, name: str, shown: frozenset[Part], key: str, body: bytes) -> bytes | None:
        part = (name, key)
        if part not in self.changed or part in shown:
            return body
        return self.accepted.get(name, {}).get(key)  # withheld: what Envoy had, if anything

    def field_of(self, part: Part) -> bytes:
        return self.parts[part[0]].by_key()[part[1]]

    def answers(self, resources: Mapping[str, str]) -> bool:
        """Is a response carrying `resources` (name → version) all probe?"""
        versions = self.probe_versions
        return bool(resources) and all(versions.get(n) == v for n, v in resources.items())


class Quarantine:
    """The units left out of what is published; see the module docstring."""

    def __init__(self, *, limit: int = 1024, history: int = 8) -> None:
        self.limit = limit
        self._history_size = history
        self._held: dict[Unit, Quarantined] = {}
        # type → name → part → entry: what `apply` needs, without a walk of everything held
        self._index: dict[str, dict[str, dict[str, Quarantined]]] = {}
        self._bisections: dict[str, _Bisection] = {}
        self._history: dict[tuple[str, str], OrderedDict[str, bytes]] = {}
        self._generation: dict[str, int] = {}
        self._applied: dict[str, tuple[Mapping[str, bytes], int, Mapping[str, bytes]]] = {}
        self._unattributed: deque[tuple[NackRecord, str]] = deque(maxlen=64)
        self.ack_types: frozenset[str] = frozenset()
        """The types being bisected: their ACKs are verdicts on probes."""

    @property
    def held(self) -> Mapping[Unit, Quarantined]:
        """Every unit left out now."""
        return self._held

    def entries(self) -> tuple[Quarantined, ...]:
        """Every unit left out now, in a stable order."""
        return tuple(sorted(self._held.values(), key=lambda q: _unit_order(q.unit)))

    def bisecting(self) -> tuple[str, ...]:
        """The type URL of each type being bisected."""
        return tuple(sorted(self._bisections))

    # -- what is published --------------------------------------------------------------------

    def apply(self, type_url: str, bodies: Mapping[str, bytes]) -> Mapping[str, bytes]:
        """What to publish of `bodies` (the translator's, name → encoded resource): the held
        units left out, or released when their bytes changed or went away; a probe in place
        of a resource being bisected. `bodies` itself when nothing applies to the type."""
        held = self._index.get(type_url)
        if not held and type_url not in self._bisections:
            return bodies
        last = self._applied.get(type_url)
        if last is not None and last[0] is bodies and last[1] == self._generation.get(type_url, 0):
            return last[2]
        out = dict(bodies)
        for name, by_part in list((held or {}).items()):
            body = bodies.get(name)
            if body is None:
                for entry in list(by_part.values()):
                    self._release(entry, "gone")
                continue
            kept = self._leave_out(type_url, name, body, by_part)
            if kept is None:
                del out[name]
            else:
                out[name] = kept
        bisection = self._bisections.get(type_url)
        if bisection is not None:
            if out != bisection.rejected:
                # A build changed the type: the next NACK starts over from there.
                log.info("nack.bisection_ended", type=TYPE_NAMES.get(type_url, type_url))
                self._end_bisection(bisection)
            else:
                out.update(bisection.probe_bodies)
        self._applied[type_url] = (bodies, self._generation.get(type_url, 0), out)
        return out

    def _leave_out(
        self, type_url: str, name: str, body: bytes, by_part: Mapping[str, Quarantined]
    ) -> bytes | None:
        whole = by_part.get("")
        if whole is not None:
            if version_of(body) == whole.version:
                return None
            self._release(whole, "changed")
            return body
        parts = split_parts(type_url, body)
        if parts is None:
            return body
        present = set(parts.keys())
        for part, entry in list(by_part.items()):
            if part not in present:
                self._release(entry, "gone")

        def choose(key: str, field_bytes: bytes) -> bytes | None:
            entry = by_part.get(key)
            if entry is None or entry.unit not in self._held:
                return field_bytes
            if version_of(field_bytes) == entry.version:
                return None
            self._release(entry, "changed")
            return field_bytes

        kept = parts.join(choose)
        if type_url == LISTENER_TYPE and len(kept) == len(parts.head) + len(parts.tail):
            return None  # a listener without filter chains is no listener
        return kept

    def admits(self, type_url: str, name: str, version: str) -> bool:
        """May this version of a whole resource be published (the EDS fast path)?"""
        entry = self._index.get(type_url, {}).get(name, {}).get("")
        if entry is None:
            return True
        if entry.version == version:
            return False
        self._release(entry, "changed")
        return True

    def remember(self, resource: Resource) -> None:
        """A composite resource was published: keep its bytes a while, so that when an Envoy
        rejects a later version, the parts it had accepted can be told apart."""
        if resource.type_url not in COMPOSITE_TYPES:
            return
        versions = self._history.setdefault((resource.type_url, resource.name), OrderedDict())
        versions[resource.version] = resource.body
        versions.move_to_end(resource.version)
        while len(versions) > self._history_size:
            versions.popitem(last=False)

    # -- verdicts -----------------------------------------------------------------------------

    def nacked(
        self, record: NackRecord, published: Mapping[str, Resource], owner_of: OwnerOf
    ) -> bool:
        """An Envoy rejected a response; `published` is the type's table. True when what is
        published must change (a unit left out, or a probe to publish)."""
        type_url = record.type_url
        rejected: dict[str, str] = {}
        for name, version in record.resources.items():
            resource = published.get(name)
            if resource is not None and resource.version == version:
                rejected[name] = version
        if not rejected:
            return False  # about what is no longer published: its successor speaks for itself
        if len(self._held) >= self.limit:
            # Not one more probe either: a bisection that cannot end in a hold would only
            # start again with the next NACK.
            log.error("nack.quarantine_full", limit=self.limit)
            self._not_attributed(record, f"the quarantine is full ({self.limit})")
            return False
        names = named_resources(record.message, rejected)
        bisection = self._bisections.get(type_url)
        if bisection is not None:
            if not bisection.answers(record.resources):
                return False  # not all probe: no verdict on it
            return self._verdict(bisection, record, names, owner_of)
        if not names and len(rejected) == 1:
            names = list(rejected)
        if type_url in COMPOSITE_TYPES:
            return self._investigate(record, published, names, owner_of)
        if not names:
            self._not_attributed(record, "the message names no resource of the response")
            return False
        changed = False
        for name in names:
            changed |= self._hold(Unit(type_url, name), rejected[name], record, owner_of)
        return changed

    def acked(
        self,
        type_url: str,
        resources: Mapping[str, str],
        published: Mapping[str, Resource],
        owner_of: OwnerOf,
    ) -> bool:
        """An Envoy accepted a response of a type being bisected."""
        bisection = self._bisections.get(type_url)
        if bisection is None or not bisection.answers(resources):
            return False
        return self._verdict(bisection, None, [], owner_of)

    def _investigate(
        self,
        record: NackRecord,
        published: Mapping[str, Resource],
        names: list[str],
        owner_of: OwnerOf,
    ) -> bool:
        type_url = record.type_url
        table = {name: resource.body for name, resource in published.items()}
        parts = {name: p for name, body in table.items() if (p := split_parts(type_url, body))}
        if names:
            hint = self._indexed(type_url, record.message, names[0], parts)
            if hint is not None:
                return self._hold(Unit(type_url, *hint[0]), version_of(hint[1]), record, owner_of)
        accepted: dict[str, dict[str, bytes]] = {}
        for name in table:
            version = record.accepted.get(name)
            history: Mapping[str, bytes] = self._history.get((type_url, name), {})
            body = history.get(version) if version else None
            old = split_parts(type_url, body) if body is not None else None
            accepted[name] = old.by_key() if old is not None else {}
        blamed = names[:1] or list(record.resources)
        changed = [
            (name, key)
            for name in sorted(blamed)
            if name in parts
            for key, part in parts[name].parts
            if key and accepted[name].get(key) != part
        ]
        if not changed:
            self._not_attributed(record, "no virtual host or filter chain changed")
            return False
        bisection = _Bisection(
            type_url, table, parts, accepted, frozenset(changed), changed, record
        )
        self._bisections[type_url] = bisection
        log.warning(
            "nack.bisecting",
            type=TYPE_NAMES.get(type_url, type_url),
            resources=sorted(blamed),
            suspects=len(changed),
            node_id=record.node_id,
        )
        return self._advance(bisection, owner_of)

    @staticmethod
    def _indexed(
        type_url: str, message: str, name: str, parts: Mapping[str, Parts]
    ) -> tuple[Part, bytes] | None:
        """The part a broken `validate` rule is in, when Envoy's message says which."""
        index = part_index(type_url, message)
        resource = parts.get(name)
        if index is None or resource is None or index >= len(resource.parts):
            return None
        key, field_bytes = resource.parts[index]
        return ((name, key), field_bytes) if key else None

    def _verdict(
        self,
        bisection: _Bisection,
        record: NackRecord | None,
        names: list[str],
        owner_of: OwnerOf,
    ) -> bool:
        """An Envoy answered a probe: rejected (`record`, naming `names`) or accepted."""
        if record is None:
            bisection.cleared |= bisection.probe
            bisection.suspects = [p for p in bisection.suspects if p not in bisection.probe]
            return self._advance(bisection, owner_of)
        type_url = bisection.type_url
        if names:
            probe_parts = {
                name: p
                for name, body in bisection.probe_bodies.items()
                if (p := split_parts(type_url, body))
            }
            hint = self._indexed(type_url, record.message, names[0], probe_parts)
            if hint is not None and hint[0] in bisection.changed:
                self._end_bisection(bisection)
                return self._hold(Unit(type_url, *hint[0]), version_of(hint[1]), record, owner_of)
        bisection.suspects = [
            p for p in bisection.suspects if p in bisection.probe and (not names or p[0] in names)
        ]
        return self._advance(bisection, owner_of)

    def _advance(self, bisection: _Bisection, owner_of: OwnerOf) -> bool:
        """Conclude, or publish the next probe. Always changes what is published."""
        suspects = bisection.suspects
        type_url = bisection.type_url
        self._end_bisection(bisection)
        if not suspects:
            self._not_attributed(bisection.cause, "rejected without any part that changed")
            return True
        if len(suspects) == 1:
            part = suspects[0]
            version = version_of(bisection.field_of(part))
            self._hold(Unit(type_url, *part), version, bisection.cause, owner_of)
            log.info("nack.bisected", resource=part[0], part=part[1], rounds=bisection.rounds)
            return True
        bisection.show(frozenset(suspects[: len(suspects) // 2]))
        self._bisections[type_url] = bisection
        self._changed(type_url)
        return True

    def _end_bisection(self, bisection: _Bisection) -> None:
        if self._bisections.get(bisection.type_url) is bisection:
            del self._bisections[bisection.type_url]
        self._changed(bisection.type_url)

    def _hold(self, unit: Unit, version: str, record: NackRecord, owner_of: OwnerOf) -> bool:
        entry = self._held.get(unit)
        if entry is not None and entry.version == version:
            return False
        if len(self._held) >= self.limit:
            log.error("nack.quarantine_full", limit=self.limit, unit=unit.describe())
            self._not_attributed(record, f"the quarantine is full ({self.limit})")
            return False
        entry = Quarantined(
            unit,
            version,
            owner_of(unit),
            summarize(record.message),
            record.node_id,
            record.time,
            record,
        )
        self._held[unit] = entry
        self._index.setdefault(unit.type_url, {}).setdefault(unit.name, {})[unit.part] = entry
        self._changed(unit.type_url)
        owner = entry.owner
        log.warning(
            "nack.quarantined",
            type=TYPE_NAMES.get(unit.type_url, unit.type_url),
            resource=unit.name,
            part=unit.part,
            owner=None if owner is None else str(owner),
            reason=entry.reason,
            node_id=record.node_id,
        )
        return True

    def _release(self, entry: Quarantined, why: str) -> None:
        unit = entry.unit
        if self._held.get(unit) is not entry:
            return
        del self._held[unit]
        by_name = self._index[unit.type_url]
        by_part = by_name[unit.name]
        del by_part[unit.part]
        if not by_part:
            del by_name[unit.name]
        if not by_name:
            del self._index[unit.type_url]
        self._changed(unit.type_url)
        log.info(
            "nack.released",
            type=TYPE_NAMES.get(unit.type_url, unit.type_url),
            resource=unit.name,
            part=unit.part,
            why=why,
        )

    def _changed(self, type_url: str) -> None:
        self._generation[type_url] = self._generation.get(type_url, 0) + 1
        self.ack_types = frozenset(self._bisections)

    def _not_attributed(self, record: NackRecord, why: str) -> None:
        self._unattributed.append((record, why))
        log.warning(
            "nack.unattributed",
            type=TYPE_NAMES.get(record.type_url, record.type_url),
            node_id=record.node_id,
            why=why,
            error=summarize(record.message),
        )

    # -- for the debug endpoint ---------------------------------------------------------------

    def outcome(self, record: NackRecord) -> dict[str, Any]:
        """What came of one NACK: units left out, a bisection in progress, or why nothing."""
        contained = [q.as_dict() for q in self.entries() if q.cause is record]
        bisecting = [
            {"type_url": b.type_url, "suspects": len(b.suspects), "rounds": b.rounds}
            for b in self._bisections.values()
            if b.cause is record
        ]
        why = next((why for cause, why in self._unattributed if cause is record), None)
        return {"contained": contained, "bisecting": bisecting, "unattributed": why}


def _unit_order(unit: Unit) -> tuple[str, str, str]:
    return (unit.type_url, unit.name, unit.part)
