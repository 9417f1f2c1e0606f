"""Server CPU per request of the rater loop, in one process, without HTTP or a load generator (issue 25).

    .venv/bin/python bench/rater_loop_profile.py [--tasks 3000] [--raters 20] [--loops 600] [--profile out.prof]
    .venv/bin/py-spy record -f speedscope -o loop.json -- .venv/bin/python bench/rater_loop_profile.py   # a profile

Builds a K=4 project (its own database, ``verdict_loop_profile``, dropped first) with ``--tasks`` tasks and
``--raters`` raters with API tokens, then runs ``--loops`` rounds of ``POST …/tasks/next/`` and
``POST …/assignments/{id}/submit/`` through Django's full request path (middleware, DRF authentication,
throttles against Redis, permissions, serialisers) with the production settings' middleware, each request as
the token's rater. It reports the CPU time the process spent per request (``time.process_time``: this process
only) and the wall time, median and 90th percentile, and the mean CPU time of the PostgreSQL backend that served
them, for ``next`` and ``submit`` apart. The saturation figure of ``make bench-data`` counts all of the
machine's CPU; this one isolates what Django, DRF and Verdict's own code cost, which is what a leaner hot path can cut.

With ``--profile PATH`` the timed loop also runs under cProfile (slower; the figures then include its cost) and the
20 functions with the most cumulative time are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = "verdict_loop_profile"


def _prepare_database() -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {DB}",
                    "-c", f"CREATE DATABASE {DB}"], check=True, capture_output=True)


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB}")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("VERDICT_THROTTLE_RATER", "1000000/min")
    os.environ.setdefault("VERDICT_THROTTLE_USER", "1000000/min")
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*"]


def _build(tasks: int, raters: int) -> tuple[int, list[str]]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.models import Membership, Project

    call_command("migrate", verbosity=0)
    project = Project.objects.create(name="loop", k=4, overlap=3)
    rng = random.Random(0)
    words = "the a model answer helpful harmless honest reward ranking rater prompt completion".split()
    path = Path(f"/tmp/{DB}.jsonl")
    with path.open("w") as fh:
        for _ in range(tasks):
            fh.write(json.dumps({"prompt": " ".join(rng.choices(words, k=20)),
                                 "completions": [{"text": " ".join(rng.choices(words, k=40)), "model": f"m{j}"}
                                                 for j in range(4)]}) + "\n")
    call_command("import_jsonl", str(path), project=project.name, verbosity=0)
    User = get_user_model()
    tokens = []
    for i in range(raters):
        user = User.objects.create_user(f"rater{i}", password=None)
        Membership.objects.create(project=project, user=user, role=Membership.RATER)
        tokens.append(Token.objects.create(user=user).key)
    return project.pk, tokens


def _loop(project: int, tokens: list[str], loops: int) -> dict:
    from django.test import Client

    clients = [Client(HTTP_AUTHORIZATION=f"Token {t}", HTTP_HOST="localhost") for t in tokens]
    times: dict[str, list[tuple[float, float]]] = {"next": [], "submit": []}

    def timed(kind, client, *args, **kwargs):
        b0 = backend.cpu_times()
        c0, w0 = time.process_time(), time.perf_counter()
        response = client.post(*args, **kwargs)
        times[kind].append((time.process_time() - c0, time.perf_counter() - w0))
        b1 = backend.cpu_times()
        server_cpu.append((kind, b1.user + b1.system - b0.user - b0.system))
        return response

    import psutil
    from django.db import connection

    with connection.cursor() as cursor:  # the PostgreSQL backend serving this process
        cursor.execute("SELECT pg_backend_pid()")
        backend = psutil.Process(cursor.fetchone()[0])
    done, server_cpu = 0, []
    for i in range(loops):
        client = clients[i % len(clients)]
        lease = timed("next", client, f"/api/projects/{project}/tasks/next/")
        if lease.status_code != 200:
            continue
        body = lease.json()
        ids = [c["id"] for c in body["completions"]]
        random.shuffle(ids)
        url = f"/api/assignments/{body['id']}/submit/"
        answer = timed("submit", client, url, json.dumps({"order": [[i] for i in ids]}),
                       content_type="application/json")
        done += answer.status_code == 201
    out = {"loops": done}
    for kind, rows in times.items():
        cpu = sorted(r[0] * 1000 for r in rows[10:])  # the first few warm caches and compile queries
        wall = sorted(r[1] * 1000 for r in rows[10:])
        out[kind] = {"n": len(cpu), "cpu_ms_median": round(statistics.median(cpu), 2),
                     "cpu_ms_p90": round(cpu[int(0.9 * len(cpu))], 2),
                     "wall_ms_median": round(statistics.median(wall), 2),
                     # PostgreSQL's clock ticks are 10 ms: a mean over many requests, not a median
                     "postgres_cpu_ms_mean": round(1000 * statistics.fmean(c for k, c in server_cpu[20:]
                                                                           if k == kind), 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--loops", type=int, default=600)
    parser.add_argument("--profile", type=Path, help="write cProfile stats here and print the top functions")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    _prepare_database()
    _setup_django()
    project, tokens = _build(args.tasks, args.raters)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        result = _loop(project, tokens, args.loops)
        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(40)
    else:
        result = _loop(project, tokens, args.loops)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
