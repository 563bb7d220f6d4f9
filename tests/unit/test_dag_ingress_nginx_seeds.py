"""Real manifests with ingress-nginx annotations, as blog posts publish them (the shared seeds:
Chinese-language posts on ingress-nginx and Contour), copied verbatim but for comments; each
parses and gives the routes or the reports below. The Services they use are not in the posts
and are added here.

Two of them are not valid as published (an indentation slip in the YAML, annotations at the wrong
level): what a user gets then is the parser's report, and each is also run as evidently meant.
"""

from __future__ import annotations

from typing import Any

import kube_manifests
import pytest
import yaml
from dag_support import build_every_way
from test_dag_ingress_nginx import ng, regex, rewrite

from controlplane.dag.options import BuildOptions
from controlplane.dag.types import Cluster, PathMatch, PathMatchKind, RateLimit, UpstreamProtocol
from controlplane.model import ModelError, ObjectSet, parse_object

NGINX = BuildOptions(ingress_class="contour,nginx")

DASHBOARD = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: kubernetes-dashboard-ingress
  namespace: kube-system
  annotations:
    kubernetes.io/ingress.class: "nginx"
    nginx.ingress.kubernetes.io/secure-backends: "true"
    ingress.kubernetes.io/ssl-passthrough: "true"
    nginx.ingress.kubernetes.io/rewrite-target: "/"
spec:
  rules:
  - host: dashboard.192.168.51.12.nip.io
    http:
      paths:
      - backend:
          serviceName: kubernetes-dashboard
          servicePort: 443
        path: /
"""

DASHBOARD_NO_HOST = """\
apiVersion: extensions/v1beta1 
kind: Ingress 
metadata: 
  name: kubernetes-dashboard-ingress 
  namespace: kube-system 
  annotations: 
    kubernetes.io/ingress.class: "nginx" 
    nginx.ingress.kubernetes.io/secure-backends: "true" 
spec: 
  rules: 
  - http: 
      paths: 
      - backend: 
          serviceName: kubernetes-dashboard 
          servicePort: 443 
        path: / 
"""  # noqa: W291  (trailing spaces as published)

SNIPPET = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: customization-ingress
  namespace: default
  annotations:
    kubernetes.io/ingress.class: "nginx"
    nginx.ingress.kubernetes.io/configuration-snippet: |
      more_set_headers "Content-Type: application/json";
      return 200 '{"data":[]}';
spec:
  rules:
  - host: cust.192.168.51.12.nip.io
    http:
      paths:
      - backend:
          serviceName: nginx-ingress-default-backend
          servicePort: 80
        path: /
"""

TORNADO = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
 name: tornado-socket
 annotations:
  kubernetes.io/ingress.class: nginx
  nginx.ingress.kubernetes.io/proxy-read-timeout: "3600"
  nginx.ingress.kubernetes.io/proxy-send-timeout: "3600"
  nginx.ingress.kubernetes.io/server-snippets: |
   location / {
    proxy_set_header Upgrade $http_upgrade;
    proxy_http_version 1.1;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header Host $host;
    proxy_set_header Connection "upgrade";
    proxy_cache_bypass $http_upgrade;
    }
spec:
 rules:
  - host: tornado-ws.example.com
   http:
    paths:
     - backend:
       serviceName: tornado-socket
       servicePort: 8000
"""

TORNADO_AS_MEANT = TORNADO.replace(
    """  - host: tornado-ws.example.com
   http:
    paths:
     - backend:
       serviceName: tornado-socket
       servicePort: 8000
""",
    """  - host: tornado-ws.example.com
    http:
     paths:
     - backend:
        serviceName: tornado-socket
        servicePort: 8000
""",
)

DEFAULT_BACKEND = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  annotations:
  nginx.ingress.kubernetes.io/default-backend: test2
  name: defaultbackend
spec:
  defaultBackend:
    service:
      name: test2
      port:
        number: 2280
  rules:
    - host: test1.bar.com
  http:
  paths:
    - backend:
  service:
  name: test1
  port:
    number: 2180
  path: /
  pathType: Prefix
"""

DEFAULT_BACKEND_AS_MEANT = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  annotations:
    nginx.ingress.kubernetes.io/default-backend: test2
  name: defaultbackend
spec:
  rules:
    - host: test1.bar.com
      http:
        paths:
          - backend:
              service:
                name: test1
                port:
                  number: 2180
            path: /
            pathType: Prefix
"""

REWRITE = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /$2
  name: rewrite
spec:
  rules:
  - host: test1.bar.com
    http:
      paths:
      - backend:
          service:
           name: test1
           port: 
             number: 2180
        path: /nginx(/|$)(.*)
        pathType: Prefix
"""  # noqa: W291

RATE_LIMIT = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  annotations:
    nginx.ingress.kubernetes.io/limit-rps: "1"
  name: ratelimit
spec:
  rules:
  - host: test1.bar.com
    http:
      paths:
      - backend:
          service:
           name: test1
           port: 
             number: 2180
        path: /
        pathType: Exact
"""  # noqa: W291

FIST = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: fist-ingress
  namespace: sealyun
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /token
spec:
  rules:
  - http:
      paths:
      - path: /token
        backend:
          serviceName: fist
          servicePort: 8080
"""

SERVICES = [
    kube_manifests.service("kubernetes-dashboard", "kube-system", [443]),
    kube_manifests.service("nginx-ingress-default-backend", "default", [80]),
    kube_manifests.service("tornado-socket", "default", [8000]),
    kube_manifests.service("test1", "default", [("myngx1", 2180)]),
    kube_manifests.service("test2", "default", [("myngx2", 2280)]),
    kube_manifests.service("fist", "sealyun", [("https", 8443), ("http", 8080)]),
]


def cluster(namespace: str, name: str, port: int, port_name: str = "", **fields: Any) -> Cluster:
    return Cluster(namespace, name, port, port_name, connect_timeout_seconds=5.0, **fields)


def build(manifest: str) -> Any:
    objects = [parse_object(raw) for raw in [*SERVICES, *yaml.safe_load_all(manifest)]]
    return build_every_way(ObjectSet.from_objects(objects), NGINX)


def routes(dag: Any) -> dict[str, list[Any]]:
    return {host.fqdn: list(host.routes) for host in dag.virtual_hosts}


def problems(dag: Any) -> list[tuple[str, str, str]]:
    return [(p.name, p.field, p.reason) for p in dag.problems]


DASHBOARD_CLUSTER = cluster(
    "kube-system", "kubernetes-dashboard", 443, protocol=UpstreamProtocol.TLS
)
ROOT_PREFIX = PathMatch(PathMatchKind.PREFIX, "/")


def test_dashboard_with_secure_backends_and_an_old_annotation_name() -> None:
    dag = build(DASHBOARD)
    assert routes(dag) == {"dashboard.192.168.51.12.nip.io": [ng(ROOT_PREFIX, DASHBOARD_CLUSTER)]}
    assert problems(dag) == [
        (
            "kubernetes-dashboard-ingress",
            "metadata.annotations[ingress.kubernetes.io/ssl-passthrough]",
            "is ingress-nginx's old name, not read here: use "
            "nginx.ingress.kubernetes.io/ssl-passthrough; ignored",
        )
    ]


def test_dashboard_without_host() -> None:
    dag = build(DASHBOARD_NO_HOST)
    assert routes(dag) == {"*": [ng(ROOT_PREFIX, DASHBOARD_CLUSTER)]}
    assert problems(dag) == []


def test_a_configuration_snippet_is_refused_and_the_rest_served() -> None:
    dag = build(SNIPPET)
    backend = cluster("default", "nginx-ingress-default-backend", 80)
    assert routes(dag) == {"cust.192.168.51.12.nip.io": [ng(ROOT_PREFIX, backend)]}
    [(name, field, reason)] = problems(dag)
    assert (name, field) == (
        "customization-ingress",
        "metadata.annotations[nginx.ingress.kubernetes.io/configuration-snippet]",
    )
    assert "nginx configuration" in reason and "never applied" in reason


def test_the_websocket_manifest_as_published_is_not_yaml() -> None:
    with pytest.raises(yaml.YAMLError, match="expected <block end>"):
        list(yaml.safe_load_all(TORNADO))


def test_the_websocket_manifest_as_meant() -> None:
    dag = build(TORNADO_AS_MEANT)
    backend = cluster("default", "tornado-socket", 8000)
    assert routes(dag) == {
        "tornado-ws.example.com": [ng(ROOT_PREFIX, backend, idle_timeout_seconds=3600.0)]
    }
    [(_, field, reason)] = problems(dag)
    assert field == "metadata.annotations[nginx.ingress.kubernetes.io/server-snippets]"
    assert "nginx configuration" in reason


def test_the_default_backend_manifest_as_published_is_refused_by_name() -> None:
    (raw,) = yaml.safe_load_all(DEFAULT_BACKEND)
    with pytest.raises(ModelError, match=r"Ingress default/defaultbackend: metadata.annotations"):
        parse_object(raw)


def test_the_default_backend_manifest_as_meant() -> None:
    dag = build(DEFAULT_BACKEND_AS_MEANT)
    fallback = cluster("default", "test2", 2280, "myngx2")
    backend = cluster("default", "test1", 2180, "myngx1", fallback=fallback)
    assert routes(dag) == {
        "test1.bar.com": [ng(PathMatch(PathMatchKind.SEGMENT_PREFIX, "/"), backend)]
    }
    assert problems(dag) == []


def test_rewrite_with_capture_groups() -> None:
    dag = build(REWRITE)
    backend = cluster("default", "test1", 2180, "myngx1")
    assert routes(dag) == {
        "test1.bar.com": [
            ng(
                regex("/nginx(/|$)(.*)"),
                backend,
                regex_rewrite=rewrite("/nginx(/|$)(.*)", "/\\2"),
            )
        ]
    }
    assert problems(dag) == []


def test_rate_limit() -> None:
    dag = build(RATE_LIMIT)
    backend = cluster("default", "test1", 2180, "myngx1")
    exact = PathMatch(PathMatchKind.EXACT, "/")
    assert routes(dag) == {"test1.bar.com": [ng(exact, backend, rate_limit=RateLimit(1, 1, 5))]}
    assert problems(dag) == []


def test_a_rewrite_to_the_path_itself_rewrites_nothing() -> None:
    dag = build(FIST)
    backend = cluster("sealyun", "fist", 8080, "http")
    assert routes(dag) == {"*": [ng(PathMatch(PathMatchKind.PREFIX, "/token"), backend)]}
    assert problems(dag) == []
