"""Ingress → virtual hosts: reading one Ingress into claims, and settling the claims of a host.

The builder (`ingress_processor.py`) reads each Ingress on its own (`read_ingress`) and settles
host by host (`settle_routes`, `settle_tls`, `host_values`); the test oracle (`reference.py`)
runs the same steps over every Ingress at once.

Ingress has no status of ours, so everything wrong with one is a log-only `Problem` naming the
field at fault, and a fault costs as little as it can: a bad path drops that path, a bad host that
rule, a bad certificate the HTTPS side of its hosts. Nothing here raises on any input.

How an Ingress becomes routes:

- A rule's `host` is a virtual host on the plain listener (lowercased: DNS names are
  case-insensitive and Envoy refuses two virtual hosts with one domain); host-less rules and
  `spec.defaultBackend` go to the catch-all `*`. The default backend is a plain prefix `/`, so it
  catches everything no more specific route takes.
- `pathType: Exact` is an exact match, `Prefix` a match by whole segments (`/foo` and `/foo/`
  match `/foo`, `/foo/` and `/foo/bar`, never `/foobar`), `ImplementationSpecific` a plain string
  prefix, as Contour did. A missing path is `/`.
- Within a host, routes are ordered most specific first: exact matches, then longer prefixes
  before shorter ones, a segment prefix before a string prefix of the same text (it matches a
  subset), then by text. Hosts are ordered by name with `*` last.

Who wins when two paths ask for the same host and match (a segment prefix `/` and a string prefix
`/` are the same match: both take every path): rules go first, default backends after them
(a default backend is for what no rule matches); within each, the oldest Ingress (creation time,
then namespace, then name) wins, and within one Ingress the first path. Only a usable path (valid,
with a backend that resolves) claims its match, so a broken path never shadows a working one. The
loser is dropped with a Problem naming the winner.

TLS: each `spec.tls` entry's hosts are served on the TLS listener with its Secret (see
`ingress_tls` for cross-namespace references) when they also have routes, from this Ingress or
another; the HTTPS side serves every route of the host, whatever the annotations say about plain
HTTP. When two Ingresses give one host different certificates (or minimum versions), the oldest
usable one wins. A bad certificate costs the host its HTTPS side only.

Ingresses of ingress-nginx semantics (class `nginx`, or any `nginx.ingress.kubernetes.io/`
annotation: `ingress_nginx.py`) are read by `NginxIngressReader` with nginx's defaults and
annotations: regex paths and rewrites, redirects, canaries, aliases, passthrough, ... (see
`ingress_nginx_reader.py`, and `ingress_claims.py` for how their claims settle per host).

Contour's annotations (see `ingress_annotations`) shape the plain listener per Ingress:
`force-ssl-redirect: "true"` turns the routes of the hosts the Ingress lists under `spec.tls` into
redirects to HTTPS (even when the certificate is unusable: the user asked that the host never be
served in clear text); `allow-http: "false"` removes the Ingress's other routes from the plain
listener (its redirects stay, as in Contour).
"""

from __future__ import annotations

from controlplane.dag.classes import class_matches
from controlplane.dag.ingress_claims import (
    IngressReading,
    RouteClaim,
    TLSClaim,
    host_values,
    route_claim_order,
    route_order,
    settle_routes,
    settle_tls,
    tls_claim_order,
)
from controlplane.dag.ingress_nginx import has_nginx_semantics
from controlplane.dag.ingress_nginx_reader import NginxIngressReader
from controlplane.dag.ingress_reader import (
    Backends,
    IngressReader,
    Problems,
    normal_host,
    path_match,
)
from controlplane.dag.options import BuildOptions
from controlplane.dag.types import CATCH_ALL, Problem, host_order
from controlplane.model import Ingress, NamespacedName, ObjectSet

__all__ = [
    "CATCH_ALL",
    "IngressReading",
    "RouteClaim",
    "TLSClaim",
    "host_order",
    "host_values",
    "ingresses_of_our_class",
    "is_ours",
    "normal_host",
    "path_match",
    "read_ingress",
    "route_claim_order",
    "route_order",
    "settle_routes",
    "settle_tls",
    "tls_claim_order",
]


def is_ours(ingress: Ingress, objects: ObjectSet, options: BuildOptions) -> bool:
    """Whether `ingress` is of our ingress class (see `classes.py`)."""
    return class_matches(
        ingress.metadata.annotations, ingress.spec.ingress_class_name, objects, options
    )


def ingresses_of_our_class(objects: ObjectSet, options: BuildOptions) -> list[NamespacedName]:
    """The keys of every Ingress of our class, sorted (whose address the status writer sets)."""
    return sorted(
        key for key, ingress in objects.ingresses.items() if is_ours(ingress, objects, options)
    )


def read_ingress(
    ingress: Ingress,
    objects: ObjectSet,
    options: BuildOptions,
    backends: Backends | None = None,
) -> IngressReading:
    """One Ingress of our class turned into claims; `backends` shares resolutions in a build.

    A bug met while reading costs this Ingress only: it claims nothing, and the problem carries
    the traceback."""
    problems = Problems()
    try:
        kind = NginxIngressReader if has_nginx_semantics(ingress, objects) else IngressReader
        reader = kind(backends or Backends(objects, options), ingress, problems)
        reader.read()
    except Exception as error:  # blast radius of one
        found = Problem.internal_error(ingress.KIND, ingress.namespace, ingress.name, error)
        return IngressReading(ingress, (*problems.result(), found), (), None, ())
    return IngressReading(
        ingress,
        problems.result(),
        tuple(reader.rules),
        reader.default,
        tuple(reader.tls),
        tuple(reader.canaries),
    )


_IngressReader = IngressReader
"""The reader's old name here (tests patch it to inject a bug into one reading)."""
