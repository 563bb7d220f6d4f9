"""Hypothesis strategies for hostile objects, one per kind the controller reads.

Each takes the object's `Hostility` and namespace (drawn when not given), so a tenant's objects
share both; every field is good or hostile at that rate (see `values`).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from .tenant import GOOD_NAMESPACE
from .values import (
    ADDRESSES,
    CONTROL_CHARACTERS,
    DURATIONS,
    HOSTILE_ADDRESSES,
    HOSTILE_DURATIONS,
    HOSTILE_HOSTS,
    HOSTILE_NAMES,
    HOSTILE_NAMESPACES,
    HOSTILE_PATHS,
    HOSTILE_SECRET_REFERENCES,
    HOSTILITY,
    HOSTS,
    INTEGERS,
    NAMES,
    NAMESPACES,
    NUMBER_TEXT,
    PATHS,
    SECRET_NAMES,
    SECRET_REFERENCES,
    SERVICE_NAMES,
    Hostility,
    certificate_authority,
    hostile_int,
    hostile_text,
    key_material,
    spoiled,
)

JSON = dict[str, Any]
CONTOUR = "contour.heptio.com/v1beta1"


@st.composite
def metadata(
    draw: st.DrawFn,
    level: Hostility,
    namespace: str,
    names: Sequence[str] = NAMES,
    annotations: dict[str, Any] | None = None,
) -> JSON:
    # Always after the good tenant's (the API server sets it), sometimes with another offset.
    # Never without a zone: tests/unit/test_dag_containment.py reproduces what that does.
    seconds = draw(st.integers(1, 10**9))
    created = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        seconds=seconds
    )
    offset = draw(st.sampled_from([None, None, None, 0, 330, -480]))
    if offset is None:
        timestamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        zone = datetime.timezone(datetime.timedelta(minutes=offset))
        timestamp = created.astimezone(zone).isoformat()
    meta: JSON = {
        "name": level.text(draw, names, HOSTILE_NAMES),
        "namespace": namespace,
        "generation": level.pick(draw, [1, 2, 7], st.sampled_from(INTEGERS)),
        "creationTimestamp": timestamp,
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def namespace_of(draw: st.DrawFn, level: Hostility) -> str:
    return str(level.pick(draw, NAMESPACES, HOSTILE_NAMESPACES))


def annotations_of(
    draw: st.DrawFn, level: Hostility, known: dict[str, Sequence[str]]
) -> dict[str, Any]:
    """Some of the `known` annotations (name → good values), values good or hostile."""
    chosen = draw(st.lists(st.sampled_from(sorted(known)), max_size=4, unique=True))
    found: dict[str, Any] = {
        name: level.text(draw, known[name], NUMBER_TEXT + HOSTILE_DURATIONS) for name in chosen
    }
    if level.percent and draw(st.integers(0, 9)) == 0:
        found[draw(hostile_text(["projectcontour.io/x"]))] = draw(st.text(max_size=8))
    if level.percent == 100 and draw(st.booleans()):
        found[draw(st.sampled_from(sorted(known)))] = draw(hostile_int())  # not even a string
    return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@st.composite
def pem_damage(draw: st.DrawFn, pem: bytes) -> bytes:
    """`pem` with a few bytes changed, cut short or a control character inserted."""
    if not pem:
        return pem
    at = draw(st.integers(0, len(pem) - 1))
    how = draw(st.sampled_from(["flip", "cut", "insert"]))
    if how == "cut":
        return pem[:at]
    if how == "flip":
        return pem[:at] + bytes([pem[at] ^ draw(st.integers(1, 255))]) + pem[at + 1 :]
    return pem[:at] + draw(st.sampled_from(CONTROL_CHARACTERS)).encode() + pem[at:]


# --- IngressRoute ---------------------------------------------------------------------------

CLASS_ANNOTATIONS = {
    name: ("contour", "nginx", "", "Contour")
    for name in (
        "kubernetes.io/ingress.class",
        "contour.heptio.com/ingress.class",
        "projectcontour.io/ingress.class",
    )
}


@st.composite
def health_checks(draw: st.DrawFn, level: Hostility) -> JSON:
    check: JSON = {"path": level.text(draw, ["/healthz", "/"], HOSTILE_PATHS)}
    if level.maybe(draw):
        check["host"] = level.text(draw, ["probe.example.com"], HOSTILE_HOSTS)
    for field in (
        "intervalSeconds",
        "timeoutSeconds",
        "unhealthyThresholdCount",
        "healthyThresholdCount",
    ):
        if level.maybe(draw):
            check[field] = level.number(draw, [0, 1, 5, 30])
    return check


@st.composite
def route_services(draw: st.DrawFn, level: Hostility) -> JSON:
    service: JSON = {
        "name": level.text(draw, SERVICE_NAMES, HOSTILE_NAMES),
        "port": level.number(draw, [80]),
    }
    if level.maybe(draw):
        service["weight"] = level.number(draw, [1, 10, 50, 0])
    if level.maybe(draw):
        service["strategy"] = level.text(
            draw, ["RoundRobin", "WeightedLeastRequest", "Random", "Cookie"], ["Maglev", "RingHash"]
        )
    if level.maybe(draw):
        service["healthCheck"] = draw(health_checks(level))
    if draw(st.integers(0, 9)) == 0:
        service["validation"] = {
            "caSecret": level.text(draw, ["ca"], SECRET_NAMES),
            "subjectName": level.text(draw, ["api.internal"], ["", "a" * 1000]),
        }
    return service


@st.composite
def delegates(draw: st.DrawFn, level: Hostility) -> JSON:
    if draw(st.integers(0, 3)) == 0:  # one of the good tenant's, from wherever
        name = draw(st.sampled_from(["blog", "blog", "blog", "root"]))
        return {"name": name, "namespace": GOOD_NAMESPACE}
    target: JSON = {"name": level.text(draw, DELEGATE_NAMES, HOSTILE_NAMES)}
    if draw(st.integers(0, 3)) == 0:
        target["namespace"] = level.text(draw, NAMESPACES, HOSTILE_NAMESPACES)
    return target


@st.composite
def ir_routes(draw: st.DrawFn, level: Hostility) -> JSON:
    route: JSON = {"match": level.text(draw, PATHS, HOSTILE_PATHS)}
    shape = level.pick(draw, ["services", "services", "delegate"], ["both", "neither"])
    if shape in ("services", "both"):
        route["services"] = draw(st.lists(route_services(level), min_size=1, max_size=2))
    if shape in ("delegate", "both"):
        route["delegate"] = draw(delegates(level))
    if level.maybe(draw):
        route["prefixRewrite"] = level.text(draw, ["/", "/v1", "/api/"], HOSTILE_PATHS)
    if level.maybe(draw):
        route["timeoutPolicy"] = {"request": level.text(draw, DURATIONS, HOSTILE_DURATIONS)}
    if level.maybe(draw):
        policy: JSON = {"count": level.number(draw, [0, 1, 3])}
        if draw(st.booleans()):
            policy["perTryTimeout"] = level.text(draw, DURATIONS, HOSTILE_DURATIONS)
        route["retryPolicy"] = policy
    for flag in ("enableWebsockets", "permitInsecure"):
        if level.maybe(draw):
            route[flag] = level.pick(draw, [True, False], ["true", "yes", 1, None, "x"])
    return route


@st.composite
def tcp_proxies(draw: st.DrawFn, level: Hostility) -> JSON:
    shape = level.pick(draw, ["services", "delegate"], ["both", "neither"])
    proxy: JSON = {}
    if shape in ("services", "both"):
        proxy["services"] = draw(st.lists(route_services(level), min_size=1, max_size=2))
    if shape in ("delegate", "both"):
        proxy["delegate"] = draw(delegates(level))
    return proxy


ROOT_NAMES = ("root", "app")
DELEGATE_NAMES = ("blog", "x")
"""Delegates are mostly named like this, and delegations mostly target these names."""


@st.composite
def ingressroutes(
    draw: st.DrawFn,
    level: Hostility | None = None,
    namespace: str | None = None,
    root: bool | None = None,
) -> JSON:
    level = level or draw(HOSTILITY)
    namespace = namespace if namespace is not None else namespace_of(draw, level)
    root = draw(st.booleans()) if root is None else root
    spec: JSON = {}
    if root:
        vhost: JSON = {"fqdn": level.text(draw, HOSTS, HOSTILE_HOSTS)}
        if draw(st.booleans()):
            tls: JSON = {
                "secretName": level.text(draw, SECRET_REFERENCES, HOSTILE_SECRET_REFERENCES)
            }
            if level.maybe(draw):
                tls["minimumProtocolVersion"] = level.text(
                    draw, ["1.2", "1.3"], ["1.0", "1.1", "", " 1.3", "1.3\n", "TLSv1.3", "2"]
                )
            if draw(st.integers(0, 3)) == 0:
                tls["passthrough"] = level.pick(draw, [True, False], ["yes", 1, "x"])
                if draw(st.booleans()):
                    del tls["secretName"]
            vhost["tls"] = tls
        spec["virtualhost"] = vhost
    spec["routes"] = draw(st.lists(ir_routes(level), max_size=4))
    if draw(st.integers(0, 4)) == 0:
        spec["tcpproxy"] = draw(tcp_proxies(level))
    if level.percent >= 30 and draw(st.integers(0, 9)) == 0:
        spec[draw(st.sampled_from(["routes", "virtualhost", "tcpproxy"]))] = "not an object"
    annotations = annotations_of(draw, level, CLASS_ANNOTATIONS) if draw(st.booleans()) else None
    return {
        "apiVersion": CONTOUR,
        "kind": "IngressRoute",
        "metadata": draw(
            metadata(level, namespace, ROOT_NAMES if root else DELEGATE_NAMES, annotations)
        ),
        "spec": spec,
    }


# --- Ingress --------------------------------------------------------------------------------


def _contour(suffix: str, values: Sequence[str]) -> dict[str, Sequence[str]]:
    return {f"{prefix}/{suffix}": values for prefix in ("projectcontour.io", "contour.heptio.com")}


INGRESS_ANNOTATIONS: dict[str, Sequence[str]] = {
    **CLASS_ANNOTATIONS,
    "ingress.kubernetes.io/force-ssl-redirect": ("true", "false", "TRUE", "yes"),
    "kubernetes.io/ingress.allow-http": ("true", "false"),
    **_contour("request-timeout", DURATIONS),
    **_contour("response-timeout", DURATIONS),
    **_contour("websocket-routes", ("/", "/ws", "/ws,/chat", " /a , ,b")),
    **_contour("retry-on", ("5xx", "gateway-error,reset", "5xx,bogus", "")),
    **_contour("num-retries", ("0", "1", "3")),
    **_contour("per-try-timeout", DURATIONS),
    **_contour("tls-minimum-protocol-version", ("1.2", "1.3", "1.1")),
    "nginx.ingress.kubernetes.io/rewrite-target": ("/", "/$2"),
    "nginx.ingress.kubernetes.io/ssl-redirect": ("true", "false"),
    "nginx.ingress.kubernetes.io/use-regex": ("true",),
    "nginx.ingress.kubernetes.io/backend-protocol": ("HTTPS", "GRPC"),
    "nginx.ingress.kubernetes.io/proxy-body-size": ("0", "8m"),
    "nginx.ingress.kubernetes.io/configuration-snippet": ("more_set_headers 'X: y';",),
    "nginx.ingress.kubernetes.io/auth-url": ("http://127.0.0.1:8001/",),
}


@st.composite
def ingress_backends(draw: st.DrawFn, level: Hostility) -> JSON:
    port: JSON = {}
    if level.pick(draw, [True, True, False], [None]):
        port["number"] = level.number(draw, [80, 443])
    else:
        port["name"] = level.text(draw, ["http", "p80"], HOSTILE_NAMES)
    service: JSON = {"name": level.text(draw, SERVICE_NAMES, HOSTILE_NAMES), "port": port}
    if level.percent and draw(st.integers(0, 19)) == 0:
        return {"resource": {"kind": "Bucket", "name": "x"}}
    return {"service": service}


@st.composite
def ingress_rules(draw: st.DrawFn, level: Hostility) -> JSON:
    rule: JSON = {}
    if draw(st.integers(0, 4)):
        rule["host"] = level.text(draw, HOSTS, HOSTILE_HOSTS)
    paths = []
    for _ in range(draw(st.integers(0, 3))):
        path: JSON = {"backend": draw(ingress_backends(level))}
        if draw(st.integers(0, 5)):
            path["path"] = level.text(draw, PATHS, HOSTILE_PATHS)
        path["pathType"] = level.text(
            draw, ["Prefix", "Exact", "ImplementationSpecific"], ["Regex", "", "prefix"]
        )
        paths.append(path)
    rule["http"] = {"paths": paths}
    return rule


@st.composite
def ingresses(
    draw: st.DrawFn, level: Hostility | None = None, namespace: str | None = None
) -> JSON:
    level = level or draw(HOSTILITY)
    namespace = namespace if namespace is not None else namespace_of(draw, level)
    spec: JSON = {"rules": draw(st.lists(ingress_rules(level), max_size=3))}
    if draw(st.integers(0, 2)) == 0:
        spec["tls"] = [
            {
                "hosts": draw(
                    st.lists(
                        st.one_of(
                            st.sampled_from(HOSTS),
                            hostile_text(HOSTS, HOSTILE_HOSTS),
                        ),
                        max_size=3,
                    )
                ),
                "secretName": level.text(draw, SECRET_REFERENCES, HOSTILE_SECRET_REFERENCES),
            }
            for _ in range(draw(st.integers(1, 2)))
        ]
    if draw(st.integers(0, 3)) == 0:
        spec["defaultBackend"] = draw(ingress_backends(level))
    if draw(st.integers(0, 3)) == 0:
        spec["ingressClassName"] = level.text(draw, ["contour", "mine", "nginx"], [""])
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": draw(
            metadata(level, namespace, annotations=annotations_of(draw, level, INGRESS_ANNOTATIONS))
        ),
        "spec": spec,
    }


# --- Service, EndpointSlice, Endpoints ------------------------------------------------------

SERVICE_ANNOTATIONS: dict[str, Sequence[str]] = {
    **_contour("max-connections", ("100", "0", "4294967295")),
    **_contour("max-pending-requests", ("10",)),
    **_contour("max-requests", ("1000",)),
    **_contour("max-retries", ("3",)),
    **_contour("upstream-protocol.h2", ("80", "http", "80,443")),
    **_contour("upstream-protocol.h2c", ("80", "http")),
    **_contour("upstream-protocol.tls", ("443", "https", " 80 , http")),
}
EXTERNAL_NAMES = ("api.example.net", "backend.bad.svc.cluster.local")
HOSTILE_EXTERNAL_NAMES = (
    *HOSTILE_ADDRESSES,
    "localhost.",
    "LOCALHOST",
    "x.localhost",
    "ip6-localhost",
    "local.projectcontour.io",
    "kubernetes.default.svc",
    "a" * 254,
    "bad.example.com\n",
)


@st.composite
def service_ports(draw: st.DrawFn, level: Hostility) -> JSON:
    port: JSON = {"port": level.number(draw, [80, 443, 8080])}
    name = level.pick(draw, ["http", "https", "", None], hostile_text(["http"], HOSTILE_NAMES))
    if name is not None:
        port["name"] = name
    if level.maybe(draw):
        port["targetPort"] = level.pick(draw, [8080, "http"], hostile_int())
    if level.maybe(draw):
        port["protocol"] = level.text(draw, ["TCP", "UDP", "SCTP"], ["", "tcp"])
    if draw(st.integers(0, 4)) == 0:
        port["appProtocol"] = level.text(draw, ["h2c", "http", "kubernetes.io/h2c"])
    return port


@st.composite
def services(
    draw: st.DrawFn,
    level: Hostility | None = None,
    namespace: str | None = None,
    name: str | None = None,
) -> JSON:
    level = level or draw(HOSTILITY)
    namespace = namespace if namespace is not None else namespace_of(draw, level)
    meta = draw(
        metadata(level, namespace, SERVICE_NAMES, annotations_of(draw, level, SERVICE_ANNOTATIONS))
    )
    if name is not None:
        meta["name"] = name
    ports = draw(st.lists(service_ports(level), min_size=1, max_size=3))
    if not level.coin(draw):
        ports[0] = {"name": draw(st.sampled_from(["http", "http", "http", ""])), "port": 80}
    spec: JSON = {"ports": ports}
    if draw(st.integers(0, 7)) == 0:
        spec = {
            "type": "ExternalName",
            "externalName": level.text(draw, EXTERNAL_NAMES, HOSTILE_EXTERNAL_NAMES),
            "ports": spec["ports"] if draw(st.booleans()) else [],
        }
    elif level.maybe(draw):
        spec["type"] = level.text(draw, ["ClusterIP", "NodePort", "LoadBalancer"], ["", "x"])
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


@st.composite
def endpoint_slices(
    draw: st.DrawFn,
    level: Hostility | None = None,
    namespace: str | None = None,
    service: str | None = None,
) -> JSON:
    level = level or draw(HOSTILITY)
    namespace = namespace if namespace is not None else namespace_of(draw, level)
    service = service or level.text(draw, SERVICE_NAMES, HOSTILE_NAMES)
    meta = draw(metadata(level, namespace, [f"{service}-{n}" for n in "abc"]))
    meta["labels"] = {"kubernetes.io/service-name": service}
    address_type = level.text(draw, ["IPv4", "IPv6"], ["FQDN", "", "ipv4", "IPv5"])
    endpoints = []
    for _ in range(draw(st.integers(0, 4))):
        endpoint: JSON = {
            "addresses": [
                level.pick(
                    draw,
                    ADDRESSES,
                    st.one_of(st.sampled_from(HOSTILE_ADDRESSES), spoiled(ADDRESSES)),
                )
                for _ in range(draw(st.integers(1, 3)))
            ]
        }
        if level.maybe(draw):
            endpoint["conditions"] = {
                key: level.pick(draw, [True, False, None], ["yes", 2])
                for key in ("ready", "serving", "terminating")
                if draw(st.booleans())
            }
        endpoints.append(endpoint)
    ports = []
    for _ in range(draw(st.integers(0, 2))):
        port: JSON = {"port": level.number(draw, [8080, 80, 9000])}
        name = level.pick(draw, ["http", "", None], hostile_text(["http"], HOSTILE_NAMES))
        if name is not None:
            port["name"] = name
        if level.maybe(draw):
            port["protocol"] = level.text(draw, ["TCP", "UDP"], [""])
        ports.append(port)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta,
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports,
    }


@st.composite
def endpoints(
    draw: st.DrawFn,
    level: Hostility | None = None,
    namespace: str | None = None,
    service: str | None = None,
) -> JSON:
    level = level or draw(HOSTILITY)
    namespace = namespace if namespace is not None else namespace_of(draw, level)
    meta = draw(metadata(level, namespace, SERVICE_NAMES))
    if service is not None:
        meta["name"] = service
    subsets = []
    for _ in range(draw(st.integers(0, 2))):
        subset: JSON = {}
        for key in ("addresses", "notReadyAddresses"):
            if draw(st.booleans()):
                subset[key] = [
                    {"ip": level.text(draw, ADDRESSES, HOSTILE_ADDRESSES)}
                    for _ in range(draw(st.integers(1, 3)))
                ]
        subset["ports"] = [
            {
                "name": level.text(draw, ["http", ""], HOSTILE_NAMES),
                "port": level.number(draw, [8080, 80]),
            }
            for _ in range(draw(st.integers(0, 2)))
        ]
        subsets.append(subset)
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets}


# --- Secret, IngressClass, TLSCertificateDelegation ------------------------------------------


@st.composite
def secrets(
    draw: st.DrawFn,
    level: Hostility | None = None,
    namespace: str | None = None,
    name: str | None = None,
) -> JSON:
    level = level or draw(HOSTILITY)
    namespace = namespace if namespace is not None else namespace_of(draw, level)
    meta = draw(metadata(level, namespace, SECRET_NAMES))
    if name is not None:
        meta["name"] = name
    material = key_material()
    good = ["valid", "rsa 2048", "good's name, another key"]
    cert, key = material[level.pick(draw, good, sorted(set(material) - set(good)))]
    if level.coin(draw):
        cert = draw(pem_damage(cert))
    if level.coin(draw):
        key = draw(pem_damage(key))
    data: JSON = {"tls.crt": _b64(cert), "tls.key": _b64(key)}
    if meta["name"] == "ca" or draw(st.integers(0, 3)) == 0:
        data["ca.crt"] = level.pick(
            draw, [_b64(certificate_authority().cert_pem)], [_b64(b"not a ca"), "!!", ""]
        )
    if level.coin(draw):
        field = draw(st.sampled_from(sorted(data)))
        data[field] = draw(
            st.sampled_from(
                [
                    "not base64!",
                    data[field][:-1],
                    data[field].rstrip("="),
                    data[field][:40] + "\n" + data[field][40:],
                    data[field] + "\x00",
                    "",
                ]
            )
        )
    if level.coin(draw) and draw(st.booleans()):
        del data[draw(st.sampled_from(sorted(data)))]
    secret_type = level.text(draw, ["kubernetes.io/tls"], ["Opaque", "", "kubernetes.io/tls\n"])
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": secret_type,
        "data": data,
    }


@st.composite
def ingress_classes(draw: st.DrawFn) -> JSON:
    level = draw(HOSTILITY)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": level.text(draw, ["contour", "mine", "nginx"], HOSTILE_NAMES)},
        "spec": {
            "controller": level.text(
                draw,
                [
                    "projectcontour.io/ingress-controller",
                    "contour.heptio.com/ingress-controller",
                    "k8s.io/ingress-nginx",
                ],
            )
        },
    }


@st.composite
def certificate_delegations(
    draw: st.DrawFn, level: Hostility | None = None, namespace: str | None = None
) -> JSON:
    level = level or draw(HOSTILITY)
    namespace = namespace if namespace is not None else namespace_of(draw, level)
    delegations = [
        {
            "secretName": level.text(draw, SECRET_NAMES, HOSTILE_NAMES),
            "targetNamespaces": draw(
                st.lists(
                    st.one_of(
                        st.sampled_from(["*", *NAMESPACES]), hostile_text(["*"], HOSTILE_NAMESPACES)
                    ),
                    max_size=3,
                )
            ),
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    return {
        "apiVersion": CONTOUR,
        "kind": "TLSCertificateDelegation",
        "metadata": draw(metadata(level, namespace, ["delegation", "d"])),
        "spec": {"delegations": delegations},
    }
