"""`make bench`: run every benchmark, one process per scenario so peak RSS is per scenario."""

from __future__ import annotations

import ast
import subprocess
import sys
from typing import Any

from bench.common import machine, print_table, write_results


def run_module(module: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", module, *args], check=True, capture_output=True, text=True
    )
    last_line = completed.stdout.strip().splitlines()[-1]
    row: dict[str, Any] = ast.literal_eval(last_line)
    return row


def ingress_scale() -> None:
    rows = [run_module("bench.ingress_scale", str(count)) for count in (1_000, 10_000)]
    print_table(f"Ingress scale (issue 2) — {machine()['cores']} cores", rows)
    write_results(
        "ingress_scale",
        rows,
        targets={"full 10k build ms": 3000, "one change ms": 50, "one endpoint change ms": 10},
    )


def main() -> None:
    ingress_scale()


if __name__ == "__main__":
    main()
