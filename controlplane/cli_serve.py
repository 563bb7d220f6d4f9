"""`controlplane serve`: check the settings and the addresses, then run the controller.

The settings come from flags, the environment and the config file (flags > env > file >
defaults); a bad value is reported naming where it came from (`_settings_error`). Everything
that can be checked before starting is (files, kubeconfig, that the ports are free), so a
mistake is one line on stderr rather than a traceback from the running server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
    xds_tls_files,
)
from controlplane.config import ENV_PREFIX, ServeSettings


def serve_command(args: argparse.Namespace) -> int:
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
        reason = one_line(error).removeprefix(f"{config_file}: ")
        raise UsageError(f"--config {config_file}: {reason}") from None
    if settings.manifests is not None and not settings.manifests.is_dir():
        raise UsageError(f"--manifests {settings.manifests}: not a directory")
    xds_tls_files(argparse.Namespace(**{
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
    check_can_listen("--xds-address", settings.xds_address)
    check_can_listen("--health-address", settings.health_address)
    from controlplane.runtime import serve

    try:
        asyncio.run(serve(settings))
    except OSError as error:  # a port taken since the check above
        raise CommandFailed(one_line(error)) from None
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
            messages.append(f"{flag_name(name)} {problem.get('input')!r}: {message}")
        elif name and variable in os.environ:
            messages.append(f"{variable}={problem.get('input')!r}: {message}")
        elif name:
            messages.append(f"--config {config_file}: {name} {problem.get('input')!r}: {message}")
        else:
            messages.append(message)
    return "; ".join(messages)
