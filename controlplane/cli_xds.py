"""`controlplane xds`: fetch (or watch) what the controller serves, over ADS like an Envoy.

For debugging: the resources are printed as JSON or YAML, narrowed by `--type` and `--name`,
with key material always redacted. A controller that cannot be reached, hangs up (often: it
serves mTLS and no client certificate was given) or never answers completely is one line on
stderr naming the address (`_rpc_error`), not a gRPC traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from controlplane.cli_support import CommandFailed, redact_secrets, write_data, xds_tls_files


def xds_command(args: argparse.Namespace) -> int:
    import grpc

    tls = xds_tls_files(args)
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
    write_data(shown, args.output)
    return 0


async def _fetch_xds(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    from controlplane.xds import fetch_config

    return await fetch_config(
        args.xds_address, timeout_s=args.timeout, tls=xds_tls_files(args), eds=args.eds
    )


async def _watch_xds(args: argparse.Namespace) -> None:
    """Print the (selected) configuration as first served, then each time it changes."""
    import grpc

    from controlplane.xds import watch_config

    shown: dict[str, list[dict[str, Any]]] | None = None
    async with contextlib.aclosing(
        watch_config(args.xds_address, tls=xds_tls_files(args))
    ) as configs:
        async with asyncio.timeout(args.timeout) as first_answer:
            try:
                async for config in configs:
                    first_answer.reschedule(None)
                    selected = _select(config, args)
                    if selected != shown:
                        shown = selected
                        write_data(selected, args.output, stream=True)
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
