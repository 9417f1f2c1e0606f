"""JSON Lines export, this tree against a base commit, side by side on one 360,000-pair project (issue 25).

    .venv/bin/python bench/export_compare.py [--base bc6c035] [--tasks 30000] [--repeats 2]

A lighter cousin of ``make bench-data``'s export row (which needs its 1,000,000-task database): uses its helpers
and its database (``verdict_data_bench``, dropped first). ``--tasks`` K=4 tasks are imported, two synthetic
rankings per task are written in SQL (6 TRL pairs each), and ``manage.py export_trl`` runs in each tree in turn,
``--repeats`` times: rows/s and peak resident memory. Writes bench/results/export_compare.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import data_bench as d  # noqa: E402 - after the path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="bc6c035", help="the commit before orjson")
    parser.add_argument("--tasks", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    d.WORK.mkdir(parents=True, exist_ok=True)
    d.fresh_database()
    d.synthetic_rankings(d.imported_project("exp", args.tasks, 7, "e"), 2)
    trees = {"base": d.base_tree(args.base), "this": d.ROOT}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():  # interleaved, so drift on a shared machine hits both
            result = d.export(tree, "exp", d.WORK / f"exp-{name}.jsonl")
            runs[name].append({k: round(v, 1) for k, v in result.items()})
            d.log(f"{name}: {result['rows']:,} rows, {result['rows_per_s']:,.0f} rows/s, {result['peak_mb']:.0f} MB")
    best = {name: max(r["rows_per_s"] for r in rs) for name, rs in runs.items()}
    out = {"base": args.base, "tasks": args.tasks, "runs": runs, "best_rows_per_s": best,
           "ratio": round(best["this"] / best["base"], 2)}
    (d.RESULTS / "export_compare.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["best_rows_per_s"]), "ratio", out["ratio"])


if __name__ == "__main__":
    main()
