"""Views of manifests for the status page tests: parse, build (as `serve` does), wrap.

`view_of(manifests)` parses the camelCase dicts the other DAG tests write, builds the DAG with
the production builder and returns the `ClusterView` the runtime would keep for that build, so
the page, graph and gauge tests see exactly what a running controller shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controlplane.dag import BuildOptions, build, ingresses_of_our_class
from controlplane.model import ObjectSet, parse_object
from controlplane.web import ClusterView

JSON = dict[str, Any]


def view_of(manifests: Iterable[JSON], options: BuildOptions | None = None) -> ClusterView:
    options = options or BuildOptions()
    objects = ObjectSet.from_objects(parse_object(dict(raw)) for raw in manifests)
    dag = build(objects, options)
    ours = tuple(ingresses_of_our_class(objects, options))
    return ClusterView(objects, dag.statuses, dag.problems, ours, sequence=1)


HOSTILE = '<script>document.body.dataset.pwned="1"</script><img src=x onerror="alert(1)">'
"""A value a hostile tenant puts wherever it can reach a page."""
