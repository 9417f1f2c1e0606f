"""The data path at production scale (issue 12): rater loop under load, import, export, command start-up, and a
1,000,000-task / 3,000,000-ranking project's pages — this commit against a base commit, side by side in one run.

    .venv/bin/python bench/data_bench.py [--tasks 1000000] [--rankings-per-task 3] [--base bc6c035]   # make bench-data

Every comparison runs both trees on the same machine, database and data, one after the other, and is reported as a
ratio (this/base): the machine is shared and absolute figures are rough. The base tree is a git worktree of
``--base`` (the commit before issue 25; issue 12 compared with a82da62) in /tmp; both run from this virtual environment.

1. Start-up: ``manage.py help`` and ``manage.py export_trl`` on a 24-task project (median of 3).
2. Import: a ``--compare-tasks`` JSONL file through both trees' ``import_jsonl`` (tasks/s, peak RSS); then
   ``--tasks`` through this tree's (the base tree would need ~20 minutes and gigabytes for a million).
3. Rankings: ``--rankings-per-task`` synthetic rankings per task of the big project, by 1,000 synthetic raters,
   written in SQL (not a measurement: the data for the rest).
4. Export: ~1,000,000 TRL pairs (166,667 K=4 rankings) through both trees' ``export_trl`` (rows/s); Parquet too.
5. Load: gunicorn (3 sync workers, production settings, Redis throttles) on the big project; simulated raters loop
   next → submit over the REST API: 50 and 200 raters with think time (exponential, mean ``--think-s``), and a
   saturation run with ``--saturation-raters`` and no think time. Loops/s, request latency percentiles, server
   CPU ms per request (the machine's busy time less the client's), and queries per request (measured in-process).
6. Scale (this tree): next-task latency, admin changelists, the quality and agreement pages and the retrain count
   on the big project.

Needs PostgreSQL and Redis as for ``make test``; uses its own database (``verdict_data_bench``, dropped first).
Writes bench/results/data_bench.json and .png. Run it alone on the machine (it takes ~30 minutes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = Path("/tmp/verdict-data-bench")
PG = "postgres://postgres@127.0.0.1:5432"
DB = "verdict_data_bench"
REDIS = "redis://127.0.0.1:6379/12"
WORDS = ("the a model answer helpful harmless honest reward ranking rater prompt completion data engine scale "
         "because therefore however which would could should first second finally python code example").split()
PY = sys.executable


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def env_for(tree: Path, **extra) -> dict:
    return {**os.environ, "VERDICT_MODE": "test", "DATABASE_URL": f"{PG}/{DB}", "REDIS_URL": REDIS,
            "PYTHONPATH": str(tree), **extra}


def manage(tree: Path, *args: str, check: bool = True, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "manage.py", *args], cwd=tree, env=env_for(tree, **extra), capture_output=True,
                          text=True, check=check)


def timed_process(cmd: list[str], tree: Path) -> dict:
    """Run a command, sampling its resident memory (with children) every 50 ms: wall seconds and peak MB."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=tree, env=env_for(tree), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed:\n{err[-3000:]}")
    return {"seconds": time.perf_counter() - start, "peak_mb": peak / 2**20, "stdout": out, "stderr": err}


def psql(sql: str, db: str = DB) -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt",
                           "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


# --- setup ----------------------------------------------------------------------------------------


def base_tree(commit: str) -> Path:
    path = Path(f"/tmp/verdict-base-{commit[:12]}")
    if not (path / "manage.py").is_file():
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)
        subprocess.run(["git", "worktree", "add", "--detach", "--force", str(path), commit], cwd=ROOT, check=True,
                       capture_output=True)
    return path


def fresh_database() -> None:
    psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres")
    psql(f"CREATE DATABASE {DB}", db="postgres")
    manage(ROOT, "migrate", "-v0")


def write_tasks(path: Path, n: int, seed: int, prefix: str) -> Path:
    """n tasks, K=4: a 20-word prompt and four 40-word completions each (~1.2 kB a line)."""
    if path.is_file():
        return path
    rng = random.Random(seed)
    words = WORDS
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        for i in range(n):
            prompt = " ".join(rng.choices(words, k=20))
            comps = ",".join(json.dumps({"text": " ".join(rng.choices(words, k=40)), "model": f"m{j}"})
                             for j in range(4))
            fh.write(f'{{"id": "{prefix}{i}", "prompt": "{prompt}", "completions": [{comps}]}}\n')
    tmp.rename(path)
    return path


def project_id(name: str) -> int:
    return int(psql(f"SELECT id FROM annotation_project WHERE name = '{name}'"))


def imported_project(name: str, tasks: int, seed: int, prefix: str) -> int:
    """A K=4, overlap-3 project of `tasks` synthetic tasks (``write_tasks``) imported by this tree; its id."""
    path = write_tasks(WORK / f"{name}-{tasks}.jsonl", tasks, seed, prefix)
    manage(ROOT, "import_jsonl", "--project", name, "--create-project", "--k", "4", "--overlap", "3", str(path))
    return project_id(name)


def synthetic_rankings(project: int, per_task: int, task_limit: int | None = None, raters: int = 1000) -> float:
    """`per_task` rankings (completions best first by id) on each task of the project (or its first
    `task_limit`), by `raters` synthetic users, in SQL. Returns seconds."""
    start = time.perf_counter()
    psql(f"""
        INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
                               date_joined)
        SELECT '!', false, 'synthetic-' || g, '', '', '', false, true, now() FROM generate_series(1, {raters}) g
        ON CONFLICT (username) DO NOTHING;
        INSERT INTO annotation_membership (project_id, user_id, role, paused, paused_reason)
        SELECT {project}, id, 'rater', false, '' FROM auth_user WHERE username LIKE 'synthetic-%'
        ON CONFLICT DO NOTHING;
        CREATE TEMP TABLE raters AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM auth_user
            WHERE username LIKE 'synthetic-%';
        CREATE TEMP TABLE picked AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM annotation_rankingtask
            WHERE project_id = {project} ORDER BY id {f'LIMIT {task_limit}' if task_limit else ''};
        CREATE TEMP TABLE orders AS SELECT p.id AS task_id, p.n,
            jsonb_agg(jsonb_build_array(l.completion_id) ORDER BY l.completion_id) AS ord,
            jsonb_agg(l.completion_id ORDER BY l.completion_id DESC) AS shown
            FROM picked p JOIN annotation_rankingtask_completions l ON l.rankingtask_id = p.id GROUP BY p.id, p.n;
        INSERT INTO annotation_assignment (task_id, rater_id, status, leased_at, expires_at, display_order,
                                           skip_reason)
        SELECT o.task_id, r.id, 'submitted', now(), now(), o.shown, ''
            FROM orders o CROSS JOIN generate_series(0, {per_task - 1}) k
            JOIN raters r ON r.n = (o.n * {per_task} + k) % {raters};
        INSERT INTO annotation_ranking (assignment_id, task_id, rater_id, "order", criteria_orders, rationale, flags,
            time_spent_ms, display_order, submitted_at, revision, weight, source, dataset, original_rater)
        SELECT a.id, a.task_id, a.rater_id, o.ord, '{{}}', '', '[]', 20000, a.display_order, now(), 0, 1.0,
               'rater', '', ''
            FROM annotation_assignment a JOIN orders o ON o.task_id = a.task_id
            WHERE a.rater_id IN (SELECT id FROM raters);
        UPDATE annotation_rankingtask t SET submitted_count = {per_task} FROM picked p WHERE p.id = t.id;
        ANALYZE;
    """)
    return time.perf_counter() - start


# --- 1. start-up ----------------------------------------------------------------------------------


def startup(trees: dict[str, Path], project: str) -> dict:
    out = {}
    for name, tree in trees.items():
        runs = {"help": [], "export_trl": []}
        for _ in range(3):
            for label, args in (("help", ["help"]), ("export_trl", ["export_trl", "--project", project])):
                t = time.perf_counter()
                manage(tree, *args)
                runs[label].append(time.perf_counter() - t)
        out[name] = {k: statistics.median(v) for k, v in runs.items()}
        log(f"start-up {name}: {out[name]}")
    return out


# --- 2. import ------------------------------------------------------------------------------------


def import_file(tree: Path, path: Path, project: str, lines: int) -> dict:
    r = timed_process([PY, "manage.py", "import_jsonl", "--project", project, "--create-project", str(path)], tree)
    return {"tasks": lines, "seconds": r["seconds"], "tasks_per_s": lines / r["seconds"], "peak_mb": r["peak_mb"],
            "file_mb": path.stat().st_size / 2**20}


# --- 4. export ------------------------------------------------------------------------------------


def export(tree: Path, project: str, out: Path) -> dict:
    r = timed_process([PY, "manage.py", "export_trl", "--project", project, "-o", str(out)], tree)
    rows = sum(1 for _ in open(out)) if out.suffix == ".jsonl" else None
    if rows is None:
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(out).metadata.num_rows
    return {"rows": rows, "seconds": r["seconds"], "rows_per_s": rows / r["seconds"], "peak_mb": r["peak_mb"],
            "file_mb": out.stat().st_size / 2**20}


# --- 5. load --------------------------------------------------------------------------------------


class Server:
    """gunicorn with production settings on the bench database, in one tree."""

    def __init__(self, tree: Path, workers: int = 3):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(WORK / f"gunicorn-{tree.name}.log", "a")
        env = env_for(tree, DJANGO_SETTINGS_MODULE="config.settings_production", VERDICT_MODE="production",
                      DJANGO_SECRET_KEY="bench-" + "k" * 50, DJANGO_SECURE_SSL_REDIRECT="0",
                      VERDICT_THROTTLE_RATER="1000000/min", VERDICT_THROTTLE_USER="1000000/min")
        self.proc = psutil.Popen([str(Path(PY).parent / "gunicorn"), "config.wsgi:application", "--bind",
                                  f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"],
                                 cwd=tree, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/projects/", timeout=5)
                break
            except urllib.error.HTTPError:  # 401 without a token: it answers
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"gunicorn did not start (see {self.log.name})") from None
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()


def cpu_seconds() -> float:
    """CPU seconds the machine spent outside this client (gunicorn, PostgreSQL, Redis): all cores' busy time less
    this process's own, read at both ends of a run (robust to database backends that come and go)."""
    busy = psutil.cpu_times()
    own = psutil.Process().cpu_times()
    return (busy.user + busy.system + getattr(busy, "nice", 0)) - (own.user + own.system)


def post(url: str, token: str, body: dict | None = None) -> tuple[int, dict | None]:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "Authorization": f"Token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as exc:
        return exc.code, None


def load(server: Server, project: int, tokens: list[str], seconds: float, think_s: float, warmup_s: float = 5.0,
         seed: int = 0) -> dict:
    """Each token is a rater looping next → (think) → submit until time is up; statistics over the window after
    the warm-up."""
    stop_at = time.monotonic() + warmup_s + seconds
    window_start = time.monotonic() + warmup_s
    latencies: list[float] = []
    loops = [0]
    errors: dict[int, int] = {}
    lock = threading.Lock()

    def rater(i: int, token: str) -> None:
        rng = random.Random(seed * 100_000 + i)
        time.sleep(rng.uniform(0, think_s or 0.2))  # raters do not all start at the same instant
        while time.monotonic() < stop_at:
            t = time.monotonic()
            code, lease = post(f"{server.url}/api/projects/{project}/tasks/next/", token)
            t_next = time.monotonic()
            if code != 200:
                with lock:
                    errors[code] = errors.get(code, 0) + 1
                time.sleep(0.5)
                continue
            if think_s:
                time.sleep(min(rng.expovariate(1 / think_s), 10 * think_s))
            order = [[c["id"]] for c in sorted(lease["completions"], key=lambda c: c["id"])]
            t2 = time.monotonic()
            code, _ = post(f"{server.url}/api/assignments/{lease['id']}/submit/", token, {"order": order})
            t3 = time.monotonic()
            with lock:
                if code != 201:
                    errors[code] = errors.get(code, 0) + 1
                if t >= window_start and t3 <= stop_at:
                    latencies.extend([t_next - t, t3 - t2])
                    loops[0] += 1

    threads = [threading.Thread(target=rater, args=(i, tok), daemon=True) for i, tok in enumerate(tokens)]
    for th in threads:
        th.start()
    time.sleep(max(0.0, window_start - time.monotonic()))
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    for th in threads:
        th.join(timeout=warmup_s + seconds + 120)
    cpu1, wall1 = cpu_seconds(), time.monotonic()
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    requests = len(lat)
    return {"raters": len(tokens), "think_s": think_s, "seconds": wall1 - wall0, "loops": loops[0],
            "loops_per_s": loops[0] / seconds, "requests": requests, "p50_ms": pct(0.50), "p90_ms": pct(0.90),
            "p99_ms": pct(0.99), "max_ms": 1000 * lat[-1] if lat else None,
            "server_cpu_ms_per_request": 1000 * (cpu1 - cpu0) / max(1, requests), "errors": errors,
            "client_cpu_note": "server CPU = all cores' busy time less this client's own"}


def make_raters(tree: Path, project: int, n: int, prefix: str) -> list[str]:
    code = f"""
import os, django, json
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from annotation.models import Membership
out = []
for i in range({n}):
    u, _ = get_user_model().objects.get_or_create(username=f"{prefix}{{i}}")
    Membership.objects.get_or_create(project_id={project}, user=u)
    out.append(Token.objects.get_or_create(user=u)[0].key)
print(json.dumps(out))
"""
    res = subprocess.run([PY, "-c", code], cwd=tree, env=env_for(tree), capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


QUERY_PROBE = """
import os, django, json
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from annotation.models import Membership
result = {{}}
with transaction.atomic():
    user = get_user_model().objects.create(username="query-probe")
    Membership.objects.create(project_id={project}, user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=user).key)
    with CaptureQueriesContext(connection) as ctx:
        lease = client.post("/api/projects/{project}/tasks/next/").json()
    result["next"] = len([q for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]])
    order = [[c["id"]] for c in lease["completions"]]
    with CaptureQueriesContext(connection) as ctx:
        client.post(f"/api/assignments/{{lease['id']}}/submit/", {{"order": order}}, format="json")
    result["submit"] = len([q for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]])
    transaction.set_rollback(True)
print(json.dumps(result))
"""


def probe(tree: Path, code: str) -> dict:
    """Run a Python snippet under Django in `tree` on the bench database; its last line of output is JSON."""
    res = subprocess.run([PY, "-c", code], cwd=tree, env=env_for(tree, DJANGO_ALLOWED_HOSTS="testserver"),
                         capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def query_counts(tree: Path, project: int) -> dict:
    return probe(tree, QUERY_PROBE.format(project=project))


# --- 6. scale -------------------------------------------------------------------------------------


SCALE_PROBE = """
import os, django, json, time, statistics
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.db import transaction
from django.test import Client
from django.contrib.auth import get_user_model
from annotation.assignment import next_assignment
from annotation.models import Membership, Project, Ranking
from rewardmodel.models import RewardModelVersion
from rewardmodel import training
project = Project.objects.get(pk={project})
out = {{}}

def timed(fn, n=5):
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)

with transaction.atomic():
    users = [get_user_model().objects.create(username=f"scale-probe-{{i}}") for i in range(20)]
    for u in users:
        Membership.objects.create(project=project, user=u)
    times = []
    for u in users:
        t = time.perf_counter(); next_assignment(project, u); times.append(time.perf_counter() - t)
    out["next_task_ms_median"] = 1000 * statistics.median(times)
    out["next_task_ms_max"] = 1000 * max(times)
    admin = get_user_model().objects.create(username="scale-admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    pages = {{
        "admin rankings": "/admin/annotation/ranking/",
        "admin tasks, one project": f"/admin/annotation/rankingtask/?project__id__exact={{project.pk}}",
        "admin assignments": "/admin/annotation/assignment/",
        "admin prompts, search by id": "/admin/annotation/prompt/?q=big123456",
        "admin project page": f"/admin/annotation/project/{{project.pk}}/change/",
        "admin agreement page": f"/admin/annotation/project/{{project.pk}}/agreement/",
        "admin quality page": f"/admin/annotation/project/{{project.pk}}/quality/",
        "API quality": f"/api/projects/{{project.pk}}/quality/",
        # Offsets stop at 10,000 since issue 25 (a 400 past it: `?offset=500000` took 3.3 s); deeper pages go by
        # cursor, which costs what a first page does.
        "API tasks page, offset 10,000": f"/api/projects/{{project.pk}}/tasks/?limit=100&offset=10000",
        "API rankings page": f"/api/rankings/?project={{project.pk}}&limit=100",
        "API rankings page, count=false": f"/api/rankings/?project={{project.pk}}&limit=100&count=false",
    }}
    out["pages_ms"] = {{}}
    for label, url in pages.items():
        codes = []
        def get():
            codes.append(client.get(url).status_code)
        out["pages_ms"][label] = timed(get, n=1)
        out.setdefault("pages_status", {{}})[label] = codes[-1]
    ids = list(Ranking.objects.filter(task__project=project).order_by("id").values_list("id", flat=True)[:{seen}])
    version = RewardModelVersion.objects.create(project=project, number=999, status=RewardModelVersion.READY,
                                                snapshot={{"ranking_ids": ids}})
    out["retrain_count_rankings_seen"] = len(ids)
    new = []
    out["retrain_count_sql_ms"] = timed(lambda: new.append(training.new_rankings_since_last_version(project.pk)), n=3)
    out["retrain_count_new"] = new[-1]
    def python_count():
        snap = RewardModelVersion.objects.get(pk=version.pk).snapshot
        seen = set(snap.get("ranking_ids", []))
        ids = training.trainable_rankings(project.pk).values_list("id", flat=True)
        return sum(1 for i in ids if i not in seen)
    out["retrain_count_python_ms"] = timed(python_count, n=1)
    transaction.set_rollback(True)
print(json.dumps(out))
"""


def scale(project: int, seen: int) -> dict:
    return probe(ROOT, SCALE_PROBE.format(project=project, seen=seen))


# --- figure ---------------------------------------------------------------------------------------


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    r = result["ratios"]
    labels = list(r)
    axes[0].barh(labels, [r[k] for k in labels], color="tab:blue")
    axes[0].axvline(1, color="grey", lw=1, ls="--")
    axes[0].set_xscale("log")
    axes[0].set_title("this commit ÷ base commit (higher is better)", fontsize=10)
    for i, k in enumerate(labels):
        axes[0].text(r[k], i, f" {r[k]:.2f}×", va="center", fontsize=8)
    for name, style in (("this", "-o"), ("base", "--s")):
        runs = result["load"].get(name, {})
        xs = [k for k in ("50 raters, think", "200 raters, think", "saturation") if k in runs]
        axes[1].plot(xs, [runs[k]["p99_ms"] for k in xs], style, label=f"{name}: p99")
        axes[1].plot(xs, [runs[k]["p50_ms"] for k in xs], style, alpha=0.4, label=f"{name}: p50")
        offset = -0.2 if name == "this" else 0.2
        axes[2].bar([i + offset for i in range(len(xs))], [runs[k]["loops_per_s"] for k in xs], width=0.4,
                    color="tab:blue" if name == "this" else "tab:grey", label=name)
        axes[2].set_xticks(range(len(xs)), xs)
    axes[1].axhline(300, color="tab:red", lw=1, ls=":", label="goal p99 (50 raters)")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("request latency (ms)")
    axes[1].legend(fontsize=7)
    axes[1].set_title("rater loop latency on a 1M-task project", fontsize=10)
    axes[2].axhline(100, color="tab:red", lw=1, ls=":")
    axes[2].set_ylabel("rater loops/s (next + submit)")
    axes[2].legend(fontsize=8)
    axes[2].set_title("throughput (red: saturation goal)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--rankings-per-task", type=int, default=3)
    parser.add_argument("--compare-tasks", type=int, default=100_000)
    parser.add_argument("--export-rankings", type=int, default=166_667, help="K=4 rankings: 6 pairs each")
    parser.add_argument("--base", default="bc6c035")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think-s", type=float, default=10.0,
                        help="mean think time: a fast rater (ranking four outputs takes people 30-120 s)")
    parser.add_argument("--saturation-raters", type=int, default=24)
    parser.add_argument("--out", type=Path, default=RESULTS / "data_bench.json")
    parser.add_argument("--remeasure", nargs="+", choices=["startup", "export", "load", "scale"],
                        help="measure only these parts again on the database the last full run left, and update "
                             "them in --out (after a change that touches only them)")
    args = parser.parse_args()
    if args.remeasure:
        remeasure(args)
        return
    started = time.time()
    WORK.mkdir(parents=True, exist_ok=True)
    trees = {"this": ROOT, "base": base_tree(args.base)}
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result: dict = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, "
                    f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
                    "commits": {"this": head.strip(), "base": args.base}, "args": {k: str(v) for k, v in
                                                                                   vars(args).items()}}
    log("fresh database")
    fresh_database()

    log("small project for start-up")
    small = write_tasks(WORK / "small.jsonl", 24, seed=3, prefix="small")
    manage(ROOT, "import_jsonl", "--project", "small", "--create-project", str(small))
    synthetic_rankings(project_id("small"), 2, raters=10)
    result["startup_s"] = startup(trees, "small")

    log(f"import {args.compare_tasks:,} tasks: both trees")
    cmp_file = write_tasks(WORK / f"tasks-{args.compare_tasks}.jsonl", args.compare_tasks, seed=1, prefix="c")
    result["import_compare"] = {name: import_file(tree, cmp_file, f"import-{name}", args.compare_tasks)
                                for name, tree in (("base", trees["base"]), ("this", ROOT))}
    log(f"import compare: {result['import_compare']}")

    log(f"import {args.tasks:,} tasks: this tree")
    big_file = write_tasks(WORK / f"tasks-{args.tasks}.jsonl", args.tasks, seed=2, prefix="big")
    result["import_big"] = import_file(ROOT, big_file, "big", args.tasks)
    log(f"import big: {result['import_big']}")
    big = project_id("big")
    psql(f"UPDATE annotation_project SET overlap = {args.rankings_per_task + 1} WHERE id = {big}")

    log(f"{args.rankings_per_task} synthetic rankings per task of the big project")
    result["synthetic_rankings"] = {"rankings": int(psql(
        f"SELECT {args.rankings_per_task} * count(*) FROM annotation_rankingtask WHERE project_id = {big}")),
        "seconds": synthetic_rankings(big, args.rankings_per_task)}
    log(f"rankings: {result['synthetic_rankings']}")

    log(f"export ~{6 * args.export_rankings:,} TRL pairs: both trees")
    exp = project_id("import-this")
    synthetic_rankings(exp, 2, task_limit=(args.export_rankings + 1) // 2)
    result["export"] = {name: export(tree, "import-this", WORK / f"export-{name}.jsonl")
                        for name, tree in (("base", trees["base"]), ("this", ROOT))}
    result["export"]["this_parquet"] = export(ROOT, "import-this", WORK / "export-this.parquet")
    log(f"export: {result['export']}")

    log("queries per request")
    result["queries_per_request"] = {name: query_counts(tree, big) for name, tree in trees.items()}
    log(f"queries: {result['queries_per_request']}")

    result["load"] = {}
    for name, tree in (("base", trees["base"]), ("this", ROOT)):
        tokens = make_raters(tree, big, 250 + args.saturation_raters, f"load-{name}-")
        result["load"][name] = runs = load_runs(Server(tree), big, tokens, args)
        log(f"load {name}: {json.dumps(runs)}")

    log("scale checks")
    result["scale"] = scale(big, seen=int(0.97 * result["synthetic_rankings"]["rankings"]))
    log(f"scale: {result['scale']}")

    result["minutes"] = (time.time() - started) / 60
    finish(result, args)


def load_runs(server: Server, big: int, tokens: list[str], args) -> dict:
    """50 and 200 raters with think time, then saturation; the server is stopped after."""
    try:
        return {"50 raters, think": load(server, big, tokens[:50], args.seconds, args.think_s),
                "200 raters, think": load(server, big, tokens[50:250], args.seconds, args.think_s, seed=1),
                "saturation": load(server, big, tokens[-args.saturation_raters:], args.seconds, 0.0, seed=2)}
    finally:
        server.stop()


def remeasure(args) -> None:
    result = json.loads(args.out.read_text())
    trees = {"this": ROOT, "base": base_tree(result["commits"]["base"])}
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    if "startup" in args.remeasure:
        result["startup_s"] = startup(trees, "small")
    if "export" in args.remeasure:
        result["export"] = {name: export(tree, "import-this", WORK / f"export-{name}.jsonl")
                            for name, tree in (("base", trees["base"]), ("this", ROOT))}
        result["export"]["this_parquet"] = export(ROOT, "import-this", WORK / "export-this.parquet")
        log(f"export: {result['export']}")
    big = project_id("big")
    if "load" in args.remeasure:
        result["queries_per_request"] = {name: query_counts(tree, big) for name, tree in trees.items()}
        result["load"] = {}
        for name, tree in (("base", trees["base"]), ("this", ROOT)):
            tokens = make_raters(tree, big, 250 + args.saturation_raters, f"reload-{name}-")
            result["load"][name] = load_runs(Server(tree), big, tokens, args)
            log(f"load {name}: {json.dumps(result['load'][name])}")
    if "scale" in args.remeasure:
        result["scale"] = scale(big, seen=int(0.97 * result["synthetic_rankings"]["rankings"]))
        log(f"scale: {result['scale']}")
    result.setdefault("remeasured", {})[",".join(args.remeasure)] = {"commit": head.strip(),
                                                                    "date": datetime.date.today().isoformat()}
    finish(result, args)


def finish(result: dict, args) -> None:
    this, base = result["load"]["this"], result["load"]["base"]
    result["ratios"] = {
        "saturation loops/s": this["saturation"]["loops_per_s"] / base["saturation"]["loops_per_s"],
        "p99 at 50 raters (base÷this)": base["50 raters, think"]["p99_ms"] / this["50 raters, think"]["p99_ms"],
        "p99 at 200 raters (base÷this)": base["200 raters, think"]["p99_ms"] / this["200 raters, think"]["p99_ms"],
        "import tasks/s": (result["import_compare"]["this"]["tasks_per_s"]
                           / result["import_compare"]["base"]["tasks_per_s"]),
        "import peak memory (base÷this)": (result["import_compare"]["base"]["peak_mb"]
                                           / result["import_compare"]["this"]["peak_mb"]),
        "export rows/s": result["export"]["this"]["rows_per_s"] / result["export"]["base"]["rows_per_s"],
        "export_trl start (base÷this)": result["startup_s"]["base"]["export_trl"] / result["startup_s"]["this"][
            "export_trl"],
    }
    result["goals"] = {
        "saturation >= 100 loops/s": this["saturation"]["loops_per_s"] >= 100,
        "p99 < 300 ms at 50 raters with think time": this["50 raters, think"]["p99_ms"] < 300,
        "p99 < 100 ms at 200 raters with think time": this["200 raters, think"]["p99_ms"] < 100,
        "import >= 5,000 tasks/s": result["import_big"]["tasks_per_s"] >= 5000,
        "import peak < 300 MB": result["import_big"]["peak_mb"] < 300,
        "export >= 20,000 rows/s": result["export"]["this"]["rows_per_s"] >= 20_000,
        "export_trl on a small project < 2 s": result["startup_s"]["this"]["export_trl"] < 2,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    log(f"wrote {args.out} and .png; goals: {result['goals']}")


if __name__ == "__main__":
    main()
