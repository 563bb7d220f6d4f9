"""From "service `home`, port 8080" to a `Cluster`: the part of the DAG both kinds share.

A backend reference resolves to a Cluster only when the Service exists and has the port (by
number or by name). Service annotations set the upstream protocol (`upstream-protocol.h2|h2c|tls`,
listing port numbers or names) and circuit-breaker thresholds (`max-connections`,
`max-pending-requests`, `max-requests`, `max-retries`); both the `contour.heptio.com/` and the
`projectcontour.io/` prefixes are read. A malformed annotation is reported as a `Problem` and
ignored; it never stops the Service from being used.

ExternalName Services are refused unless `--enable-external-name-services` is given: they can point
Envoy at any name, its own admin listener included. When they are enabled, an `externalName` that
leads back into Envoy's pod is still refused when `BuildOptions.refused_networks` says so (cluster
mode): an IP in those networks, however it is spelled (`127.1`, `::ffff:127.0.0.1`, `[::1]`), and,
when they hold loopback, a name of this host (`localhost`, `*.localhost`, the aliases of common
`/etc/hosts` files, `local.projectcontour.io`). The refusal is a `ServiceError` (whoever uses
the Service is invalid, or has a problem, with the usual `Service [name:port]` wording) that
carries a `Problem` on the Service itself. Names are not resolved: the DAG does no I/O, and DNS
answers change under it; docs/security.md says what that leaves to RBAC.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.addresses import NetworkSet, lenient_ip
from controlplane.dag.options import BuildOptions
from controlplane.dag.types import (
    NO_BREAKERS,
    CircuitBreakers,
    Cluster,
    HealthCheck,
    LoadBalancerPolicy,
    Problem,
    UpstreamProtocol,
    UpstreamValidation,
    annotation_field,
)
from controlplane.model import ObjectSet, Service

ANNOTATION_PREFIXES = ("contour.heptio.com/", "projectcontour.io/")
_PROTOCOLS = (UpstreamProtocol.H2, UpstreamProtocol.H2C, UpstreamProtocol.TLS)
_BREAKERS = ("max-connections", "max-pending-requests", "max-requests", "max-retries")
MAX_THRESHOLD = 2**32 - 1
"""Envoy's circuit-breaker thresholds are uint32."""

LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "localhost4",
        "localhost4.localdomain4",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
        "local.projectcontour.io",  # public DNS answers 127.0.0.1 (Contour refuses it too)
    }
)
"""Names that resolve to this host (besides `*.localhost`, RFC 6761)."""


class ServiceError(ValueError):
    """The backend cannot be used; `str()` is a sentence fit for a status. `problems` are
    findings about the Service itself, for whoever reports problems (they are log-only)."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Resolved:
    cluster: Cluster
    problems: tuple[Problem, ...] = ()


def _annotation(service: Service, suffix: str) -> str | None:
    return service.metadata.annotation(*(prefix + suffix for prefix in ANNOTATION_PREFIXES))


def has_policy_annotations(service: Service) -> bool:
    """Whether any annotation of `service` has one of our prefixes. Most Services have none,
    and then their upstream protocol is HTTP/1 and they set no circuit breaker: one pass over
    their annotations instead of seven lookups of the names we read."""
    annotations = service.metadata.annotations
    return bool(annotations) and any(key.startswith(ANNOTATION_PREFIXES) for key in annotations)


def upstream_protocol(service: Service, port_number: int, port_name: str) -> UpstreamProtocol:
    for protocol in _PROTOCOLS:
        value = _annotation(service, f"upstream-protocol.{protocol.value}")
        if value is None:
            continue
        listed = {item.strip() for item in value.split(",")}
        if str(port_number) in listed or (port_name and port_name in listed):
            return protocol
    return UpstreamProtocol.HTTP1


def circuit_breakers(service: Service) -> tuple[CircuitBreakers, tuple[Problem, ...]]:
    values: dict[str, int | None] = {}
    problems: list[Problem] = []
    for key in _BREAKERS:
        raw = _annotation(service, key)
        values[key.replace("-", "_")] = None
        if raw is None:
            continue
        try:
            number = int(raw)
            if not 0 <= number <= MAX_THRESHOLD:
                raise ValueError
        except ValueError:
            problems.append(
                Problem(
                    "Service",
                    service.namespace,
                    service.name,
                    annotation_field(ANNOTATION_PREFIXES[0] + key),
                    f'"{raw}" is not an integer in the range 0-{MAX_THRESHOLD}; ignored',
                )
            )
            continue
        values[key.replace("-", "_")] = number
    return CircuitBreakers(**values), tuple(problems)


def refused_external_name(external_name: str, refused: NetworkSet) -> str | None:
    """Why `external_name` leads where no backend may point (a phrase), or None if it does not."""
    if not refused:
        return None
    packed = lenient_ip(external_name)
    if packed is not None:
        network = refused.match(packed)
        return None if network is None else f"in {network}"
    name = external_name.strip().rstrip(".").lower()
    if (name in LOCAL_NAMES or name.endswith(".localhost")) and refused.refuses_loopback():
        return "a name of Envoy's own host"
    return None


def resolve_cluster(
    objects: ObjectSet,
    options: BuildOptions,
    namespace: str,
    name: str,
    port: int | str,
    *,
    load_balancer: LoadBalancerPolicy = LoadBalancerPolicy.ROUND_ROBIN,
    health_check: HealthCheck | None = None,
    validation: UpstreamValidation | None = None,
) -> Resolved:
    """The Cluster for `namespace/name:port`, or ServiceError saying why there is none."""
    service = objects.services.get((namespace, name))
    if service is None:
        raise ServiceError(f"Service [{name}:{port}] is invalid or missing")
    external_name = service.is_external_name
    if external_name:
        if not options.enable_external_name_services:
            raise ServiceError(
                f"Service [{name}:{port}] is of type ExternalName, which is disabled "
                "(start the controller with --enable-external-name-services to allow it)"
            )
        if not service.spec.external_name:
            raise ServiceError(f"Service [{name}:{port}] is invalid or missing")
        external = service.spec.external_name
        why = refused_external_name(external, options.refused_networks)
        if why is not None:
            raise ServiceError(
                f'Service [{name}:{port}] is of type ExternalName and points at "{external}" '
                f"({why}), which is refused",
                (
                    Problem(
                        "Service",
                        namespace,
                        name,
                        "spec.externalName",
                        f'"{external}" ({why}) is refused: no backend may point there',
                    ),
                ),
            )
    service_port = service.find_port(port)
    if service_port is None:
        if external_name and isinstance(port, int) and not 1 <= port <= 65535:
            raise ServiceError(f"Service [{name}:{port}]: port must be in the range 1-65535")
        if external_name and isinstance(port, int):
            # ExternalName Services often list no ports: the port is the one asked for.
            service_port_number, service_port_name = port, ""
        else:
            raise ServiceError(f"Service [{name}:{port}] is invalid or missing")
    else:
        service_port_number, service_port_name = service_port.port, service_port.name
    if has_policy_annotations(service):
        breakers, problems = circuit_breakers(service)
        protocol = upstream_protocol(service, service_port_number, service_port_name)
    else:
        breakers, problems, protocol = NO_BREAKERS, (), UpstreamProtocol.HTTP1
    cluster = Cluster(
        namespace=namespace,
        service=name,
        port=service_port_number,
        port_name=service_port_name,
        protocol=protocol,
        load_balancer=load_balancer,
        health_check=health_check,
        validation=validation,
        circuit_breakers=breakers,
        external_name=service.spec.external_name if external_name else None,
    )
    return Resolved(cluster, problems)
