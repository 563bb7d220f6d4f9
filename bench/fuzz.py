"""`python -m bench fuzz` (`make fuzz`): the property tests under the large Hypothesis profile.

`make test` runs each property test with the `dev` (or, in CI, `ci`) profile's 150 examples; this
runs the same tests with the `fuzz` profile (4,000 examples each, tests/conftest.py) to look for
counterexamples the short runs miss. It selects every Hypothesis test (pytest's `hypothesis`
marker) under tests/unit, streams pytest's output (with Hypothesis' statistics per test), then
prints one row per test: examples run and how long it took. A counterexample is saved in
`.hypothesis/` and replayed first by the next `make test`; the exit status is pytest's.

`python -m bench.fuzz [PYTEST ARGS...]` narrows the run, e.g. `-k webs`.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from bench.common import machine, print_table, write_results

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "fuzz"
STATS_PREFIX = "hypothesis-statistics-"
# "4000 passing, 0 failing, and 88 invalid test cases" (older Hypothesis: "... examples")
EXAMPLES = re.compile(r"(\d+) passing[^,]*, (\d+) failing[^,]*,(?: and)? (\d+) invalid")


def examples(statistics: str) -> tuple[int, int, int]:
    """(passing, failing, invalid) examples, summed over the phases Hypothesis reports."""
    found = [tuple(int(n) for n in match) for match in EXAMPLES.findall(statistics)]
    return (
        sum(f[0] for f in found),
        sum(f[1] for f in found),
        sum(f[2] for f in found),
    )


def rows_from(junit: Path) -> list[dict[str, Any]]:
    tree = ElementTree.parse(junit)
    statistics = {
        prop.get("name", "")[len(STATS_PREFIX) :]: base64.b64decode(prop.get("value", "")).decode()
        for prop in tree.iter("property")
        if prop.get("name", "").startswith(STATS_PREFIX)
    }
    rows: list[dict[str, Any]] = []
    for case in tree.iter("testcase"):
        nodeid = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        stats = statistics.get(nodeid, "")
        passing, failing, invalid = examples(stats)
        outcome = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "FAILED"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        rows.append(
            {
                "test": nodeid.removeprefix("tests/unit/"),
                "passing examples": passing,
                "invalid": invalid,
                "failing": failing,
                "s": float(case.get("time", "0")),
                "outcome": outcome,
            }
        )
    return rows


def run(pytest_args: list[str]) -> tuple[int, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "fuzz.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-m",
            "hypothesis",
            "--hypothesis-show-statistics",
            f"--junitxml={junit}",
            *(pytest_args or ["tests/unit"]),
        ]
        env = {**os.environ, "HYPOTHESIS_PROFILE": PROFILE}
        print(f"$ HYPOTHESIS_PROFILE={PROFILE} python {shlex.join(command[1:])}", flush=True)
        code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
        return code, rows_from(junit) if junit.exists() else []


def main(pytest_args: list[str]) -> int:
    code, rows = run(pytest_args)
    print_table(
        f"Property tests, Hypothesis profile {PROFILE!r} — {machine()['cores']} cores", rows
    )
    write_results("fuzz", rows, profile=PROFILE, exit_status=code)
    total = {
        "tests": len(rows),
        "examples": sum(r["passing examples"] for r in rows),
        "failed": sum(r["outcome"] == "FAILED" for r in rows),
        "s": round(sum(r["s"] for r in rows), 1),
    }
    print(total)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
