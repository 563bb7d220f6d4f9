"""IngressRoute → DAG, table-driven: one row = objects in, every status and every host out.

Each row lists the status of *every* IngressRoute of our class (so "exactly one status each" is
checked on every row) and the full set of HTTP and HTTPS hosts. Details a summary string cannot
show (load-balancer policy, health checks, timeouts, conditions) have their own tests below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from ingressroute_support import (
    JSON,
    build,
    ca_bundle,
    ca_secret,
    certificate_delegation,
    delegate,
    http_hosts,
    https_hosts,
    ingressroute,
    malformed_secret,
    mismatched_secret,
    route,
    service,
    statuses,
    tls_secret,
    to,
)

from controlplane.dag.options import BuildOptions
from controlplane.dag.types import (
    INFINITE,
    HealthCheck,
    LoadBalancerPolicy,
    PathMatch,
    PathMatchKind,
    RetryPolicy,
    StatusKind,
    TLSVersion,
    UpstreamValidation,
)
from controlplane.envoy import TranslateOptions
from controlplane.model import ObjectSet, parse_object
from controlplane.model.contour import Condition as ConditionModel
from controlplane.publisher import Publisher


def Condition(type_: str, status: str, reason: str, message: str) -> ConditionModel:
    """A `.status.conditions` entry as the model types it (positional, for short rows)."""
    return ConditionModel(type=type_, status=status, reason=reason, message=message)


VALID = ("valid", "valid IngressRoute")
ORPHANED = (
    "orphaned",
    "this IngressRoute is not part of a delegation chain from a root IngressRoute",
)
WWW = "www.example.com"


def invalid(description: str) -> tuple[str, str]:
    return ("invalid", description)


def warned(*warnings: str) -> tuple[str, str]:
    return ("valid", "valid IngressRoute, with warnings: " + "; ".join(warnings))


@dataclass(frozen=True)
class Row:
    objects: tuple[JSON, ...]
    statuses: dict[str, tuple[str, str]]
    http: dict[str, list[str]] = field(default_factory=dict)
    https: dict[str, list[str]] = field(default_factory=dict)
    options: BuildOptions = field(default_factory=BuildOptions)


def row(
    id: str,
    *objects: JSON,
    statuses: dict[str, tuple[str, str]],
    http: dict[str, list[str]] | None = None,
    https: dict[str, list[str]] | None = None,
    options: BuildOptions | None = None,
) -> object:
    return pytest.param(
        Row(objects, statuses, http or {}, https or {}, options or BuildOptions()), id=id
    )


HOME = service("home")
BLOG = service("blog", "blog")
SHOP = service("shop", "shop")
ROOT_TLS = {"secretName": "tls"}

ROWS = [
    # --- roots -----------------------------------------------------------------------------
    row(
        "root with one route",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/", to("home"))]),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> default/home:80"]},
    ),
    row(
        "routes sorted most specific first",
        HOME,
        service("api"),
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[
                route("/", to("home")),
                route("/api", to("api")),
                route("/api/v1/", to("api")),
                route("/b", to("home")),
            ],
        ),
        statuses={"default/root": VALID},
        http={
            WWW: [
                "/api/v1 -> default/api:80",
                "/api -> default/api:80",
                "/b -> default/home:80",
                "/ -> default/home:80",
            ]
        },
    ),
    row(
        "fqdn is lower-cased, a trailing dot dropped",
        HOME,
        ingressroute("root", fqdn="WWW.Example.COM.", routes=[route("/", to("home"))]),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> default/home:80"]},
    ),
    row(
        "fqdn missing",
        HOME,
        ingressroute("root", fqdn="", routes=[route("/", to("home"))]),
        statuses={"default/root": invalid("Spec.VirtualHost.Fqdn must be specified")},
    ),
    row(
        "fqdn wildcard",
        HOME,
        ingressroute("root", fqdn="*.x.com", routes=[route("/", to("home"))]),
        statuses={"default/root": invalid('Spec.VirtualHost.Fqdn "*.x.com" cannot use wildcards')},
    ),
    row(
        "fqdn not a hostname",
        HOME,
        ingressroute("root", fqdn="a b.com", routes=[route("/", to("home"))]),
        statuses={
            "default/root": invalid('Spec.VirtualHost.Fqdn "a b.com" is not a valid hostname')
        },
    ),
    row(
        "root namespaces: root outside is invalid, delegates anywhere",
        HOME,
        BLOG,
        ingressroute("root", "default", fqdn=WWW, routes=[route("/", to("home"))]),
        ingressroute(
            "root",
            "roots",
            fqdn="ok.example.com",
            routes=[route("/blog", delegate=delegate("blog", "blog"))],
        ),
        ingressroute("blog", "blog", routes=[route("/blog", to("blog"))]),
        statuses={
            "default/root": invalid("root IngressRoute cannot be defined in this namespace"),
            "roots/root": VALID,
            "blog/blog": VALID,
        },
        http={"ok.example.com": ["/blog -> blog/blog:80"]},
        options=BuildOptions(root_namespaces=frozenset({"roots"})),
    ),
    row(
        "duplicate fqdn: the oldest wins",
        service("home", "a"),
        service("home", "b"),
        ingressroute(
            "new", "a", fqdn=WWW, routes=[route("/", to("home"))], created="2024-02-01T00:00:00Z"
        ),
        ingressroute(
            "old", "b", fqdn=WWW, routes=[route("/", to("home"))], created="2024-01-01T00:00:00Z"
        ),
        statuses={
            "a/new": invalid('fqdn "www.example.com" is already used by IngressRoute b/old'),
            "b/old": VALID,
        },
        http={WWW: ["/ -> b/home:80"]},
    ),
    row(
        "duplicate fqdn: same age, namespace/name decides; case-insensitive",
        HOME,
        ingressroute("b", fqdn=WWW, routes=[route("/b", to("home"))]),
        ingressroute("a", fqdn="WWW.example.com", routes=[route("/a", to("home"))]),
        ingressroute("c", fqdn=WWW, routes=[route("/c", to("home"))]),
        statuses={
            "default/a": VALID,
            "default/b": invalid(
                'fqdn "www.example.com" is already used by IngressRoute default/a'
            ),
            "default/c": invalid(
                'fqdn "www.example.com" is already used by IngressRoute default/a'
            ),
        },
        http={WWW: ["/a -> default/home:80"]},
    ),
    row(
        "an invalid root keeps its fqdn: a squatter never inherits it",
        HOME,
        ingressroute(
            "old", fqdn=WWW, routes=[route("/", to("missing"))], created="2023-01-01T00:00:00Z"
        ),
        ingressroute("new", fqdn=WWW, routes=[route("/", to("home"))]),
        statuses={
            "default/old": invalid("Service [missing:80] is invalid or missing"),
            "default/new": invalid(f'fqdn "{WWW}" is already used by IngressRoute default/old'),
        },
    ),
    row(
        "a root in a namespace that may not hold roots claims nothing",
        HOME,
        ingressroute(
            "old",
            namespace="tenant",
            fqdn=WWW,
            routes=[route("/", to("home"))],
            created="2023-01-01T00:00:00Z",
        ),
        ingressroute("new", fqdn=WWW, routes=[route("/", to("home"))]),
        statuses={
            "tenant/old": invalid("root IngressRoute cannot be defined in this namespace"),
            "default/new": VALID,
        },
        http={WWW: ["/ -> default/home:80"]},
        options=BuildOptions(root_namespaces=frozenset({"default"})),
    ),
    # --- routes and services -----------------------------------------------------------------
    row(
        "port out of range",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/foo", to("home", 70000))]),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": port must be in the range 1-65535'
            )
        },
    ),
    row(
        "port missing (0)",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/foo", {"name": "home"})]),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": port must be in the range 1-65535'
            )
        },
    ),
    row(
        "negative weight",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/foo", to("home", weight=-1))]),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": weight must be greater than or equal to zero'
            )
        },
    ),
    row(
        "weights add up past uint32",
        HOME,
        service("b"),
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[route("/foo", to("home", weight=2**32 - 1), to("b", weight=1))],
        ),
        statuses={
            "default/root": invalid(
                'route "/foo": the weights of its services add up to more than 4294967295'
            )
        },
    ),
    row(
        "service missing",
        ingressroute("root", fqdn=WWW, routes=[route("/foo", to("home", 8080))]),
        statuses={"default/root": invalid("Service [home:8080] is invalid or missing")},
    ),
    row(
        "service port missing",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/foo", to("home", 8080))]),
        statuses={"default/root": invalid("Service [home:8080] is invalid or missing")},
    ),
    row(
        "ExternalName refused unless enabled",
        service("ext", external_name="example.org"),
        ingressroute("root", fqdn=WWW, routes=[route("/", to("ext"))]),
        statuses={
            "default/root": invalid(
                "Service [ext:80] is of type ExternalName, which is disabled "
                "(start the controller with --enable-external-name-services to allow it)"
            )
        },
    ),
    row(
        "ExternalName allowed when enabled",
        service("ext", external_name="example.org"),
        ingressroute("root", fqdn=WWW, routes=[route("/", to("ext"))]),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> default/ext:80"]},
        options=BuildOptions(enable_external_name_services=True),
    ),
    row(
        "services and delegate in the same route",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/foo", to("home"), delegate=delegate("x"))]),
        ingressroute("x", routes=[route("/foo", to("home"))]),
        statuses={
            "default/root": invalid(
                'route "/foo": cannot specify services and delegate in the same route'
            ),
            "default/x": ORPHANED,
        },
    ),
    row(
        "match without a leading slash",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("foo", to("home"))]),
        statuses={"default/root": invalid('route "foo": match must start with "/"')},
    ),
    row(
        "empty match",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("", to("home"))]),
        statuses={"default/root": invalid('route "": match must start with "/"')},
    ),
    row(
        "match with a query",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/a?b", to("home"))]),
        statuses={"default/root": invalid('route "/a?b": match must be a path (no "?" or "#")')},
    ),
    row(
        "route with neither services nor delegate is ignored, with a warning",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/empty"), route("/", to("home"))]),
        statuses={"default/root": warned('route "/empty": has no services or delegate')},
        http={WWW: ["/ -> default/home:80"]},
    ),
    row(
        "the same path twice: the first wins, with a warning",
        HOME,
        service("other"),
        ingressroute("root", fqdn=WWW, routes=[route("/a", to("home")), route("/a/", to("other"))]),
        statuses={
            "default/root": warned(
                'route "/a/": www.example.com already routes this path to IngressRoute '
                "default/root; ignored"
            )
        },
        http={WWW: ["/a -> default/home:80"]},
    ),
    row(
        "weights: none given, all equal",
        HOME,
        service("b"),
        ingressroute("root", fqdn=WWW, routes=[route("/", to("home"), to("b"))]),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> default/home:80=1, default/b:80=1"]},
    ),
    row(
        "weights: an omitted weight is 0 when others have one",
        HOME,
        service("b"),
        service("c"),
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[route("/", to("home", weight=90), to("b", weight=10), to("c"))],
        ),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> default/home:80=90, default/b:80=10, default/c:80=0"]},
    ),
    row(
        "weights: all zero means equal shares",
        HOME,
        service("b"),
        ingressroute(
            "root", fqdn=WWW, routes=[route("/", to("home", weight=0), to("b", weight=0))]
        ),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> default/home:80=1, default/b:80=1"]},
    ),
    row(
        "timeout invalid: Envoy's default timeout and a warning, the route stays up",
        HOME,
        ingressroute(
            "root", fqdn=WWW, routes=[route("/foo", to("home"), timeoutPolicy={"request": "soon"})]
        ),
        statuses={
            "default/root": warned(
                'route "/foo": timeoutPolicy.request: "soon" is not a duration '
                "(examples: 500ms, 10s, 1m30s, infinity); using the default"
            )
        },
        http={WWW: ["/foo -> default/home:80"]},
    ),
    row(
        "retry perTryTimeout invalid: the default and a warning, the route stays up",
        HOME,
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[route("/foo", to("home"), retryPolicy={"count": 2, "perTryTimeout": "1x"})],
        ),
        statuses={
            "default/root": warned(
                'route "/foo": retryPolicy.perTryTimeout: "1x" is not a duration '
                "(examples: 500ms, 10s, 1m30s, infinity); using the default"
            )
        },
        http={WWW: ["/foo -> default/home:80"]},
    ),
    row(
        "retry count negative",
        HOME,
        ingressroute(
            "root", fqdn=WWW, routes=[route("/foo", to("home"), retryPolicy={"count": -1})]
        ),
        statuses={
            "default/root": invalid(
                'route "/foo": retryPolicy.count must be in the range 0-2147483647'
            )
        },
    ),
    row(
        "unknown strategy",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/foo", to("home", strategy="Fastest"))]),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": strategy "Fastest" is not supported '
                "(RoundRobin, WeightedLeastRequest, Random, Cookie)"
            )
        },
    ),
    row(
        "health check without a path",
        HOME,
        ingressroute(
            "root", fqdn=WWW, routes=[route("/foo", to("home", healthCheck={"intervalSeconds": 5}))]
        ),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": healthCheck.path must be specified and start '
                'with "/"'
            )
        },
    ),
    row(
        "health check negative interval",
        HOME,
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[route("/foo", to("home", healthCheck={"path": "/hz", "intervalSeconds": -5}))],
        ),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": healthCheck.intervalSeconds must be in the range '
                "0-2147483647"
            )
        },
    ),
    row(
        "upstream validation: caSecret missing",
        HOME,
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[
                route("/foo", to("home", validation={"caSecret": "ca", "subjectName": "home"}))
            ],
        ),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": validation.caSecret "ca" not found or has no '
                "valid ca.crt"
            )
        },
    ),
    row(
        "upstream validation: caSecret without ca.crt",
        HOME,
        tls_secret("ca"),
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[
                route("/foo", to("home", validation={"caSecret": "ca", "subjectName": "home"}))
            ],
        ),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": validation.caSecret "ca" not found or has no '
                "valid ca.crt"
            )
        },
    ),
    row(
        "upstream validation: caSecret in another namespace does not count",
        HOME,
        ca_secret("ca", "other"),
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[
                route("/foo", to("home", validation={"caSecret": "ca", "subjectName": "home"}))
            ],
        ),
        statuses={
            "default/root": invalid(
                'route "/foo": service "home": validation.caSecret "ca" not found or has no '
                "valid ca.crt"
            )
        },
    ),
    # --- delegation --------------------------------------------------------------------------
    row(
        "orphaned delegate",
        HOME,
        ingressroute("child", routes=[route("/foo", to("home"))]),
        statuses={"default/child": ORPHANED},
    ),
    row(
        "delegation in the same namespace",
        HOME,
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[route("/", to("home")), route("/foo", delegate=delegate("child"))],
        ),
        ingressroute("child", routes=[route("/foo", to("home")), route("/foo/bar", to("home"))]),
        statuses={"default/root": VALID, "default/child": VALID},
        http={
            WWW: ["/foo/bar -> default/home:80", "/foo -> default/home:80", "/ -> default/home:80"]
        },
    ),
    row(
        "delegation across namespaces",
        HOME,
        BLOG,
        SHOP,
        ingressroute(
            "www",
            "platform",
            fqdn=WWW,
            routes=[
                route("/blog", delegate=delegate("blog", "blog")),
                route("/shop", delegate=delegate("shop", "shop")),
            ],
        ),
        ingressroute("blog", "blog", routes=[route("/blog", to("blog"))]),
        ingressroute("shop", "shop", routes=[route("/shop", to("shop"))]),
        statuses={"platform/www": VALID, "blog/blog": VALID, "shop/shop": VALID},
        http={WWW: ["/blog -> blog/blog:80", "/shop -> shop/shop:80"]},
    ),
    row(
        "chain of three, each under the previous prefix",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("a"))]),
        ingressroute("a", routes=[route("/a", delegate=delegate("b"))]),
        ingressroute("b", routes=[route("/a/b", to("home"))]),
        statuses={"default/root": VALID, "default/a": VALID, "default/b": VALID},
        http={WWW: ["/a/b -> default/home:80"]},
    ),
    row(
        "prefix mismatch counts against the delegating route: the parent warns, the child no "
        "root reaches in place is orphaned, not invalid (another root may place it well)",
        HOME,
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[
                route("/foo", delegate=delegate("child")),
                route("/ok", delegate=delegate("sibling")),
            ],
        ),
        ingressroute("child", routes=[route("/foo", to("home")), route("/bar", to("home"))]),
        ingressroute("sibling", routes=[route("/ok", to("home"))]),
        statuses={
            "default/root": warned(
                'route "/foo": delegate default/child is invalid under this route: the path '
                'prefix "/bar" does not match the parent\'s path prefix "/foo"'
            ),
            "default/child": ORPHANED,
            "default/sibling": VALID,
        },
        http={WWW: ["/ok -> default/home:80"]},
    ),
    row(
        "prefix containment is by whole segments: /foobar is not under /foo",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/foo", delegate=delegate("child"))]),
        ingressroute("child", routes=[route("/foobar", to("home"))]),
        statuses={
            "default/root": warned(
                'route "/foo": delegate default/child is invalid under this route: the path '
                'prefix "/foobar" does not match the parent\'s path prefix "/foo"'
            ),
            "default/child": ORPHANED,
        },
    ),
    row(
        "a delegate cannot delegate outside its own prefix: the delegation to it is skipped",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/foo", delegate=delegate("child"))]),
        ingressroute("child", routes=[route("/bar", delegate=delegate("grandchild"))]),
        ingressroute("grandchild", routes=[route("/bar", to("home"))]),
        statuses={
            "default/root": warned(
                'route "/foo": delegate default/child is invalid under this route: the path '
                'prefix "/bar" does not match the parent\'s path prefix "/foo"'
            ),
            "default/child": ORPHANED,
            "default/grandchild": ORPHANED,
        },
    ),
    row(
        "missing delegate: the parent stays valid and says so",
        HOME,
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[route("/", to("home")), route("/blog", delegate=delegate("blog", "blog"))],
        ),
        statuses={"default/root": warned('route "/blog": delegate blog/blog not found')},
        http={WWW: ["/ -> default/home:80"]},
    ),
    row(
        "invalid delegate contributes nothing; its siblings and parent work",
        HOME,
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[
                route("/", to("home")),
                route("/a", delegate=delegate("a")),
                route("/b", delegate=delegate("b")),
            ],
        ),
        ingressroute("a", routes=[route("/a", to("home")), route("/a/x", to("missing", 8080))]),
        ingressroute("b", routes=[route("/b", to("home"))]),
        statuses={
            "default/root": warned(
                'route "/a": delegate default/a is invalid: Service [missing:8080] is invalid or '
                "missing"
            ),
            "default/a": invalid("Service [missing:8080] is invalid or missing"),
            "default/b": VALID,
        },
        http={WWW: ["/b -> default/home:80", "/ -> default/home:80"]},
    ),
    row(
        "a root cannot delegate to another root",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("other"))]),
        ingressroute("other", fqdn="other.example.com", routes=[route("/", to("home"))]),
        statuses={
            "default/root": invalid(
                "root ingressroute cannot delegate to another root ingressroute"
            ),
            "default/other": VALID,
        },
        http={"other.example.com": ["/ -> default/home:80"]},
    ),
    row(
        "a delegate cannot delegate to a root either",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("child"))]),
        ingressroute("child", routes=[route("/", delegate=delegate("root"))]),
        statuses={
            "default/root": warned(
                'route "/": delegate default/child is invalid: root ingressroute cannot delegate '
                "to another root ingressroute"
            ),
            "default/child": invalid(
                "root ingressroute cannot delegate to another root ingressroute"
            ),
        },
    ),
    row(
        "cycle: the delegation that closes it is skipped and its owner warns; nothing turns "
        "invalid (which delegation closes it depends on where a root enters)",
        service("home", "ns"),
        ingressroute("root", "ns", fqdn=WWW, routes=[route("/", delegate=delegate("a"))]),
        ingressroute(
            "a", "ns", routes=[route("/a", to("home")), route("/b", delegate=delegate("b"))]
        ),
        ingressroute("b", "ns", routes=[route("/b", delegate=delegate("a"))]),
        statuses={
            "ns/root": VALID,
            "ns/a": VALID,
            "ns/b": warned(
                'route "/b": delegate ns/a is invalid under this route: route creates a '
                "delegation cycle: ns/root -> ns/a -> ns/b -> ns/a"
            ),
        },
        http={WWW: ["/a -> ns/home:80"]},
    ),
    row(
        "cycle: reported from the root with the full path, as Contour does",
        service("home", "roots"),
        ingressroute("root", "roots", fqdn=WWW, routes=[route("/", delegate=delegate("a"))]),
        ingressroute("a", "roots", routes=[route("/", delegate=delegate("b"))]),
        ingressroute(
            "b", "roots", routes=[route("/b", to("home")), route("/", delegate=delegate("a"))]
        ),
        statuses={
            "roots/root": VALID,
            "roots/a": VALID,
            "roots/b": warned(
                'route "/": delegate roots/a is invalid under this route: route creates a '
                "delegation cycle: roots/root -> roots/a -> roots/b -> roots/a"
            ),
        },
        http={WWW: ["/b -> roots/home:80"]},
    ),
    row(
        "cycle: each root whose walk meets it reports its own path",
        service("home", "roots"),
        ingressroute("root", "roots", fqdn=WWW, routes=[route("/", delegate=delegate("a"))]),
        ingressroute(
            "other", "roots", fqdn="other.example.com", routes=[route("/", delegate=delegate("a"))]
        ),
        ingressroute(
            "a", "roots", routes=[route("/a", to("home")), route("/", delegate=delegate("a"))]
        ),
        statuses={
            "roots/root": VALID,
            "roots/other": VALID,
            "roots/a": warned(
                'route "/": delegate roots/a is invalid under this route: route creates a '
                "delegation cycle: roots/other -> roots/a -> roots/a",
                'route "/": delegate roots/a is invalid under this route: route creates a '
                "delegation cycle: roots/root -> roots/a -> roots/a",
            ),
        },
        http={"other.example.com": ["/a -> roots/home:80"], WWW: ["/a -> roots/home:80"]},
    ),
    row(
        "cycle: an object delegating to itself serves its other routes and warns",
        HOME,
        ingressroute(
            "root", fqdn=WWW, routes=[route("/", to("home")), route("/a", delegate=delegate("a"))]
        ),
        ingressroute(
            "a", routes=[route("/a", to("home")), route("/a/again", delegate=delegate("a"))]
        ),
        statuses={
            "default/root": VALID,
            "default/a": warned(
                'route "/a/again": delegate default/a is invalid under this route: route creates '
                "a delegation cycle: default/root -> default/a -> default/a"
            ),
        },
        http={WWW: ["/a -> default/home:80", "/ -> default/home:80"]},
    ),
    row(
        "cycle no root reaches: all orphaned",
        HOME,
        ingressroute("a", routes=[route("/", delegate=delegate("b"))]),
        ingressroute("b", routes=[route("/", delegate=delegate("a"))]),
        statuses={"default/a": ORPHANED, "default/b": ORPHANED},
    ),
    row(
        "a cycle two roots enter at different objects: each walk skips the delegation that "
        "closes it there, nothing turns invalid, and both hosts keep serving",
        service("home", "ns"),
        ingressroute("root", "ns", fqdn=WWW, routes=[route("/", delegate=delegate("a"))]),
        ingressroute(
            "a", "ns", routes=[route("/a", to("home")), route("/", delegate=delegate("b"))]
        ),
        ingressroute(
            "b", "ns", routes=[route("/b", to("home")), route("/", delegate=delegate("a"))]
        ),
        ingressroute(
            "evil",
            "bad",
            fqdn="evil.example.com",
            routes=[route("/", delegate=delegate("b", "ns"))],
        ),
        statuses={
            "bad/evil": VALID,
            "ns/root": VALID,
            "ns/a": warned(
                'route "/": delegate ns/b is invalid under this route: route creates a delegation '
                "cycle: bad/evil -> ns/b -> ns/a -> ns/b"
            ),
            "ns/b": warned(
                'route "/": delegate ns/a is invalid under this route: route creates a delegation '
                "cycle: ns/root -> ns/a -> ns/b -> ns/a"
            ),
        },
        http={
            "evil.example.com": ["/a -> ns/home:80", "/b -> ns/home:80"],
            WWW: ["/a -> ns/home:80", "/b -> ns/home:80"],
        },
    ),
    row(
        "a delegate reachable from two roots serves under both hosts",
        BLOG,
        ingressroute(
            "one",
            "a",
            fqdn="one.example.com",
            routes=[route("/blog", delegate=delegate("blog", "blog"))],
        ),
        ingressroute(
            "two",
            "b",
            fqdn="two.example.com",
            routes=[route("/blog", delegate=delegate("blog", "blog"))],
        ),
        ingressroute("blog", "blog", routes=[route("/blog", to("blog"))]),
        statuses={"a/one": VALID, "b/two": VALID, "blog/blog": VALID},
        http={
            "one.example.com": ["/blog -> blog/blog:80"],
            "two.example.com": ["/blog -> blog/blog:80"],
        },
    ),
    row(
        "a delegate out of prefix under one root still serves the root that places it well: "
        "the mismatch is the delegating route's, not the delegate's",
        BLOG,
        ingressroute(
            "one",
            "a",
            fqdn="one.example.com",
            routes=[route("/", delegate=delegate("blog", "blog"))],
        ),
        ingressroute(
            "two",
            "b",
            fqdn="two.example.com",
            routes=[route("/news", delegate=delegate("blog", "blog"))],
        ),
        ingressroute("blog", "blog", routes=[route("/blog", to("blog"))]),
        statuses={
            "a/one": VALID,
            "b/two": warned(
                'route "/news": delegate blog/blog is invalid under this route: the path prefix '
                '"/blog" does not match the parent\'s path prefix "/news"'
            ),
            "blog/blog": VALID,
        },
        http={"one.example.com": ["/blog -> blog/blog:80"]},
    ),
    row(
        "a delegate reached twice from one root contributes its routes once",
        HOME,
        ingressroute(
            "root",
            fqdn=WWW,
            routes=[route("/a", delegate=delegate("c")), route("/a/b", delegate=delegate("c"))],
        ),
        ingressroute("c", routes=[route("/a/b/c", to("home"))]),
        statuses={"default/root": VALID, "default/c": VALID},
        http={WWW: ["/a/b/c -> default/home:80"]},
    ),
    row(
        "a delegate's route shadowed by the parent's: the root of the host is told, not the "
        "delegate (which may serve other roots)",
        HOME,
        service("other"),
        ingressroute(
            "root", fqdn=WWW, routes=[route("/a", to("home")), route("/a", delegate=delegate("c"))]
        ),
        ingressroute("c", routes=[route("/a", to("other"))]),
        statuses={
            "default/root": warned(
                'route "/a" of IngressRoute default/c: www.example.com already routes this path '
                "to IngressRoute default/root; ignored"
            ),
            "default/c": VALID,
        },
        http={WWW: ["/a -> default/home:80"]},
    ),
    row(
        "invalid beats orphaned",
        ingressroute("child", routes=[route("/foo", to("home", 70000))]),
        statuses={
            "default/child": invalid(
                'route "/foo": service "home": port must be in the range 1-65535'
            )
        },
    ),
    # --- TLS ---------------------------------------------------------------------------------
    row(
        "TLS root: secure host, redirects on HTTP except permitInsecure",
        HOME,
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls=ROOT_TLS,
            routes=[route("/", to("home")), route("/.well-known", to("home"), permitInsecure=True)],
        ),
        statuses={"default/root": VALID},
        http={WWW: ["/.well-known -> default/home:80", "/ -> https"]},
        https={
            WWW: [
                "secret default/tls tls1.2",
                "/.well-known -> default/home:80",
                "/ -> default/home:80",
            ]
        },
    ),
    row(
        "TLS: delegated routes are redirected too",
        HOME,
        tls_secret("tls"),
        ingressroute("root", fqdn=WWW, tls=ROOT_TLS, routes=[route("/a", delegate=delegate("a"))]),
        ingressroute("a", routes=[route("/a", to("home"))]),
        statuses={"default/root": VALID, "default/a": VALID},
        http={WWW: ["/a -> https"]},
        https={WWW: ["secret default/tls tls1.2", "/a -> default/home:80"]},
    ),
    row(
        "TLS secret missing: invalid, nothing served on HTTP either",
        HOME,
        ingressroute("root", fqdn=WWW, tls={"secretName": "name"}, routes=[route("/", to("home"))]),
        statuses={"default/root": invalid("TLS Secret [name] not found or is malformed")},
    ),
    row(
        "TLS secret malformed",
        HOME,
        malformed_secret("name"),
        ingressroute("root", fqdn=WWW, tls={"secretName": "name"}, routes=[route("/", to("home"))]),
        statuses={
            "default/root": invalid(
                "TLS Secret [name] not found or is malformed: tls.crt is not a PEM certificate"
            )
        },
    ),
    row(
        "TLS secret whose key does not match its certificate: invalid, never sent to Envoy",
        HOME,
        mismatched_secret("name"),
        ingressroute("root", fqdn=WWW, tls={"secretName": "name"}, routes=[route("/", to("home"))]),
        statuses={
            "default/root": invalid(
                "TLS Secret [name] not found or is malformed: "
                "the private key does not match the certificate"
            )
        },
    ),
    row(
        "TLS with neither secret nor passthrough",
        HOME,
        ingressroute("root", fqdn=WWW, tls={}, routes=[route("/", to("home"))]),
        statuses={"default/root": invalid("TLS Secret [] not found or is malformed")},
    ),
    row(
        "TLS minimum protocol version",
        HOME,
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls={"secretName": "tls", "minimumProtocolVersion": "1.3"},
            routes=[route("/", to("home"))],
        ),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> https"]},
        https={WWW: ["secret default/tls tls1.3", "/ -> default/home:80"]},
    ),
    row(
        "TLS minimum protocol version 1.0: TLS 1.2 and a warning, the host stays up",
        HOME,
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls={"secretName": "tls", "minimumProtocolVersion": "1.0"},
            routes=[route("/", to("home"))],
        ),
        statuses={
            "default/root": warned(
                'Spec.VirtualHost.TLS.MinimumProtocolVersion "1.0" is not supported '
                "(1.2 or 1.3); using 1.2"
            )
        },
        http={WWW: ["/ -> https"]},
        https={WWW: ["secret default/tls tls1.2", "/ -> default/home:80"]},
    ),
    row(
        "TLS minimum protocol version 1.1: TLS 1.2 and a warning",
        HOME,
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls={"secretName": "tls", "minimumProtocolVersion": "1.1"},
            routes=[route("/", to("home"))],
        ),
        statuses={
            "default/root": warned(
                'Spec.VirtualHost.TLS.MinimumProtocolVersion "1.1" is not supported '
                "(1.2 or 1.3); using 1.2"
            )
        },
        http={WWW: ["/ -> https"]},
        https={WWW: ["secret default/tls tls1.2", "/ -> default/home:80"]},
    ),
    row(
        "certificate from another namespace without delegation",
        HOME,
        tls_secret("wildcard", "certs"),
        ingressroute(
            "root", fqdn=WWW, tls={"secretName": "certs/wildcard"}, routes=[route("/", to("home"))]
        ),
        statuses={"default/root": invalid("certs/wildcard: certificate delegation not permitted")},
    ),
    row(
        "certificate delegation to another namespace does not count",
        HOME,
        tls_secret("wildcard", "certs"),
        certificate_delegation("d", "certs", "wildcard", ["other"]),
        certificate_delegation("d", "elsewhere", "wildcard", ["default"]),
        ingressroute(
            "root", fqdn=WWW, tls={"secretName": "certs/wildcard"}, routes=[route("/", to("home"))]
        ),
        statuses={"default/root": invalid("certs/wildcard: certificate delegation not permitted")},
    ),
    row(
        "certificate delegation naming the namespace",
        HOME,
        tls_secret("wildcard", "certs"),
        certificate_delegation("d", "certs", "wildcard", ["other", "default"]),
        ingressroute(
            "root", fqdn=WWW, tls={"secretName": "certs/wildcard"}, routes=[route("/", to("home"))]
        ),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> https"]},
        https={WWW: ["secret certs/wildcard tls1.2", "/ -> default/home:80"]},
    ),
    row(
        "certificate delegation to *",
        HOME,
        tls_secret("wildcard", "certs"),
        certificate_delegation("d", "certs", "wildcard", ["*"]),
        ingressroute(
            "root", fqdn=WWW, tls={"secretName": "certs/wildcard"}, routes=[route("/", to("home"))]
        ),
        statuses={"default/root": VALID},
        http={WWW: ["/ -> https"]},
        https={WWW: ["secret certs/wildcard tls1.2", "/ -> default/home:80"]},
    ),
    row(
        "delegated certificate that is missing",
        HOME,
        certificate_delegation("d", "certs", "wildcard", ["*"]),
        ingressroute(
            "root", fqdn=WWW, tls={"secretName": "certs/wildcard"}, routes=[route("/", to("home"))]
        ),
        statuses={"default/root": invalid("TLS Secret [certs/wildcard] not found or is malformed")},
    ),
    row(
        "passthrough together with a secret: terminated, with a warning",
        HOME,
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls={"secretName": "tls", "passthrough": True},
            routes=[route("/", to("home"))],
        ),
        statuses={
            "default/root": warned(
                "Spec.VirtualHost.TLS.Passthrough is ignored because SecretName is set"
            )
        },
        http={WWW: ["/ -> https"]},
        https={WWW: ["secret default/tls tls1.2", "/ -> default/home:80"]},
    ),
    # --- tcpproxy ----------------------------------------------------------------------------
    row(
        "tcpproxy passthrough to services",
        service("db", ports=[443]),
        ingressroute(
            "root", fqdn=WWW, tls={"passthrough": True}, tcpproxy={"services": [to("db", 443)]}
        ),
        statuses={"default/root": VALID},
        https={WWW: ["passthrough", "tcp -> default/db:443"]},
    ),
    row(
        "tcpproxy passthrough with HTTP routes: the routes are ignored, no HTTP host at all",
        HOME,
        service("db", ports=[443]),
        ingressroute(
            "root",
            fqdn=WWW,
            tls={"passthrough": True},
            tcpproxy={"services": [to("db", 443)]},
            routes=[route("/", to("home")), route("/.well-known", to("home"), permitInsecure=True)],
        ),
        statuses={"default/root": warned("Spec.Routes is ignored because tcpproxy is set")},
        https={WWW: ["passthrough", "tcp -> default/db:443"]},
    ),
    row(
        "tcpproxy with TLS terminated: routes are not even checked (Contour's dummy route)",
        service("db", ports=[5432]),
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls=ROOT_TLS,
            tcpproxy={"services": [to("db", 5432)]},
            routes=[
                route("no-slash", to("missing")),
                route("/x", to("db", 5432), delegate=delegate("nobody")),
                route("/d", delegate=delegate("child")),
            ],
        ),
        ingressroute("child", routes=[route("/d", to("db", 5432))]),
        statuses={
            "default/root": warned("Spec.Routes is ignored because tcpproxy is set"),
            "default/child": ORPHANED,
        },
        https={WWW: ["secret default/tls tls1.2", "tcp -> default/db:5432"]},
    ),
    row(
        "a tcpproxy delegate ignores its routes too, wherever it is delegated",
        service("db", ports=[443]),
        ingressroute(
            "root", fqdn=WWW, tls={"passthrough": True}, tcpproxy={"delegate": delegate("db")}
        ),
        ingressroute(
            "web",
            fqdn="web.example.com",
            routes=[route("/", delegate=delegate("db"))],
        ),
        ingressroute(
            "db", tcpproxy={"services": [to("db", 443)]}, routes=[route("/", to("db", 443))]
        ),
        statuses={
            "default/root": VALID,
            "default/web": VALID,
            "default/db": warned("Spec.Routes is ignored because tcpproxy is set"),
        },
        https={WWW: ["passthrough", "tcp -> default/db:443"]},
    ),
    row(
        "tcpproxy with TLS terminated at Envoy",
        service("db", ports=[5432]),
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls=ROOT_TLS,
            tcpproxy={"services": [to("db", 5432, weight=1), to("db", 5432, weight=3)]},
        ),
        statuses={"default/root": VALID},
        https={WWW: ["secret default/tls tls1.2", "tcp -> default/db:5432=1, default/db:5432=3"]},
    ),
    row(
        "tcpproxy with one weighted and one unweighted service: the unweighted one gets 1, as "
        "in Contour 0.15 (never 0, which Envoy refuses)",
        service("db", ports=[5432]),
        service("db2", ports=[5432]),
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls=ROOT_TLS,
            tcpproxy={"services": [to("db", 5432, weight=20), to("db2", 5432)]},
        ),
        statuses={"default/root": VALID},
        https={WWW: ["secret default/tls tls1.2", "tcp -> default/db:5432=20, default/db2:5432=1"]},
    ),
    row(
        "tcpproxy with an explicit weight 0 beside others: that service is drained",
        service("db", ports=[5432]),
        service("db2", ports=[5432]),
        service("db3", ports=[5432]),
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls=ROOT_TLS,
            tcpproxy={
                "services": [to("db", 5432, weight=0), to("db2", 5432), to("db3", 5432, weight=2)]
            },
        ),
        statuses={"default/root": VALID},
        https={WWW: ["secret default/tls tls1.2", "tcp -> default/db2:5432=1, default/db3:5432=2"]},
    ),
    row(
        "tcpproxy whose weights are all 0: equal shares",
        service("db", ports=[5432]),
        service("db2", ports=[5432]),
        tls_secret("tls"),
        ingressroute(
            "root",
            fqdn=WWW,
            tls=ROOT_TLS,
            tcpproxy={"services": [to("db", 5432, weight=0), to("db2", 5432, weight=0)]},
        ),
        statuses={"default/root": VALID},
        https={WWW: ["secret default/tls tls1.2", "tcp -> default/db:5432=1, default/db2:5432=1"]},
    ),
    row(
        "tcpproxy delegated to another namespace",
        service("db", "data", ports=[443]),
        ingressroute(
            "root",
            fqdn=WWW,
            tls={"passthrough": True},
            tcpproxy={"delegate": delegate("db", "data")},
        ),
        ingressroute("db", "data", tcpproxy={"services": [to("db", 443)]}),
        statuses={"default/root": VALID, "data/db": VALID},
        https={WWW: ["passthrough", "tcp -> data/db:443"]},
    ),
    row(
        "tcpproxy delegate missing",
        ingressroute(
            "root", fqdn=WWW, tls={"passthrough": True}, tcpproxy={"delegate": delegate("db")}
        ),
        statuses={"default/root": warned("tcpproxy: delegate default/db not found")},
    ),
    row(
        "tcpproxy delegate without a tcpproxy",
        HOME,
        ingressroute(
            "root", fqdn=WWW, tls={"passthrough": True}, tcpproxy={"delegate": delegate("db")}
        ),
        ingressroute("db", routes=[route("/", to("home"))]),
        statuses={
            "default/root": warned("tcpproxy: delegate default/db has no tcpproxy"),
            "default/db": ORPHANED,
        },
    ),
    row(
        "tcpproxy delegation cycle: the delegation closing it is skipped and its owner warns",
        ingressroute(
            "root", fqdn=WWW, tls={"passthrough": True}, tcpproxy={"delegate": delegate("a")}
        ),
        ingressroute("a", tcpproxy={"delegate": delegate("b")}),
        ingressroute("b", tcpproxy={"delegate": delegate("a")}),
        statuses={
            "default/root": VALID,
            "default/a": VALID,
            "default/b": warned(
                "tcpproxy: delegate default/a is invalid under this tcpproxy: tcpproxy creates a "
                "delegation cycle: default/root -> default/a -> default/b -> default/a"
            ),
        },
    ),
    row(
        "tcpproxy with services and delegate",
        service("db", ports=[443]),
        ingressroute(
            "root",
            fqdn=WWW,
            tls={"passthrough": True},
            tcpproxy={"services": [to("db", 443)], "delegate": delegate("x")},
        ),
        statuses={
            "default/root": invalid(
                "tcpproxy: cannot specify services and delegate in the same tcpproxy"
            )
        },
    ),
    row(
        "tcpproxy with nothing",
        ingressroute("root", fqdn=WWW, tls={"passthrough": True}, tcpproxy={}),
        statuses={
            "default/root": invalid("tcpproxy: either services or delegate must be specified")
        },
    ),
    row(
        "tcpproxy service port out of range",
        ingressroute(
            "root", fqdn=WWW, tls={"passthrough": True}, tcpproxy={"services": [to("db", 0)]}
        ),
        statuses={
            "default/root": invalid('tcpproxy: service "db": port must be in the range 1-65535')
        },
    ),
    row(
        "tcpproxy without TLS is ignored, routes still served",
        HOME,
        ingressroute(
            "root", fqdn=WWW, tcpproxy={"services": [to("home")]}, routes=[route("/", to("home"))]
        ),
        statuses={
            "default/root": warned("tcpproxy is ignored because Spec.VirtualHost.TLS is not set")
        },
        http={WWW: ["/ -> default/home:80"]},
    ),
    row(
        "passthrough without tcpproxy: routes on plain HTTP, with a warning",
        HOME,
        ingressroute("root", fqdn=WWW, tls={"passthrough": True}, routes=[route("/", to("home"))]),
        statuses={
            "default/root": warned(
                "Spec.VirtualHost.TLS.Passthrough is ignored because there is no tcpproxy"
            )
        },
        http={WWW: ["/ -> default/home:80"]},
    ),
    # --- selection and malformed objects -----------------------------------------------------
    row(
        "class annotations filter IngressRoutes; others get no status",
        HOME,
        ingressroute(
            "ours",
            fqdn="a.example.com",
            routes=[route("/", to("home"))],
            annotations={"kubernetes.io/ingress.class": "contour"},
        ),
        ingressroute(
            "heptio",
            fqdn="b.example.com",
            routes=[route("/", to("home"))],
            annotations={"contour.heptio.com/ingress.class": "contour"},
        ),
        ingressroute(
            "theirs",
            fqdn="c.example.com",
            routes=[route("/", to("home"))],
            annotations={"kubernetes.io/ingress.class": "nginx"},
        ),
        statuses={"default/ours": VALID, "default/heptio": VALID},
        http={"a.example.com": ["/ -> default/home:80"], "b.example.com": ["/ -> default/home:80"]},
    ),
    row(
        "a delegate of another class is not found",
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("child"))]),
        ingressroute(
            "child",
            routes=[route("/", to("home"))],
            annotations={"kubernetes.io/ingress.class": "nginx"},
        ),
        statuses={"default/root": warned('route "/": delegate default/child not found')},
    ),
    row(
        "a root of another class does not hold an fqdn",
        HOME,
        ingressroute(
            "theirs",
            fqdn=WWW,
            routes=[route("/", to("home"))],
            annotations={"kubernetes.io/ingress.class": "nginx"},
            created="2000-01-01T00:00:00Z",
        ),
        ingressroute("ours", fqdn=WWW, routes=[route("/", to("home"))]),
        statuses={"default/ours": VALID},
        http={WWW: ["/ -> default/home:80"]},
    ),
]


@pytest.mark.parametrize("case", ROWS)
def test_build(case: Row) -> None:
    dag = build(case.objects, case.options)
    assert statuses(dag) == case.statuses
    assert http_hosts(dag) == case.http
    assert https_hosts(dag) == case.https


def test_malformed_object_is_invalid_naming_the_field() -> None:
    broken = ingressroute("root", fqdn=WWW)
    broken["spec"]["routes"] = [{"match": "/", "services": [{"name": "home", "port": "eighty"}]}]
    dag = build([HOME, broken])
    [status] = dag.statuses
    assert status.current_status is StatusKind.INVALID
    assert status.description.startswith("spec.routes[0].services[0].port: ")
    assert dag.virtual_hosts == ()


def test_malformed_delegate_is_reported_to_its_parent() -> None:
    broken = ingressroute("child")
    broken["spec"]["routes"] = "not a list"
    dag = build(
        [
            HOME,
            ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("child"))]),
            broken,
        ]
    )
    found = statuses(dag)
    assert found["default/child"][0] == "invalid"
    assert found["default/child"][1].startswith("spec.routes: ")
    assert found["default/root"][1].startswith(
        'valid IngressRoute, with warnings: route "/": delegate default/child is invalid: '
        "spec.routes: "
    )


def test_conditions_mirror_the_status_and_list_each_warning() -> None:
    dag = build(
        [
            HOME,
            ingressroute(
                "root",
                fqdn=WWW,
                routes=[
                    route("/", to("home")),
                    route("/blog", delegate=delegate("blog", "blog")),
                    route("/bad", delegate=delegate("bad")),
                ],
            ),
            ingressroute("bad", routes=[route("/elsewhere", to("home"))]),
            ingressroute("orphan", routes=[route("/", to("home"))]),
        ]
    )
    by_name = {s.name: s for s in dag.statuses}
    mismatch = 'the path prefix "/elsewhere" does not match the parent\'s path prefix "/bad"'
    root = by_name["root"]
    assert root.current_status is StatusKind.VALID
    assert root.conditions == (
        Condition("Valid", "True", "Valid", root.description),
        Condition(
            "Warning", "True", "DelegateNotFound", 'route "/blog": delegate blog/blog not found'
        ),
        Condition(
            "Warning",
            "True",
            "DelegateInvalid",
            f'route "/bad": delegate default/bad is invalid under this route: {mismatch}',
        ),
    )
    assert by_name["bad"].conditions == (Condition("Valid", "False", "Orphaned", ORPHANED[1]),)
    assert by_name["orphan"].conditions == (Condition("Valid", "False", "Orphaned", ORPHANED[1]),)


def test_valid_object_has_a_single_valid_condition_and_observed_generation() -> None:
    dag = build(
        [HOME, ingressroute("root", fqdn=WWW, routes=[route("/", to("home"))], generation=7)]
    )
    [status] = dag.statuses
    assert status.kind == "IngressRoute"
    assert status.observed_generation == 7
    assert status.conditions == (Condition("Valid", "True", "Valid", "valid IngressRoute"),)


def test_statuses_sorted_one_per_object() -> None:
    dag = build(
        [
            HOME,
            ingressroute("z", "b", fqdn="z.example.com", routes=[route("/", to("home", 1))]),
            ingressroute("a", "b", routes=[route("/", to("home"))]),
            ingressroute("m", "a", fqdn=WWW, routes=[route("/", to("home"))]),
        ]
    )
    assert [(s.namespace, s.name) for s in dag.statuses] == [("a", "m"), ("b", "a"), ("b", "z")]


def test_match_is_a_segment_prefix_and_slash_a_plain_prefix() -> None:
    dag = build(
        [
            HOME,
            ingressroute(
                "root", fqdn=WWW, routes=[route("/", to("home")), route("/foo/", to("home"))]
            ),
        ]
    )
    [host] = dag.virtual_hosts
    assert [r.match for r in host.routes] == [
        PathMatch(PathMatchKind.SEGMENT_PREFIX, "/foo"),
        PathMatch(PathMatchKind.PREFIX, "/"),
    ]


@pytest.mark.parametrize(
    ("strategy", "policy"),
    [
        (None, LoadBalancerPolicy.ROUND_ROBIN),
        ("RoundRobin", LoadBalancerPolicy.ROUND_ROBIN),
        ("WeightedLeastRequest", LoadBalancerPolicy.WEIGHTED_LEAST_REQUEST),
        ("Random", LoadBalancerPolicy.RANDOM),
        ("Cookie", LoadBalancerPolicy.COOKIE),
    ],
)
def test_strategy_sets_the_load_balancer(strategy: str | None, policy: LoadBalancerPolicy) -> None:
    ref = to("home") if strategy is None else to("home", strategy=strategy)
    dag = build([HOME, ingressroute("root", fqdn=WWW, routes=[route("/", ref)])])
    [host] = dag.virtual_hosts
    assert host.routes[0].clusters[0].cluster.load_balancer is policy


def test_health_check_defaults_and_overrides() -> None:
    dag = build(
        [
            HOME,
            service("b"),
            ingressroute(
                "root",
                fqdn=WWW,
                routes=[
                    route("/a", to("home", healthCheck={"path": "/healthz"})),
                    route(
                        "/b",
                        to(
                            "b",
                            healthCheck={
                                "path": "/hz",
                                "host": "probe.local",
                                "intervalSeconds": 10,
                                "timeoutSeconds": 0,
                                "unhealthyThresholdCount": 5,
                                "healthyThresholdCount": 1,
                            },
                        ),
                    ),
                ],
            ),
        ]
    )
    [host] = dag.virtual_hosts
    checks = {r.match.value: r.clusters[0].cluster.health_check for r in host.routes}
    assert checks["/a"] == HealthCheck(path="/healthz")
    assert checks["/b"] == HealthCheck(
        path="/hz",
        host="probe.local",
        interval_seconds=10,
        timeout_seconds=2,
        unhealthy_threshold=5,
        healthy_threshold=1,
    )


def test_upstream_validation() -> None:
    validation = {"caSecret": "ca", "subjectName": "home.internal"}
    dag = build(
        [
            HOME,
            ca_secret("ca"),
            ingressroute("root", fqdn=WWW, routes=[route("/", to("home", validation=validation))]),
        ]
    )
    [host] = dag.virtual_hosts
    cluster = host.routes[0].clusters[0].cluster
    assert cluster.validation == UpstreamValidation(ca_bundle(), "home.internal")


def test_upstream_validation_needs_a_subject_name() -> None:
    dag = build(
        [
            HOME,
            ca_secret("ca"),
            ingressroute(
                "root", fqdn=WWW, routes=[route("/", to("home", validation={"caSecret": "ca"}))]
            ),
        ]
    )
    assert statuses(dag) == {
        "default/root": invalid(
            'route "/": service "home": validation.subjectName must be specified'
        )
    }


def test_route_options_websockets_rewrite_timeouts_retries() -> None:
    dag = build(
        [
            HOME,
            ingressroute(
                "root",
                fqdn=WWW,
                routes=[
                    route(
                        "/app",
                        to("home"),
                        enableWebsockets=True,
                        prefixRewrite="/",
                        timeoutPolicy={"request": "1m30s"},
                        retryPolicy={"count": 3, "perTryTimeout": "150ms"},
                    ),
                    route(
                        "/stream", to("home"), timeoutPolicy={"request": "infinity"}, retryPolicy={}
                    ),
                    route("/", to("home")),
                ],
            ),
        ]
    )
    [host] = dag.virtual_hosts
    by_match = {r.match.value: r for r in host.routes}
    app = by_match["/app"]
    assert app.websocket is True
    assert app.prefix_rewrite == "/"
    assert app.timeout_seconds == 90.0
    assert app.retry == RetryPolicy(retry_on="5xx", num_retries=3, per_try_timeout_seconds=0.15)
    stream = by_match["/stream"]
    assert stream.timeout_seconds is not None and math.isinf(stream.timeout_seconds)
    assert stream.timeout_seconds == INFINITE
    assert stream.retry == RetryPolicy(retry_on="5xx", num_retries=1)
    plain = by_match["/"]
    assert (plain.websocket, plain.prefix_rewrite, plain.timeout_seconds, plain.retry) == (
        False,
        None,
        None,
        None,
    )


# Durations Go (and so `parse_duration`) accepts but Envoy does not: at most 9223372035 s. Found
# by the hostile fuzz: the translator's backstop leaves the whole route out ("not served").
TOO_LONG_FOR_ENVOY = ["9223372036s", "2562047h47m16.854775807s", "9223372035999999999ns"]


@pytest.mark.parametrize("field", ["timeoutPolicy", "retryPolicy"])
@pytest.mark.parametrize("value", TOO_LONG_FOR_ENVOY)
def test_a_timeout_beyond_envoys_range_falls_back_and_the_route_is_served(
    field: str, value: str
) -> None:
    policy = {"request": value} if field == "timeoutPolicy" else {"perTryTimeout": value}
    manifests = [
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/", to("home"), **{field: policy})]),
    ]
    objects = ObjectSet.from_objects(parse_object(m) for m in manifests)
    dag = build(manifests)
    publisher = Publisher(TranslateOptions())
    report = publisher.report(dag, publisher.translate(dag, objects))
    assert report.rejections == ()
    [status] = report.statuses
    assert status.current_status is StatusKind.VALID
    assert field in status.description  # a warning naming the field


def test_service_annotations_apply_and_their_problems_are_reported() -> None:
    annotated = service(
        "home",
        annotations={
            "contour.heptio.com/upstream-protocol.h2c": "80",
            "contour.heptio.com/max-connections": "many",
        },
    )
    dag = build(
        [
            annotated,
            ingressroute(
                "root", fqdn=WWW, routes=[route("/", to("home")), route("/b", to("home"))]
            ),
        ]
    )
    [host] = dag.virtual_hosts
    assert host.routes[0].clusters[0].cluster.protocol.value == "h2c"
    [problem] = dag.problems
    assert (problem.kind, problem.name) == ("Service", "home")


def test_secure_host_minimum_version_default_is_1_2() -> None:
    dag = build(
        [
            HOME,
            tls_secret("tls"),
            ingressroute("root", fqdn=WWW, tls=ROOT_TLS, routes=[route("/", to("home"))]),
        ]
    )
    [secure] = dag.secure_virtual_hosts
    assert secure.minimum_tls_version is TLSVersion.V1_2
    assert not secure.passthrough


def test_passthrough_host_has_no_secret() -> None:
    dag = build(
        [
            service("db", ports=[443]),
            ingressroute(
                "root", fqdn=WWW, tls={"passthrough": True}, tcpproxy={"services": [to("db", 443)]}
            ),
        ]
    )
    [secure] = dag.secure_virtual_hosts
    assert secure.passthrough and secure.secret is None and secure.routes == ()


def test_deep_chain_does_not_hit_the_recursion_limit() -> None:
    depth = 3000
    objects: list[JSON] = [
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("d0"))]),
    ]
    for level in range(depth):
        objects.append(
            ingressroute(f"d{level}", routes=[route("/", delegate=delegate(f"d{level + 1}"))])
        )
    objects.append(ingressroute(f"d{depth}", routes=[route("/deep", to("home"))]))
    dag = build(objects)
    assert http_hosts(dag) == {WWW: ["/deep -> default/home:80"]}
    assert {s.current_status for s in dag.statuses} == {StatusKind.VALID}


def test_diamonds_do_not_explode() -> None:
    # Each level delegates twice to the next: 2**40 chains, but each object is expanded once.
    levels = 40
    objects: list[JSON] = [
        HOME,
        ingressroute("root", fqdn=WWW, routes=[route("/", delegate=delegate("l0a"))]),
    ]
    for level in range(levels):
        for side in "ab":
            routes = [route("/", delegate=delegate(f"l{level + 1}{next_}")) for next_ in "ab"]
            objects.append(ingressroute(f"l{level}{side}", routes=routes))
    objects.append(ingressroute(f"l{levels}a", routes=[route("/x", to("home"))]))
    objects.append(ingressroute(f"l{levels}b", routes=[route("/y", to("home"))]))
    dag = build(objects)
    assert http_hosts(dag) == {WWW: ["/x -> default/home:80", "/y -> default/home:80"]}
    assert {s.description for s in dag.statuses if s.name != "l0b"} == {"valid IngressRoute"}
    assert statuses(dag)["default/l0b"] == ORPHANED


def test_build_is_pure() -> None:
    manifests = [
        HOME,
        tls_secret("tls"),
        ingressroute("root", fqdn=WWW, tls=ROOT_TLS, routes=[route("/", to("home"))]),
    ]
    assert build(manifests) == build(manifests)


HOSTILE = [
    ("a space", "/a b", "' '"),
    ("a tab", "/a\tb", "'\\t'"),
    ("CR/LF", "/a\r\nb", "'\\r'"),
    ("NUL", "/a\x00b", "'\\x00'"),
]


@pytest.mark.parametrize(("what", "value", "shown"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_match_with_characters_no_path_has_is_invalid(what: str, value: str, shown: str) -> None:
    dag = build([HOME, ingressroute("root", fqdn=WWW, routes=[route(value, to("home"))])])
    status = statuses(dag)["default/root"]
    assert status[0] == "invalid"
    assert "match" in status[1] and "must be a URL path" in status[1] and shown in status[1]
    assert "\n" not in status[1] and "\x00" not in status[1]  # quoted, never raw
    assert dag.virtual_hosts == ()


@pytest.mark.parametrize(("what", "value", "shown"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_prefix_rewrite_with_control_characters_is_invalid(
    what: str, value: str, shown: str
) -> None:
    dag = build(
        [HOME, ingressroute("root", fqdn=WWW, routes=[route("/", to("home"), prefixRewrite=value)])]
    )
    status = statuses(dag)["default/root"]
    assert status[0] == "invalid"
    assert status[1].startswith('route "/": prefixRewrite "')
    assert "must be a URL path" in status[1] and shown in status[1]
    assert dag.virtual_hosts == ()


@pytest.mark.parametrize(
    ("check", "field"),
    [
        ({"path": "/h\nx"}, "healthCheck.path"),
        ({"path": "/h x"}, "healthCheck.path"),
        ({"path": "/hz", "host": "a\r\nInjected: yes"}, "healthCheck.host"),
        ({"path": "/hz", "host": "bad host"}, "healthCheck.host"),
    ],
)
def test_health_check_with_control_characters_is_invalid(check: JSON, field: str) -> None:
    dag = build(
        [HOME, ingressroute("root", fqdn=WWW, routes=[route("/", to("home", healthCheck=check))])]
    )
    status = statuses(dag)["default/root"]
    assert status[0] == "invalid"
    assert status[1].startswith(f'route "/": service "home": {field} "')
    assert "\n" not in status[1] and "\r" not in status[1]
    assert dag.clusters() == ()


@pytest.mark.parametrize("value", ["4294967296", "99999999999999999999", "-1", "many"])
def test_circuit_breaker_out_of_range_is_a_service_problem(value: str) -> None:
    annotated = service("home", annotations={"contour.heptio.com/max-connections": value})
    dag = build([annotated, ingressroute("root", fqdn=WWW, routes=[route("/", to("home"))])])
    assert statuses(dag)["default/root"] == VALID
    [problem] = dag.problems
    assert (problem.kind, problem.name) == ("Service", "home")
    assert problem.field == "metadata.annotations[contour.heptio.com/max-connections]"
    assert "0-4294967295" in problem.reason
    [cluster] = dag.clusters()
    assert cluster.circuit_breakers.max_connections is None


def _tls_ingress(namespace: str, host: str) -> JSON:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "squat", "namespace": namespace},
        "spec": {
            "tls": [{"hosts": [host], "secretName": "tls"}],
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "home", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def test_an_ingress_never_adds_tls_or_routes_to_another_namespaces_ingressroute_host() -> None:
    """The IngressRoute in `good` serves www on HTTP only; an Ingress in `bad` asking for
    www with its own certificate and backend gets neither listener (an Ingress in `good` would
    merge its paths, see test_dag_ingress_merge.py)."""
    dag = build(
        [
            service("home", "good"),
            service("home", "bad"),
            tls_secret("tls", "bad"),
            ingressroute("www", "good", fqdn=WWW, routes=[route("/", to("home"))]),
            _tls_ingress("bad", WWW),
        ]
    )
    assert http_hosts(dag) == {WWW: ["/ -> good/home:80"]}
    assert https_hosts(dag) == {}
    [problem] = dag.problems
    assert (problem.kind, problem.namespace, problem.name) == ("Ingress", "bad", "squat")
    assert problem.reason.startswith(f'host "{WWW}" belongs to IngressRoute good/www')


def test_a_younger_ingressroute_never_takes_the_host_of_an_older_ingress() -> None:
    """Found by the hostile fuzz: the Ingress in `good` (2023) serves www; a root in `bad`
    created a year later claims www too, and gets it."""
    older = _tls_ingress("good", WWW)
    older["metadata"].update(name="shop", creationTimestamp="2023-01-01T00:00:00Z")
    del older["spec"]["tls"]
    dag = build(
        [
            service("home", "good"),
            service("home", "bad"),
            older,
            ingressroute("www", "bad", fqdn=WWW, routes=[route("/", to("home"))]),
        ]
    )
    assert http_hosts(dag) == {WWW: ["/ -> good/home:80"]}
    assert statuses(dag)["bad/www"][0] == "invalid"


def test_an_invalid_ingressroute_still_closes_its_host_to_other_namespaces() -> None:
    dag = build(
        [
            service("home", "bad"),
            tls_secret("tls", "bad"),
            ingressroute("www", "good", fqdn=WWW, routes=[route("/", to("missing"))]),
            _tls_ingress("bad", WWW),
        ]
    )
    assert statuses(dag)["good/www"][0] == "invalid"
    assert (http_hosts(dag), https_hosts(dag)) == ({}, {})
    assert [p.name for p in dag.problems] == ["squat"]


# --- one tenant never changes another's host or status ------------------------------------
# Found by the hostile fuzz (tests/hostile, `python -m bench hostile_fuzz`): any root may
# delegate to an IngressRoute in any namespace (v1beta1 asks the delegate's namespace nothing),
# so what a foreign root's delegation does must stay on the foreign root's side: a misplaced
# delegation is the delegating route's fault (warned there), and a shadowed route is told to
# the root of the host, never to the shared delegate.

OWNED = (
    service("home", "good"),
    service("blog", "good"),
    ingressroute(
        "root",
        "good",
        fqdn=WWW,
        routes=[route("/", to("home")), route("/blog", delegate=delegate("blog"))],
        created="2000-01-01T00:00:00Z",
    ),
    ingressroute(
        "blog", "good", routes=[route("/blog", to("blog"))], created="2000-01-01T00:00:00Z"
    ),
)
SHARED_DELEGATE = delegate("blog", "good")


def foreign(name: str = "evil", *routes: JSON, fqdn: str | None = "evil.example.com") -> JSON:
    return ingressroute(name, "bad", fqdn=fqdn, routes=routes)


FOREIGN_DELEGATIONS = [
    pytest.param(
        [foreign("evil", route("/blog", delegate=SHARED_DELEGATE))],
        id="a foreign root delegating within the delegate's prefix",
    ),
    pytest.param(
        [foreign("evil", route("/news", delegate=SHARED_DELEGATE))],
        id="a foreign root delegating out of the delegate's prefix",
    ),
    pytest.param(
        [
            foreign("evil", route("/", delegate=delegate("mid"))),
            foreign("mid", route("/x", delegate=SHARED_DELEGATE), fqdn=None),
        ],
        id="a foreign delegate delegating out of the delegate's prefix",
    ),
    pytest.param(
        [foreign("evil", route("/blog", to("api")), route("/", delegate=SHARED_DELEGATE))],
        id="a foreign root routing the delegate's path itself",
    ),
    pytest.param(
        [foreign("orphan", route("/news", delegate=SHARED_DELEGATE), fqdn=None)],
        id="a foreign orphan delegating out of the delegate's prefix",
    ),
]


@pytest.mark.parametrize("objects", FOREIGN_DELEGATIONS)
def test_a_foreign_root_leaves_a_shared_delegate_alone(objects: list[JSON]) -> None:
    alone = build(OWNED)
    dag = build([*OWNED, service("api", "bad"), *objects])
    assert (
        http_hosts(dag)[WWW]
        == http_hosts(alone)[WWW]
        == [
            "/blog -> good/blog:80",
            "/ -> good/home:80",
        ]
    )
    assert {key: found for key, found in statuses(dag).items() if key.startswith("good/")} == {
        "good/root": VALID,
        "good/blog": VALID,
    }
