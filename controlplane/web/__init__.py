"""What an operator looks at: the status page, the delegation graph (DOT, SVG), the JSON behind
them, and the counts behind the per-object gauges.

    view = ClusterView(objects, report.statuses, report.problems, ingresses, report.sequence)
    render_page(view, envoy_rows(server.sessions, cache.nacks(), cache.current))  # `/`
    render_dot(view.graph)                      # `/debug/dag`: digraph DAG { ... }
    render_svg(picture(view.graph, view.graph.roots, "all"))   # `/debug/dag.svg`
    view.counts                                 # contour_ingressroute_* and invalid by reason

Pure renderers: values in, strings out; no I/O but reading the package's own static files. Every
user-controlled string is escaped on the way out (`markup`, `dot_id`). The health server wires
the routes; the runtime keeps one `ClusterView` per build.
"""

from controlplane.web.assets import ASSETS, asset
from controlplane.web.dot import render_dot
from controlplane.web.graph import DelegationGraph, Edge, Node, NodeState, delegation_graph
from controlplane.web.page import MAX_PICTURES, picture_dicts, render_page
from controlplane.web.reasons import REASONS, problem_class, reason_class
from controlplane.web.svg import Picture, picture, pictures, render_svg
from controlplane.web.text import clip, dot_id, markup
from controlplane.web.views import ClusterView, EnvoyRow, ObjectRow, SessionView, envoy_rows

__all__ = [
    "ASSETS",
    "MAX_PICTURES",
    "REASONS",
    "ClusterView",
    "DelegationGraph",
    "Edge",
    "EnvoyRow",
    "Node",
    "NodeState",
    "ObjectRow",
    "Picture",
    "SessionView",
    "asset",
    "clip",
    "delegation_graph",
    "dot_id",
    "envoy_rows",
    "markup",
    "picture",
    "picture_dicts",
    "pictures",
    "problem_class",
    "reason_class",
    "render_dot",
    "render_page",
    "render_svg",
]
