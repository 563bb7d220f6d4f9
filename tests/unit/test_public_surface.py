"""Each package's public surface is what its `__init__` exports, derived from the module itself.

As httpx does: every public name a package holds is in its `__all__`, every name in `__all__`
exists and (for classes and functions) is documented, and code in one package reaches another
only through that surface, never through its submodules. Adding or removing a public name is
then a visible, deliberate change of `__init__.py`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "controlplane"
PACKAGES = sorted(
    path.name for path in ROOT.iterdir() if path.is_dir() and (path / "__init__.py").exists()
)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_is_exported_and_documented(name: str) -> None:
    package = importlib.import_module(f"controlplane.{name}")
    exported = set(package.__all__)
    public = {
        attribute
        for attribute, value in vars(package).items()
        if not attribute.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attribute != "annotations"
    }
    assert public == exported, f"controlplane.{name}: __all__ and the public names differ"
    assert package.__doc__, f"controlplane.{name} has no docstring"
    for attribute in exported:
        value = getattr(package, attribute)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"controlplane.{name}.{attribute} is not documented"


def _cross_package_imports() -> list[str]:
    found = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        here = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            module = node.module.split(".")
            crosses = len(module) > 2 and module[1] in PACKAGES and module[1] != here
            if module[0] == "controlplane" and crosses:
                found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.module}")
    return found


def test_packages_reach_each_other_only_through_their_surface() -> None:
    assert _cross_package_imports() == []
