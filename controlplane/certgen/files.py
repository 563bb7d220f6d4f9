"""`controlplane certgen DIR`: the certificates as files, each replaced atomically.

Keys are written with mode 0600, from the start (a temporary file renamed into place). A
bundle's leaves go first and ``ca.crt`` last, so a reader that sees a new ``ca.crt`` sees new
leaves too; a rotation writes ``ca.crt`` alone first (package docstring).
"""

from __future__ import annotations

import datetime
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from controlplane.certgen.certificates import (
    CERT_MODE,
    CLIENT_NAME,
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_NAMESPACE,
    DEFAULT_ROTATE_WAIT_S,
    KEY_MODE,
    SERVER_NAME,
    Bundle,
    KeyType,
    Leaf,
    Outcome,
    Progress,
    check_bundle,
    generate,
    nothing_to_rotate,
    plan_rotation,
    quiet,
    rotation_reason,
    valid_until,
)

__all__ = ["read_directory", "rotate_directory", "write_directory"]


def _paths(directory: Path) -> dict[str, Path]:
    return {
        "ca": directory / "ca.crt",
        "controlplane.crt": directory / SERVER_NAME / "tls.crt",
        "controlplane.key": directory / SERVER_NAME / "tls.key",
        "envoy.crt": directory / CLIENT_NAME / "tls.crt",
        "envoy.key": directory / CLIENT_NAME / "tls.key",
    }


def read_directory(directory: Path) -> Bundle | None:
    """The certificates a previous run wrote to ``directory``; ``None`` if any file is missing."""
    try:
        data = {name: path.read_bytes() for name, path in _paths(directory).items()}
    except FileNotFoundError:
        return None
    return Bundle(
        ca_pem=data["ca"],
        controlplane=Leaf(data["controlplane.crt"], data["controlplane.key"]),
        envoy=Leaf(data["envoy.crt"], data["envoy.key"]),
    )


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write a sibling temporary file with ``mode`` from the start, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_directory(
    directory: Path,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    overwrite: bool = False,
    now: datetime.datetime | None = None,
) -> Outcome:
    """Write (or keep) the certificates in ``directory``; see the module docstring."""
    moment = now or datetime.datetime.now(datetime.UTC)
    existing = read_directory(directory)
    reason = "no certificates yet"
    if existing is not None:
        invalid, not_after = check_bundle(
            (existing.ca_pem, existing.controlplane), (existing.ca_pem, existing.envoy), moment
        )
        if invalid is None and not overwrite:
            return Outcome(False, "valid certificates already there", not_after)
        reason = invalid or "--overwrite"
    bundle = generate(
        namespace=namespace, key_type=key_type, lifetime_days=lifetime_days, now=moment
    )
    _write_bundle(directory, bundle)
    return Outcome(True, reason, valid_until(bundle))


def _write_bundle(directory: Path, bundle: Bundle) -> None:
    paths = _paths(directory)
    # Leaves first and the CA last: a reader that sees the new ca.crt sees new leaves too.
    _write_atomically(paths["controlplane.key"], bundle.controlplane.key_pem, KEY_MODE)
    _write_atomically(paths["controlplane.crt"], bundle.controlplane.cert_pem, CERT_MODE)
    _write_atomically(paths["envoy.key"], bundle.envoy.key_pem, KEY_MODE)
    _write_atomically(paths["envoy.crt"], bundle.envoy.cert_pem, CERT_MODE)
    _write_atomically(paths["ca"], bundle.ca_pem, CERT_MODE)


def rotate_directory(
    directory: Path,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    key_type: KeyType = "ec",
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    wait_s: float = DEFAULT_ROTATE_WAIT_S,
    now: datetime.datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = quiet,
) -> Outcome:
    """Rotate the certificates in ``directory`` in two steps (module docstring)."""
    existing = read_directory(directory)
    if existing is None:
        raise nothing_to_rotate(str(directory))
    rotation = plan_rotation(
        (existing.ca_pem, existing.controlplane),
        (existing.ca_pem, existing.envoy),
        namespace=namespace, key_type=key_type, lifetime_days=lifetime_days, now=now,
    )  # fmt: skip
    if rotation.kept:
        _write_atomically(_paths(directory)["ca"], rotation.trust.ca_pem, CERT_MODE)
        progress(f"{directory}: ca.crt trusts the new CA; new leaves in {wait_s:g} s")
        sleep(wait_s)
    _write_bundle(directory, rotation.leaves)
    return Outcome(True, rotation_reason(rotation), valid_until(rotation.leaves))
