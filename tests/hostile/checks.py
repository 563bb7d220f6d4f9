"""What must hold for any set of hostile objects beside the good tenant (issue 9, item 7).

`check(hostile, mode, tally)` runs raw manifests through the production path (parsed as the
store parses them, `DagBuilder`, `Publisher.translate`, `Publisher.report`) together with the
good tenant, and raises `HostileFailure` (an AssertionError naming what broke) unless:

1. nothing raises: not the parse (a malformed object is skipped, as the store skips it), not the
   build (cold, and warm as an edit from the good tenant alone), not the translation; and nothing
   was merely contained either: no `internal error` status or problem, no value the translator
   could not even build;
2. the warm build, the cold build and the reference build (the test oracle) are equal, and a
   publisher that published the good tenant first now publishes, byte for byte, what a fresh one
   publishes;
3. every IngressRoute of our class has exactly one status, and nothing else has one;
4. no resource of the snapshot has a violation: each is decoded and checked whole by
   `violations()` (so rules spanning virtual hosts or filter chains are checked on the assembled
   resource), and each served key pair passes `check_key_pair`;
5. every value the translator left out names the object it came from;
6. the good tenant's resources are byte-identical to those of a build of the good tenant alone:
   its virtual hosts on both route configurations, its filter chain, clusters, secret and
   endpoints, and its statuses. Its Ingress's host is shared by design with other Ingresses
   (any Ingress may add paths, and TLS, to a host), so that host is compared only when no
   hostile Ingress names it.

With `envoy` (the binary), `check` also has `envoy --mode validate` accept the snapshot, and
with `translate=True` has `controlplane translate` print it for the same manifests
(`endtoend`).

`Mode` is how the controller runs: from files (loopback endpoints allowed, ExternalName off) or
in a cluster (local networks refused, ExternalName on, so its refusals are exercised).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from controlplane.addresses import refused_networks
from controlplane.dag import (
    DAG,
    INTERNAL_ERROR,
    BuildOptions,
    DagBuilder,
    SecureVirtualHost,
    StatusKind,
)
from controlplane.dag.certificates import check_key_pair
from controlplane.dag.classes import CLASS_ANNOTATIONS
from controlplane.dag.reference import reference_build
from controlplane.envoy import TranslateOptions
from controlplane.envoy.validation import violations
from controlplane.model import IngressRoute, KubeObject, ModelError, ObjectSet, parse_object
from controlplane.publisher import Publisher, PublishReport
from controlplane.store import Store
from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    MESSAGE_TYPES,
    ROUTE_TYPE,
    SECRET_TYPE,
)
from controlplane.xds import Snapshot

from .endtoend import Bodies, bodies, envoy_rejects, translate_differs
from .tenant import (
    GOOD_FQDN,
    GOOD_INGRESS_HOST,
    GOOD_NAMESPACE,
    collides_with_good_tenant,
    good_tenant,
)

JSON = dict[str, Any]


@dataclass(frozen=True)
class Mode:
    name: str
    build: BuildOptions
    translate: TranslateOptions


_LOCAL = refused_networks(local=True)
MODES = (
    Mode("files", BuildOptions(), TranslateOptions()),
    Mode(
        "cluster",
        BuildOptions(enable_external_name_services=True, refused_networks=_LOCAL),
        TranslateOptions(refused_endpoint_networks=_LOCAL),
    ),
)


class HostileFailure(AssertionError):
    """A property of `check` that did not hold: `kind` says which, `detail` how."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def expect(condition: object, kind: str, detail: str) -> None:
    if not condition:
        raise HostileFailure(kind, detail)


@dataclass
class Tally:
    """What the checks went through, for the bench's table."""

    examples: int = 0
    objects: int = 0
    unparseable: int = 0
    builds: int = 0
    resources: int = 0
    envoy_runs: int = 0
    translations: int = 0
    rejections: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    rejected_paths: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)
    """Examples that showed a known bug (`KNOWN_BUGS`), by bug."""


# --- the good tenant alone ------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    objects: ObjectSet
    dag: DAG
    parts: Mapping[str, bytes]
    statuses: Mapping[tuple[str, str, str], Any]


@cache
def baseline(mode: Mode) -> Baseline:
    """The good tenant built alone."""
    manifests = good_tenant()
    objects = _object_set(manifests)
    dag = DagBuilder().build(objects, mode.build)
    publisher = Publisher(mode.translate)
    snapshot = publisher.translate(dag, objects)
    report = publisher.report(dag, snapshot)
    statuses = {s.key: s.status for s in report.statuses}
    expect(
        {s.current_status for s in report.statuses} == {StatusKind.VALID} and not report.problems,
        "good tenant",
        f"is not valid on its own: {report.statuses} {report.problems}",
    )
    return Baseline(objects, dag, good_parts(bodies(snapshot), None), statuses)


def good_parts(encoded: Bodies, names: Baseline | None) -> dict[str, bytes]:
    """The good tenant's pieces of a translation, by a key naming each: its virtual hosts, its
    filter chain, and the clusters, secrets and endpoints of the good-only build (`names`;
    None: every one in the namespace `good`)."""
    parts: dict[str, bytes] = {}
    for name, body in encoded.get(ROUTE_TYPE, {}).items():
        config = MESSAGE_TYPES[ROUTE_TYPE].FromString(body)
        for host in (GOOD_FQDN, GOOD_INGRESS_HOST):
            found = [v for v in config.virtual_hosts if v.name == host]  # type: ignore[attr-defined]
            if found:
                parts[f"{name} virtual host {host}"] = b"".join(
                    v.SerializeToString(deterministic=True) for v in found
                )
    https = encoded.get(LISTENER_TYPE, {}).get("ingress_https")
    if https is not None:
        listener = MESSAGE_TYPES[LISTENER_TYPE].FromString(https)
        chains = [
            chain
            for chain in listener.filter_chains  # type: ignore[attr-defined]
            if GOOD_FQDN in chain.filter_chain_match.server_names
        ]
        if chains:
            parts[f"ingress_https filter chain {GOOD_FQDN}"] = b"".join(
                c.SerializeToString(deterministic=True) for c in chains
            )
    for type_url in (CLUSTER_TYPE, SECRET_TYPE, ENDPOINT_TYPE):
        wanted = None if names is None else {k for k in names.parts if k.startswith(type_url)}
        for name, body in encoded.get(type_url, {}).items():
            key = f"{type_url} {name}"
            if (wanted is None and name.startswith(GOOD_NAMESPACE + "/")) or (
                wanted is not None and key in wanted
            ):
                parts[key] = body
    return parts


# --- one check ------------------------------------------------------------------------------


def _parse(manifests: Sequence[JSON], tally: Tally | None = None) -> list[KubeObject]:
    """Objects as the store keeps them: a malformed one is skipped (and counted)."""
    parsed = []
    for raw in manifests:
        try:
            parsed.append(parse_object(raw))
        except ModelError:
            if tally is not None:
                tally.unparseable += 1
    return parsed


def _object_set(manifests: Sequence[JSON], tally: Tally | None = None) -> ObjectSet:
    store = Store()
    for obj in _parse(manifests, tally):
        store.apply(obj)
    return store.object_set()


def ours(route: IngressRoute, options: BuildOptions) -> bool:
    """Whether an IngressRoute is of our class: the first class annotation present names it,
    or there is none."""
    for annotation in CLASS_ANNOTATIONS:
        value = route.metadata.annotations.get(annotation)
        if value is not None:
            return value == options.ingress_class
    return True


def check(
    hostile: Sequence[JSON],
    mode: Mode,
    tally: Tally | None = None,
    *,
    envoy: str | None = None,
    translate: bool = False,
    tolerate_known: bool = True,
) -> Snapshot:
    """Assert every property of the module docstring for `hostile` beside the good tenant;
    with `envoy` (the binary), also that Envoy accepts the snapshot. Returns the snapshot."""
    tally = tally if tally is not None else Tally()
    hostile = [raw for raw in hostile if not collides_with_good_tenant(raw)]
    tally.examples += 1
    tally.objects += len(hostile)
    tally.kinds.update(str(raw.get("kind")) for raw in hostile)
    alone = baseline(mode)
    objects = _object_set([*good_tenant(), *hostile], tally)

    cold = DagBuilder().build(objects, mode.build)
    builder = DagBuilder()
    builder.build(alone.objects, mode.build)
    warm = builder.build(objects, mode.build)
    tally.builds += 2
    expect(warm == cold, "warm build", "an edit from the good tenant alone differs from cold")
    expect(
        reference_build(objects, mode.build) == cold,
        "reference build",
        "the test oracle differs from the builder",
    )
    expect(warm.clusters() == cold.clusters(), "warm build", "clusters() differ")
    expect(warm.secrets() == cold.secrets(), "warm build", "secrets() differ")

    publisher = Publisher(mode.translate)
    snapshot = publisher.translate(cold, objects)
    report = publisher.report(cold, snapshot)
    warm_publisher = Publisher(mode.translate)
    warm_publisher.translate(alone.dag, alone.objects)
    warm_snapshot = warm_publisher.translate(warm, objects)
    encoded = bodies(snapshot)
    expect(
        bodies(warm_snapshot) == encoded,
        "warm translation",
        "a publisher that published the good tenant first publishes other bytes",
    )
    expect(
        set(warm_publisher.report(warm, warm_snapshot).rejections) == set(report.rejections),
        "warm translation",
        "rejections differ from a fresh publisher's",
    )

    _check_statuses(objects, report, mode, tally)
    _check_resources(encoded, tally)
    known: set[str] = set()  # the known bugs this example shows (counted once each)
    _check_rejections(report, objects, tally, known, tolerate_known)
    _check_names(cold, objects, known, tolerate_known)
    _check_good_tenant(encoded, objects, report, mode, hostile, known, tolerate_known)
    tally.known.update(known)
    if envoy is not None:
        tally.envoy_runs += 1
        rejected = envoy_rejects(envoy, snapshot)
        expect(rejected is None, "envoy --mode validate", str(rejected))
    if translate and mode.name == "files":
        tally.translations += 1
        differs = translate_differs([*good_tenant(), *hostile], encoded)
        expect(differs is None, "translate", str(differs))
    return snapshot


def _check_statuses(objects: ObjectSet, report: PublishReport, mode: Mode, tally: Tally) -> None:
    keys = [s.key for s in report.statuses]
    expect(len(keys) == len(set(keys)), "statuses", f"more than one status for an object: {keys}")
    expected = {
        ("IngressRoute", namespace, name)
        for (namespace, name), route in objects.ingress_routes.items()
        if ours(route, mode.build)
    }
    missing, extra = expected - set(keys), set(keys) - expected
    expect(not missing and not extra, "statuses", f"missing {missing}, unexpected {extra}")
    for status in report.statuses:
        tally.statuses[status.current_status.value] += 1
        expect(
            not status.description.startswith(INTERNAL_ERROR),
            "contained exception",
            f"{status.key}: {status.description}",
        )
    for problem in report.problems:
        expect(
            problem.field != INTERNAL_ERROR,
            "contained exception",
            f"{problem.kind} {problem.namespace}/{problem.name}: {problem.reason}",
        )


def _check_resources(encoded: Bodies, tally: Tally) -> None:
    for type_url, resources in encoded.items():
        for name, body in resources.items():
            tally.resources += 1
            message = MESSAGE_TYPES[type_url].FromString(body)
            found = violations(message)
            expect(
                not found,
                "violation",
                f"{type_url.rsplit('.', 1)[-1]} {name!r}: "
                + "; ".join(f"{v.path}: {v.message}" for v in found[:3]),
            )
            if type_url == SECRET_TYPE:
                certificate = message.tls_certificate  # type: ignore[attr-defined]
                reason = check_key_pair(
                    certificate.certificate_chain.inline_bytes,
                    certificate.private_key.inline_bytes,
                )
                expect(reason is None, "violation", f"secret {name!r}: {reason}")


def _check_rejections(
    report: PublishReport,
    objects: ObjectSet,
    tally: Tally,
    known: set[str],
    tolerate_known: bool,
) -> None:
    for rejection in report.rejections:
        tally.rejections += 1
        tally.rejected_paths[_shape(rejection.path) or rejection.reason[:40]] += 1
        expect(
            rejection.origin is not None,
            "rejection without origin",
            f"{rejection.resource}: {rejection.describe()}",
        )
        expect(
            not rejection.reason.startswith("cannot be translated"),
            "contained exception",
            f"translating {rejection.origin}: {rejection.reason}",
        )


def _shape(path: str) -> str:
    """A rejection's path without indices, for counting."""
    return "".join(ch for ch in path if not ch.isdigit()).replace("[]", "")


def _check_good_tenant(
    encoded: Bodies,
    objects: ObjectSet,
    report: PublishReport,
    mode: Mode,
    hostile: Sequence[JSON],
    known: set[str],
    tolerate_known: bool,
) -> None:
    alone = baseline(mode)
    parts = good_parts(encoded, alone)
    ingresses = [raw for raw in hostile if raw.get("kind") == "Ingress"]
    shared = GOOD_INGRESS_HOST in json.dumps(ingresses, ensure_ascii=False).casefold()
    compared = {
        key for key in alone.parts if not (shared and key.endswith(f"host {GOOD_INGRESS_HOST}"))
    }
    changed = [key for key in sorted(compared) if parts.get(key) != alone.parts[key]]
    statuses = {s.key: s.status for s in report.statuses}
    restated = [key for key, status in alone.statuses.items() if statuses.get(key) != status]
    if not changed and not restated:
        return
    bugs = None
    if tolerate_known:
        bugs = _known_bugs(parts, compared, statuses, changed, restated, objects, mode, hostile)
    if bugs is not None:
        known.update(bugs)
        return
    expect(not changed, "good tenant", f"changed: {changed}")
    key = restated[0]
    expect(False, "good tenant status", f"{key}: {statuses.get(key)}")


KNOWN_BUGS: dict[str, str] = {}
"""Bugs the checks found that are not fixed yet, with the test that reproduces each (xfail):
none now. `check` counts an example that shows exactly one of them (`Tally.known`) instead of
failing, so the fuzz keeps looking for new ones; `tolerate_known=False` fails on them too."""


def _known_bugs(
    parts: Mapping[str, bytes],
    compared: set[str],
    statuses: Mapping[tuple[str, str, str], Any],
    changed: list[str],
    restated: list[tuple[str, str, str]],
    objects: ObjectSet,
    mode: Mode,
    hostile: Sequence[JSON],
) -> set[str] | None:
    """The known bugs that explain every change to the good tenant, or None if some change is
    explained by none of them. With no open bug, every change is a failure."""
    return None


def _check_names(dag: DAG, objects: ObjectSet, known: set[str], tolerate_known: bool) -> None:
    """One Envoy cluster name per cluster, one EDS name per Service port: otherwise one Service's
    endpoints (or policy) serve another's routes."""
    by_name: dict[str, Any] = {}
    by_eds_name: dict[str, tuple[str, str, str]] = {}
    ambiguous = []
    for host in (*dag.virtual_hosts, *dag.secure_virtual_hosts):
        weighted = [w for route in host.routes for w in route.clusters]
        if isinstance(host, SecureVirtualHost) and host.tcp_proxy is not None:
            weighted += host.tcp_proxy.clusters
        for cluster in (w.cluster for w in weighted):
            if by_name.setdefault(cluster.name, cluster) != cluster:
                ambiguous.append(f"cluster {cluster.name!r}")
            if cluster.external_name is None:
                port = (cluster.namespace, cluster.service, cluster.port_name)
                if by_eds_name.setdefault(cluster.eds_name, port) != port:
                    ambiguous.append(f"EDS name {cluster.eds_name!r}")
    expect(not ambiguous, "ambiguous name", ", ".join(sorted(set(ambiguous))))
