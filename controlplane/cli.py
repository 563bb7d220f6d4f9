"""The `controlplane` command: serve, bootstrap, translate, xds, certgen, demo, testapi.

`serve` flags are generated from the fields of `ServeSettings` (name, default, description), so
`--help` always tells the truth about the code. Only flags the user actually gave are passed on,
which lets the environment and the config file fill in the rest (flags > env > file > defaults).

User mistakes (a missing file, a bad flag value) end with a one-line message and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from ipaddress import ip_network
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from controlplane import status_view
from controlplane.config import ServeSettings

EXIT_USAGE = 2


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


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
                help=help_text,
            )  # fmt: skip
        else:
            metavar = name.upper().removeprefix("ENVOY_").replace("_", "-")
            parser.add_argument(
                _flag(name), dest=name, default=None, metavar=metavar, help=help_text
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="controlplane",
        description="An Envoy xDS control plane for Kubernetes Ingress and IngressRoute.",
    )
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
        "is built come from the flags, the environment and --config as for serve.",
    )
    translate.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="a manifest file or directory (repeatable)",
    )
    translate.add_argument("-o", "--output", choices=("json", "yaml"), default="json")
    translate.add_argument(
        "--config", metavar="FILE", help="serve's YAML config file (Contour's keys too)"
    )
    translate.add_argument("--ingress-class", help="default: contour")
    translate.add_argument("--root-namespaces", help="comma-separated")
    translate.add_argument("--enable-external-name-services", action="store_true", default=None)
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
        "print the resources. Private keys are redacted.",
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
    xds.add_argument("-o", "--output", choices=("json", "yaml"), default="json")
    xds.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for answers")

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
        help="Envoy's admin API on the unix socket .demo/envoy/admin.sock (default: "
        "127.0.0.1:9001, which a browser can open)",
    )

    testapi = commands.add_parser(
        "testapi", help="run the Kubernetes API test server (for tests and the demo)"
    )
    testapi.add_argument("--listen", default="127.0.0.1:0", help="H:P to listen on")
    testapi.add_argument("--kubeconfig", default=None, help="write a kubeconfig for it here")
    status_view.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
        print(f"controlplane {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return EXIT_USAGE


def _yaml(data: Any) -> str:
    """YAML of JSON-shaped data (protobuf's JSON mapping hands back OrderedDicts, which
    `safe_dump` refuses): through JSON first, so both outputs always agree."""
    return str(yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False))


class UsageError(Exception):
    """A mistake the user can fix; printed as one line."""


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
    try:
        settings = ServeSettings(**given)
    except (ValidationError, OSError, ValueError) as error:
        raise UsageError(_one_line(error)) from None
    if settings.manifests is not None and not settings.manifests.is_dir():
        raise UsageError(f"--manifests {settings.manifests}: not a directory")
    _xds_tls_files(argparse.Namespace(**{
        f: getattr(settings, f) for f in ("xds_ca", "xds_cert", "xds_key")
    }))  # fmt: skip
    from controlplane.runtime import serve

    asyncio.run(serve(settings))
    return 0


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
        result: dict[str, Any] = translate_manifests(
            [Path(p) for p in args.filename], *options_from_settings(settings)
        )
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(_one_line(error)) from None
    print("\n".join(migration_summary(result["migration"])), file=sys.stderr)
    if args.output == "yaml":
        sys.stdout.write(_yaml(result))
    else:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


def _xds(args: argparse.Namespace) -> int:
    import grpc

    from controlplane.xds import fetch_config

    tls = _xds_tls_files(args)
    try:
        config = asyncio.run(
            fetch_config(args.xds_address, timeout_s=args.timeout, tls=tls, eds=args.eds)
        )
    except grpc.aio.AioRpcError as error:
        hint = "" if tls else " (a controller serving mTLS needs --xds-ca, --xds-cert, --xds-key)"
        raise UsageError(
            f"{args.xds_address}: {error.code().name}: {error.details()}{hint}"
        ) from None
    except TimeoutError:
        raise UsageError(
            f"no complete answer from {args.xds_address} within {args.timeout:g} s "
            "(is the controller running and ready?)"
        ) from None
    if args.type:
        config = {name: items for name, items in config.items() if name in args.type}
    if args.output == "yaml":
        sys.stdout.write(_yaml(config))
    else:
        sys.stdout.write(json.dumps(config, indent=2) + "\n")
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


def _demo(args: argparse.Namespace) -> int:
    from controlplane.demo import demo_bootstrap, run_demo

    examples = Path(args.examples)
    if not examples.is_dir():
        raise UsageError(f"--examples {examples}: not a directory")
    try:
        bootstrap = demo_bootstrap(admin_socket=args.admin_socket)
    except ValueError as error:
        raise UsageError(_one_line(error)) from None

    def say(line: str) -> None:
        print(line, flush=True)

    asyncio.run(run_demo(examples, say, files=args.files, bootstrap=bootstrap))
    return 0


def _testapi(args: argparse.Namespace) -> int:
    from controlplane.testing import run_testapi

    asyncio.run(run_testapi(args.listen, args.kubeconfig))
    return 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


if __name__ == "__main__":
    sys.exit(main())
