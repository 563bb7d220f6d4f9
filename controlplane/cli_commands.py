"""The offline and local subcommands: bootstrap, translate, certgen, demo and testapi.

Each checks what the user gave before importing the heavy module that does the work (so a typo
is reported at once, and `--help` never imports them), then maps that module's errors onto
`UsageError` (exit 2) or `CommandFailed` (exit 1) from `controlplane.cli_support`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from controlplane.cli_support import (
    CommandFailed,
    UsageError,
    check_can_listen,
    flag_name,
    one_line,
    redact_secrets,
    tell,
    write_data,
    xds_tls_files,
)
from controlplane.config import ServeSettings

STDIN = "-"


def bootstrap_command(args: argparse.Namespace) -> int:
    from controlplane.envoy import XdsClientTls, render_bootstrap, sds_resources, write_bootstrap

    # Checked here, where the files are visible (the init container mounts the Secret too): a
    # missing or mismatched file would leave Envoy's xds_cluster unable to ever connect.
    files = xds_tls_files(args)
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
        raise UsageError(one_line(error)) from None
    for written in [*resources, path]:
        tell(f"wrote {written}")
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


def translate_command(args: argparse.Namespace) -> int:
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
        raise UsageError(one_line(error)) from None
    for notice in settings.config_notices():
        tell(f"controlplane translate: {settings.config}: {notice}")
    try:
        result: dict[str, Any] = translate_manifests(paths, *options_from_settings(settings))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CommandFailed(one_line(error)) from None
    tell("\n".join(migration_summary(result["migration"])))
    write_data(result if args.show_secrets else redact_secrets(result), args.output)
    return 0


def certgen_command(args: argparse.Namespace) -> int:
    from controlplane import certgen

    key_type: certgen.KeyType = "rsa" if args.rsa else "ec"
    if args.kubernetes == bool(args.dir):
        raise UsageError("give a directory, or --kubernetes (not both)")
    if args.rotate and args.overwrite:
        raise UsageError("--rotate or --overwrite, not both")
    if not 0 <= args.rotate_wait < 86400:
        raise UsageError(f"--rotate-wait {args.rotate_wait:g}: seconds, from 0 to a day")
    try:
        certgen.check_lifetime(args.lifetime)  # before anything is read: even when keeping
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        if args.kubernetes:
            outcome = asyncio.run(_certgen_kubernetes(args, key_type))
            where = (
                f"Secrets {args.namespace}/{certgen.CONTROLPLANE_SECRET} and {certgen.ENVOY_SECRET}"
            )
        elif args.rotate:
            outcome = certgen.rotate_directory(
                Path(args.dir),
                namespace=args.namespace,
                key_type=key_type,
                lifetime_days=args.lifetime,
                wait_s=args.rotate_wait,
                progress=_progress,
            )
            where = str(args.dir)
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
        raise UsageError(one_line(error)) from None
    until = f"valid until {outcome.not_after:%Y-%m-%d %H:%M} UTC"
    if outcome.written:
        tell(f"wrote {where} ({outcome.reason}; {until})")
    else:
        tell(f"kept {where}: {outcome.reason} ({until}); --rotate renews them")
    return 0


def _progress(line: str) -> None:
    tell(f"controlplane certgen: {line}")


async def _certgen_kubernetes(args: argparse.Namespace, key_type: Any) -> Any:
    from controlplane import certgen
    from controlplane.sources import make_api_client

    api = await make_api_client(Path(args.kubeconfig) if args.kubeconfig else None)
    try:
        if args.rotate:
            return await certgen.rotate_secrets(
                api,
                namespace=args.namespace,
                key_type=key_type,
                lifetime_days=args.lifetime,
                wait_s=args.rotate_wait,
                progress=_progress,
            )
        return await certgen.write_secrets(
            api,
            namespace=args.namespace,
            key_type=key_type,
            lifetime_days=args.lifetime,
            overwrite=args.overwrite,
        )
    finally:
        await api.close()


def demo_command(args: argparse.Namespace) -> int:
    examples = Path(args.examples).absolute()
    if not examples.is_dir():
        raise UsageError(f"--examples {args.examples}: not a directory")
    for flag in ("http_port", "https_port", "xds_port", "health_port"):
        port = getattr(args, flag)
        if port is not None and not 0 < port < 65536:
            raise UsageError(f"{flag_name(flag)} {port}: not a port number (1-65535)")
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
        raise UsageError(one_line(error)) from None
    except DemoError as error:
        raise CommandFailed(str(error)) from None
    workdir = Path(DEMO_DIR).absolute()
    workdir.mkdir(exist_ok=True)

    def say(line: str) -> None:
        tell(line, on_stdout=True)

    try:
        asyncio.run(
            run_demo(
                examples, say, workdir=workdir, files=args.files, ports=ports, bootstrap=bootstrap
            )
        )
    except DemoError as error:
        raise CommandFailed(str(error)) from None
    return 0


def testapi_command(args: argparse.Namespace) -> int:
    check_can_listen("--listen", args.listen)
    from controlplane.testing import run_testapi

    try:
        asyncio.run(run_testapi(args.listen, args.kubeconfig))
    except OSError as error:  # the port, taken since the check; the kubeconfig's directory
        raise CommandFailed(one_line(error)) from None
    return 0
