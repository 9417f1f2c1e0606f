"""The rater loop under load over HTTP, this tree against a base commit, side by side (issue 25).

    .venv/bin/python bench/rater_loop_saturation.py [--base bc6c035] [--tasks 50000] [--seconds 30]

A shorter cousin of ``make bench-data``'s load runs, using its helpers (gunicorn with 3 sync workers under the
production settings, Redis throttles raised out of the way, one thread per simulated rater looping
``next`` → ``submit``) and its database (``verdict_data_bench``, dropped first): ``--tasks`` K=4 tasks with overlap
3, then for each tree in turn (same database, same data) a saturation run (``--saturation-raters`` raters, no think
time; ``--rounds`` of them, alternating between the trees, the median reported) and a run of ``--raters`` raters
thinking 10 s on average. Reports loops/s, latency percentiles and server CPU
per request (the machine's busy time less the load generator's own), and at saturation each kind of process's
share of the CPU (gunicorn, PostgreSQL, Redis, the load generator, anything else running).
Writes bench/results/rater_loop_saturation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import data_bench as d  # noqa: E402 - after the path


def cpu_by_process() -> dict[str, float]:
    """CPU seconds so far of the processes that serve the loop, by kind, and of this load generator."""
    import psutil

    totals = {"gunicorn": 0.0, "postgres": 0.0, "redis": 0.0, "load generator": 0.0, "other": 0.0}
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is None:
            continue
        name, cmdline = proc.info["name"] or "", " ".join(proc.info["cmdline"] or [])
        kind = ("load generator" if proc.info["pid"] == me else "gunicorn" if "gunicorn" in cmdline
                else "postgres" if name.startswith("postgres") else "redis" if "redis" in name else "other")
        totals[kind] += times.user + times.system
    return totals


def share_of_cpu(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Each kind's share of the CPU used between two readings (processes that ended in between are missed)."""
    used = {k: max(0.0, after[k] - before.get(k, 0.0)) for k in after}
    total = sum(used.values()) or 1.0
    return {k: round(v / total, 3) for k, v in used.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="bc6c035", help="the commit before issue 25's rater-loop work")
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--saturation-raters", type=int, default=24)
    parser.add_argument("--raters", type=int, default=200)
    parser.add_argument("--think-s", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="saturation runs per tree, alternating")
    args = parser.parse_args()
    d.WORK.mkdir(parents=True, exist_ok=True)
    d.fresh_database()
    project = d.imported_project("loop", args.tasks, 11, "l")
    d.psql("VACUUM ANALYZE")  # otherwise autovacuum's analysis of the fresh import runs during the first tree's turn
    trees = {"base": d.base_tree(args.base), "this": d.ROOT}
    tokens = {name: d.make_raters(tree, project, max(args.raters, args.saturation_raters), f"{name}-r")
              for name, tree in trees.items()}
    out: dict = {"base": args.base, "tasks": args.tasks, "seconds": args.seconds, "rounds": args.rounds}
    runs: dict[str, list] = {name: [] for name in trees}
    # Saturation runs alternate between the trees (base, this, this, base, ...): a machine that drifts (other
    # work, the database's caches and tables growing with every loop) affects both alike.
    for round_no in range(args.rounds):
        for name in (("base", "this") if round_no % 2 == 0 else ("this", "base")):
            server = d.Server(trees[name])
            try:
                before = cpu_by_process()
                sat = d.load(server, project, tokens[name][:args.saturation_raters], args.seconds, 0.0,
                             seed=round_no)
                sat["cpu_share"] = share_of_cpu(before, cpu_by_process())  # warm-up included
            finally:
                server.stop()
            runs[name].append(sat)
            d.log(f"round {round_no + 1} {name}: {sat['loops_per_s']:.1f} loops/s, p99 {sat['p99_ms']:.0f} ms, "
                  f"{sat['server_cpu_ms_per_request']:.1f} ms CPU/request, shares {sat['cpu_share']}")
    for name, tree in trees.items():
        server = d.Server(tree)
        try:
            crowd = d.load(server, project, tokens[name][:args.raters], args.seconds * 2, args.think_s, seed=1)
        finally:
            server.stop()
        d.log(f"{name} {args.raters} raters: {crowd['loops_per_s']:.1f} loops/s, p50 {crowd['p50_ms']:.0f} ms, "
              f"p99 {crowd['p99_ms']:.0f} ms")
        median = statistics.median(r["loops_per_s"] for r in runs[name])
        out[name] = {"saturation_loops_per_s_median": median,
                     "saturation_cpu_ms_per_request_median": statistics.median(
                         r["server_cpu_ms_per_request"] for r in runs[name]),
                     "saturation_runs": runs[name], "raters": crowd}
    out["ratio_saturation"] = round(out["this"]["saturation_loops_per_s_median"]
                                    / out["base"]["saturation_loops_per_s_median"], 2)
    (d.RESULTS / "rater_loop_saturation.json").write_text(json.dumps(out, indent=1) + "\n")
    print("saturation ratio", out["ratio_saturation"])


if __name__ == "__main__":
    main()
