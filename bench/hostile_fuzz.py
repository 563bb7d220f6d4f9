"""`python -m bench hostile_fuzz` (part of `make fuzz`): issue 9, item 7, at scale.

Hypothesis draws hostile sets (tests/hostile: every kind we read, every field, every control
character, extreme numbers, broken PEM, names colliding with the good tenant's), 10,000+ objects
in all, and `hostile.checks.check` holds each beside the good tenant to the guarantee (the
build never raises, cold or warm; exactly one status per IngressRoute of ours; no violation in
any published resource; the good tenant byte-identical to a build of it alone), in both modes
(files, cluster). Envoy validates a sample, and more hostile objects per run than any example
holds, in three phases:

- *examples*: each set on its own; every `--envoy-every`th also through `envoy --mode
  validate`;
- *batches*: every `--batch` sets moved into namespaces and hosts of their own
  (`hostile.moved_apart`) and thrown together, always validated by Envoy, and written to a
  YAML file that `controlplane translate` must print the same resources for;
- *everything*: every set of the run together (all the objects generated), the same way.

A failure does not stop the run: it is counted by kind, and the smallest set that showed it is
kept in `bench/results/hostile_fuzz.json` (so it can become a table row). `--stop` raises
instead, so Hypothesis shrinks the first failure to a minimal example and prints it;
`--strict` fails on the known bugs too (`hostile.checks.KNOWN_BUGS`), which are otherwise
counted apart. The exit status is 1 when anything failed.

    python -m bench.hostile_fuzz [--examples 700] [--envoy-every 10] [--batch 25] [--stop]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from bench.common import machine, print_table, write_results
from controlplane.testing.envoy import find_envoy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

# tests/ is not a package: the hostile strategies and checks are found through sys.path.
from hostile import hostile_sets, moved_apart
from hostile.checks import KNOWN_BUGS, MODES, HostileFailure, Mode, Tally, check

JSON = dict[str, Any]


@dataclass
class Stage:
    """One phase of the run: its tally, failures, and time (the examples' includes drawing)."""

    name: str
    tally: Tally = field(default_factory=Tally)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


@dataclass
class Failures:
    """Failures by signature (kind, and the detail with numbers blurred), each with the smallest
    hostile set that showed it."""

    found: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, phase: Stage, mode: Mode, error: BaseException, hostile: list[JSON]) -> None:
        if isinstance(error, HostileFailure):
            kind, detail = error.kind, error.detail
        else:
            kind, detail = "raise", f"{type(error).__name__}: {error}"
        signature = f"{kind}: {re.sub(r'[0-9]+', 'N', detail)[:160]}"
        phase.failures[kind] += 1
        entry = self.found.setdefault(
            signature, {"kind": kind, "detail": detail[:2000], "count": 0, "phases": []}
        )
        entry["count"] += 1
        if phase.name not in entry["phases"]:
            entry["phases"].append(phase.name)
        if "smallest" not in entry or len(hostile) < len(entry["smallest"]):
            entry.update(smallest=hostile, mode=mode.name, detail=detail[:2000])


def run(args: argparse.Namespace) -> tuple[list[Stage], Failures, int]:
    envoy = find_envoy()
    examples, batches, everything = Stage("examples"), Stage("batches"), Stage("everything")
    failures = Failures()
    generated = drawn = 0
    batch: list[JSON] = []
    together: list[JSON] = []
    strict = args.strict

    def guarded(phase: Stage, hostile: list[JSON], validate: bool) -> None:
        started = time.perf_counter()
        for mode in MODES:
            try:
                check(
                    hostile,
                    mode,
                    phase.tally,
                    envoy=envoy if validate else None,
                    translate=phase is not examples,
                    tolerate_known=not strict,
                )
            except Exception as error:
                if args.stop:
                    raise
                failures.add(phase, mode, error, hostile)
        phase.seconds += time.perf_counter() - started

    phases = (Phase.generate, Phase.shrink) if args.stop else (Phase.generate,)

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile=hostile_sets())
    def one(hostile: list[JSON]) -> None:
        nonlocal generated, drawn, batch
        generated += len(hostile)
        drawn += 1
        index = drawn
        guarded(examples, hostile, index % args.envoy_every == 0)
        moved = moved_apart(hostile, str(index))
        batch.extend(moved)
        together.extend(moved)
        if index % args.batch == 0:
            guarded(batches, batch, True)
            batch = []

    started = time.perf_counter()
    one()
    examples.seconds = time.perf_counter() - started - batches.seconds
    if batch:
        guarded(batches, batch, True)
    guarded(everything, together, True)
    return [examples, batches, everything], failures, generated


def row(phase: Stage) -> dict[str, Any]:
    tally = phase.tally
    return {
        "phase": phase.name,
        "checks": tally.examples,
        "objects checked": tally.objects,
        "unparseable": tally.unparseable,
        "builds": tally.builds,
        "resources checked": tally.resources,
        "Envoy validations": tally.envoy_runs,
        "translate runs": tally.translations,
        "violations found": phase.failures["violation"] + phase.failures["envoy --mode validate"],
        "failures (any)": sum(phase.failures.values()),
        "known bugs hit": sum(tally.known.values()),
        "rejections": tally.rejections,
        "s": round(phase.seconds, 1),
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_fuzz")
    parser.add_argument("--examples", type=int, default=700)
    parser.add_argument("--envoy-every", type=int, default=10)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--stop", action="store_true", help="raise on the first failure")
    parser.add_argument("--strict", action="store_true", help="fail on known bugs too")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    phases, failures, generated = run(args)
    seconds = time.perf_counter() - started
    rows = [row(phase) for phase in phases]
    cores = machine()["cores"]
    print_table(
        f"Hostile objects beside a good tenant (issue 9) — {generated:,} objects generated, "
        f"{seconds:,.0f} s, {cores} cores",
        rows,
    )
    kinds = Counter[str]()
    for phase in phases:
        kinds.update(phase.tally.kinds)
    examples = phases[0].tally
    print_table(
        "Objects checked per kind (examples phase, both modes)",
        [{"kind": kind, "objects": count} for kind, count in examples.kinds.most_common()],
    )
    statuses = Counter[str]()
    rejected = Counter[str]()
    known = Counter[str]()
    for phase in phases:
        statuses.update(phase.tally.statuses)
        rejected.update(phase.tally.rejected_paths)
        known.update(phase.tally.known)
    print_table(
        "IngressRoute statuses given (all phases)",
        [{"status": status, "count": count} for status, count in statuses.most_common()],
    )
    if rejected:
        print_table(
            "Left out by the translator's backstop (rejections), by field",
            [{"field": path, "count": count} for path, count in rejected.most_common()],
        )
    if known:
        print_table(
            "Known bugs hit (hostile.checks.KNOWN_BUGS)",
            [{"bug": bug, "examples": n, "test": KNOWN_BUGS[bug]} for bug, n in known.items()],
        )
    found = sorted(failures.found.values(), key=lambda entry: -entry["count"])
    if found:
        print_table(
            "Failures",
            [{"kind": f["kind"], "count": f["count"], "detail": f["detail"][:100]} for f in found],
        )
    path = write_results(
        "hostile_fuzz",
        rows,
        generated=generated,
        seconds=round(seconds, 1),
        arguments=vars(args),
        kinds=dict(kinds),
        statuses=dict(statuses),
        rejections=dict(rejected),
        known=dict(known),
        failures=found,
    )
    print(f"{path.name}: {len(found)} distinct failures")
    summary = {
        "objects generated": generated,
        "Envoy validations": sum(p.tally.envoy_runs for p in phases),
        "failures": sum(f["count"] for f in found),
        "s": round(seconds, 1),
    }
    print(summary)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
