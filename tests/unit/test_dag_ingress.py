"""The Ingress part of the DAG, one table row per behaviour: objects in, virtual hosts out.

Each row lists Kubernetes objects as the dicts a manifest would hold (the Services `web` and `api`
in `default` are always there unless a row says otherwise), the plain virtual hosts and TLS virtual
hosts expected, in order, and the problems expected (each by Ingress, field and a piece of its
reason). Every row is also built from the objects in reverse order, which must change nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kube_manifests
import pytest
from certificate_support import pair_for
from cryptography.hazmat.primitives.asymmetric import rsa
from dag_support import build_every_way
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.dag.options import BuildOptions
from controlplane.dag.types import (
    DAG,
    HTTPS_REDIRECT,
    INFINITE,
    CircuitBreakers,
    Cluster,
    PathMatch,
    PathMatchKind,
    Problem,
    RetryPolicy,
    Route,
    TLSVersion,
    WeightedCluster,
)
from controlplane.envoy import TranslateOptions
from controlplane.model import ObjectSet, parse_object
from controlplane.publisher import Publisher
from controlplane.testing.certs import CertKey, self_signed

Raw = dict[str, Any]

# --- objects, as manifests hold them --------------------------------------------------------

CERT, KEY = "<certificate>", "<key>"
"""Placeholders in Secret data, replaced by the session's self-signed certificate and key."""


def service(
    name: str = "web",
    namespace: str = "default",
    ports: Sequence[tuple[str, int]] = (("http", 80), ("admin", 8080)),
    annotations: Mapping[str, str] | None = None,
    **spec: Any,
) -> Raw:
    return kube_manifests.service(name, namespace, ports, annotations=annotations or {}, **spec)


BASE_SERVICES = (service("web"), service("api", ports=(("", 9000),)))


def backend(name: str = "web", port: int | str | None = 80) -> Raw:
    if port is None:
        return {"service": {"name": name, "port": {}}}
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": name, "port": {key: port}}}


def path(
    value: str | None = "/",
    path_type: str | None = "Prefix",
    to: Raw | None = None,
) -> Raw:
    raw: Raw = {"backend": to or backend()}
    if value is not None:
        raw["path"] = value
    if path_type is not None:
        raw["pathType"] = path_type
    return raw


def rule(host: str | None, *paths: Raw) -> Raw:
    raw: Raw = {"http": {"paths": list(paths)}}
    if host is not None:
        raw["host"] = host
    return raw


def tls(secret: str | None, *hosts: str) -> Raw:
    raw: Raw = {"hosts": list(hosts)}
    if secret is not None:
        raw["secretName"] = secret
    return raw


def ingress(
    name: str = "ing",
    *rules: Raw,
    namespace: str = "default",
    age: int = 0,
    annotations: Mapping[str, str] | None = None,
    class_name: str | None = None,
    default: Raw | None = None,
    tls_: Sequence[Raw] = (),
) -> Raw:
    """An Ingress created `age` days after 2024-01-01 (a larger age is a younger Ingress)."""
    spec: Raw = {"rules": list(rules), "tls": list(tls_)}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if default is not None:
        spec["defaultBackend"] = default
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": f"2024-01-{age + 1:02d}T00:00:00Z",
            "annotations": dict(annotations or {}),
        },
        "spec": spec,
    }


def _pem(kind: str, der: bytes) -> bytes:
    return (
        f"-----BEGIN {kind}-----\n{base64.b64encode(der).decode()}\n-----END {kind}-----\n".encode()
    )


OTHER_KEY = self_signed(["other.example.com"]).key_pem
"""A valid key that belongs to no certificate of these tests."""


WEAK_PAIR = pair_for(rsa.generate_private_key(public_exponent=65537, key_size=1024))

UNKNOWN_ALGORITHM_KEY = _pem(
    "PRIVATE KEY",
    # PKCS#8 PrivateKeyInfo { version 0, algorithm OID 1.2.3.4, key OCTET STRING }
    bytes.fromhex("300e020100300506032a030404020400"),
)
"""A well-formed PKCS#8 key of an algorithm nobody knows: parsing it raises UnsupportedAlgorithm."""


def secret(
    name: str = "cert",
    namespace: str = "default",
    *,
    valid: bool = True,
    key: bytes | None = None,
    cert: bytes | None = None,
) -> Raw:
    data = {"tls.crt": CERT, "tls.key": KEY}
    if not valid:
        data = {"tls.crt": base64.b64encode(b"not a certificate").decode(), "tls.key": KEY}
    if key is not None:
        data["tls.key"] = base64.b64encode(key).decode()
    if cert is not None:
        data["tls.crt"] = base64.b64encode(cert).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def delegation(secret_name: str, *targets: str, namespace: str = "certs") -> Raw:
    return {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "TLSCertificateDelegation",
        "metadata": {"name": f"delegate-{secret_name}", "namespace": namespace},
        "spec": {"delegations": [{"secretName": secret_name, "targetNamespaces": list(targets)}]},
    }


def ingress_class(name: str, controller: str) -> Raw:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name},
        "spec": {"controller": controller},
    }


# --- expected values --------------------------------------------------------------------------


def exact(value: str) -> PathMatch:
    return PathMatch(PathMatchKind.EXACT, value)


def segments(value: str) -> PathMatch:
    return PathMatch(PathMatchKind.SEGMENT_PREFIX, value)


def prefix(value: str) -> PathMatch:
    return PathMatch(PathMatchKind.PREFIX, value)


def to(
    match: PathMatch,
    name: str = "web",
    port: int = 80,
    port_name: str = "http",
    namespace: str = "default",
    **route: Any,
) -> Route:
    cluster = Cluster(namespace=namespace, service=name, port=port, port_name=port_name)
    return Route(match, clusters=(WeightedCluster(cluster),), **route)


def redirect(match: PathMatch) -> Route:
    return Route(match, redirect=HTTPS_REDIRECT)


@dataclass(frozen=True)
class Secure:
    """An expected TLS virtual host: its routes, `namespace/name` of its Secret, its version."""

    routes: Sequence[Route]
    secret: str = "default/cert"
    minimum_tls_version: TLSVersion = TLSVersion.V1_2


@dataclass(frozen=True)
class P:
    """An expected problem: the object, the field, and a piece of the reason."""

    name: str
    field: str
    reason: str = ""
    kind: str = "Ingress"
    namespace: str = "default"

    def matches(self, problem: Problem) -> bool:
        return (problem.kind, problem.namespace, problem.name, problem.field) == (
            self.kind,
            self.namespace,
            self.name,
            self.field,
        ) and self.reason in problem.reason


@dataclass(frozen=True)
class Row:
    id: str
    objects: Sequence[Raw]
    hosts: Mapping[str, Sequence[Route]] = field(default_factory=dict)
    secure: Mapping[str, Secure] = field(default_factory=dict)
    problems: Sequence[P] = ()
    options: BuildOptions = field(default_factory=BuildOptions)
    services: Sequence[Raw] = BASE_SERVICES


WEB = to(segments("/"))
"""The route most rows expect: Prefix `/` to web:80."""
OURS_CLASS = ingress_class("mine", "projectcontour.io/ingress-controller")
OTHER_CLASS = ingress_class("theirs", "k8s.io/ingress-nginx")
CLASS = "kubernetes.io/ingress.class"
HEPTIO = "contour.heptio.com/"
PROJECT = "projectcontour.io/"
FORCE_SSL = {"ingress.kubernetes.io/force-ssl-redirect": "true"}
NO_HTTP = {"kubernetes.io/ingress.allow-http": "false"}
TLS_FOO = (tls("cert", "foo.com"),)

ROWS = [
    # --- hosts, paths, backends -------------------------------------------------------------
    Row("host rule", [ingress("a", rule("foo.com", path()))], hosts={"foo.com": [WEB]}),
    Row("host-less rule goes to *", [ingress("a", rule(None, path()))], hosts={"*": [WEB]}),
    Row(
        "defaultBackend is a string prefix / on *",
        [ingress("a", default=backend())],
        hosts={"*": [to(prefix("/"))]},
    ),
    Row(
        "defaultBackend sorts after host-less rules",
        [ingress("a", rule(None, path("/api", to=backend("api", 9000))), default=backend())],
        hosts={"*": [to(segments("/api"), "api", 9000, ""), to(prefix("/"))]},
    ),
    Row(
        "Exact is an exact match",
        [ingress("a", rule("foo.com", path("/healthz", "Exact")))],
        hosts={"foo.com": [to(exact("/healthz"))]},
    ),
    Row(
        "Prefix matches by segments, trailing slash ignored",
        [ingress("a", rule("foo.com", path("/foo/", "Prefix")))],
        hosts={"foo.com": [to(segments("/foo"))]},
    ),
    Row(
        "Prefix / matches everything",
        [ingress("a", rule("foo.com", path("/", "Prefix")))],
        hosts={"foo.com": [to(segments("/"))]},
    ),
    Row(
        "ImplementationSpecific is a string prefix, slash kept",
        [ingress("a", rule("foo.com", path("/foo/", "ImplementationSpecific")))],
        hosts={"foo.com": [to(prefix("/foo/"))]},
    ),
    Row(
        "pathType omitted is ImplementationSpecific",
        [ingress("a", rule("foo.com", path("/foo", None)))],
        hosts={"foo.com": [to(prefix("/foo"))]},
    ),
    Row(
        "path omitted is /",
        [ingress("a", rule("foo.com", path(None, "Prefix")), rule("bar.com", path(None, None)))],
        hosts={"bar.com": [to(prefix("/"))], "foo.com": [to(segments("/"))]},
    ),
    Row(
        "unknown pathType",
        [ingress("a", rule("foo.com", path("/x", "Regex"), path("/y")))],
        hosts={"foo.com": [to(segments("/y"))]},
        problems=[P("a", "spec.rules[0].http.paths[0].pathType", '"Regex" is not one of')],
    ),
    Row(
        "port by number",
        [ingress("a", rule("foo.com", path(to=backend("web", 8080))))],
        hosts={"foo.com": [to(segments("/"), "web", 8080, "admin")]},
    ),
    Row(
        "port by name",
        [ingress("a", rule("foo.com", path(to=backend("web", "admin"))))],
        hosts={"foo.com": [to(segments("/"), "web", 8080, "admin")]},
    ),
    Row(
        "missing service: that path only is dropped",
        [ingress("a", rule("foo.com", path("/gone", to=backend("gone")), path("/")))],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.rules[0].http.paths[0].backend.service.name", "Service [gone:80]")],
    ),
    Row(
        "missing port number",
        [ingress("a", rule("foo.com", path("/x", to=backend("web", 81)), path("/")))],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.rules[0].http.paths[0].backend.service.port", "[web:81]")],
    ),
    Row(
        "missing port name",
        [ingress("a", rule("foo.com", path(to=backend("web", "grpc"))))],
        problems=[P("a", "spec.rules[0].http.paths[0].backend.service.port", "[web:grpc]")],
    ),
    Row(
        "port with neither number nor name",
        [ingress("a", rule("foo.com", path(to=backend("web", None))))],
        problems=[P("a", "spec.rules[0].http.paths[0].backend.service.port", "neither")],
    ),
    Row(
        "resource backend",
        [ingress("a", default={"resource": {"kind": "Bucket", "name": "b"}})],
        problems=[P("a", "spec.defaultBackend", "resource backends are not supported")],
    ),
    Row(
        "ExternalName Service refused by default",
        [ingress("a", rule("foo.com", path(to=backend("ext"))))],
        services=[service("ext", type="ExternalName", externalName="example.org")],
        problems=[P("a", "spec.rules[0].http.paths[0].backend.service.name", "ExternalName")],
    ),
    Row(
        "a Service problem is reported once however many paths use it",
        [ingress("a", rule("foo.com", path("/a"), path("/b")))],
        services=[service(annotations={f"{HEPTIO}max-connections": "many"})],
        hosts={"foo.com": [to(segments("/a")), to(segments("/b"))]},
        problems=[
            P("web", f"metadata.annotations[{HEPTIO}max-connections]", "many", kind="Service")
        ],
    ),
    Row(
        "path not starting with /",
        [ingress("a", rule("foo.com", path("api"), path("/")))],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.rules[0].http.paths[0].path", 'does not start with "/"')],
    ),
    Row(
        "path with a query",
        [ingress("a", rule("foo.com", path("/a?b=c")))],
        problems=[P("a", "spec.rules[0].http.paths[0].path", '"?"')],
    ),
    Row(
        "invalid host drops the rule",
        [ingress("a", rule("foo_bar.com:80", path()), rule("ok.com", path()))],
        hosts={"ok.com": [WEB]},
        problems=[P("a", "spec.rules[0].host", "is not a DNS name")],
    ),
    Row(
        "hosts are lowercased",
        [ingress("a", rule("Foo.COM", path()))],
        hosts={"foo.com": [WEB]},
    ),
    Row(
        "wildcard host rule",
        [ingress("a", rule("*.foo.com", path()))],
        hosts={"*.foo.com": [WEB]},
    ),
    Row("rule without http", [ingress("a", {"host": "foo.com"})]),
    # --- ingress class ------------------------------------------------------------------------
    Row(
        "ingressClassName ours",
        [ingress("a", rule("foo.com", path()), class_name="contour")],
        hosts={"foo.com": [WEB]},
    ),
    Row("ingressClassName other", [ingress("a", rule("foo.com", path()), class_name="nginx")]),
    Row(
        "IngressClass naming our controller",
        [OURS_CLASS, ingress("a", rule("foo.com", path()), class_name="mine")],
        hosts={"foo.com": [WEB]},
    ),
    Row(
        "IngressClass naming another controller",
        [OTHER_CLASS, ingress("a", rule("foo.com", path()), class_name="theirs")],
    ),
    Row(
        "class annotation ours",
        [ingress("a", rule("foo.com", path()), annotations={CLASS: "contour"})],
        hosts={"foo.com": [WEB]},
    ),
    Row(
        "class annotation other",
        [ingress("a", rule("foo.com", path()), annotations={CLASS: "nginx"})],
    ),
    Row(
        "class annotation matching --ingress-class",
        [
            ingress("a", rule("a.com", path()), annotations={f"{HEPTIO}ingress.class": "edge"}),
            ingress("b", rule("b.com", path())),
            ingress("c", rule("c.com", path()), annotations={CLASS: "contour"}),
        ],
        options=BuildOptions(ingress_class="edge"),
        hosts={"a.com": [WEB], "b.com": [WEB]},
    ),
    Row("unclassed is ours", [ingress("a", rule("foo.com", path()))], hosts={"foo.com": [WEB]}),
    # --- conflicts ---------------------------------------------------------------------------
    Row(
        "older Ingress wins a host and path",
        [
            ingress("a", rule("foo.com", path(to=backend("api", 9000))), age=2),
            ingress("z", rule("foo.com", path(), path("/z")), age=1),
        ],
        hosts={"foo.com": [to(segments("/z")), WEB]},
        problems=[P("a", "spec.rules[0].http.paths[0]", "Ingress default/z")],
    ),
    Row(
        "same age: first by namespace, then name",
        [
            ingress("b", rule("foo.com", path(to=backend("api", 9000)))),
            ingress("a", rule("foo.com", path())),
            ingress("a", rule("foo.com", path()), namespace="alpha"),
        ],
        services=[*BASE_SERVICES, service(namespace="alpha")],
        hosts={"foo.com": [to(segments("/"), namespace="alpha")]},
        problems=[
            P("a", "spec.rules[0].http.paths[0]", "Ingress alpha/a"),
            P("b", "spec.rules[0].http.paths[0]", "Ingress alpha/a"),
        ],
    ),
    Row(
        "same path twice in one Ingress: the first wins",
        [
            ingress(
                "a",
                rule("foo.com", path("/x")),
                rule("foo.com", path("/x/", to=backend("api", 9000))),
            )
        ],
        hosts={"foo.com": [to(segments("/x"))]},
        problems=[P("a", "spec.rules[1].http.paths[0]", "spec.rules[0].http.paths[0] of this")],
    ),
    Row(
        "a rule for / beats an older Ingress's defaultBackend",
        [
            ingress("old", default=backend("api", 9000), age=0),
            ingress("new", rule(None, path("/", "ImplementationSpecific")), age=5),
        ],
        hosts={"*": [to(prefix("/"))]},
        problems=[P("old", "spec.defaultBackend", "rules take precedence")],
    ),
    Row(
        "Prefix / and a defaultBackend are the same match",
        [ingress("a", rule(None, path("/")), default=backend("api", 9000))],
        hosts={"*": [WEB]},
        problems=[P("a", "spec.defaultBackend", "spec.rules[0].http.paths[0] of this Ingress")],
    ),
    Row(
        "a broken older path does not shadow a working one",
        [
            ingress("old", rule("foo.com", path(to=backend("gone"))), age=0),
            ingress("new", rule("foo.com", path()), age=1),
        ],
        hosts={"foo.com": [WEB]},
        problems=[P("old", "spec.rules[0].http.paths[0].backend.service.name", "gone")],
    ),
    Row(
        "different match kinds on one path do not conflict",
        [
            ingress(
                "a",
                rule(
                    "foo.com",
                    path("/foo", "ImplementationSpecific"),
                    path("/foo", "Prefix"),
                    path("/foo", "Exact"),
                ),
            )
        ],
        hosts={"foo.com": [to(exact("/foo")), to(segments("/foo")), to(prefix("/foo"))]},
    ),
    # --- ordering ------------------------------------------------------------------------------
    Row(
        "routes most specific first",
        [
            ingress(
                "a",
                rule(
                    "foo.com",
                    path("/"),
                    path("/a", "ImplementationSpecific"),
                    path("/api/v1"),
                    path("/api"),
                    path("/api/v1/users", "Exact"),
                    path("/b", "Exact"),
                    path("/ab", "ImplementationSpecific"),
                ),
            )
        ],
        hosts={
            "foo.com": [
                to(exact("/api/v1/users")),
                to(exact("/b")),
                to(segments("/api/v1")),
                to(segments("/api")),
                to(prefix("/ab")),
                to(prefix("/a")),
                WEB,
            ]
        },
    ),
    Row(
        "hosts by name, * last",
        [
            ingress("a", rule("z.com", path()), rule(None, path())),
            ingress("b", rule("a.com", path()), rule("*.m.com", path())),
        ],
        hosts={"*.m.com": [WEB], "a.com": [WEB], "z.com": [WEB], "*": [WEB]},
    ),
    # --- TLS -----------------------------------------------------------------------------------
    Row(
        "TLS host with a rule: served on both listeners",
        [secret(), ingress("a", rule("foo.com", path()), tls_=TLS_FOO)],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB])},
    ),
    Row(
        "TLS host without a rule",
        [secret(), ingress("a", rule("bar.com", path()), tls_=TLS_FOO)],
        hosts={"bar.com": [WEB]},
    ),
    Row(
        "TLS Secret missing: HTTP unaffected",
        [ingress("a", rule("foo.com", path()), tls_=TLS_FOO)],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.tls[0].secretName", "Secret [default/cert] is missing")],
    ),
    Row(
        "TLS Secret malformed",
        [secret(valid=False), ingress("a", rule("foo.com", path()), tls_=TLS_FOO)],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.tls[0].secretName", "tls.crt is not a PEM certificate")],
    ),
    Row(
        "TLS Secret whose key does not match the certificate: no HTTPS, never sent to Envoy",
        [secret(key=OTHER_KEY), ingress("a", rule("foo.com", path()), tls_=TLS_FOO)],
        hosts={"foo.com": [WEB]},
        problems=[
            P("a", "spec.tls[0].secretName", "the private key does not match the certificate")
        ],
    ),
    Row(
        "TLS Secret with an RSA-1024 key",
        [
            secret(cert=WEAK_PAIR.cert_pem, key=WEAK_PAIR.key_pem),
            ingress("a", rule("foo.com", path()), tls_=TLS_FOO),
        ],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.tls[0].secretName", "RSA key of 1024 bits")],
    ),
    Row(
        "TLS Secret with a key of an unknown algorithm",
        [
            secret(key=UNKNOWN_ALGORITHM_KEY),
            ingress("a", rule("foo.com", path()), tls_=TLS_FOO),
        ],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.tls[0].secretName", "tls.key is not a PEM private key")],
    ),
    Row(
        "TLS without secretName",
        [ingress("a", rule("foo.com", path()), tls_=[tls(None, "foo.com")])],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.tls[0].secretName", "not set")],
    ),
    Row(
        "TLS without hosts, and an invalid TLS host",
        [secret(), ingress("a", rule("foo.com", path()), tls_=[tls("cert"), tls("cert", "a b")])],
        hosts={"foo.com": [WEB]},
        problems=[
            P("a", "spec.tls[0].hosts", "lists no hosts"),
            P("a", "spec.tls[1].hosts[0]", "not a DNS name"),
        ],
    ),
    Row(
        "namespace/name in the Ingress's own namespace",
        [secret(), ingress("a", rule("foo.com", path()), tls_=[tls("default/cert", "foo.com")])],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB])},
    ),
    Row(
        "cross-namespace Secret without delegation",
        [
            secret("cert", "certs"),
            ingress("a", rule("foo.com", path()), tls_=[tls("certs/cert", "foo.com")]),
        ],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.tls[0].secretName", "no TLSCertificateDelegation")],
    ),
    Row(
        "cross-namespace Secret delegated to this namespace",
        [
            secret("cert", "certs"),
            delegation("cert", "default"),
            ingress("a", rule("foo.com", path()), tls_=[tls("certs/cert", "foo.com")]),
        ],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB], secret="certs/cert")},
    ),
    Row(
        "cross-namespace Secret delegated to every namespace",
        [
            secret("cert", "certs"),
            delegation("cert", "*"),
            ingress("a", rule("foo.com", path()), tls_=[tls("certs/cert", "foo.com")]),
        ],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB], secret="certs/cert")},
    ),
    Row(
        "cross-namespace delegation to other namespaces or of another Secret",
        [
            secret("cert", "certs"),
            delegation("cert", "team-b"),
            delegation("other", "default"),
            delegation("cert", "default", namespace="elsewhere"),
            ingress("a", rule("foo.com", path()), tls_=[tls("certs/cert", "foo.com")]),
        ],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.tls[0].secretName", 'delegates it to namespace "default"')],
    ),
    Row(
        "malformed secret reference",
        [ingress("a", rule("foo.com", path()), tls_=[tls("certs/", "foo.com")])],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "spec.tls[0].secretName", "is not a Secret name")],
    ),
    Row(
        "wildcard TLS host",
        [secret(), ingress("a", rule("*.foo.com", path()), tls_=[tls("cert", "*.foo.com")])],
        hosts={"*.foo.com": [WEB]},
        secure={"*.foo.com": Secure([WEB])},
    ),
    Row(
        "two certificates for one host: the oldest Ingress's wins",
        [
            secret("cert"),
            secret("cert2"),
            ingress("new", rule("foo.com", path("/new")), age=3, tls_=[tls("cert2", "foo.com")]),
            ingress("old", rule("foo.com", path("/old")), age=1, tls_=TLS_FOO),
        ],
        hosts={"foo.com": [to(segments("/new")), to(segments("/old"))]},
        secure={"foo.com": Secure([to(segments("/new")), to(segments("/old"))])},
        problems=[
            P(
                "new",
                "spec.tls[0].hosts[0]",
                "Ingress default/old (spec.tls[0].hosts[0]) with Secret",
            )
        ],
    ),
    Row(
        "the same certificate from two Ingresses is no conflict",
        [
            secret(),
            ingress("a", rule("foo.com", path("/a")), tls_=TLS_FOO),
            ingress("b", rule("foo.com", path("/b")), tls_=TLS_FOO),
        ],
        hosts={"foo.com": [to(segments("/a")), to(segments("/b"))]},
        secure={"foo.com": Secure([to(segments("/a")), to(segments("/b"))])},
    ),
    Row(
        "routes of another Ingress for a TLS host are served over TLS too",
        [
            secret(),
            ingress("tls-only", tls_=TLS_FOO),
            ingress("routes", rule("foo.com", path())),
        ],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB])},
    ),
    # --- annotations ---------------------------------------------------------------------------
    Row(
        "force-ssl-redirect: TLS hosts redirect, others are served",
        [
            secret(),
            ingress(
                "a",
                rule("foo.com", path(), path("/x", "Exact")),
                rule("bar.com", path()),
                annotations=FORCE_SSL,
                tls_=TLS_FOO,
            ),
        ],
        hosts={"bar.com": [WEB], "foo.com": [redirect(exact("/x")), redirect(segments("/"))]},
        secure={"foo.com": Secure([to(exact("/x")), WEB])},
    ),
    Row(
        "force-ssl-redirect redirects even when the certificate is unusable",
        [ingress("a", rule("foo.com", path()), annotations=FORCE_SSL, tls_=TLS_FOO)],
        hosts={"foo.com": [redirect(segments("/"))]},
        problems=[P("a", "spec.tls[0].secretName", "missing")],
    ),
    Row(
        "force-ssl-redirect invalid",
        [
            secret(),
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={"ingress.kubernetes.io/force-ssl-redirect": "yes"},
                tls_=TLS_FOO,
            ),
        ],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB])},
        problems=[
            P("a", "metadata.annotations[ingress.kubernetes.io/force-ssl-redirect]", '"yes"')
        ],
    ),
    Row(
        "allow-http false: HTTPS only",
        [secret(), ingress("a", rule("foo.com", path()), annotations=NO_HTTP, tls_=TLS_FOO)],
        secure={"foo.com": Secure([WEB])},
    ),
    Row(
        "allow-http false only affects its own Ingress",
        [
            ingress("a", rule("foo.com", path("/a")), annotations=NO_HTTP),
            ingress("b", rule("foo.com", path("/b"))),
        ],
        hosts={"foo.com": [to(segments("/b"))]},
    ),
    Row(
        "allow-http false keeps force-ssl-redirect's redirects",
        [
            secret(),
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={**NO_HTTP, **FORCE_SSL},
                tls_=TLS_FOO,
            ),
        ],
        hosts={"foo.com": [redirect(segments("/"))]},
        secure={"foo.com": Secure([WEB])},
    ),
    Row(
        "allow-http invalid",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={"kubernetes.io/ingress.allow-http": "nope"},
            )
        ],
        hosts={"foo.com": [WEB]},
        problems=[P("a", "metadata.annotations[kubernetes.io/ingress.allow-http]", "nope")],
    ),
    Row(
        "request-timeout",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                default=backend(),
                annotations={f"{HEPTIO}request-timeout": "1m30s"},
            )
        ],
        hosts={
            "foo.com": [to(segments("/"), timeout_seconds=90.0)],
            "*": [to(prefix("/"), timeout_seconds=90.0)],
        },
    ),
    Row(
        "request-timeout infinity",
        [
            ingress(
                "a", rule("foo.com", path()), annotations={f"{HEPTIO}request-timeout": "infinity"}
            )
        ],
        hosts={"foo.com": [to(segments("/"), timeout_seconds=INFINITE)]},
    ),
    Row(
        "request-timeout invalid",
        [ingress("a", rule("foo.com", path()), annotations={f"{HEPTIO}request-timeout": "10"})],
        hosts={"foo.com": [WEB]},
        problems=[
            P("a", f"metadata.annotations[{HEPTIO}request-timeout]", '"10" is not a duration')
        ],
    ),
    Row(
        "request-timeout too long for Envoy",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{HEPTIO}request-timeout": "99999999999999h"},
            )
        ],
        hosts={"foo.com": [WEB]},
        problems=[P("a", f"metadata.annotations[{HEPTIO}request-timeout]", "too long")],
    ),
    Row(
        "projectcontour.io/response-timeout wins over request-timeout",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={
                    f"{HEPTIO}request-timeout": "1s",
                    f"{PROJECT}response-timeout": "2s",
                },
            )
        ],
        hosts={"foo.com": [to(segments("/"), timeout_seconds=2.0)]},
    ),
    Row(
        "websocket-routes",
        [
            ingress(
                "a",
                rule("foo.com", path("/ws/"), path("/chat", "ImplementationSpecific"), path()),
                annotations={f"{HEPTIO}websocket-routes": " /ws , /chat"},
            )
        ],
        hosts={
            "foo.com": [
                to(prefix("/chat"), websocket=True),
                to(segments("/ws"), websocket=True),
                WEB,
            ]
        },
    ),
    Row(
        "websocket-routes entries that match nothing or are not paths",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{PROJECT}websocket-routes": "/, chat, /nope"},
            )
        ],
        hosts={"foo.com": [to(segments("/"), websocket=True)]},
        problems=[
            P("a", f"metadata.annotations[{PROJECT}websocket-routes]", '"chat" is not a path'),
            P("a", f"metadata.annotations[{PROJECT}websocket-routes]", '"/nope" matches no'),
        ],
    ),
    Row(
        "retry-on with the default count",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{HEPTIO}retry-on": "5xx, gateway-error"},
            )
        ],
        hosts={"foo.com": [to(segments("/"), retry=RetryPolicy("5xx,gateway-error", 1))]},
    ),
    Row(
        "retry-on, num-retries and per-try-timeout",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={
                    f"{PROJECT}retry-on": "connect-failure",
                    f"{HEPTIO}retry-on": "5xx",
                    f"{HEPTIO}num-retries": "3",
                    f"{PROJECT}per-try-timeout": "150ms",
                },
            )
        ],
        hosts={"foo.com": [to(segments("/"), retry=RetryPolicy("connect-failure", 3, 0.15))]},
    ),
    Row(
        "num-retries 0 means the default",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{HEPTIO}retry-on": "5xx", f"{HEPTIO}num-retries": "0"},
            )
        ],
        hosts={"foo.com": [to(segments("/"), retry=RetryPolicy("5xx", 1))]},
    ),
    Row(
        "num-retries and per-try-timeout invalid",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={
                    f"{HEPTIO}retry-on": "5xx",
                    f"{HEPTIO}num-retries": "-1",
                    f"{HEPTIO}per-try-timeout": "soon",
                },
            )
        ],
        hosts={"foo.com": [to(segments("/"), retry=RetryPolicy("5xx", 1))]},
        problems=[
            P("a", f"metadata.annotations[{HEPTIO}num-retries]", '"-1" is not a non-negative'),
            P("a", f"metadata.annotations[{HEPTIO}per-try-timeout]", '"soon" is not a duration'),
        ],
    ),
    Row(
        "retry-on with unknown conditions",
        [
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{HEPTIO}retry-on": "5xx,sometimes", f"{HEPTIO}num-retries": "2"},
            ),
            ingress("b", rule("bar.com", path()), annotations={f"{HEPTIO}retry-on": "never"}),
        ],
        hosts={
            "bar.com": [WEB],
            "foo.com": [to(segments("/"), retry=RetryPolicy("5xx", 2))],
        },
        problems=[
            P("a", f"metadata.annotations[{HEPTIO}retry-on]", '"sometimes" is not a retry'),
            P("b", f"metadata.annotations[{HEPTIO}retry-on]", '"never" is not a retry'),
            P("b", f"metadata.annotations[{HEPTIO}retry-on]", "no retries"),
        ],
    ),
    Row(
        "num-retries without retry-on",
        [ingress("a", rule("foo.com", path()), annotations={f"{HEPTIO}num-retries": "3"})],
        hosts={"foo.com": [WEB]},
        problems=[P("a", f"metadata.annotations[{HEPTIO}num-retries]", "retry-on is not set")],
    ),
    Row(
        "tls-minimum-protocol-version 1.3",
        [
            secret(),
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{HEPTIO}tls-minimum-protocol-version": "1.3"},
                tls_=TLS_FOO,
            ),
        ],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB], minimum_tls_version=TLSVersion.V1_3)},
    ),
    Row(
        "projectcontour.io/tls-minimum-protocol-version 1.1: TLS 1.2 is the floor",
        [
            secret(),
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{PROJECT}tls-minimum-protocol-version": "1.1"},
                tls_=TLS_FOO,
            ),
        ],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB], minimum_tls_version=TLSVersion.V1_2)},
        problems=[
            P(
                "a",
                f"metadata.annotations[{PROJECT}tls-minimum-protocol-version]",
                '"1.1" is not a supported TLS version (1.2, 1.3); using 1.2',
            )
        ],
    ),
    Row(
        "tls-minimum-protocol-version invalid",
        [
            secret(),
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{HEPTIO}tls-minimum-protocol-version": "1.0"},
                tls_=TLS_FOO,
            ),
        ],
        hosts={"foo.com": [WEB]},
        secure={"foo.com": Secure([WEB])},
        problems=[P("a", f"metadata.annotations[{HEPTIO}tls-minimum-protocol-version]", '"1.0"')],
    ),
]


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate() -> CertKey:
    return self_signed(["foo.com", "*.foo.com"])


def with_certificate(value: Any, pair: CertKey) -> Any:
    """`value` with the CERT and KEY placeholders replaced by `pair`, base64 encoded."""
    if isinstance(value, dict):
        return {key: with_certificate(item, pair) for key, item in value.items()}
    if isinstance(value, list):
        return [with_certificate(item, pair) for item in value]
    if value == CERT:
        return base64.b64encode(pair.cert_pem).decode()
    if value == KEY:
        return base64.b64encode(pair.key_pem).decode()
    return value


def build(row: Row, pair: CertKey, *, reverse: bool = False) -> DAG:
    raws = [with_certificate(raw, pair) for raw in [*row.services, *row.objects]]
    objects = [parse_object(raw) for raw in raws]
    return build_every_way(
        ObjectSet.from_objects(objects[::-1] if reverse else objects), row.options
    )


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_build(row: Row, certificate: CertKey) -> None:
    dag = build(row, certificate)

    assert {host.fqdn: list(host.routes) for host in dag.virtual_hosts} == row.hosts
    assert [host.fqdn for host in dag.virtual_hosts] == list(row.hosts)
    secure = {
        host.fqdn: Secure(
            list(host.routes),
            f"{host.secret.namespace}/{host.secret.name}" if host.secret else "",
            host.minimum_tls_version,
        )
        for host in dag.secure_virtual_hosts
    }
    assert secure == {
        fqdn: Secure(list(s.routes), s.secret, s.minimum_tls_version)
        for fqdn, s in row.secure.items()
    }
    assert [host.fqdn for host in dag.secure_virtual_hosts] == list(row.secure)
    for host in dag.secure_virtual_hosts:
        assert host.secret is not None
        assert host.secret.certificate_chain == certificate.cert_pem
    assert dag.statuses == ()
    unexpected = [p for p in dag.problems if not any(e.matches(p) for e in row.problems)]
    missing = [e for e in row.problems if not any(e.matches(p) for p in dag.problems)]
    assert (unexpected, missing) == ([], [])
    assert len(dag.problems) == len(row.problems)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_input_order_does_not_matter(row: Row, certificate: CertKey) -> None:
    assert build(row, certificate) == build(row, certificate, reverse=True)


def test_an_ingress_from_another_class_is_not_even_checked() -> None:
    raw = ingress("a", rule("bad host", path("nope")), class_name="nginx")
    dag = build_every_way(ObjectSet.from_objects([parse_object(raw)]), BuildOptions())
    assert dag == DAG()


@pytest.mark.parametrize(
    ("classes", "served"),
    [
        ("contour", ["contour.example.com", "plain.example.com"]),
        ("nginx", ["nginx.example.com", "plain.example.com", "old.example.com"]),
        ("contour,nginx", ["contour.example.com", "nginx.example.com", "old.example.com",
                           "plain.example.com"]),
        (" contour , nginx ,", ["contour.example.com", "nginx.example.com", "old.example.com",
                                "plain.example.com"]),
    ],
)  # fmt: skip
def test_ingress_class_takes_a_comma_separated_list(classes: str, served: list[str]) -> None:
    """`--ingress-class contour,nginx` takes over a class another controller served: by
    `ingressClassName` and by the old annotation alike. Unclassed Ingresses are served anyway."""
    objects = [
        *BASE_SERVICES,
        ingress("a", rule("contour.example.com", path()), class_name="contour"),
        ingress("b", rule("nginx.example.com", path()), class_name="nginx"),
        ingress(
            "c",
            rule("old.example.com", path()),
            annotations={"kubernetes.io/ingress.class": "nginx"},
        ),
        ingress("d", rule("plain.example.com", path())),
    ]
    dag = build_every_way(
        ObjectSet.from_objects(map(parse_object, objects)), BuildOptions(ingress_class=classes)
    )
    assert sorted(host.fqdn for host in dag.virtual_hosts) == sorted(served)


def test_clusters_and_circuit_breakers_come_from_the_service() -> None:
    objects = [
        service(annotations={f"{HEPTIO}max-connections": "10"}),
        ingress("a", rule("foo.com", path())),
    ]
    dag = build_every_way(ObjectSet.from_objects(map(parse_object, objects)), BuildOptions())
    (cluster,) = dag.clusters()
    assert cluster.circuit_breakers == CircuitBreakers(max_connections=10)


ANNOTATION_NAMES = [
    "ingress.kubernetes.io/force-ssl-redirect",
    "kubernetes.io/ingress.allow-http",
    f"{HEPTIO}request-timeout",
    f"{PROJECT}response-timeout",
    f"{HEPTIO}websocket-routes",
    f"{HEPTIO}retry-on",
    f"{HEPTIO}num-retries",
    f"{PROJECT}per-try-timeout",
    f"{HEPTIO}tls-minimum-protocol-version",
    CLASS,
]
WORDS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["/", "/a/", "a", "*", "*.a.com", "A.com", "1e9h", "-1", "0", "5xx,", "1.3"]),
)


@settings(deadline=None)
@given(
    annotations=st.dictionaries(st.sampled_from(ANNOTATION_NAMES), WORDS, max_size=6),
    host=st.one_of(st.none(), WORDS),
    paths=st.lists(
        st.tuples(
            st.one_of(st.none(), WORDS),
            st.sampled_from(["Exact", "Prefix", "ImplementationSpecific", "Other"]),
            st.one_of(st.none(), st.integers(-1, 70000), WORDS),
        ),
        max_size=4,
    ),
    tls_hosts=st.lists(WORDS, max_size=2),
    secret_name=st.one_of(st.none(), WORDS, st.sampled_from(["cert", "certs/cert", "/", "a/b/c"])),
)
def test_never_raises(
    annotations: dict[str, str],
    host: str | None,
    paths: list[tuple[str | None, str, int | str | None]],
    tls_hosts: list[str],
    secret_name: str | None,
) -> None:
    raw = ingress(
        "a",
        rule(host, *(path(p, kind, backend("web", port)) for p, kind, port in paths)),
        annotations=annotations,
        tls_=[tls(secret_name, *tls_hosts)],
    )
    objects = [*BASE_SERVICES, secret(valid=False), secret("cert", "certs"), raw]
    built = build_every_way(ObjectSet.from_objects(map(parse_object, objects)), BuildOptions())
    assert all(problem.kind in ("Ingress", "Service") for problem in built.problems)


# --- values the DAG must settle itself -----------------------------------------------------
# Found by the hostile fuzz (tests/hostile): each row reaches the translator's backstop, which
# leaves the route or the cluster out ("not served: Envoy would reject ..."; the ExternalName
# port is blamed on the Service, with no field). The DAG should judge the Ingress's own value:
# a problem naming the annotation or the backend port, and a fallback where Contour accepted it.

BACKSTOPPED = [
    pytest.param(
        [
            BASE_SERVICES[0],
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={f"{PROJECT}response-timeout": "9223372036s"},
            ),
        ],
        id="response-timeout beyond Envoy's range",
    ),
    pytest.param(
        [
            BASE_SERVICES[0],
            ingress(
                "a",
                rule("foo.com", path()),
                annotations={
                    f"{PROJECT}retry-on": "5xx",
                    f"{PROJECT}per-try-timeout": "2562047h47m16.854775807s",
                },
            ),
        ],
        id="per-try-timeout beyond Envoy's range",
    ),
    pytest.param(
        [
            service("ext", ports=(), type="ExternalName", externalName="api.example.net"),
            ingress("a", rule("foo.com", path(to=backend("ext", 70000)))),
        ],
        id="backend port 70000 of an ExternalName Service",
    ),
    pytest.param(
        [
            service("ext", ports=(), type="ExternalName", externalName="api.example.net"),
            ingress("a", rule("foo.com", path(to=backend("ext", 2**64)))),
        ],
        id="backend port 2**64 of an ExternalName Service (protobuf raises)",
    ),
]


@pytest.mark.parametrize("objects", BACKSTOPPED)
def test_the_dag_settles_values_envoy_would_reject(objects: list[Raw]) -> None:
    object_set = ObjectSet.from_objects(map(parse_object, objects))
    dag = build_every_way(object_set, BuildOptions(enable_external_name_services=True))
    publisher = Publisher(TranslateOptions())
    report = publisher.report(dag, publisher.translate(dag, object_set))
    assert report.rejections == ()
    assert all(problem.kind == "Ingress" for problem in report.problems)
