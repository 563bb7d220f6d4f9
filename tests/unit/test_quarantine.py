"""The quarantine, driven through the publisher by a simulated Envoy (pure: no network, no clock).

`FakeEnvoy` follows a state-of-the-world stream the way Envoy does: it is sent the resources of
a type that differ from what it was last sent, and rejects a response (naming what Envoy's
message would name) when a rule says so, else accepts it. Each test checks who is blamed, what
is published meanwhile, and when a unit comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import kube_manifests
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from prometheus_client import CollectorRegistry

from controlplane.dag import (
    DAG,
    BuildOptions,
    Cluster,
    HealthCheck,
    Origin,
    PathMatch,
    PathMatchKind,
    Route,
    SecureVirtualHost,
    TLSSecret,
    VirtualHost,
    WeightedCluster,
)
from controlplane.envoy import TranslateOptions
from controlplane.metrics import pipeline_metrics
from controlplane.model import ObjectSet
from controlplane.publisher import Publisher, Quarantine, Unit
from controlplane.runtime import Runtime
from controlplane.typeurls import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SECRET_TYPE,
)
from controlplane.xds import NackRecord, SnapshotCache

HOSTILE = "hostile"

# name, message → an error, or None when Envoy takes it
Rule = Callable[[str, object], str | None]


def host(fqdn: str, namespace: str = "team", service: str = "web") -> VirtualHost:
    cluster = Cluster(namespace, service, 80)
    route = Route(PathMatch(PathMatchKind.PREFIX, "/"), (WeightedCluster(cluster),))
    return VirtualHost(fqdn, (route,), origin=Origin("IngressRoute", namespace, fqdn))


def secure(fqdn: str, namespace: str = "team", service: str = "web") -> SecureVirtualHost:
    plain = host(fqdn, namespace, service)
    secret = TLSSecret("team", "tls", b"cert", b"key")
    return SecureVirtualHost(fqdn, plain.routes, secret=secret, origin=plain.origin)


def dag(*hosts: VirtualHost, secure_hosts: tuple[SecureVirtualHost, ...] = ()) -> DAG:
    return DAG(virtual_hosts=hosts, secure_virtual_hosts=secure_hosts)


def _evil(route: object) -> bool:
    """Routes to a Service called evil… are what the simulated Envoy refuses."""
    cluster: str = route.route.cluster  # type: ignore[attr-defined]
    return cluster.split("/")[1].startswith("evil")


def regex_error(name: str, message: object) -> str | None:
    """A semantic error naming nothing, like Envoy's `missing ): (` for a bad RE2 pattern."""
    assert isinstance(message, route_pb2.RouteConfiguration)
    for vhost in message.virtual_hosts:
        for route in vhost.routes:
            if _evil(route):
                return "missing ): ("
    return None


def validate_error(name: str, message: object) -> str | None:
    """A broken `validate` rule: the resource printed, and the index of the virtual host."""
    assert isinstance(message, route_pb2.RouteConfiguration)
    for index, vhost in enumerate(message.virtual_hosts):
        if any(_evil(r) for r in vhost.routes):
            return (
                f'goo.gle/debugstr \nname: "{name}"\nvirtual_hosts {{\n}}\n: Proto constraint '
                f"validation failed (RouteConfigurationValidationError.VirtualHosts[{index}]: "
                "embedded message failed validation | caused by HeaderValueValidationError.Value:"
                ' value does not match regex pattern "^[^\\x00\\n\\r]*$")'
            )
    return None


class FakeEnvoy:
    """One SotW stream of one type, as Envoy answers it."""

    def __init__(self, publisher: Publisher, type_url: str, rule: Rule, node: str = "e1") -> None:
        self.publisher = publisher
        self.type_url = type_url
        self.rule = rule
        self.node = node
        self.sent: dict[str, str] = {}
        self.accepted: dict[str, str] = {}
        self.verdicts: list[bool] = []

    def step(self) -> bool:
        """Take the next response, if there is one; True if there was."""
        snapshot = self.publisher.snapshot
        assert snapshot is not None
        current = snapshot.resources(self.type_url)
        response = {n: r for n, r in current.items() if self.sent.get(n) != r.version}
        if not response:
            return False
        self.sent.update({n: r.version for n, r in response.items()})
        message_type = {
            ROUTE_TYPE: route_pb2.RouteConfiguration,
            CLUSTER_TYPE: cluster_pb2.Cluster,
            LISTENER_TYPE: listener_pb2.Listener,
        }
        for name in sorted(response):
            decoded = message_type[self.type_url].FromString(response[name].body)
            error = self.rule(name, decoded)
            if error is not None:
                record = NackRecord(
                    self.node,
                    self.type_url,
                    "v",
                    error,
                    13,
                    0.0,
                    {n: r.version for n, r in response.items()},
                    dict(self.accepted),
                )
                self.verdicts.append(False)
                self.publisher.nacked(record)
                self.publisher.republish()
                return True
        self.accepted.update({n: r.version for n, r in response.items()})
        self.verdicts.append(True)
        if self.type_url in self.publisher.ack_types:
            self.publisher.acked(
                self.node, self.type_url, {n: r.version for n, r in response.items()}
            )
            self.publisher.republish()
        return True

    def settle(self, limit: int = 50) -> None:
        for _ in range(limit):
            if not self.step():
                return
        raise AssertionError("the stream never settled")

    def hosts(self, name: str) -> list[str]:
        snapshot = self.publisher.snapshot
        assert snapshot is not None
        body = snapshot.resources(ROUTE_TYPE)[name].body
        return [v.name for v in route_pb2.RouteConfiguration.FromString(body).virtual_hosts]


def publisher() -> Publisher:
    changes: list[int] = []
    return Publisher(
        TranslateOptions(),
        metrics=pipeline_metrics(CollectorRegistry()),
        on_change=lambda: changes.append(1),
    )


def good_hosts(count: int) -> list[VirtualHost]:
    return [host(f"h{i:02}.local") for i in range(count)]


def test_bisection_finds_the_one_virtual_host_envoy_rejects() -> None:
    pub = publisher()
    hosts = good_hosts(16)
    hosts[11] = host("h11.local", HOSTILE, "evil")
    pub.publish(dag(*hosts), ObjectSet())
    envoy = FakeEnvoy(pub, ROUTE_TYPE, regex_error)
    envoy.settle()
    assert set(pub.quarantine.held) == {Unit(ROUTE_TYPE, "ingress_http", "h11.local")}
    assert envoy.verdicts[0] is False and envoy.verdicts[-1] is True
    # A new Envoy (nothing accepted) bisects nothing: it is served what is published.
    fresh = FakeEnvoy(pub, ROUTE_TYPE, regex_error, node="e2")
    fresh.settle()
    assert fresh.verdicts == [True]
    assert "h11.local" not in fresh.hosts("ingress_http")
    assert len(fresh.hosts("ingress_http")) == 15
    # log2(16) rounds or so, not one per host
    assert 3 <= len(envoy.verdicts) <= 7

    report = pub.report(pub._dag or dag(), pub.snapshot)  # type: ignore[arg-type]
    (entry,) = report.quarantined
    assert entry.owner == Origin("IngressRoute", HOSTILE, "h11.local")
    assert entry.reason == "missing ): ("
    assert any(
        p.namespace == HOSTILE and "Envoy rejected virtual host h11.local" in p.reason
        for p in report.problems
    )


def test_probes_withhold_changes_never_what_envoy_had() -> None:
    pub = publisher()
    hosts = good_hosts(6)
    pub.publish(dag(*hosts), ObjectSet())
    envoy = FakeEnvoy(pub, ROUTE_TYPE, regex_error)
    envoy.settle()
    before = set(envoy.hosts("ingress_http"))
    # Three tenants change at once; one of them is hostile.
    hosts[1] = host("h01.local", "team", "other")
    hosts[3] = host("h03.local", HOSTILE, "evil")
    hosts.append(host("new.local", "team", "other"))
    pub.publish(dag(*hosts), ObjectSet())
    probes: list[set[str]] = []
    while envoy.step():
        if pub.quarantine.bisecting():
            probes.append(set(envoy.hosts("ingress_http")))
    assert set(pub.quarantine.held) == {Unit(ROUTE_TYPE, "ingress_http", "h03.local")}
    # Every probe kept every host Envoy had (withheld changes are reverted, not dropped) ...
    assert len(probes) >= 2
    assert all(before <= hosts_seen for hosts_seen in probes)
    # ... and in the end the culprit is left out, every other change is in.
    assert set(envoy.hosts("ingress_http")) == {h.fqdn for h in hosts} - {"h03.local"}
    assert envoy.verdicts[-1] is True


def test_the_index_envoy_reports_needs_no_bisection() -> None:
    pub = publisher()
    hosts = good_hosts(8)
    hosts[5] = host("h05.local", HOSTILE, "evil")
    pub.publish(dag(*hosts), ObjectSet())
    envoy = FakeEnvoy(pub, ROUTE_TYPE, validate_error)
    envoy.settle()
    assert envoy.verdicts == [False, True]
    assert set(pub.quarantine.held) == {Unit(ROUTE_TYPE, "ingress_http", "h05.local")}
    (entry,) = pub.quarantine.entries()
    assert entry.reason.startswith("Proto constraint validation failed: HeaderValueValidation")


def test_with_both_route_configurations_in_one_response_either_may_hold_the_culprit() -> None:
    # A new Envoy is sent ingress_http and ingress_https at once; the message names neither.
    pub = publisher()
    hosts = good_hosts(4)
    secure_hosts = (secure("s0.local"), secure("s1.local", HOSTILE, "evil"), secure("s2.local"))
    pub.publish(dag(*hosts, secure_hosts=secure_hosts), ObjectSet())
    envoy = FakeEnvoy(pub, ROUTE_TYPE, regex_error)
    envoy.settle()
    assert set(pub.quarantine.held) == {Unit(ROUTE_TYPE, "ingress_https", "s1.local")}
    assert envoy.hosts("ingress_http") == [h.fqdn for h in hosts]
    assert envoy.hosts("ingress_https") == ["s0.local", "s2.local"]
    assert envoy.verdicts[-1] is True
    assert pub.quarantine.bisecting() == ()


def test_a_cluster_named_in_the_message_is_left_out_and_released_when_fixed() -> None:
    pub = publisher()
    bad = Cluster(HOSTILE, "api", 80, health_check=HealthCheck(path="/bad"))
    route = Route(PathMatch(PathMatchKind.PREFIX, "/"), (WeightedCluster(bad),))
    hosts = [*good_hosts(2), VirtualHost("evil.local", (route,))]
    pub.publish(dag(*hosts), ObjectSet())

    def rule(name: str, message: object) -> str | None:
        assert isinstance(message, cluster_pb2.Cluster)
        if message.health_checks and message.health_checks[0].http_health_check.path == "/bad":
            return f'goo.gle/debugonly \nname: "{name}"\n: Proto constraint validation failed (x)'
        return None

    envoy = FakeEnvoy(pub, CLUSTER_TYPE, rule)
    envoy.settle()
    assert set(pub.quarantine.held) == {Unit(CLUSTER_TYPE, bad.name)}
    snapshot = pub.snapshot
    assert snapshot is not None
    assert bad.name not in snapshot.resources(CLUSTER_TYPE)
    assert len(snapshot.resources(CLUSTER_TYPE)) == 1  # the good Service's
    report = pub.report(dag(*hosts), snapshot)
    assert [(p.kind, p.namespace, p.name) for p in report.problems] == [("Service", HOSTILE, "api")]
    # The owner fixes it: a new cluster, tried again (and the old one's entry is released).
    fixed = Cluster(HOSTILE, "api", 80, health_check=HealthCheck(path="/ok"))
    route = Route(PathMatch(PathMatchKind.PREFIX, "/"), (WeightedCluster(fixed),))
    pub.publish(dag(*hosts[:2], VirtualHost("evil.local", (route,))), ObjectSet())
    assert pub.quarantine.held == {}
    envoy.settle()
    assert envoy.verdicts[-1] is True
    snapshot = pub.snapshot
    assert snapshot is not None and fixed.name in snapshot.resources(CLUSTER_TYPE)


def test_a_held_virtual_host_is_released_when_it_changes_or_goes() -> None:
    pub = publisher()
    hosts = good_hosts(3)
    hosts[1] = host("h01.local", HOSTILE, "evil")
    pub.publish(dag(*hosts), ObjectSet())
    FakeEnvoy(pub, ROUTE_TYPE, validate_error).settle()
    assert len(pub.quarantine.held) == 1
    # An unrelated change keeps it held (its bytes are the same).
    pub.publish(dag(*hosts, host("more.local")), ObjectSet())
    assert len(pub.quarantine.held) == 1
    # The owner changes it: released, and published as it is now.
    hosts[1] = host("h01.local", HOSTILE, "better")
    pub.publish(dag(*hosts), ObjectSet())
    assert pub.quarantine.held == {}
    envoy = FakeEnvoy(pub, ROUTE_TYPE, validate_error)
    envoy.settle()
    assert envoy.verdicts == [True] and "h01.local" in envoy.hosts("ingress_http")
    # Held, then deleted: the entry goes with it.
    hosts[1] = host("h01.local", HOSTILE, "evil")
    pub.publish(dag(*hosts), ObjectSet())
    envoy.settle()
    assert len(pub.quarantine.held) == 1
    pub.publish(dag(hosts[0], hosts[2]), ObjectSet())
    assert pub.quarantine.held == {}


def test_a_build_during_a_bisection_ends_it_and_the_next_nack_starts_over() -> None:
    pub = publisher()
    hosts = good_hosts(8)
    hosts[2] = host("h02.local", HOSTILE, "evil")
    pub.publish(dag(*hosts), ObjectSet())
    envoy = FakeEnvoy(pub, ROUTE_TYPE, regex_error)
    assert envoy.step()  # the NACK: a bisection starts
    assert pub.quarantine.bisecting() == (ROUTE_TYPE,)
    pub.publish(dag(*hosts, host("edit.local")), ObjectSet())
    assert pub.quarantine.bisecting() == ()
    envoy.settle()
    assert set(pub.quarantine.held) == {Unit(ROUTE_TYPE, "ingress_http", "h02.local")}
    assert "edit.local" in envoy.hosts("ingress_http")


def test_the_quarantine_is_capped() -> None:
    pub = Publisher(
        TranslateOptions(),
        metrics=pipeline_metrics(CollectorRegistry()),
        quarantine=Quarantine(limit=1),
        on_change=lambda: None,
    )
    hosts = good_hosts(4)
    hosts[0] = host("h00.local", HOSTILE, "evil")
    hosts[3] = host("h03.local", HOSTILE, "evil2")
    pub.publish(dag(*hosts), ObjectSet())
    envoy = FakeEnvoy(pub, ROUTE_TYPE, regex_error)
    for _ in range(10):
        envoy.step()
    assert len(pub.quarantine.held) == 1
    # Full: the next NACK starts no bisection (one that cannot end would only start again).
    assert pub.quarantine.bisecting() == ()
    assert envoy.verdicts[-1] is False
    assert not envoy.step()


def test_a_nack_of_what_is_no_longer_published_changes_nothing() -> None:
    pub = publisher()
    pub.publish(dag(*good_hosts(2)), ObjectSet())
    record = NackRecord("e1", ROUTE_TYPE, "v", "missing ): (", 13, 0.0, {"ingress_http": "old"})
    pub.nacked(record)
    assert pub.quarantine.held == {} and pub.quarantine.bisecting() == ()
    unnamed = NackRecord("e1", ENDPOINT_TYPE, "v", "bad", 13, 0.0, {})
    pub.nacked(unnamed)
    assert pub.quarantine.outcome(record) == {
        "contained": [],
        "bisecting": [],
        "unattributed": None,
    }


def test_outcome_names_what_a_nack_led_to() -> None:
    pub = publisher()
    hosts = good_hosts(2)
    hosts[0] = host("h00.local", HOSTILE, "evil")
    pub.publish(dag(*hosts), ObjectSet())
    envoy = FakeEnvoy(pub, ROUTE_TYPE, validate_error)
    envoy.step()
    (entry,) = pub.quarantine.entries()
    outcome = pub.quarantine.outcome(entry.cause)
    assert outcome["contained"] == [entry.as_dict()]
    assert entry.as_dict()["owner"] == f"IngressRoute {HOSTILE}/h00.local"
    assert entry.as_dict()["part"] == "h00.local"


def test_a_filter_chain_of_the_https_listener_is_found_by_bisection() -> None:
    pub = publisher()
    secure_hosts = (*(secure(f"s{i}.local") for i in range(5)), secure("evil.local", HOSTILE))
    pub.publish(dag(host("plain.local"), secure_hosts=secure_hosts), ObjectSet())

    def overlapping(name: str, message: object) -> str | None:
        assert isinstance(message, listener_pb2.Listener)
        for chain in message.filter_chains:
            if "evil.local" in chain.filter_chain_match.server_names:
                return (
                    f"Error adding/updating listener(s) {name}: error adding listener "
                    "'0.0.0.0:8443': multiple filter chains with overlapping matching rules "
                    "are defined\n"
                )
        return None

    envoy = FakeEnvoy(pub, LISTENER_TYPE, overlapping)
    envoy.settle()
    assert set(pub.quarantine.held) == {Unit(LISTENER_TYPE, "ingress_https", "evil.local")}
    snapshot = pub.snapshot
    assert snapshot is not None
    https = listener_pb2.Listener.FromString(
        snapshot.resources(LISTENER_TYPE)["ingress_https"].body
    )
    assert [c.filter_chain_match.server_names[0] for c in https.filter_chains] == [
        f"s{i}.local" for i in range(5)
    ]
    (entry,) = pub.quarantine.entries()
    assert entry.describe().startswith(
        "Envoy rejected filter chain evil.local of listener ingress_https: Error adding"
    )
    assert entry.owner == Origin("IngressRoute", HOSTILE, "evil.local")


def test_the_only_chain_left_out_takes_the_listener_with_it() -> None:
    pub = publisher()
    pub.publish(
        dag(host("plain.local"), secure_hosts=(secure("evil.local", HOSTILE),)), ObjectSet()
    )

    def refuse(name: str, message: object) -> str | None:
        assert isinstance(message, listener_pb2.Listener)
        return (
            f"Error adding/updating listener(s) {name}: no"
            if message.filter_chains[0].filter_chain_match.server_names
            else None
        )

    FakeEnvoy(pub, LISTENER_TYPE, refuse).settle()
    snapshot = pub.snapshot
    assert snapshot is not None
    assert list(snapshot.resources(LISTENER_TYPE)) == ["ingress_http"]


async def test_a_rejected_assignment_is_left_out_also_on_the_eds_fast_path() -> None:
    def slice_of(address: str) -> dict[str, object]:
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-1",
                "namespace": "team",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [address]}],
        }

    runtime = Runtime(
        build_options=BuildOptions(),
        translate_options=TranslateOptions(),
        cache=SnapshotCache(),
        metrics=pipeline_metrics(CollectorRegistry()),
    )
    runtime.store.apply_raw(kube_manifests.service("web", "team", [("http", 80, 8080)]))
    runtime.store.apply_raw(
        {
            "apiVersion": "contour.heptio.com/v1beta1",
            "kind": "IngressRoute",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {
                "virtualhost": {"fqdn": "web.local"},
                "routes": [{"match": "/", "services": [{"name": "web", "port": 80}]}],
            },
        }
    )
    runtime.store.apply_raw(slice_of("10.0.0.1"))
    runtime.source_synced_event().set()
    await runtime.rebuild()
    await asyncio.sleep(0)
    eds = runtime.cache.snapshot.resources(ENDPOINT_TYPE)
    (name,) = eds
    message = (
        f'goo.gle/debugstr \ncluster_name: "{name}"\nendpoints {{\n}}\n: Proto constraint '
        "validation failed (ClusterLoadAssignmentValidationError.Endpoints[0]: x)"
    )
    record = NackRecord("e1", ENDPOINT_TYPE, "v", message, 13, 0.0, {name: eds[name].version})
    runtime.publisher.nacked(record)
    await asyncio.sleep(0)  # the runtime republishes on the next turn of the loop
    assert set(runtime.publisher.quarantine.held) == {Unit(ENDPOINT_TYPE, name)}
    assert name not in runtime.cache.snapshot.resources(ENDPOINT_TYPE)  # streams get it empty
    assert runtime.last_build is not None
    assert [p.reason[:40] for p in runtime.last_build.problems] == [
        "not served: Envoy rejected ClusterLoadAs"
    ]
    # The fast path with the same endpoints: still left out. New ones: tried again.
    runtime.refresh_endpoints(("team", "web"))
    assert name not in runtime.cache.snapshot.resources(ENDPOINT_TYPE)
    runtime.store.apply_raw(slice_of("10.0.0.2"))
    assert name in runtime.cache.snapshot.resources(ENDPOINT_TYPE)
    assert runtime.publisher.quarantine.held == {}


def test_a_rejected_secret_takes_its_filter_chain_with_it() -> None:
    pub = publisher()
    other = SecureVirtualHost(
        "s1.local",
        host("s1.local").routes,
        secret=TLSSecret("team", "other", b"cert2", b"key2"),
        origin=Origin("IngressRoute", "team", "s1"),
    )
    pub.publish(dag(secure_hosts=(secure("s0.local"), other)), ObjectSet())
    snapshot = pub.snapshot
    assert snapshot is not None
    secrets = snapshot.resources(SECRET_TYPE)
    bad = "team/other"
    assert bad in secrets
    message = "Failed to load private key from <inline>, Cause: KEY_VALUES_MISMATCH"
    pub.nacked(NackRecord("e1", SECRET_TYPE, "v", message, 13, 0.0, {bad: secrets[bad].version}))
    pub.republish()
    snapshot = pub.snapshot
    assert snapshot is not None
    assert bad not in snapshot.resources(SECRET_TYPE)
    https = listener_pb2.Listener.FromString(
        snapshot.resources(LISTENER_TYPE)["ingress_https"].body
    )
    assert [c.filter_chain_match.server_names[0] for c in https.filter_chains] == ["s0.local"]
    report = pub.last
    assert report is not None
    assert ("Secret", "team", "other") in {(p.kind, p.namespace, p.name) for p in report.problems}
    # The host's owner is told why its host has no chain (a hand-made DAG has no statuses,
    # so it is a problem here; an IngressRoute gets a warning on its status).
    described = [p.reason for p in report.problems if (p.kind, p.name) == ("IngressRoute", "s1")]
    assert any("its TLS secret team/other is left out" in reason for reason in described)


def test_a_renewal_of_a_rejected_secret_is_tried_again_under_the_same_name() -> None:
    """The SDS name is the Secret's, whatever its material: the quarantine holds the rejected
    version only, so new material under the same name is published, and its chain with it."""
    pub = publisher()

    def with_secret(cert: bytes, key: bytes) -> DAG:
        hosts = (secure("s0.local"), secure("s1.local"))
        renewed = TLSSecret("team", "other", cert, key)
        return dag(secure_hosts=(hosts[0], replace(hosts[1], secret=renewed)))

    pub.publish(with_secret(b"cert2", b"key2"), ObjectSet())
    snapshot = pub.snapshot
    assert snapshot is not None
    listener = snapshot.resources(LISTENER_TYPE)["ingress_https"]
    rejected = snapshot.resources(SECRET_TYPE)["team/other"]
    message = "Failed to load private key from <inline>, Cause: KEY_VALUES_MISMATCH"
    pub.nacked(
        NackRecord("e1", SECRET_TYPE, "v", message, 13, 0.0, {"team/other": rejected.version})
    )
    pub.republish()
    assert pub.snapshot is not None and "team/other" not in pub.snapshot.resources(SECRET_TYPE)

    pub.publish(with_secret(b"cert3", b"key3"), ObjectSet())  # the Secret renewed
    snapshot = pub.snapshot
    assert snapshot is not None
    assert pub.quarantine.held == {}
    renewed = snapshot.resources(SECRET_TYPE)["team/other"]
    assert renewed.version != rejected.version
    assert snapshot.resources(LISTENER_TYPE)["ingress_https"].body == listener.body
