"""Delegation trees (controlplane.tree), table-driven: manifests in, the outline each root's tree
and the orphans' trees show out, with the statuses the DAG gives; then the terminal rendering
(`status_view.render_text`) and `controlplane status -f` as a user runs it."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from ingressroute_support import delegate, ingressroute, route, service, to

from controlplane.cli import main
from controlplane.dag import BuildOptions, ObjectStatus, build
from controlplane.model import IngressRouteStatus, ObjectSet, parse_object
from controlplane.status_view import render_text
from controlplane.tree import (
    MAX_DEPTH,
    DelegationForest,
    DelegationNode,
    Mark,
    delegation_forest,
    statuses_of,
)

JSON = dict[str, Any]


@pytest.fixture(autouse=True)
def _restore_logging() -> Any:
    """`controlplane status` configures logging for the process (stderr, warnings only)."""
    configured = structlog.get_config()
    yield
    structlog.configure(**configured)


def _objects(manifests: list[JSON]) -> ObjectSet:
    return ObjectSet.from_objects(parse_object(raw) for raw in manifests)


def _forest(manifests: list[JSON], namespace: str | None = None) -> DelegationForest:
    objects = _objects(manifests)
    return delegation_forest(objects, build(objects, BuildOptions()).statuses, namespace=namespace)


def outline(node: DelegationNode, depth: int = 0) -> list[str]:
    """`"  /blog blog/blog valid"`: indentation for depth, the via, the object, status or mark."""
    via = f"{node.via} " if node.via else ""
    state = str(node.mark) if node.mark else node.status or "-"
    lines = [f"{'  ' * depth}{via}{node.namespace}/{node.name} {state}"]
    for child in node.children:
        lines += outline(child, depth + 1)
    return lines


def _outlines(nodes: tuple[DelegationNode, ...]) -> list[str]:
    return [line for node in nodes for line in outline(node)]


SERVICES = [service("home", "web"), service("blog", "blog"), service("x", "team")]
ROOT = ingressroute(
    "root",
    "web",
    fqdn="www.example.com",
    routes=[route("/", to("home")), route("/blog", delegate=delegate("blog", "blog"))],
)
BLOG = ingressroute("blog", "blog", routes=[route("/blog", to("blog"))])

CASES: list[tuple[str, list[JSON], list[str], list[str]]] = [
    (
        "a root and its delegate",
        [ROOT, BLOG],
        ["web/root valid", "  /blog blog/blog valid"],
        [],
    ),
    (
        "a delegate that does not exist is a missing leaf",
        [ROOT],
        ["web/root valid", "  /blog blog/blog missing"],
        [],
    ),
    (
        "the delegate namespace defaults to the delegating object's",
        [
            ingressroute(
                "root", "web", fqdn="a.example.com", routes=[route("/x", delegate=delegate("x"))]
            ),
            ingressroute("x", "web", routes=[route("/x", to("home"))]),
        ],
        ["web/root valid", "  /x web/x valid"],
        [],
    ),
    (
        "a cycle is a leaf on the chain, and the DAG's statuses say the rest",
        [
            ROOT,
            ingressroute(
                "blog",
                "blog",
                routes=[
                    route("/blog", to("blog")),
                    route("/blog/loop", delegate=delegate("root", "web")),
                ],
            ),
        ],
        ["web/root valid", "  /blog blog/blog invalid", "    /blog/loop web/root cycle"],
        [],
    ),
    (
        "a diamond expands the shared delegate once",
        [
            ingressroute(
                "root",
                "web",
                fqdn="www.example.com",
                routes=[
                    route("/a", delegate=delegate("a")),
                    route("/a/b", delegate=delegate("b")),
                ],
            ),
            ingressroute(
                "a", "web", routes=[route("/a", to("home")), route("/a/b", delegate=delegate("b"))]
            ),
            ingressroute("b", "web", routes=[route("/a/b", to("home"))]),
        ],
        ["web/root valid", "  /a web/a valid", "    /a/b web/b valid", "  /a/b web/b repeated"],
        [],
    ),
    (
        "a delegation outside the prefix is shown; the delegate is orphaned",
        [
            ROOT,
            ingressroute("blog", "blog", routes=[route("/elsewhere", to("blog"))]),
        ],
        ["web/root valid", "  /blog blog/blog orphaned"],
        [],
    ),
    (
        "orphans form trees from the orphan no other orphan delegates to",
        [
            ROOT,
            BLOG,
            ingressroute("lost", "team", routes=[route("/x", delegate=delegate("lost2"))]),
            ingressroute("lost2", "team", routes=[route("/x", to("x"))]),
        ],
        ["web/root valid", "  /blog blog/blog valid"],
        ["team/lost orphaned", "  /x team/lost2 orphaned"],
    ),
    (
        "a cycle of orphans only starts at its smallest name",
        [
            ingressroute("b", "team", routes=[route("/x", delegate=delegate("a"))]),
            ingressroute("a", "team", routes=[route("/x", delegate=delegate("b"))]),
        ],
        [],
        ["team/a orphaned", "  /x team/b orphaned", "    /x team/a cycle"],
    ),
    (
        "a tcpproxy delegation is an edge too, after the routes",
        [
            ingressroute(
                "root",
                "web",
                fqdn="tcp.example.com",
                tls={"passthrough": True},
                tcpproxy={"delegate": {"name": "tcp", "namespace": "db"}},
            ),
            ingressroute("tcp", "db", tcpproxy={"services": [to("db")]}),
            service("db", "db"),
        ],
        ["web/root valid", "  tcpproxy db/tcp valid"],
        [],
    ),
    (
        "an invalid root is still a root",
        [ingressroute("bad", "web", fqdn="*.example.com", routes=[route("/", to("home"))])],
        ["web/bad invalid"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("manifests", "roots", "orphans"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_delegation_forest(manifests: list[JSON], roots: list[str], orphans: list[str]) -> None:
    forest = _forest([*SERVICES, *manifests])

    assert _outlines(forest.roots) == roots
    assert _outlines(forest.orphans) == orphans


def test_namespace_keeps_the_trees_whose_top_is_there_and_follows_delegations() -> None:
    lost = ingressroute("lost", "team", routes=[route("/x", to("x"))])
    manifests = [*SERVICES, ROOT, BLOG, lost]

    web = _forest(manifests, namespace="web")
    blog = _forest(manifests, namespace="blog")

    assert _outlines(web.roots) == ["web/root valid", "  /blog blog/blog valid"]
    assert web.orphans == () and blog.roots == () and blog.orphans == ()
    assert web.summary == {"valid": 1, "invalid": 0, "orphaned": 0}
    assert _forest(manifests).summary == {"valid": 2, "invalid": 0, "orphaned": 1}


def test_statuses_a_cluster_holds_with_the_stale_ones_flagged() -> None:
    root = ingressroute("root", "web", fqdn="www.example.com", routes=[route("/", to("home"))])
    root["metadata"]["generation"] = 3
    root["status"] = {
        "currentStatus": "invalid",
        "description": "written long ago",
        "observedGeneration": 2,
    }
    fresh = {**BLOG, "status": {"currentStatus": "orphaned", "description": "d"}}
    objects = _objects([root, fresh, ingressroute("new", "web")])

    statuses = statuses_of(objects.ingress_routes.values())
    forest = delegation_forest(objects, statuses)

    assert [(s.namespace, s.name) for s in statuses] == [("web", "root"), ("blog", "blog")]
    [tree] = forest.roots
    assert (tree.status, tree.description, tree.stale) == ("invalid", "written long ago", True)
    assert [(o.name, o.status, o.stale) for o in forest.orphans] == [
        ("blog", "orphaned", False),
        ("new", "", False),
    ]
    assert forest.summary == {"valid": 0, "invalid": 1, "orphaned": 1, "": 1}


def test_a_chain_deeper_than_the_limit_is_truncated_not_a_crash() -> None:
    chain = [
        ingressroute(f"r{i}", "deep", routes=[route("/", delegate=delegate(f"r{i + 1}"))])
        for i in range(3 * MAX_DEPTH)
    ]
    chain[0]["spec"]["virtualhost"] = {"fqdn": "deep.example.com"}

    forest = _forest(chain)

    [tree] = forest.roots
    nodes = list(tree.walk())
    assert len(nodes) == MAX_DEPTH + 1
    assert nodes[-1].mark is Mark.TRUNCATED
    assert json.loads(json.dumps(forest.to_json()))["roots"][0]["name"] == "r0"
    assert render_text(forest).count("\n") > MAX_DEPTH


# --- what a person reads -------------------------------------------------------------------


def _warned_forest() -> DelegationForest:
    root = ingressroute(
        "root",
        "web",
        fqdn="www.example.com",
        routes=[
            route("/", to("home")),
            route("/blog", delegate=delegate("blog", "blog")),
            route("/gone", delegate=delegate("nothere")),
        ],
    )
    return _forest([*SERVICES, root, BLOG, ingressroute("lost", "team")])


def test_render_plain_text() -> None:
    text = render_text(_warned_forest())

    assert text == (
        "web/root  www.example.com  valid  1 warning:\n"
        '│     route "/gone": delegate web/nothere not found\n'
        "├── /blog → blog/blog  valid\n"
        "└── /gone → web/nothere  not found\n"
        "\n"
        "not reached from any root:\n"
        "team/lost  orphaned  this IngressRoute is not part of a delegation chain from a root "
        "IngressRoute\n"
        "\n"
        "3 IngressRoutes: 2 valid, 1 orphaned\n"
    )
    assert "\x1b[" not in text


def test_a_hostile_host_cannot_drive_the_terminal() -> None:
    """A host, a match or a status holding escape sequences is printed escaped, never raw."""
    forest = _forest(
        [
            ingressroute(
                "root",
                "team",
                fqdn="a\x1b[2J\x1b[31mevil.com",
                routes=[route("/\x1b[0m", delegate=delegate("child", "team"))],
            )
        ]
    )
    for color in (False, True):
        text = render_text(forest, color=color)
        assert "\x1b[2J" not in text and "\x1b[31mevil" not in text
        assert "a\\x1b[2J\\x1b[31mevil.com" in text
    assert "\x1b" not in render_text(forest)


def test_render_colour_and_ascii() -> None:
    forest = _warned_forest()

    coloured = render_text(forest, color=True)
    ascii_only = render_text(forest, unicode=False)

    assert "\x1b[32mvalid\x1b[0m" in coloured and "\x1b[33morphaned\x1b[0m" in coloured
    assert "\x1b[31mnot found\x1b[0m" in coloured
    assert ascii_only.isascii() and "|-- /blog -> blog/blog  valid" in ascii_only


def test_status_command_on_a_tree_of_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "routes.yaml").write_text(
        yaml.safe_dump_all([*SERVICES, ROOT, BLOG, ingressroute("lost", "team")])
    )

    assert main(["status", "-f", str(tmp_path)]) == 0
    text = capsys.readouterr()
    assert main(["status", "--manifests", str(tmp_path), "-o", "json", "-n", "web"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["status", "-f", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr()
    assert main(["status", "--root-namespaces", "web"]) == 2
    assert "change a build of manifests (-f)" in capsys.readouterr().err

    assert text.out.startswith("web/root  www.example.com  valid\n└── /blog → blog/blog  valid\n")
    assert "team/lost  orphaned" in text.out and text.err == ""
    assert [r["name"] for r in data["roots"]] == ["root"] and data["orphans"] == []
    assert data["roots"][0]["children"][0] | {"children": []} == {
        "namespace": "blog",
        "name": "blog",
        "via": "/blog",
        "fqdn": "",
        "status": "valid",
        "description": "valid IngressRoute",
        "warnings": [],
        "stale": False,
        "mark": "",
        "children": [],
    }
    assert error.out == "" and error.err.strip() == (
        f"controlplane status: {tmp_path / 'missing'}: no such file or directory"
    )


def test_status_of_kubectl_dry_run_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`creationTimestamp: null`, as `kubectl create --dry-run=client -o yaml` writes it."""
    documents = [*SERVICES, ROOT, BLOG]
    for document in documents:
        document["metadata"]["creationTimestamp"] = None
    (tmp_path / "routes.yaml").write_text(yaml.safe_dump_all(documents))

    assert main(["status", "-f", str(tmp_path), "-o", "yaml"]) == 0

    roots = yaml.safe_load(capsys.readouterr().out)["roots"]
    assert [(r["name"], r["status"], r["children"][0]["status"]) for r in roots] == [
        ("root", "valid", "valid")
    ]


def test_status_needs_no_dag_statuses_of_other_kinds() -> None:
    """Statuses of other kinds (an Ingress's) never land on an IngressRoute of the same name."""
    objects = _objects([ROOT])
    other = ObjectStatus(
        "Ingress", "web", "root", IngressRouteStatus(current_status="invalid", description="x")
    )

    [tree] = delegation_forest(objects, [other]).roots

    assert tree.status == ""


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """What `controlplane ARGS` writes to a terminal (a pseudo-terminal as its stdout)."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "controlplane", *args],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=env,
            timeout=30,
            check=True,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert done.stderr == b""
        return b"".join(chunks).decode()
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


def test_colour_on_a_terminal_unless_no_color(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(yaml.safe_dump_all([*SERVICES, ROOT, BLOG]))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}

    coloured = _on_a_terminal(["status", "-f", str(tmp_path)], env)
    plain = _on_a_terminal(["status", "-f", str(tmp_path)], {**env, "NO_COLOR": "1"})

    assert "\x1b[32mvalid\x1b[0m" in coloured
    assert "\x1b[" not in plain and "blog/blog  valid" in plain
