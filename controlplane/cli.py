"""The `controlplane` command: serve, bootstrap, translate, xds, certgen, demo, testapi.

`serve` flags are generated from the fields of `ServeSettings` (name, type, choices, default,
description), so `--help` always tells the truth about the code and a bad value is refused by
the flag's own parser. Only flags the user actually gave are passed on, which lets the
environment and the config file fill in the rest (flags > env > file > defaults).

What the user sees, the contract of every command:

- **stdout carries only data** (`translate`, `xds`: JSON, or YAML with `-o yaml`); messages and
  logs go to stderr (structlog is configured here for every command but `serve`, which
  configures its own from its settings).
- **A mistake is one line on stderr**, `controlplane COMMAND: what is wrong`, never a traceback:
  exit code 2 when the command line itself is wrong (an unknown flag, a bad value, a file or
  directory that does not exist: argparse's own errors show the usage of the subcommand at
  fault) and 1 when the command could not do its job (the controller is unreachable, a port is
  taken, a manifest is not YAML). `--debug` adds the traceback; an unexpected exception is a bug
  and keeps its traceback. Ctrl-C ends with 130 and no traceback.
- **Secrets stay out of sight**: private keys are redacted from what `translate` and `xds`
  print, unless `translate --show-secrets`.

This module is the parser and the dispatch; the subcommands live beside it: `cli_serve`,
`cli_xds`, `cli_commands` (bootstrap, translate, certgen, demo, testapi), and what they share
(errors, output, checks) in `cli_support`. Each imports its heavy modules inside the function
that needs them, so `controlplane --help` imports none of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, get_args

from controlplane import status_view
from controlplane.cli_commands import (
    bootstrap_command,
    certgen_command,
    demo_command,
    testapi_command,
    translate_command,
)
from controlplane.cli_serve import serve_command
from controlplane.cli_support import (
    CommandFailed,
    UsageError,
    add_xds_tls_flags,
    flag_name,
    redact_secrets,
    tell,
)
from controlplane.cli_xds import xds_command
from controlplane.config import ServeSettings
from controlplane.logging import configure_logging

__all__ = ["build_parser", "main", "redact_secrets", "version_text"]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
ENVOY_API = "v3"


def version_text() -> str:
    """`controlplane --version`: this package, the Envoy API it speaks, the protos it uses."""

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "unknown"

    return (
        f"controlplane {installed('controlplane')} (Envoy xDS API {ENVOY_API}, "
        f"xds-protos {installed('xds-protos')}, Python {sys.version.split()[0]})"
    )


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(value)
    return number


_positive.__name__ = "positive number"  # what argparse calls the type in its message


_NUMBERS: dict[Any, Callable[[str], Any]] = {int: int, float: float}


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for name, info in ServeSettings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        help_text = info.description or ""
        if default not in (None, [], ""):
            shown = ",".join(default) if isinstance(default, list) else default
            help_text += f" (default: {shown})"
        if info.annotation is bool or bool in get_args(info.annotation):
            parser.add_argument(
                flag_name(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif get_args(info.annotation) and all(
            isinstance(a, str) for a in get_args(info.annotation)
        ):
            parser.add_argument(
                flag_name(name), dest=name, default=None, choices=get_args(info.annotation),
                type=str.lower, help=help_text,
            )  # fmt: skip
        else:
            metavar = name.upper().removeprefix("ENVOY_").replace("_", "-")
            number = _NUMBERS.get(info.annotation, str)
            parser.add_argument(
                flag_name(name),
                dest=name,
                default=None,
                metavar=metavar,
                type=number,
                help=help_text,
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="controlplane",
        description="An Envoy xDS control plane for Kubernetes Ingress and IngressRoute.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="watch a cluster (or a directory of manifests) and serve xDS to Envoys",
        description="Watch a cluster (--kubeconfig or in-cluster) or a directory of manifests "
        "(--manifests) and serve the resulting configuration to Envoys over xDS (ADS, per-type "
        "SotW and delta). Every flag can also be set as CONTROLPLANE_<FLAG> in the environment "
        "or as a key in the --config YAML file; flags win over both.",
    )
    _add_settings_flags(serve)

    bootstrap = commands.add_parser(
        "bootstrap",
        help="write an Envoy bootstrap that connects to the controller",
        description="Write an Envoy bootstrap: ADS over gRPC to the controller, Envoy's admin API "
        "on a unix socket (or a loopback port), and a stats listener that serves only GET /ready, "
        "/stats and /stats/prometheus from the admin API, for probes and metrics scrapers.",
    )
    bootstrap.add_argument("path", help="file to write (.yaml or .json)")
    bootstrap.add_argument(
        "--xds-address",
        action="append",
        metavar="H:P",
        help="controller's xDS address; repeat it for several replicas, or give a DNS name "
        "Envoy resolves to all of them (default: 127.0.0.1:8001)",
    )
    add_xds_tls_flags(bootstrap, "Envoy's client certificate for xDS")
    bootstrap.add_argument(
        "--resources-dir",
        metavar="DIR",
        help="where the SDS files for the --xds-cert/--xds-key rotation go (absolute; default: "
        "the directory of PATH)",
    )
    bootstrap.add_argument(
        "--admin-address",
        default="unix:/tmp/envoy-admin.sock",
        metavar="unix:PATH|H:P",
        help="Envoy's admin API: a unix socket (mode 0600), or a loopback IP:PORT for local use "
        "(default: %(default)s; in a pod, a path in an emptyDir shared with whoever drains Envoy)",
    )
    bootstrap.add_argument(
        "--stats-address",
        default="0.0.0.0:8002",
        metavar="H:P",
        help="listener serving GET /ready, /stats and /stats/prometheus from the admin API, "
        "nothing else (default: %(default)s)",
    )
    bootstrap.add_argument(
        "--xds-mode",
        choices=("ads", "delta", "separate"),
        default="ads",
        help="ADS state of the world (default), incremental ADS, or one stream per type",
    )
    bootstrap.add_argument("--node-id", default="envoy", help="Envoy node id")
    bootstrap.add_argument("--cluster", default="controlplane", help="Envoy node cluster")

    translate = commands.add_parser(
        "translate",
        help="print the Envoy resources and statuses for manifests, offline",
        description="Read manifests and print the Envoy resources (listeners, routes, clusters, "
        "endpoints, secrets), the status of every IngressRoute, every problem and a migration "
        "report (also summed up on stderr). No cluster needed. The settings that change what "
        "is built come from the flags, the environment and --config as for serve. Private "
        "keys are redacted unless --show-secrets.",
    )
    translate.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="a manifest file or directory, or - for standard input (repeatable)",
    )
    translate.add_argument("-o", "--output", choices=("json", "yaml"), default="json")
    translate.add_argument(
        "--config", metavar="FILE", help="serve's YAML config file (Contour's keys too)"
    )
    translate.add_argument("--ingress-class", help="default: contour")
    translate.add_argument("--root-namespaces", help="comma-separated")
    translate.add_argument("--enable-external-name-services", action="store_true", default=None)
    translate.add_argument(
        "--show-secrets",
        action="store_true",
        help="print private keys in full (redacted by default)",
    )
    translate.add_argument(
        "--refuse-local-endpoints",
        action="store_true",
        default=None,
        help="refuse what serve refuses in cluster mode (off, as with serve --manifests)",
    )
    translate.add_argument(
        "--refuse-endpoint-cidrs", metavar="CIDRS", help="comma-separated, as serve"
    )
    translate.add_argument("--envoy-http-port", type=int, help="default: 8080")
    translate.add_argument("--envoy-https-port", type=int, help="default: 8443")

    xds = commands.add_parser(
        "xds",
        help="print what the controller serves, fetched over ADS like an Envoy (debugging)",
        description="Connect to the controller's xDS address over ADS, subscribe like an Envoy "
        "(clusters, their endpoints, listeners, their routes and secrets), ACK everything, and "
        "print the resources; with --watch, print them again each time they change, until "
        "Ctrl-C. Private keys are redacted.",
    )
    xds.add_argument("--xds-address", default="127.0.0.1:8001", help="controller's xDS H:P")
    add_xds_tls_flags(xds, "a client certificate (e.g. Envoy's) for a controller serving mTLS")
    xds.add_argument(
        "--type",
        action="append",
        choices=("cds", "eds", "lds", "rds", "sds"),
        help="only these types (repeatable; default: all)",
    )
    xds.add_argument(
        "--eds",
        action="append",
        default=[],
        metavar="NAME",
        help="also ask EDS for NAME (namespace/service/port, even of a Service no route uses; "
        "'*' for every assignment served); repeatable",
    )
    xds.add_argument(
        "--name",
        action="append",
        metavar="NAME",
        help="only resources of this name (a listener, route configuration, cluster, "
        "ClusterLoadAssignment or secret; repeatable)",
    )
    xds.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="after the first answer, print the resources again each time they change",
    )
    xds.add_argument("-o", "--output", choices=("json", "yaml"), default="json")
    xds.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        help="seconds to wait for the first complete answer (default: %(default)s)",
    )

    certgen = commands.add_parser(
        "certgen",
        help="write the CA and certificates for mutual TLS between Envoys and controllers",
        description="Make a CA and two certificates signed by it: the controller's (server) and "
        "Envoy's (client), for --xds-ca/--xds-cert/--xds-key. Writes DIR/ca.crt, "
        "DIR/controlplane/tls.crt|tls.key and DIR/envoy/tls.crt|tls.key, or with --kubernetes "
        "the Secrets controlplanecert and envoycert (kubernetes.io/tls, with ca.crt). Valid "
        "certificates already there are kept unless --overwrite or --rotate.",
    )
    certgen.add_argument("dir", nargs="?", help="directory to write (not with --kubernetes)")
    certgen.add_argument(
        "--kubernetes", action="store_true", help="write Secrets through the Kubernetes API"
    )
    certgen.add_argument(
        "--namespace",
        default="projectcontour",
        help="the controller's namespace: its certificate names controlplane.NS(.svc...) and "
        "the Secrets go there (default: %(default)s)",
    )
    certgen.add_argument(
        "--kubeconfig", default=None, help="with --kubernetes (default: in-cluster config)"
    )
    certgen.add_argument("--rsa", action="store_true", help="RSA-2048 keys (default: ECDSA P-256)")
    certgen.add_argument(
        "--lifetime", type=int, default=365, metavar="DAYS", help="days (default: %(default)s)"
    )
    certgen.add_argument(
        "--overwrite",
        action="store_true",
        help="replace certificates that are still valid by a new CA's, at once: new connections "
        "fail until every pod has the new files (for a leaked key; to renew, --rotate)",
    )
    certgen.add_argument(
        "--rotate",
        action="store_true",
        help="renew without failing a handshake: write a ca.crt trusting a new CA beside the "
        "current one, wait --rotate-wait, then the new CA's certificates",
    )
    certgen.add_argument(
        "--rotate-wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="with --rotate: how long every pod may take to see the new ca.crt (the kubelet "
        "updates Secret volumes within a minute or two; default: %(default)g)",
    )

    demo = commands.add_parser(
        "demo", help="run backends, the controller and a real Envoy locally (make demo)"
    )
    demo.add_argument("--examples", default="examples", help="manifests directory")
    demo.add_argument(
        "--files",
        action="store_true",
        help="let the controller read the examples directly (no API server, no kubectl)",
    )
    demo.add_argument(
        "--admin-socket",
        action="store_true",
        help="Envoy's admin API on the unix socket .demo/envoy/admin.sock (default: a loopback "
        "port, 9001 when free, which a browser can open)",
    )
    for name, usual, what in (
        ("http", 8080, "Envoy's HTTP listener"),
        ("https", 8443, "Envoy's HTTPS listener"),
        ("xds", 8001, "the controller's xDS server"),
        ("health", 8000, "the controller's status page, health and metrics"),
    ):
        demo.add_argument(
            f"--{name}-port",
            type=int,
            default=None,
            metavar="PORT",
            help=f"port of {what} (default: {usual} when free, else any free port)",
        )

    testapi = commands.add_parser(
        "testapi", help="run the Kubernetes API test server (for tests and the demo)"
    )
    testapi.add_argument("--listen", default="127.0.0.1:0", help="H:P to listen on")
    testapi.add_argument("--kubeconfig", default=None, help="write a kubeconfig for it here")
    status_view.add_parser(commands)

    _add_common_flags(parser, commands)
    return parser


def _add_common_flags(
    parser: argparse.ArgumentParser, commands: argparse._SubParsersAction[argparse.ArgumentParser]
) -> None:
    """`--debug`, before or after the subcommand (the subcommand's copy keeps the top-level
    value unless given: SUPPRESS); no abbreviated flags."""
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    # A prefix of a flag is a typo, not that flag (and would break when a longer flag arrives).
    parser.allow_abbrev = False
    for sub in commands.choices.values():
        sub.allow_abbrev = False
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )


def _subcommand_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps its subparsers here and nowhere public
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would show the top-level usage; the subcommand's is the useful one
        _subcommand_parser(parser, args.command).error(
            f"unrecognized arguments: {' '.join(unknown)}"
        )
    if args.command != "serve":  # serve configures logging from its own settings
        quiet = args.command in ("translate", "xds", "bootstrap", "demo", "certgen")
        configure_logging("debug" if args.debug else "warning" if quiet else "info", json=False)
    try:
        if args.command == "serve":
            return serve_command(args)
        if args.command == "bootstrap":
            return bootstrap_command(args)
        if args.command == "translate":
            return translate_command(args)
        if args.command == "xds":
            return xds_command(args)
        if args.command == "certgen":
            return certgen_command(args)
        if args.command == "demo":
            return demo_command(args)
        if args.command == "testapi":
            return testapi_command(args)
        if args.command == "status":
            return status_view.run(args)
    except UsageError as error:
        return _report(args, error, EXIT_USAGE)
    except CommandFailed as error:
        return _report(args, error, EXIT_FAILURE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    return EXIT_USAGE


def _report(args: argparse.Namespace, error: Exception, code: int) -> int:
    if args.debug:
        error.__suppress_context__ = False
        traceback.print_exception(error)
    tell(f"controlplane {args.command}: {error}")
    return code


if __name__ == "__main__":
    sys.exit(main())
