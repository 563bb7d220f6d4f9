"""What every `controlplane` subcommand shares: its two kinds of error, its output, its checks.

`UsageError` (exit 2) and `CommandFailed` (exit 1) are what a subcommand raises for a mistake
the user can fix; `controlplane.cli.main` turns either into one line on stderr. Data goes to
stdout as JSON or YAML through `write_data` only, with key material redacted by
`redact_secrets` unless the user asked otherwise; what a command tells the person running it
(a file written, a summary, a rotation's progress) is a line on stderr through `tell`, never
mixed into the data and never a log event. The checks here (`xds_tls_files`,
`check_can_listen`) run before anything starts, so a bad file or a taken port names its flag
instead of surfacing as a traceback from deep inside a server.

Nothing heavy is imported at module level: `controlplane --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

import yaml

from controlplane.status_view import printable

REDACTED: dict[str, str] = {"inline_string": "[redacted]"}
# Fields of Envoy's secrets that hold key material (TlsCertificate, GenericSecret, session keys).
SECRET_FIELDS = frozenset({"private_key", "password", "secret", "session_ticket_keys"})


class UsageError(Exception):
    """A mistake on the command line the user can fix; one line, exit code 2."""


class CommandFailed(Exception):
    """The command could not do its job (unreachable, taken, unreadable); one line, exit 1."""


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def as_yaml(data: Any) -> str:
    """YAML of JSON-shaped data (protobuf's JSON mapping hands back OrderedDicts, which
    `safe_dump` refuses): through JSON first, so both outputs always agree."""
    return str(yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False))


def tell(text: str, *, on_stdout: bool = False) -> None:
    """Say ``text`` (one or more lines) to the person running the command, on stderr.

    ``on_stdout``: for a command whose output *is* what it tells (the demo's guide), stdout.
    """
    stream = sys.stdout if on_stdout else sys.stderr
    # Names in it may come from a file or a tenant's object: no terminal escape gets through.
    stream.write("\n".join(printable(line) for line in text.split("\n")) + "\n")
    stream.flush()


def write_data(data: Any, output: str, *, stream: bool = False) -> None:
    """Print `data` on stdout as JSON or YAML; `stream`: one of several documents (YAML ones
    start with `---`; JSON ones follow each other, as `jq` reads them)."""
    if output == "yaml":
        sys.stdout.write(("---\n" if stream else "") + as_yaml(data))
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


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def add_xds_tls_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--xds-ca",
        metavar="FILE",
        help="CA bundle (PEM) the other side's "
        "certificate must chain to; with --xds-cert and --xds-key: mutual TLS",
    )
    parser.add_argument("--xds-cert", metavar="FILE", help=f"{what} (PEM)")
    parser.add_argument("--xds-key", metavar="FILE", help="the private key (PEM) of --xds-cert")


def xds_tls_files(args: argparse.Namespace) -> Any:
    """``TlsFiles`` from the three flags (all or none), their contents checked; or ``None``."""
    from controlplane.xds import TlsFiles

    try:
        files = TlsFiles.of(args.xds_ca, args.xds_cert, args.xds_key)
        if files is not None:
            files.read()
    except ValueError as error:
        raise UsageError(one_line(error)) from None
    return files


def check_can_listen(flag: str, address: str) -> None:
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
