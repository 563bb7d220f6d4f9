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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from ipaddress import ip_network
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from controlplane import status_view
from controlplane.config import ENV_PREFIX, ServeSettings
from controlplane.logging import configure_logging

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
STDIN = "-"
ENVOY_API = "v3"
REDACTED: dict[str, str] = {"inline_string": "[redacted]"}
# Fields of Envoy's secrets that hold key material (TlsCertificate, GenericSecret, session keys).
SECRET_FIELDS = frozenset({"private_key", "password", "secret", "session_ticket_keys"})


class UsageError(Exception):
    """A mistake on the command line the user can fix; one line, exit code 2."""


class CommandFailed(Exception):
    """The command could not do its job (unreachable, taken, unreadable); one line, exit 1."""


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


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


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
                _flag(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif get_args(info.annotation) and all(
            isinstance(a, str) for a in get_args(info.annotation)
        ):
            parser.add_argument(
                _flag(name), dest=name, default=None, choices=get_args(info.annotation),
                type=str.lower, help=help_text,
            )  # fmt: skip
        else:
            metavar = name.upper().removeprefix("ENVOY_").replace("_", "-")
            number = _NUMBERS.get(info.annotation, str)
            parser.add_argument(
                _flag(name), dest=name, default=None, metavar=metavar, type=number, help=help_text
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
    _add_xds_tls_flags(bootstrap, "Envoy's client certificate for xDS")
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
    _add_xds_tls_flags(xds, "a client certificate (e.g. Envoy's) for a controller serving mTLS")
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
        "certificates already there are kept unless --overwrite.",
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
        "--overwrite", action="store_true", help="replace certificates that are still valid"
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
            return _serve(args)
        if args.command == "bootstrap":
            return _bootstrap(args)
        if args.command == "translate":
            return _translate(args)
        if args.command == "xds":
            return _xds(args)
        if args.command == "certgen":
            return _certgen(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "testapi":
            return _testapi(args)
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
    print(f"controlplane {args.command}: {error}", file=sys.stderr)
    return code


def _yaml(data: Any) -> str:
    """YAML of JSON-shaped data (protobuf's JSON mapping hands back OrderedDicts, which
    `safe_dump` refuses): through JSON first, so both outputs always agree."""
    return str(yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False))


def _write_data(data: Any, output: str, *, stream: bool = False) -> None:
    """Print `data` on stdout as JSON or YAML; `stream`: one of several documents (YAML ones
    start with `---`; JSON ones follow each other, as `jq` reads them)."""
    if output == "yaml":
        sys.stdout.write(("---\n" if stream else "") + _yaml(data))
    else:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def redact_secrets(data: Any) -> Any:
    """`data` with the key material of every secret replaced by `[redacted]`."""
    if isinstance(data, dict):
        return {
            key: REDACTED
            if key in SECRET_FIELDS and isinstance(value, dict)
            else redact_secrets(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [redact_secrets(item) for item in data]
    return data


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


# -- serve ---------------------------------------------------------------------------------


def _add_xds_tls_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--xds-ca",
        metavar="FILE",
        help="CA bundle (PEM) the other side's "
        "certificate must chain to; with --xds-cert and --xds-key: mutual TLS",
    )
    parser.add_argument("--xds-cert", metavar="FILE", help=f"{what} (PEM)")
    parser.add_argument("--xds-key", metavar="FILE", help="the private key (PEM) of --xds-cert")


def _xds_tls_files(args: argparse.Namespace) -> Any:
    """``TlsFiles`` from the three flags (all or none), their contents checked; or ``None``."""
    from controlplane.xds import TlsFiles

    try:
        files = TlsFiles.of(args.xds_ca, args.xds_cert, args.xds_key)
        if files is not None:
            files.read()
    except ValueError as error:
        raise UsageError(_one_line(error)) from None
    return files


def _serve(args: argparse.Namespace) -> int:
    given = {
        name: value
        for name in ServeSettings.model_fields
        if (value := getattr(args, name, None)) is not None
    }
    config_file = given.get("config") or os.environ.get(f"{ENV_PREFIX}CONFIG")
    if config_file and not Path(config_file).is_file():
        raise UsageError(f"--config {config_file}: no such file")
    try:
        settings = ServeSettings(**given)
    except ValidationError as error:
        raise UsageError(_settings_error(error, given, config_file)) from None
    except (OSError, ValueError, yaml.YAMLError) as error:  # the --config file
        reason = _one_line(error).removeprefix(f"{config_file}: ")
        raise UsageError(f"--config {config_file}: {reason}") from None
    if settings.manifests is not None and not settings.manifests.is_dir():
        raise UsageError(f"--manifests {settings.manifests}: not a directory")
    _xds_tls_files(argparse.Namespace(**{
        f: getattr(settings, f) for f in ("xds_ca", "xds_cert", "xds_key")
    }))  # fmt: skip
    if settings.manifests is None:
        if settings.kubeconfig is not None and not settings.kubeconfig.is_file():
            raise UsageError(f"--kubeconfig {settings.kubeconfig}: no such file")
        if settings.kubeconfig is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise UsageError(
                "give --manifests DIR or --kubeconfig PATH (not in a pod, so there is no "
                "in-cluster configuration)"
            )
    _check_can_listen("--xds-address", settings.xds_address)
    _check_can_listen("--health-address", settings.health_address)
    from controlplane.runtime import serve

    try:
        asyncio.run(serve(settings))
    except OSError as error:  # a port taken since the check above
        raise CommandFailed(_one_line(error)) from None
    except RuntimeError as error:
        if "Failed to bind" not in str(error):  # grpc's words for a taken port
            raise
        raise CommandFailed(f"--xds-address {settings.xds_address}: address in use") from None
    return 0


def _settings_error(error: ValidationError, given: dict[str, Any], config_file: str | None) -> str:
    """A pydantic error about the settings, naming where the bad value came from: the flag,
    the environment variable or the config file (`--lease-duration 'abc': not a number`)."""
    messages = []
    for problem in error.errors(include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else ""
        message = str(problem["msg"]).removeprefix("Value error, ")
        variable = f"{ENV_PREFIX}{name.upper()}"
        if problem["type"] == "extra_forbidden":
            messages.append(f"--config {config_file}: unknown setting {name!r}")
        elif name in given:
            messages.append(f"{_flag(name)} {problem.get('input')!r}: {message}")
        elif name and variable in os.environ:
            messages.append(f"{variable}={problem.get('input')!r}: {message}")
        elif name:
            messages.append(f"--config {config_file}: {name} {problem.get('input')!r}: {message}")
        else:
            messages.append(message)
    return "; ".join(messages)


def _check_can_listen(flag: str, address: str) -> None:
    """Refuse an address that is not HOST:PORT or that something else listens on (before
    anything starts: a taken port then names its flag, not a traceback from the server)."""
    host, _, port_text = address.rpartition(":")
    if address.startswith("unix:"):
        return
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"{flag} {address}: expected HOST:PORT") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"{flag} {address}: port out of range")
    if port == 0:
        return
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise UsageError(f"{flag} {address}: {error.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(where)
        except OSError as error:
            raise CommandFailed(f"{flag} {address}: {error.strerror}") from None


# -- bootstrap, translate ------------------------------------------------------------------


def _bootstrap(args: argparse.Namespace) -> int:
    from controlplane.envoy import XdsClientTls, render_bootstrap, sds_resources, write_bootstrap

    # Checked here, where the files are visible (the init container mounts the Secret too): a
    # missing or mismatched file would leave Envoy's xds_cluster unable to ever connect.
    files = _xds_tls_files(args)
    try:
        xds_tls = None
        if files is not None:
            directory = args.resources_dir or str(Path(args.path).absolute().parent)
            xds_tls = XdsClientTls(
                ca=str(files.ca.absolute()),
                cert=str(files.cert.absolute()),
                key=str(files.key.absolute()),
                resources_dir=directory,
            )
        elif args.resources_dir:
            raise ValueError("--resources-dir is for the SDS files of --xds-cert and --xds-key")
        bootstrap = render_bootstrap(
            xds_address=args.xds_address or "127.0.0.1:8001",
            admin_address=args.admin_address,
            stats_address=args.stats_address,
            mode=args.xds_mode,
            node_id=args.node_id,
            cluster=args.cluster,
            xds_tls=xds_tls,
        )
        resources = sds_resources(xds_tls)
        path = write_bootstrap(args.path, bootstrap, resources)
    except (ValueError, OSError) as error:
        raise UsageError(_one_line(error)) from None
    for written in [*resources, path]:
        print(f"wrote {written}", file=sys.stderr)
    return 0


def _manifest_paths(names: Sequence[str]) -> list[Path]:
    """`-f` arguments as paths; `-` is standard input (read once however often given)."""
    paths: list[Path] = []
    for name in dict.fromkeys(names):
        if name == STDIN:
            paths.append(Path("/dev/stdin"))
        elif not Path(name).exists():
            raise UsageError(f"-f {name}: no such file or directory")
        else:
            paths.append(Path(name))
    return paths


_TRANSLATE_SETTINGS = (
    "config",
    "ingress_class",
    "root_namespaces",
    "enable_external_name_services",
    "refuse_local_endpoints",
    "refuse_endpoint_cidrs",
    "envoy_http_port",
    "envoy_https_port",
)


def _translate(args: argparse.Namespace) -> int:
    paths = _manifest_paths(args.filename)  # first: a typo is reported before the imports
    from controlplane.offline import migration_summary, options_from_settings, translate_manifests

    try:
        for cidr in (args.refuse_endpoint_cidrs or "").split(","):
            if cidr.strip():
                ip_network(cidr.strip())
    except ValueError as error:
        raise UsageError(f"--refuse-endpoint-cidrs: {error}") from None
    given = {n: v for n in _TRANSLATE_SETTINGS if (v := getattr(args, n)) is not None}
    try:
        settings = ServeSettings(**given)
    except (ValidationError, OSError, ValueError) as error:
        raise UsageError(_one_line(error)) from None
    for notice in settings.config_notices():
        print(f"controlplane translate: {settings.config}: {notice}", file=sys.stderr)
    try:
        result: dict[str, Any] = translate_manifests(paths, *options_from_settings(settings))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CommandFailed(_one_line(error)) from None
    print("\n".join(migration_summary(result["migration"])), file=sys.stderr)
    _write_data(result if args.show_secrets else redact_secrets(result), args.output)
    return 0


# -- xds -----------------------------------------------------------------------------------


def _xds(args: argparse.Namespace) -> int:
    import grpc

    tls = _xds_tls_files(args)
    try:
        if args.watch:
            asyncio.run(_watch_xds(args))
            return 0
        config = asyncio.run(_fetch_xds(args))
    except TimeoutError:
        raise CommandFailed(
            f"no complete answer from {args.xds_address} within {args.timeout:g} s "
            "(is the controller running and ready?)"
        ) from None
    except grpc.aio.AioRpcError as error:
        raise CommandFailed(_rpc_error(args.xds_address, error, tls is not None)) from None
    except ConnectionError as error:
        raise CommandFailed(str(error)) from None
    shown = _select(config, args)
    if args.name and not any(shown.values()):
        raise CommandFailed(f"no resource named {' or '.join(args.name)}")
    _write_data(shown, args.output)
    return 0


def _certgen(args: argparse.Namespace) -> int:
    from controlplane import certgen

    key_type: certgen.KeyType = "rsa" if args.rsa else "ec"
    if args.kubernetes == bool(args.dir):
        raise UsageError("give a directory, or --kubernetes (not both)")
    try:
        if args.kubernetes:
            outcome = asyncio.run(_certgen_kubernetes(args, key_type))
            where = (
                f"Secrets {args.namespace}/{certgen.CONTROLPLANE_SECRET} and {certgen.ENVOY_SECRET}"
            )
        else:
            outcome = certgen.write_directory(
                Path(args.dir),
                namespace=args.namespace,
                key_type=key_type,
                lifetime_days=args.lifetime,
                overwrite=args.overwrite,
            )
            where = str(args.dir)
    except (ValueError, OSError) as error:
        raise UsageError(_one_line(error)) from None
    until = f"valid until {outcome.not_after:%Y-%m-%d %H:%M} UTC"
    if outcome.written:
        print(f"wrote {where} ({outcome.reason}; {until})", file=sys.stderr)
    else:
        print(f"kept {where}: {outcome.reason} ({until}); --overwrite replaces them",
              file=sys.stderr)  # fmt: skip
    return 0


async def _certgen_kubernetes(args: argparse.Namespace, key_type: Any) -> Any:
    from controlplane import certgen
    from controlplane.sources import make_api_client

    api = await make_api_client(Path(args.kubeconfig) if args.kubeconfig else None)
    try:
        return await certgen.write_secrets(
            api,
            namespace=args.namespace,
            key_type=key_type,
            lifetime_days=args.lifetime,
            overwrite=args.overwrite,
        )
    finally:
        await api.close()


async def _fetch_xds(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    from controlplane.xds import fetch_config

    return await fetch_config(
        args.xds_address, timeout_s=args.timeout, tls=_xds_tls_files(args), eds=args.eds
    )


async def _watch_xds(args: argparse.Namespace) -> None:
    """Print the (selected) configuration as first served, then each time it changes."""
    import grpc

    from controlplane.xds import watch_config

    shown: dict[str, list[dict[str, Any]]] | None = None
    async with contextlib.aclosing(
        watch_config(args.xds_address, tls=_xds_tls_files(args))
    ) as configs:
        async with asyncio.timeout(args.timeout) as first_answer:
            try:
                async for config in configs:
                    first_answer.reschedule(None)
                    selected = _select(config, args)
                    if selected != shown:
                        shown = selected
                        _write_data(selected, args.output, stream=True)
            except grpc.aio.AioRpcError as error:
                if shown is None:
                    raise
                details = " ".join(str(error.details() or "").split())
                raise ConnectionError(
                    f"the controller at {args.xds_address} ended the stream ({details})"
                ) from None


def _select(config: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    """The types and names asked for (`--type`, `--name`), keys redacted."""

    def named(resource: dict[str, Any]) -> bool:
        return not args.name or (resource.get("name") or resource.get("cluster_name")) in args.name

    return {
        type_name: redact_secrets([r for r in resources if named(r)])
        for type_name, resources in config.items()
        if not args.type or type_name in args.type
    }


def _rpc_error(address: str, error: Any, tls: bool = False) -> str:
    details = " ".join(str(error.details() or "").split())
    if error.code().name == "UNAVAILABLE":
        if not tls and "refused" not in details.lower():  # there, but it hung up on us
            return (
                f"the controller at {address} closed the connection ({details}); one serving "
                "mTLS needs --xds-ca, --xds-cert, --xds-key"
            )
        return f"cannot reach the controller at {address} ({details}); is it running?"
    return f"{address} answered {error.code().name}: {details}"


# -- demo, testapi -------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    examples = Path(args.examples).absolute()
    if not examples.is_dir():
        raise UsageError(f"--examples {args.examples}: not a directory")
    for flag in ("http_port", "https_port", "xds_port", "health_port"):
        port = getattr(args, flag)
        if port is not None and not 0 < port < 65536:
            raise UsageError(f"{_flag(flag)} {port}: not a port number (1-65535)")
    from controlplane.demo import (
        DEMO_DIR,
        DemoError,
        choose_ports,
        demo_bootstrap,
        local_backends,
        run_demo,
    )

    try:
        ports = choose_ports(
            {
                "http": args.http_port,
                "https": args.https_port,
                "xds": args.xds_port,
                "health": args.health_port,
            },
            avoid=local_backends(examples),
        )
        bootstrap = demo_bootstrap(ports, admin_socket=args.admin_socket)
    except ValueError as error:
        raise UsageError(_one_line(error)) from None
    except DemoError as error:
        raise CommandFailed(str(error)) from None
    workdir = Path(DEMO_DIR).absolute()
    workdir.mkdir(exist_ok=True)

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(
            run_demo(
                examples, say, workdir=workdir, files=args.files, ports=ports, bootstrap=bootstrap
            )
        )
    except DemoError as error:
        raise CommandFailed(str(error)) from None
    return 0


def _testapi(args: argparse.Namespace) -> int:
    _check_can_listen("--listen", args.listen)
    from controlplane.testing import run_testapi

    try:
        asyncio.run(run_testapi(args.listen, args.kubeconfig))
    except OSError as error:  # the port, taken since the check; the kubeconfig's directory
        raise CommandFailed(_one_line(error)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
