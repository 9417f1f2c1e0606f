"""Peak memory (resident set) of building a training snapshot (rewardmodel.snapshot.build_snapshot) against the
number of rankings (issue 25: flat memory at any size).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/verdict_h2_scale VERDICT_MODE=test \\
        .venv/bin/python bench/snapshot_memory.py --populate 30000 300000   # once: one project per size
    ... bench/snapshot_memory.py                                            # measure every bench project

``--populate N`` adds a project "snapshot-bench-N" with N rankings written by SQL (N/3 tasks over one prompt of
about 200 characters and 4 completions of about 400, each ranked by 3 raters as a strict order), so a scratch
database fills in seconds. Measuring builds each project's snapshot in a fresh process and prints its peak RSS
(``ru_maxrss``), the RSS Django alone takes, the growth between them, the seconds, the hash and the example count.
Use a scratch database: the rows are not removed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
PREFIX = "snapshot-bench-"


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def populate(n: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotation.models import Membership, Project

    project = Project.objects.create(name=f"{PREFIX}{n}", k=4)
    raters = [get_user_model().objects.get_or_create(username=f"bench-rater-{i}")[0] for i in range(3)]
    for rater in raters:
        Membership.objects.get_or_create(project=project, user=rater, defaults={"role": Membership.RATER})
    tasks, p = n // 3, project.pk
    with connection.cursor() as c:
        c.execute("INSERT INTO annotation_prompt (external_id, text, metadata, created_at, project_id) "
                  "SELECT 'b' || g, repeat('prompt ' || g || ' ', 20), '{}', now(), %s "
                  "FROM generate_series(1, %s) g", [p, tasks])
        c.execute("INSERT INTO annotation_completion (model_name, text, metadata, prompt_id) "
                  "SELECT 'model-' || k, repeat('answer ' || k || ' to ' || pr.id || ' ', 25), '{}', pr.id "
                  "FROM annotation_prompt pr, generate_series(0, 3) k WHERE pr.project_id = %s", [p])
        c.execute("INSERT INTO annotation_rankingtask (priority, status, is_gold, source, submitted_count, created_at, "
                  "project_id, prompt_id, excluded_from_training) "
                  "SELECT 0, 'complete', false, 'import', 3, now(), %s, pr.id, false "
                  "FROM annotation_prompt pr WHERE pr.project_id = %s", [p, p])
        c.execute("INSERT INTO annotation_assignment (status, leased_at, expires_at, display_order, skip_reason, "
                  "rater_id, task_id) SELECT 'submitted', now(), now(), '[]', '', u, t.id "
                  "FROM annotation_rankingtask t, unnest(%s::int[]) u WHERE t.project_id = %s",
                  [[r.pk for r in raters], p])
        c.execute("""
            INSERT INTO annotation_ranking ("order", criteria_orders, rationale, flags, time_spent_ms, display_order,
                submitted_at, assignment_id, rater_id, task_id, revision, weight, dataset, original_rater, source)
            SELECT (SELECT jsonb_agg(jsonb_build_array(c.id) ORDER BY md5(c.id::text || a.rater_id::text))
                    FROM annotation_completion c WHERE c.prompt_id = t.prompt_id),
                   '{}', '', '[]', 0, '[]', now(), a.id, a.rater_id, t.id, 0, 1.0, '', '', 'rater'
            FROM annotation_assignment a JOIN annotation_rankingtask t ON t.id = a.task_id WHERE t.project_id = %s
        """, [p])
        c.execute("ANALYZE")  # as autovacuum would: without statistics a cursor's fast-start plan takes minutes
    print(f"project {p}: {n} rankings")


def measure_one(project_id: int) -> dict:
    """In this (fresh) process: build the snapshot once."""
    from rewardmodel.snapshot import build_snapshot

    before = rss_mib()
    start = time.perf_counter()
    snap = build_snapshot(project_id)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"project_id": project_id, "examples": len(snap.examples), "sha256": snap.sha256[:16],
            "seconds": round(seconds, 1), "rss_before_mib": round(before), "peak_rss_mib": round(peak),
            "growth_mib": round(peak - before)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populate", type=int, nargs="*", help="add one bench project per number of rankings")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the fresh process measuring one project
    args = parser.parse_args()
    import django

    django.setup()
    if args.one:
        print(json.dumps(measure_one(args.one)))
        return
    if args.populate:
        for n in args.populate:
            populate(n)
        return
    from annotation.models import Project

    for project in Project.objects.filter(name__startswith=PREFIX).order_by("pk"):
        out = subprocess.run([sys.executable, __file__, "--one", str(project.pk)], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        print(project.name, out)


if __name__ == "__main__":
    main()
