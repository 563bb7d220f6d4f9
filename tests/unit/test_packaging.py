"""Packaging hygiene: the image installs exactly what `requirements.lock` pins, by hash.

`make lock` writes the lock from pyproject's runtime dependencies; these tests fail when the two
drift apart (a dependency added to pyproject but not locked, a lower bound raised past the pinned
version), when a pin has no hash, and when the Dockerfile stops using the lock or the base image
loses its digest.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = (ROOT / "requirements.lock").read_text()
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(?:\s*;\s*([^\\]+?))?\s*\\?$")
# What the image runs on (Dockerfile): CPython 3.11 on Linux, either architecture.
TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
          "platform_system": "Linux", "implementation_name": "cpython",
          "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip


def locked() -> dict[str, tuple[Version, list[str]]]:
    """name → (pinned version, its hashes), from the lock file."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current: list[str] = []
    for line in LOCK.splitlines():
        stripped = line.strip()
        if match := PIN.match(stripped):
            current = []
            pins[canonicalize_name(match[1])] = (Version(match[2]), current)
        elif stripped.startswith("--hash=sha256:"):
            current.append(stripped.removeprefix("--hash=sha256:").rstrip(" \\"))
    return pins


def test_every_runtime_dependency_is_locked_at_a_version_it_accepts() -> None:
    pins = locked()
    dependencies = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    assert {"google-re2", "xds-protos", "grpcio"} <= {
        canonicalize_name(d.name) for d in dependencies
    }
    for dependency in dependencies:
        name = canonicalize_name(dependency.name)
        assert name in pins, f"{name} is a dependency in pyproject.toml but not locked: make lock"
        version, _ = pins[name]
        assert dependency.specifier.contains(version, prereleases=True), (
            f"{name}=={version} in requirements.lock does not satisfy {dependency}: make lock"
        )


def test_every_pin_has_hashes() -> None:
    pins = locked()
    assert len(pins) >= len(PYPROJECT["project"]["dependencies"])
    for name, (version, hashes) in pins.items():
        assert hashes, f"{name}=={version} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in hashes), name


def test_what_the_locked_packages_need_is_locked_too() -> None:
    """For every locked package installed here at the locked version, each requirement it
    declares (for CPython 3.11 on Linux) is in the lock: the closure is complete."""
    pins = locked()
    checked = 0
    for name, (version, _) in pins.items():
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(installed.version) != version:
            continue
        checked += 1
        for text in installed.requires or ():
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(TARGET):
                continue
            assert canonicalize_name(requirement.name) in pins, (
                f"{name} needs {requirement}, which requirements.lock lacks: make lock"
            )
    assert checked >= len(PYPROJECT["project"]["dependencies"])


def test_the_image_installs_the_lock_by_hash_on_a_base_pinned_by_digest() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-compile --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-compile --no-deps ." in dockerfile
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base)
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE) == ["${PYTHON_IMAGE}"] * 2


def test_the_license_is_an_spdx_expression() -> None:
    """A TOML table (`{text = ...}`) makes setuptools >= 77 print a deprecation banner."""
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    (backend,) = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    assert Requirement(backend).specifier.contains("77.0.0")
    assert not Requirement(backend).specifier.contains("76.9")
