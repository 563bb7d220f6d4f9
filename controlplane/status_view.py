"""`controlplane status` and the kubectl plugin `kubectl ingressroute tree`: delegation trees.

    controlplane status [--kubeconfig FILE [--context NAME]] [-n NS] [-o json|yaml]
    controlplane status -f DIR|FILE ... [--config FILE] [--root-namespaces A,B]
    kubectl ingressroute tree [-n NS] [-o json|yaml]       # the same, as a kubectl plugin

Prints each root IngressRoute's delegation tree (`tree.delegation_forest`) with every object's
status and description, then the orphans and a count per status. Where the statuses come from:

- `-f/--filename PATH` (repeatable) or `--manifests DIR`: the manifests are built as
  `translate` builds them (the same loader and the one builder, cold), and the DAG's statuses
  are shown: what the controller would write for those files.
- otherwise a cluster: IngressRoutes are listed once (no watch; `sources.list_once`) and the
  statuses they hold are shown, as the running controller wrote them (a status written for an
  older generation of the spec is flagged `stale`). The kubeconfig is found as kubectl finds
  it: `--kubeconfig`, else `$KUBECONFIG` (a list of paths, merged), else `~/.kube/config`,
  else the pod's service account. kubectl passes a plugin only the arguments given after the
  plugin's name, never its own flags, so the plugin reads `--kubeconfig`, `--context` and
  `-n/--namespace` itself, and `KUBECONFIG` like kubectl.

Listing is cluster-wide (delegation crosses namespaces); `-n` shows only the trees whose top is
in that namespace (`-A` is accepted and is the default). Output: a tree on stdout, coloured
(valid green, invalid red, orphaned yellow) when stdout is a terminal and `NO_COLOR` is unset
(`--color always|never|auto`), plain text when piped; `-o json|yaml` prints the forest as data
(`DelegationForest.to_json`). stdout carries only that; a user error is one line on stderr and
exit code 2, a cluster that cannot be read exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

if TYPE_CHECKING:  # the CLI builds its parser on every run: the DAG is imported only when used
    from controlplane.tree import DelegationForest, DelegationNode

__all__ = [
    "StatusError",
    "add_arguments",
    "add_parser",
    "find_kubeconfig",
    "from_cluster",
    "from_manifests",
    "main",
    "plugin_main",
    "render_text",
    "run",
]

EXIT_USAGE, EXIT_UNREACHABLE = 2, 1
_COLORS = {"valid": "32", "invalid": "31", "orphaned": "33", "": "2"}
_BOLD, _DIM, _RESET = "1", "2", "0"
_UNICODE = ("├── ", "└── ", "│   ", "    ", "→")
_ASCII = ("|-- ", "`-- ", "|   ", "    ", "->")
_MARKS = {  # tree.Mark's values
    "missing": "not found",
    "cycle": "delegation cycle: already on this chain",
    "repeated": "shown above",
    "truncated": "deeper chain not shown",
}


class StatusError(Exception):
    """A user mistake or an unreadable source; `code` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- rendering (pure) ----------------------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x1b`): what a tenant wrote (a host, a
    match, a status someone patched) must not move the cursor or recolour the terminal. Also
    every line the CLI tells a person (`cli_support.tell`)."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[{_RESET}m" if color and text else text


def _line(node: DelegationNode, *, color: bool, arrow: str) -> str:
    name = _paint(printable(f"{node.namespace}/{node.name}"), _BOLD, color)
    head = f"{printable(node.via)} {arrow} {name}" if node.via else name
    if node.fqdn and not node.via:
        head += f"  {printable(node.fqdn)}"
    if node.mark == "missing":
        return f"{head}  {_paint(_MARKS[node.mark], _COLORS['invalid'], color)}"
    if node.mark:
        return f"{head}  {_paint('(' + _MARKS[node.mark] + ')', _DIM, color)}"
    status = printable(node.status or "no status")
    parts = [head, _paint(status, _COLORS.get(node.status, _DIM), color)]
    if node.stale:
        parts.append(_paint("(stale: written for an older generation)", _DIM, color))
    if description := _description(node):
        parts.append(printable(description))
    if node.warnings:
        count = len(node.warnings)
        parts.append(_paint(f"{count} warning{'s' * (count != 1)}:", _COLORS["orphaned"], color))
    return "  ".join(parts)


def _description(node: DelegationNode) -> str:
    """The description without what the line says already: the warnings (listed below it) and
    a bare `valid IngressRoute` (the status word says it)."""
    text = node.description
    listed = ", with warnings: " + "; ".join(node.warnings)
    if node.warnings and text.endswith(listed):
        text = text[: -len(listed)]
    return "" if text == f"{node.status} IngressRoute" else text


def _tree(node: DelegationNode, *, color: bool, chars: tuple[str, ...]) -> list[str]:
    tee, elbow, pipe, blank, arrow = chars
    lines = [_line(node, color=color, arrow=arrow)]
    below = pipe if node.children else blank
    if not node.mark:  # a leaf that stands for an object shown elsewhere: its line only
        lines += [f"{below}  {_paint(printable(w), _DIM, color)}" for w in node.warnings]
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        sub = _tree(child, color=color, chars=chars)
        lines.append((elbow if last else tee) + sub[0])
        lines += [(blank if last else pipe) + line for line in sub[1:]]
    return lines


def render_text(forest: DelegationForest, *, color: bool = False, unicode: bool = True) -> str:
    """The forest as a person reads it: each root's tree, the orphans', and the counts."""
    chars = _UNICODE if unicode else _ASCII
    blocks = ["\n".join(_tree(root, color=color, chars=chars)) for root in forest.roots]
    if not forest.roots:
        blocks.append("no root IngressRoute")
    if forest.orphans:
        title = _paint("not reached from any root:", _COLORS["orphaned"], color)
        trees = ["\n".join(_tree(o, color=color, chars=chars)) for o in forest.orphans]
        blocks.append("\n".join([title, *trees]))
    counts = ", ".join(
        f"{n} {status or 'without status'}" for status, n in forest.summary.items() if n
    )
    total = sum(forest.summary.values())
    blocks.append(f"{total} IngressRoute{'s' * (total != 1)}" + (f": {counts}" if counts else ""))
    return "\n\n".join(blocks) + "\n"


# -- sources -------------------------------------------------------------------------------


def from_manifests(
    paths: Sequence[Path],
    *,
    config: str | None = None,
    ingress_class: str | None = None,
    root_namespaces: str | None = None,
    namespace: str | None = None,
) -> DelegationForest:
    """The forest of manifest files and directories, with the statuses the DAG gives them
    (built as `translate` builds them, with serve's settings from the arguments and `config`)."""
    from pydantic import ValidationError

    from controlplane.config import ServeSettings
    from controlplane.dag import build
    from controlplane.offline import load_manifests, options_from_settings
    from controlplane.tree import delegation_forest

    for path in paths:
        if not path.exists():
            raise StatusError(f"{path}: no such file or directory")
    given: dict[str, Any] = {
        name: value
        for name, value in (
            ("config", config),
            ("ingress_class", ingress_class),
            ("root_namespaces", root_namespaces),
        )
        if value is not None
    }
    try:
        build_options = options_from_settings(ServeSettings(**given))[0]
    except (ValidationError, OSError, ValueError) as error:
        raise StatusError(" ".join(str(error).split())) from None
    try:
        objects = load_manifests(paths).object_set()
    except (OSError, yaml.YAMLError) as error:
        raise StatusError(" ".join(str(error).split())) from None
    return delegation_forest(objects, build(objects, build_options).statuses, namespace=namespace)


def find_kubeconfig(flag: str | None, environ: Mapping[str, str]) -> Path | None:
    """The kubeconfig kubectl would use: the flag, `$KUBECONFIG` (paths joined with `:`, which
    the client merges), `~/.kube/config`; None for the pod's service account."""
    if flag:
        if not Path(flag).expanduser().exists():
            raise StatusError(f"--kubeconfig {flag}: no such file")
        return Path(flag).expanduser()
    listed = environ.get("KUBECONFIG", "")
    if any(Path(p).expanduser().exists() for p in listed.split(os.pathsep) if p):
        return Path(listed)
    default = Path(environ.get("HOME", "~")).expanduser() / ".kube" / "config"
    if default.exists():
        return default
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise StatusError(
        "no kubeconfig: pass --kubeconfig FILE, set KUBECONFIG, or read manifests with -f DIR"
    )


async def from_cluster(
    kubeconfig: Path | None, *, context: str | None = None, namespace: str | None = None
) -> DelegationForest:
    """The forest of a cluster's IngressRoutes, listed once, with the statuses they hold
    (`kubeconfig` None: the pod's service account)."""
    import aiohttp

    from controlplane.sources import KubeApiError, list_once, make_api_client
    from controlplane.store import Store
    from controlplane.tree import delegation_forest, statuses_of

    store = Store()
    try:
        api = await make_api_client(kubeconfig, context=context)
    except Exception as error:  # the client library raises plain exceptions for bad configs
        raise StatusError(f"kubeconfig: {' '.join(str(error).split())}") from None
    try:
        try:
            missing = await list_once(api, store, ["IngressRoute"], request_timeout=10.0)
        except KubeApiError as error:
            if error.status != 403 or namespace is None:
                raise
            # not allowed cluster-wide: what this namespace's trees show is still worth seeing
            missing = await list_once(
                api, store, ["IngressRoute"], namespace=namespace, request_timeout=10.0
            )
    except KubeApiError as error:
        raise StatusError(f"listing IngressRoutes: {error}", EXIT_UNREACHABLE) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        where = api.configuration.host
        raise StatusError(
            f"cannot reach {where}: {error or 'timed out'}", EXIT_UNREACHABLE
        ) from None
    finally:
        await api.close()
    if missing:
        sys.stderr.write(
            "controlplane status: no IngressRoute CRD in this cluster: nothing to show\n"
        )
    objects = store.object_set()
    statuses = statuses_of(objects.ingress_routes.values())
    return delegation_forest(objects, statuses, namespace=namespace)


# -- the command ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `controlplane status` (and of the plugin's `tree`)."""
    source = parser.add_argument_group("where the IngressRoutes come from (default: a cluster)")
    source.add_argument(
        "-f",
        "--filename",
        "--manifests",
        dest="filename",
        action="append",
        metavar="PATH",
        help="a manifest file or directory, built as translate builds it (repeatable)",
    )
    source.add_argument(
        "--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, or the pod's service account"
    )
    source.add_argument("--context", help="the kubeconfig context to use")
    parser.add_argument("-n", "--namespace", help="only the trees whose top is in NAMESPACE")
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace (the default)"
    )
    parser.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="auto: on a terminal unless NO_COLOR is set",
    )
    manifests = parser.add_argument_group("with -f: the settings that change the build")
    manifests.add_argument("--config", metavar="FILE", help="serve's YAML config file")
    manifests.add_argument("--ingress-class", help="default: contour")
    manifests.add_argument("--root-namespaces", help="comma-separated")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `status` to the `controlplane` command's subcommands."""
    status = commands.add_parser(
        "status",
        help="print each root IngressRoute's delegation tree with statuses",
        description="Print each root IngressRoute's delegation tree with every object's status "
        "and description, then the IngressRoutes no root reaches, and a count per status. The "
        "statuses are a cluster's (listed once; the kubeconfig found as kubectl finds it) or, "
        "with -f, those the controller would write for the manifests.",
    )
    add_arguments(status)


def _use_color(choice: str, stream: TextIO, environ: Mapping[str, str]) -> bool:
    if choice != "auto":
        return choice == "always"
    if "NO_COLOR" in environ or environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(stream.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def run(args: argparse.Namespace, *, prog: str = "controlplane status") -> int:
    """Run `controlplane status` with parsed arguments; returns the exit code."""
    from controlplane.logging import configure_logging

    configure_logging("warning")  # the listing logs at info; only trouble matters here
    namespace = None if args.all_namespaces else args.namespace
    try:
        if args.filename:
            if args.kubeconfig or args.context:
                raise StatusError("-f/--manifests and --kubeconfig/--context exclude each other")
            forest = from_manifests(
                [Path(p) for p in args.filename],
                config=args.config,
                ingress_class=args.ingress_class,
                root_namespaces=args.root_namespaces,
                namespace=namespace,
            )
        else:
            if args.config or args.ingress_class or args.root_namespaces:
                raise StatusError(
                    "--config, --ingress-class and --root-namespaces change a build of "
                    "manifests (-f); a cluster's statuses are its controller's"
                )
            kubeconfig = find_kubeconfig(args.kubeconfig, os.environ)
            forest = asyncio.run(
                from_cluster(kubeconfig, context=args.context, namespace=namespace)
            )
    except StatusError as error:
        sys.stderr.write(f"{prog}: {error}\n")
        return error.code
    out = sys.stdout
    if args.output == "json":
        out.write(json.dumps(forest.to_json(), indent=2) + "\n")
    elif args.output == "yaml":
        out.write(yaml.safe_dump(forest.to_json(), sort_keys=False))
    else:
        color = _use_color(args.color, out, os.environ)
        out.write(render_text(forest, color=color, unicode=_can_encode(out, "├─│→")))
    return 0


def plugin_main(argv: Sequence[str] | None = None) -> int:
    """`kubectl-ingressroute`: kubectl runs it for `kubectl ingressroute ...`."""
    parser = argparse.ArgumentParser(
        prog="kubectl ingressroute",
        description="IngressRoute tools for kubectl (controlplane).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tree = commands.add_parser(
        "tree",
        help="each root IngressRoute's delegation tree, with statuses",
        description="Print each root IngressRoute's delegation tree with every status and "
        "description, then the IngressRoutes no root reaches.",
    )
    add_arguments(tree)
    args = parser.parse_args(argv)
    return run(args, prog="kubectl ingressroute tree")


def main() -> None:
    """The console script's entry point."""
    sys.exit(plugin_main())
