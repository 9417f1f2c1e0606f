"""How long reading the leaderboard takes, from the API and the admin quality page (issue 24).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/verdict_lb .venv/bin/python bench/leaderboard_read.py

On the database named by DATABASE_URL (created by ``migrate`` if empty; use a scratch one): loads the demo project,
has its four demo raters rank every task they can through the real ``next``/``submit`` API, runs the quality
refresh (which computes the leaderboard), then times ``GET /api/projects/{id}/leaderboard/`` and the admin quality
page as the demo admin, 10 times each after one warm-up: median and maximum in ms. The leaderboard is read, not
computed, so both should stay far under 200 ms whatever the project's size.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("VERDICT_MODE", "test")


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.test import APIClient

    from annotation.models import Membership, Project, Ranking
    from quality.refresh import refresh_project

    call_command("migrate", verbosity=0)
    call_command("load_demo", verbosity=0)
    project = Project.objects.get(name="Verdict demo")
    rng = random.Random(0)
    for _ in range(50):
        for membership in Membership.objects.filter(project=project, role=Membership.RATER):
            api = APIClient(HTTP_HOST="localhost")
            api.force_authenticate(membership.user)
            lease = api.post(f"/api/projects/{project.pk}/tasks/next/")
            if lease.status_code != 200:
                continue
            ids = [c["id"] for c in lease.json()["completions"]]
            rng.shuffle(ids)
            api.post(f"/api/assignments/{lease.json()['id']}/submit/", {"order": [[i] for i in ids]}, format="json")
    start = time.perf_counter()
    refresh_project(project)
    refresh_s = time.perf_counter() - start
    admin = get_user_model().objects.get(username="admin")
    api, web = APIClient(HTTP_HOST="localhost"), Client(HTTP_HOST="localhost")
    api.force_authenticate(admin)
    web.force_login(admin)

    def timed(url: str, client) -> dict:
        assert client.get(url).status_code == 200, url
        runs = []
        for _ in range(10):
            t = time.perf_counter()
            client.get(url)
            runs.append(1000 * (time.perf_counter() - t))
        return {"median_ms": round(statistics.median(runs), 1), "max_ms": round(max(runs), 1)}

    print(json.dumps({"rankings": Ranking.objects.filter(task__project=project).count(),
                      "refresh_s": round(refresh_s, 2),
                      "api": timed(f"/api/projects/{project.pk}/leaderboard/", api),
                      "admin_quality_page": timed(f"/admin/annotation/project/{project.pk}/quality/", web)}))


if __name__ == "__main__":
    main()
