"""`make bench`: run every benchmark, one process per scenario so peak RSS is per scenario.

`python -m bench` runs them all and ends with a table of the targets; `python -m bench NAME...`
runs some (names: ingress_scale, ingressroute_scale, ads_streams, mtls_streams, propagation,
kube_apply, peer_sovereign, validate_micro, loop_lag, start_ready). `python -m bench fuzz`
(`make fuzz`, never part of the default run) runs the property tests under the large Hypothesis
profile instead (bench/fuzz.py), and `python -m bench hostile_fuzz` (also `make fuzz`) throws
10,000+ hostile objects at the controller beside a good tenant (bench/hostile_fuzz.py).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from bench.common import TARGETS, machine, print_table, write_results

Rows = dict[str, list[dict[str, Any]]]


def run_module(module: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", module, *args], check=True, capture_output=True, text=True
    )
    last_line = completed.stdout.strip().splitlines()[-1]
    row: dict[str, Any] = (
        json.loads(last_line) if last_line.startswith('{"') else ast.literal_eval(last_line)
    )
    return row


def cores() -> str:
    return f"{machine()['cores']} cores"


def ingress_scale(results: Rows) -> None:
    rows = [run_module("bench.ingress_scale", str(count)) for count in (1_000, 10_000)]
    print_table(f"Ingress scale (issue 2) — {cores()}", rows)
    write_results(
        "ingress_scale",
        rows,
        targets={"full 10k build ms": 3000, "one change ms": 50, "one endpoint change ms": 10},
    )
    results["ingress_scale"] = rows


def ingressroute_scale(results: Rows) -> None:
    rows = [run_module("bench.ingressroute_scale", str(count)) for count in (1_000, 10_000)]
    print_table(f"IngressRoute scale — {cores()}", rows)
    write_results(
        "ingressroute_scale",
        rows,
        targets={
            "full build+encode s (10k)": 1.5,
            "peak RSS after build MiB (10k)": 600,
            "one IngressRoute edit ms": 15,
            "one endpoint on wire ms": 10,
            "reconnect ms (10k)": 300,
        },
    )
    results["ingressroute_scale"] = rows


def loop_lag(results: Rows) -> None:
    rows = [
        run_module("bench.loop_lag", scenario, way)
        for scenario in ("full", "route")
        for way in ("thread", "loop")
    ]
    print_table(f"Event-loop lag during big builds (issue 13) — {cores()}", rows)
    write_results("loop_lag", rows, targets={"max loop lag ms (thread)": 50})
    results["loop_lag"] = rows


def start_ready(results: Rows) -> None:
    rows = [run_module("bench.start_ready", "10000")]
    print_table(f"Start → ready from the test API server (issue 13) — {cores()}", rows)
    write_results("start_ready", rows, targets={"start → ready s": 5})
    results["start_ready"] = rows


def ads_streams(results: Rows) -> None:
    rows = [run_module("bench.ads_streams", mode) for mode in ("envoy", "cds-lds")]
    print_table(f"ADS streams held by one process — {cores()}", transpose(rows))
    write_results(
        "ads_streams",
        rows,
        targets={"streams": 2000, "KiB/stream": 50_000 / 1024, "push to 1000 streams ms": 1000},
    )
    results["ads_streams"] = rows


def mtls_streams(results: Rows) -> None:
    rows = [run_module("bench.mtls_streams")]
    print_table(f"Envoys over mTLS held by one controller (issue 11) — {cores()}", transpose(rows))
    write_results(
        "mtls_streams",
        rows,
        targets={
            "5000 mTLS streams: KiB/stream": 40,
            "1000 mTLS Envoys at once, pinned: all configured s (median of 3)": 5,
            "1000 mTLS streams: route change → last stream ms (p50 of 3)": 500,
        },
    )
    results["mtls_streams"] = rows


def _with_breakdowns(
    results: Rows, name: str, title: str, stage_title: str, targets: dict[str, float]
) -> None:
    """Run ``bench.NAME`` (a result of ``rows`` and per-label stage ``breakdowns``): print the rows
    under ``title`` and each breakdown under ``stage_title`` (``{label}`` is replaced), and write
    both with ``targets``. ``title`` may name any key of the result as ``{key}``."""
    result = run_module(f"bench.{name}")
    rows = result["rows"]
    print_table(title.format(**result), rows)
    for label, stages in result["breakdowns"].items():
        print_table(stage_title.format(label=label), stages)
    write_results(name, rows, breakdowns=result["breakdowns"], targets=targets)
    results[name] = rows


def propagation(results: Rows) -> None:
    _with_breakdowns(
        results,
        "propagation",
        f"New IngressRoute → first 200 through Envoy, 1,000 served — {cores()}",
        "where the time goes: {label}",
        {
            "p50 ms (after a quiet period)": TARGETS["propagation p50 ms"],
            "p99 ms (after a quiet period)": TARGETS["propagation p99 ms"],
        },
    )


def kube_apply(results: Rows) -> None:
    _with_breakdowns(
        results,
        "kube_apply",
        f"kubectl apply → Envoy, {{roots}} roots served — {cores()}",
        "where the time goes, {label} (ms since kubectl returned)",
        {
            "returned → first 200 p50 ms": TARGETS["kube_apply p50 ms"],
            "returned → first 200 p99 ms": TARGETS["kube_apply p99 ms"],
        },
    )


def peer_sovereign(results: Rows) -> None:
    result = run_module("bench.peer_sovereign")
    if result["skipped"]:
        os.write(1, f"sovereign rows skipped: {result['skipped']}\n".encode())
    title = (
        f"Beside sovereign {result['sovereign_version']}, {result['routes']:,} routes — {cores()}"
    )
    print_table(title, result["rows"])
    write_results(
        "peer_sovereign",
        result["rows"],
        ours=result["ours"],
        sovereign=result["sovereign"],
        skipped=result["skipped"],
    )
    results["peer_sovereign"] = result["rows"]


def validate_micro(results: Rows) -> None:
    # The module writes bench/results/validate_micro.json itself (it also runs on its own).
    completed = subprocess.run(
        [sys.executable, "-m", "bench.validate_micro"], check=True, capture_output=True, text=True
    )
    rows: list[dict[str, Any]] = ast.literal_eval(completed.stdout.strip().splitlines()[-1])
    print_table(f"Validation before publishing (issue 9) — {cores()}", transpose(rows))
    results["validate_micro"] = rows


def transpose(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wide rows as one row per metric (a column per run), so long keys stay readable."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return [
        {"metric": key, **{f"run {n + 1}": row.get(key, "") for n, row in enumerate(rows)}}
        for key in keys
    ]


def targets(results: Rows) -> None:
    """One table: every target of the brief, what was measured, and whether it was met."""
    table: list[dict[str, Any]] = []

    def add(what: str, measured: float, target: float, unit: str, higher: bool = False) -> None:
        met = measured >= target if higher else measured <= target
        bound = "≥" if higher else "≤"
        table.append(
            {
                "target": what,
                "measured": f"{measured:,.1f} {unit}",
                "goal": f"{bound} {target:,} {unit}",
                "met": "yes" if met else "NO",
            }
        )

    if rows := results.get("ingressroute_scale"):
        big = rows[-1]
        add("10k IngressRoutes: full build + encode", big["full build+encode s"], 1.5, "s")
        add("10k IngressRoutes: peak RSS", big["peak RSS after build MiB"], 600, "MiB")
        add("10k: one IngressRoute edited", big["one IngressRoute edit ms (p50)"], 15, "ms")
        add("10k: one EndpointSlice → CLA on wire", big["one endpoint on wire ms (p50)"], 10, "ms")
        add("10k: Envoy reconnect → full config", big["reconnect ms (p50)"], 300, "ms")
    if rows := results.get("loop_lag"):
        for row in (r for r in rows if r["way"] == "thread"):
            add(f"longest loop lag: {row['build']}", row["max loop lag ms"], 50, "ms")
    if rows := results.get("start_ready"):
        row = rows[0]
        add("start → ready, 10k+10k from the API server", row["start → ready s"], 5, "s")
        key = "one root edited via API: max loop lag ms"
        add("longest loop lag: one root edited, cluster mode 10k+10k", row[key], 50, "ms")
    if rows := results.get("ads_streams"):
        envoy, minimal = rows
        add("ADS streams held (1,000 routes)", 2000, 2000, "streams", higher=True)
        add(
            "RSS/stream, Envoy-like (CDS+EDS+LDS+RDS)",
            envoy["2000 streams: KiB/stream"],
            48.8,
            "KiB",
        )
        add("RSS/stream, CDS+LDS only", minimal["2000 streams: KiB/stream"], 48.8, "KiB")
        key = "1000 streams: route change → last stream ms (p50 of 3)"
        add("route change → 1,000 streams", envoy[key], 1000, "ms")
    if rows := results.get("mtls_streams"):
        row = rows[0]
        add("mTLS streams held by one controller", 5000, 5000, "streams", higher=True)
        add("RSS/stream over mTLS at 5,000", row["5000 mTLS streams: KiB/stream"], 40, "KiB")
        add(
            "1,000 mTLS Envoys at once → all configured",
            row["1000 mTLS Envoys at once, pinned: all configured s (median of 3)"],
            5,
            "s",
        )
        key = "1000 mTLS streams: route change → last stream ms (p50 of 3)"
        add("route change → 1,000 mTLS streams", row[key], 500, "ms")
    if rows := results.get("propagation"):
        quiet = rows[0]  # ADS, each change after a quiet period
        for stat in ("p50", "p99"):
            add(
                f"new IngressRoute + Service → first 200, 1,000 served ({stat})",
                quiet[f"first 200 ms ({stat})"],
                TARGETS[f"propagation {stat} ms"],
                "ms",
            )
    if rows := results.get("kube_apply"):
        quiet = rows[0]  # a new IngressRoute, each after a quiet period
        for stat in ("p50", "p99"):
            add(
                f"kubectl apply returned → first 200, 300 roots ({stat})",
                quiet[f"returned → done ms ({stat})"],
                TARGETS[f"kube_apply {stat} ms"],
                "ms",
            )
    if table:
        print_table(f"Targets — {cores()}", table)
        write_results("targets", table)


def fuzz(results: Rows) -> None:
    """Not a measurement of the product: the property tests with many more examples."""
    completed = subprocess.run([sys.executable, "-m", "bench.fuzz"], check=False)
    if completed.returncode:
        raise SystemExit(completed.returncode)


SCENARIOS: dict[str, Callable[[Rows], None]] = {
    "ingress_scale": ingress_scale,
    "ingressroute_scale": ingressroute_scale,
    "ads_streams": ads_streams,
    "mtls_streams": mtls_streams,
    "propagation": propagation,
    "kube_apply": kube_apply,
    "peer_sovereign": peer_sovereign,
    "validate_micro": validate_micro,
    "loop_lag": loop_lag,
    "start_ready": start_ready,
}


def hostile_fuzz(results: Rows) -> None:
    """Issue 9, item 7: 10,000+ hostile objects beside a good tenant (bench/hostile_fuzz.py)."""
    completed = subprocess.run([sys.executable, "-m", "bench.hostile_fuzz"], check=False)
    if completed.returncode:
        raise SystemExit(completed.returncode)


OPT_IN: dict[str, Callable[[Rows], None]] = {"fuzz": fuzz, "hostile_fuzz": hostile_fuzz}


def main(names: list[str]) -> None:
    results: Rows = {}
    for name in names or list(SCENARIOS):
        {**SCENARIOS, **OPT_IN}[name](results)
    targets(results)


if __name__ == "__main__":
    main(sys.argv[1:])
