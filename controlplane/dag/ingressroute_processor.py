"""`IngressRouteProcessor`: the IngressRoute half of the builder: compilations, fqdn claims, walks.

An IngressRoute build compiles every IngressRoute, settles fqdn claims among roots, walks the
delegations from every serving root and derives hosts and statuses (`reference.py` does exactly
that, over everything). Each step is kept here and redone only where its inputs changed:

- Compiling (`compile_unit`) depends on the IngressRoute and on what it reads through its
  `BuildInputs` (Services, Secrets, the certificate-delegation targets of the Secrets it names,
  whether each IngressRoute it delegates to is a root), all recorded by the recording view
  (`reads.py`); a unit is compiled again when something it read changed. The two cross-object
  facts are kept here (`_roots`, `_certificate_targets`) and their changed keys are reported
  like changed objects. A result equal to the previous one keeps the previous object.
- Fqdn claims: per fqdn, the set of compiled roots claiming it. Only fqdns whose claimants were
  compiled again, or whose oldest Ingress claimant changed (`IngressProcessor.oldest`, passed
  to `update` with the hosts where it changed), are settled again (the oldest claimant, of
  either kind, keeps it; the other roots are invalid).
- The walk. The walk from one root reads and writes only objects statically reachable from it
  (its *closure*: every delegation and tcpproxy target of every compiled object reached,
  missing targets included). `walk_delegations` couples roots only through objects they
  share (the order of a shared object's warnings follows the order roots are walked in). So the
  serving roots are partitioned into *components* (roots linked by sharing an object), and
  `walk_delegations` runs per component, its roots in fqdn order: the same walks, in the same
  order, on the same objects as the full build, hence the same outcome. A component is walked
  again when a root joins or leaves it, or an object in a member's closure changed; all its
  members' closures are then recomputed, which splits or merges components as needed.
- Statuses are derived again for the objects whose unit, fqdn claim or component changed;
  hosts for the roots of the components walked again.

What stays proportional to the data: a component is re-walked whole, so a delegate shared by
every root (one component of N roots) makes every change to it cost a walk of N roots, as the
full build pays.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from controlplane.dag.delegation import HostContent, Outcome, walk_delegations
from controlplane.dag.ingressroute import (
    compile_unit,
    is_ours,
    root_hosts,
    route_status,
    settle_fqdn,
)
from controlplane.dag.ingressroute_spec import CompiledIngressRoute, claimed_fqdn
from controlplane.dag.options import BuildOptions
from controlplane.dag.reads import (
    BuildInputs,
    Dependents,
    RecordingInputs,
    certificate_targets,
    discard,
    in_store_order,
    replace_host,
)
from controlplane.dag.status import KIND, StatusWarning
from controlplane.dag.types import (
    ObjectStatus,
    Problem,
    SecureVirtualHost,
    VirtualHost,
    internal_error_description,
)
from controlplane.model import AgeKey, IngressRoute, NamespacedName, ObjectSet


@dataclass(frozen=True, slots=True)
class _Compilation:
    """One IngressRoute and what compiling it gave."""

    route: IngressRoute
    ours: bool
    result: CompiledIngressRoute | str | None
    """Compiled, or why it is invalid; None when not ours."""
    problems: tuple[Problem, ...]

    @property
    def compiled(self) -> CompiledIngressRoute | None:
        return self.result if isinstance(self.result, CompiledIngressRoute) else None

    claim: str | None = None
    """The fqdn it claims as a root, valid or not (`claimed_fqdn`)."""


def _claim(
    route: IngressRoute, result: CompiledIngressRoute | str | None, options: BuildOptions
) -> str | None:
    """`claimed_fqdn` of an IngressRoute of ours (None when not ours). A compiled root has
    settled it already: its virtual host's fqdn is `claimed_fqdn`'s very computation."""
    if result is None:
        return None
    if isinstance(result, CompiledIngressRoute):
        return None if result.virtual_host is None else result.virtual_host.fqdn
    return claimed_fqdn(route, options)


@dataclass(frozen=True, slots=True)
class _Component:
    roots: tuple[NamespacedName, ...]
    outcome: Outcome
    contents: Mapping[NamespacedName, HostContent]
    """What each root's host serves, by root."""


class IngressRouteProcessor:
    """IngressRoute hosts, statuses and problems, kept up to date build after build."""

    def __init__(self, options: BuildOptions) -> None:
        self.options = options
        self.plain: dict[str, VirtualHost] = {}
        self.secure: dict[str, SecureVirtualHost] = {}
        self.statuses: dict[NamespacedName, ObjectStatus] = {}
        self._units: dict[NamespacedName, _Compilation] = {}
        self._compiled: dict[NamespacedName, CompiledIngressRoute] = {}
        self._dependents: Dependents[NamespacedName] = Dependents()
        self._roots: dict[NamespacedName, IngressRoute] = {}
        """IngressRoutes of our class that are roots (`BuildInputs.roots`)."""
        self._certificate_targets: Mapping[NamespacedName, frozenset[str]] = {}
        self._claims: dict[str, set[NamespacedName]] = {}
        self._claim_of: dict[NamespacedName, str] = {}
        self._owner: dict[str, NamespacedName] = {}
        """fqdn → the root that owns it (no entry when an older Ingress claims the fqdn)."""
        self._ingress_claims: Mapping[str, AgeKey] = {}
        """fqdn → `age_key` of the oldest Ingress claiming it (see `update`)."""
        self._served: dict[NamespacedName, str] = {}
        """Serving root → its fqdn (the inverse of `_owner`)."""
        self._taken: dict[NamespacedName, str] = {}
        """Roots that lost their fqdn → the status description saying so."""
        self._closure: dict[NamespacedName, frozenset[NamespacedName]] = {}
        self._containing: dict[NamespacedName, set[NamespacedName]] = {}
        """Object → serving roots whose closure holds it."""
        self._component: dict[NamespacedName, _Component] = {}
        self._host_of: dict[NamespacedName, str] = {}
        """Serving root → the fqdn it emitted hosts for."""
        self._unit_problems: dict[NamespacedName, tuple[Problem, ...]] = {}
        self._walk_problems: dict[NamespacedName, Problem] = {}
        """Roots whose delegation walk hit a bug → the problem reporting it."""
        self._problems: tuple[Problem, ...] = ()
        self._problems_stale = False

    # -- the update ----------------------------------------------------------------------

    def update(
        self,
        objects: ObjectSet,
        changes: Mapping[str, Collection[NamespacedName]],
        ingress_claims: Mapping[str, AgeKey] | None = None,
        ingress_claims_changed: Collection[str] = (),
    ) -> tuple[set[str], set[NamespacedName]]:
        """Bring the IngressRoute hosts and statuses up to date; returns the fqdns whose hosts
        or owner changed and the keys whose status changed (added, replaced or removed).

        `ingress_claims`: host → the `age_key` of the oldest Ingress claiming it (kept by the
        `IngressProcessor`, which reports the hosts whose entry changed since the last update
        in `ingress_claims_changed`): an fqdn an older Ingress claims is owned by no root."""
        if ingress_claims is not None:
            self._ingress_claims = ingress_claims
        changes = dict(changes)
        changed_routes = changes.get("ingress_routes", ())
        store = objects.ingress_routes
        changes["roots"] = self._update_roots(objects, in_store_order(changed_routes, store))
        if changes.get("certificate_delegations"):
            changes["certificate_targets"] = self._update_certificate_targets(objects)
        dirty = self._dependents.affected(changes)
        dirty.update(changed_routes)
        inputs = BuildInputs(objects, self._roots, self._certificate_targets)
        recording = RecordingInputs(inputs)
        changed_units: set[NamespacedName] = set()
        for key in in_store_order(dirty, store):
            if self._compile(key, objects, recording):
                changed_units.add(key)
        taken_changed, roots_changed, owners_changed = self._claim_fqdns(
            in_store_order(changed_units, store), ingress_claims_changed
        )
        affected_keys = changed_units | taken_changed
        roots = set(roots_changed)
        for key in affected_keys:
            roots.update(self._containing.get(key, ()))
            if key in self._served or key in self._closure:
                roots.add(key)
        walked, in_closures = self._rewalk(roots, store)
        fqdns = self._update_hosts(in_store_order(walked, store)) | owners_changed
        statuses = self._update_statuses(in_store_order(affected_keys | in_closures, store))
        return fqdns, statuses

    def problems(self) -> tuple[Problem, ...]:
        """The problems of the IngressRoute part, in the order the full build finds them."""
        if self._problems_stale:
            ordered = [p for key in sorted(self._unit_problems) for p in self._unit_problems[key]]
            ordered += (self._walk_problems[key] for key in sorted(self._walk_problems))
            self._problems = tuple(dict.fromkeys(ordered))
            self._problems_stale = False
        return self._problems

    # -- compiling -----------------------------------------------------------------------

    def _update_roots(
        self, objects: ObjectSet, changed_routes: Collection[NamespacedName]
    ) -> set[NamespacedName]:
        """Follow which IngressRoutes are roots; the keys of roots added, changed or removed."""
        changed: set[NamespacedName] = set()
        for key in changed_routes:
            route = objects.ingress_routes.get(key)
            if route is not None and route.is_root and is_ours(route, objects, self.options):
                self._roots[key] = route
                changed.add(key)
            elif self._roots.pop(key, None) is not None:
                changed.add(key)
        return changed

    def _update_certificate_targets(self, objects: ObjectSet) -> set[NamespacedName]:
        """Recompute who may use which certificate; the Secrets whose entry changed."""
        old = self._certificate_targets
        new = certificate_targets(objects)
        self._certificate_targets = new
        return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}

    def _compile(self, key: NamespacedName, objects: ObjectSet, recording: RecordingInputs) -> bool:
        """Compile one IngressRoute again; whether anything later steps read of it changed."""
        old = self._units.pop(key, None)
        route = objects.ingress_routes.get(key)
        if route is None:
            self._dependents.forget(key)
            self._compiled.pop(key, None)
            self._set_unit_problems(key, ())
            return old is not None
        recording.start()
        ours = is_ours(route, recording.view.objects, self.options)
        result: CompiledIngressRoute | str | None = None
        problems: tuple[Problem, ...] = ()
        if ours:
            result, problems = compile_unit(route, recording.view, self.options)
        self._dependents.record(key, recording.stop())
        if old is not None and old.result is not None and old.result == result:
            result = old.result
        unit = _Compilation(route, ours, result, problems, _claim(route, result, self.options))
        self._units[key] = unit
        compiled = unit.compiled
        if compiled is not None:
            self._compiled[key] = compiled
        else:
            self._compiled.pop(key, None)
        self._set_unit_problems(key, problems)
        return old is None or old.route is not route or old.result is not result or not ours

    def _set_unit_problems(self, key: NamespacedName, problems: tuple[Problem, ...]) -> None:
        old = self._unit_problems.get(key, ())
        if problems:
            self._unit_problems[key] = problems
        else:
            self._unit_problems.pop(key, None)
        if old != problems:
            self._problems_stale = True

    # -- fqdn claims ---------------------------------------------------------------------

    def _claim_fqdns(
        self, changed_units: Collection[NamespacedName], ingress_claims_changed: Iterable[str]
    ) -> tuple[set[NamespacedName], set[NamespacedName], set[str]]:
        """Settle the fqdns the changed units claim or claimed, and those whose oldest Ingress
        claimant changed. Returns the keys whose lost claim changed, the roots that started or
        stopped serving, and the fqdns whose owner changed (an IngressRoute-owned fqdn is
        closed to Ingresses, served or not)."""
        fqdns = {fqdn for fqdn in ingress_claims_changed if fqdn in self._claims}
        for key in changed_units:
            old_fqdn = self._claim_of.pop(key, None)
            if old_fqdn is not None:
                discard(self._claims, old_fqdn, key)
                fqdns.add(old_fqdn)
            unit = self._units.get(key)
            fqdn = unit.claim if unit is not None else None
            if fqdn is not None:
                self._claims.setdefault(fqdn, set()).add(key)
                self._claim_of[key] = fqdn
                fqdns.add(fqdn)
        taken_changed: set[NamespacedName] = set()
        for key in changed_units:
            if key not in self._claim_of and self._taken.pop(key, None) is not None:
                taken_changed.add(key)
        old_owners = {fqdn: self._owner.pop(fqdn, None) for fqdn in fqdns}
        for old_owner in old_owners.values():
            if old_owner is not None:
                self._served.pop(old_owner, None)
        roots_changed: set[NamespacedName] = set()
        owners_changed: set[str] = set()
        for fqdn, old_owner in old_owners.items():
            claimants = self._claims.get(fqdn, set())
            owner = None
            losers: dict[NamespacedName, str] = {}
            if claimants:
                owner, losers = settle_fqdn(
                    fqdn,
                    (self._units[key].route for key in claimants),
                    self._ingress_claims.get(fqdn),
                )
                if owner is not None:  # None: an older Ingress claims the fqdn
                    self._owner[fqdn] = owner
                    if owner in self._compiled:  # an invalid owner keeps it, serving nothing
                        self._served[owner] = fqdn
            if owner != old_owner:
                roots_changed.update(key for key in (old_owner, owner) if key is not None)
                owners_changed.add(fqdn)
            for key in claimants:
                reason = losers.get(key)
                if self._taken.get(key) != reason:
                    taken_changed.add(key)
                    if reason is None:
                        del self._taken[key]
                    else:
                        self._taken[key] = reason
        return taken_changed, roots_changed, owners_changed

    @property
    def owners(self) -> Mapping[str, NamespacedName]:
        """fqdn → the root IngressRoute that owns it (the oldest claimant, valid or not, when
        no older Ingress claims the fqdn)."""
        return self._owner

    # -- walking -------------------------------------------------------------------------

    def _rewalk(
        self, roots: set[NamespacedName], store: Mapping[NamespacedName, IngressRoute]
    ) -> tuple[set[NamespacedName], set[NamespacedName]]:
        """Walk again the components of `roots` (and whatever they now join). Returns the roots
        walked (served or not any more) and every object in their old and new closures.
        `store`: the IngressRoutes, whose order the walks follow (see `in_store_order`)."""
        pending = set(roots)
        for root in roots:
            component = self._component.get(root)
            if component is not None:
                pending.update(component.roots)
        walked: set[NamespacedName] = set()
        objects: set[NamespacedName] = set()
        while pending:
            root = pending.pop()
            walked.add(root)
            self._component.pop(root, None)
            if self._walk_problems.pop(root, None) is not None:
                self._problems_stale = True
            old = self._closure.pop(root, frozenset())
            objects |= old
            for key in old:
                discard(self._containing, key, root)
            if root not in self._served:
                continue
            closure = self._closure_of(root)
            self._closure[root] = closure
            objects |= closure
            for key in closure:
                sharing = self._containing.setdefault(key, set())
                for other in sharing:
                    if other not in walked:
                        pending.add(other)
                sharing.add(root)
        for roots_together in self._components(walked, store):
            self._walk(roots_together)
        return walked, objects

    def _closure_of(self, root: NamespacedName) -> frozenset[NamespacedName]:
        """Every object a walk from `root` could read: delegation and tcpproxy targets of every
        compiled object reachable, missing and invalid targets included."""
        seen = {root}
        stack = [root]
        while stack:
            compiled = self._compiled.get(stack.pop())
            if compiled is None:
                continue
            targets = [delegation.target for delegation in compiled.delegations]
            if compiled.tcp_proxy is not None and compiled.tcp_proxy.delegate is not None:
                targets.append(compiled.tcp_proxy.delegate)
            for target in targets:
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return frozenset(seen)

    def _components(
        self, walked: set[NamespacedName], store: Mapping[NamespacedName, IngressRoute]
    ) -> list[tuple[NamespacedName, ...]]:
        """The serving roots among `walked`, grouped by shared objects, each in fqdn order."""
        left = {root for root in walked if root in self._served}
        components = []
        for start in in_store_order(set(left), store):
            if start not in left:
                continue  # in the component of a root met before
            left.discard(start)
            members = {start}
            stack = [start]
            while stack:
                for key in self._closure[stack.pop()]:
                    for other in self._containing.get(key, ()):
                        if other not in members:
                            members.add(other)
                            stack.append(other)
            left -= members
            components.append(tuple(sorted(members, key=self._served.__getitem__)))
        return components

    def _walk(self, roots: tuple[NamespacedName, ...]) -> None:
        invalid: dict[NamespacedName, str] = {}
        units, taken = self._units, self._taken
        for root in roots:
            for key in self._closure[root]:
                # `_invalid_before_walk`, written out: this runs for every object walked
                unit = units.get(key)
                if unit is None or not unit.ours:
                    continue
                reason = unit.result if isinstance(unit.result, str) else taken.get(key)
                if reason is not None:
                    invalid[key] = reason
        try:
            outcome = walk_delegations(roots, self._compiled, invalid)
        except Exception as error:  # a bug costs these roots, never the build
            description = internal_error_description(error)
            outcome = Outcome({**invalid, **dict.fromkeys(roots, description)}, frozenset(), {}, ())
            for root in roots:
                self._walk_problems[root] = Problem.internal_error(KIND, *root, error)
            self._problems_stale = True
        contents = {content.root: content for content in outcome.hosts}
        component = _Component(roots, outcome, contents)
        for root in roots:
            self._component[root] = component

    def _invalid_before_walk(self, key: NamespacedName) -> str | None:
        unit = self._units.get(key)
        if unit is None or not unit.ours:
            return None
        if isinstance(unit.result, str):
            return unit.result
        return self._taken.get(key)

    # -- results -------------------------------------------------------------------------

    def _update_hosts(self, walked: Iterable[NamespacedName]) -> set[str]:
        """Derive the hosts of the roots walked again; returns the fqdns whose hosts changed."""
        old_fqdns: set[str] = set()
        new: dict[str, tuple[VirtualHost | None, SecureVirtualHost | None]] = {}
        for root in walked:
            old_fqdn = self._host_of.pop(root, None)
            if old_fqdn is not None:
                old_fqdns.add(old_fqdn)
            component = self._component.get(root)
            content = component.contents.get(root) if component is not None else None
            if content is not None:
                new[content.fqdn] = root_hosts(content, self._compiled[root])
                self._host_of[root] = content.fqdn
        changed: set[str] = set()
        for fqdn in old_fqdns - new.keys():
            if (self.plain.pop(fqdn, None), self.secure.pop(fqdn, None)) != (None, None):
                changed.add(fqdn)
        for fqdn, (plain, secure) in new.items():
            if replace_host(self.plain, fqdn, plain) | replace_host(self.secure, fqdn, secure):
                changed.add(fqdn)
        return changed

    def _update_statuses(self, keys: Iterable[NamespacedName]) -> set[NamespacedName]:
        changed = set()
        for key in keys:
            status = self._status(key)
            old = self.statuses.get(key)
            if status is None:
                if old is not None:
                    del self.statuses[key]
                    changed.add(key)
            elif old is None or not (old is status or old == status):
                self.statuses[key] = status
                changed.add(key)
        return changed

    def _status(self, key: NamespacedName) -> ObjectStatus | None:
        unit = self._units.get(key)
        if unit is None or not unit.ours:
            return None
        result = unit.result
        reason = result if isinstance(result, str) else self._taken.get(key)
        outcome = None
        for root in self._containing.get(key, ()):
            outcome = self._component[root].outcome
            break
        if outcome is None:
            warnings: tuple[StatusWarning, ...] = ()
            return route_status(unit.route, reason, False, warnings, warnings)
        if reason is None:
            reason = outcome.invalid.get(key)
        return route_status(
            unit.route,
            reason,
            key in outcome.reached,
            result.warnings if isinstance(result, CompiledIngressRoute) else (),
            outcome.warnings.get(key, ()),
        )
