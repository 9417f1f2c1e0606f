"""`make deploy-test`: build the images, run the Compose stack with host networking, and use it as a team would.

Every step prints its time; the first failure prints the logs of every container and fails the run. The stack:
PostgreSQL, Redis, migrate, web (gunicorn), a CPU worker (queue default) and beat from deploy/docker-compose.yml with
deploy/compose.host-network.yml, all on 127.0.0.1 on free ports; plus two GPU-queue workers started the way a GPU
machine joins (deploy/README.md, "Workers on other machines"): `docker run` with nothing but the database and broker
URLs, the secret key and the model store.

Through the public API only (users and their tokens come from `manage.py create_user`, as on a real deployment):
a project, members, an import, two raters ranking every task, a retrain started by beat that runs on the joined
worker, the promoted version scoring, an active-learning round, the TRL export; then a second training whose
worker container is killed mid-way and which finishes on the other worker; then a backup, a wipe and a restore
after which the active version still scores the same; then every container's health check. Torn down at the end.

Needs root (or the docker group), Docker, debootstrap and Python 3.11+ on the host; it installs docker.io,
docker-compose and debootstrap from Debian if they are missing and starts dockerd if it is not running.
    python3 deploy/test/deploy_test.py [--keep] [--public-images]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "verdict-deploytest"
APP_IMAGE = os.environ.get("VERDICT_IMAGE", "verdict:local")
BASE_IMAGE = os.environ.get("VERDICT_BASE_IMAGE", "verdict-debian:bookworm")
WHEEL_DIRS = [Path(p) for p in os.environ.get("VERDICT_WHEEL_DIRS", "/opt/wheels").split(":") if p]
GPU_WORKERS = ("gpu-a", "gpu-b")
START = time.monotonic()


class DeployTestFailed(RuntimeError):
    pass


def log(message: str) -> None:
    elapsed = time.monotonic() - START
    print(f"[{int(elapsed // 60):02d}:{elapsed % 60:04.1f}] {message}", flush=True)


@contextlib.contextmanager
def step(name: str):
    log(f"▶ {name}")
    began = time.monotonic()
    yield
    log(f"✔ {name} ({time.monotonic() - began:.1f} s)")


def run(cmd: list[str], *, capture: bool = False, input: bytes | None = None, check: bool = True,
        timeout: float | None = 900, env: dict | None = None, stdout=None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, input=input, timeout=timeout, env={**os.environ, **(env or {})},
                            stdout=stdout or (subprocess.PIPE if capture else None),
                            stderr=subprocess.PIPE if capture else None)
    if check and result.returncode != 0:
        detail = (result.stderr or b"").decode(errors="replace")[-3000:] if capture else ""
        raise DeployTestFailed(f"command failed ({result.returncode}): {' '.join(cmd)}\n{detail}")
    return result


def wait_for(what: str, probe, timeout: float, every: float = 2.0):
    """Call probe() until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (OSError, urllib.error.URLError, DeployTestFailed) as exc:
            value, last = None, exc
        if value:
            return value
        time.sleep(every)
    raise DeployTestFailed(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})"
                                                                                      if last else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- host preparation ------------------------------------------------------------------------------------------

def ensure_tools() -> list[str]:
    """Install what is missing from Debian, start dockerd; return the Compose command line to use."""
    # The engine (dockerd) is what matters: a machine may have a docker client alone.
    needed = (("dockerd", "docker.io"), ("docker", "docker.io"), ("debootstrap", "debootstrap"))
    missing = sorted({pkg for tool, pkg in needed if not shutil.which(tool)})
    compose_v2 = shutil.which("docker") and run(["docker", "compose", "version"], capture=True,
                                                check=False).returncode == 0
    if not compose_v2 and not shutil.which("docker-compose"):
        missing.append("docker-compose")
    if missing:
        log(f"installing {' '.join(missing)} from Debian")
        install = ["apt-get", "install", "-y", "-q", *missing]
        if run(install, env={"DEBIAN_FRONTEND": "noninteractive"}, capture=True, check=False).returncode != 0:
            run(["apt-get", "update", "-q"], capture=True)  # stale package lists on a fresh machine
            run(install, env={"DEBIAN_FRONTEND": "noninteractive"}, capture=True)
    if run(["docker", "info"], capture=True, check=False).returncode != 0:
        log("starting dockerd")
        with open("/var/log/dockerd-deploy-test.log", "ab") as out:
            subprocess.Popen(["dockerd"], stdout=out, stderr=out, start_new_session=True)
        wait_for("dockerd", lambda: run(["docker", "info"], capture=True, check=False).returncode == 0, 60, 1)
    return ["docker", "compose"] if compose_v2 else ["docker-compose"]


def build_images(public: bool) -> dict[str, str]:
    """The app image, and unless `public` the base, PostgreSQL and Redis images from Debian's packages."""
    env = {}
    if run(["docker", "buildx", "version"], capture=True, check=False).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"  # no buildx plugin: the classic builder (which also reads .dockerignore)
    args = ["--network", "host"]
    images = {}
    if not public:
        run([str(ROOT / "deploy/images/build-base.sh"), BASE_IMAGE])
        for service in ("postgres", "redis"):
            images[service] = f"verdict-{service}:local"
            run(["docker", "build", "-q", *args, "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-f",
                 str(ROOT / f"deploy/images/{service}.Dockerfile"), "-t", images[service],
                 str(ROOT / "deploy/images")], env=env, stdout=subprocess.DEVNULL)
        args += ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    wheels = [w for d in WHEEL_DIRS if d.is_dir() for w in d.glob("torch-*.whl")]
    for wheel in wheels:  # a torch wheel on this machine: no download, and no torch index needed
        target = ROOT / "deploy/wheels" / wheel.name
        if not target.exists():
            shutil.copy2(wheel, target)
    if wheels:
        args += ["--build-arg", "TORCH_INDEX_URL="]
    run(["docker", "build", *args, "-f", str(ROOT / "deploy/Dockerfile"), "-t", APP_IMAGE, str(ROOT)], env=env,
        stdout=subprocess.DEVNULL)
    return images


# --- the stack -------------------------------------------------------------------------------------------------

class Stack:
    def __init__(self, compose: list[str], images: dict[str, str], workdir: Path):
        self.workdir = workdir
        self.ports = {"postgres": free_port(), "redis": free_port(), "web": free_port()}
        pg_pw, redis_pw = secrets.token_hex(16), secrets.token_hex(16)
        self.shared = {  # what every process, here or on another machine, needs
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"postgres://verdict:{pg_pw}@127.0.0.1:{self.ports['postgres']}/verdict",
            "REDIS_URL": f"redis://:{redis_pw}@127.0.0.1:{self.ports['redis']}/0",
            # Short intervals so that beat's retrain check and the requeue of a lost training happen within the test.
            "VERDICT_RETRAIN_CHECK_EVERY": "10",
            "VERDICT_REQUEUE_LOST_EVERY": "10",
            "VERDICT_RM_LOCK_TTL": "20",
            "VERDICT_CHECKPOINT_EVERY": "3",
        }
        env = {
            **self.shared, "POSTGRES_PASSWORD": pg_pw, "REDIS_PASSWORD": redis_pw,
            "POSTGRES_PORT": self.ports["postgres"], "REDIS_PORT": self.ports["redis"],
            "VERDICT_WEB_PORT": self.ports["web"], "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0", "WEB_CONCURRENCY": "2", "CPU_WORKER_QUEUES": "default",
            # Scripted raters rank a task a second; people are slower (the default 120/min per rater stays right).
            "VERDICT_THROTTLE_RATER": "1000/min",
            "VERDICT_IMAGE": APP_IMAGE, "VERDICT_GPU_IMAGE": APP_IMAGE,
            **({"POSTGRES_IMAGE": images["postgres"], "REDIS_IMAGE": images["redis"]} if images else {}),
        }
        self.env_file = workdir / "deploy.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.worker_env = workdir / "worker.env"  # what a GPU machine gets, and nothing else
        self.worker_env.write_text("".join(f"{k}={v}\n" for k, v in self.shared.items()))
        self.compose = [*compose, "-p", PROJECT, "--env-file", str(self.env_file),
                        "-f", str(ROOT / "deploy/docker-compose.yml"),
                        "-f", str(ROOT / "deploy/compose.host-network.yml")]
        self.base = f"http://127.0.0.1:{self.ports['web']}"
        self.tokens: dict[str, str] = {}

    # Compose and containers
    def up(self) -> None:
        run([*self.compose, "up", "-d", "--no-build", "postgres", "redis", "migrate", "web", "worker-cpu", "beat"],
            capture=True)

    def container(self, service: str) -> str:
        cid = run([*self.compose, "ps", "-q", service], capture=True).stdout.decode().strip()
        if not cid:
            raise DeployTestFailed(f"no container for service {service}")
        return cid.splitlines()[0]

    def health(self, container: str) -> str:
        return run(["docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
                    container], capture=True).stdout.decode().strip()

    def models_volume(self) -> str:
        volume = run(["docker", "inspect", "-f",
                      '{{range .Mounts}}{{if eq .Destination "/var/lib/verdict/models"}}{{.Name}}{{end}}{{end}}',
                      self.container("web")], capture=True).stdout.decode().strip()
        if not volume:
            raise DeployTestFailed("the web container has no model store mounted")
        return volume

    def start_gpu_worker(self, name: str) -> None:
        """A worker as a GPU machine runs it (deploy/README.md): the secret, the two URLs and the model store."""
        run(["docker", "rm", "-f", f"{PROJECT}-{name}"], capture=True, check=False)
        run(["docker", "run", "-d", "--name", f"{PROJECT}-{name}", "--network", "host",
             "--env-file", str(self.worker_env), "-v", f"{self.models_volume()}:/var/lib/verdict/models",
             "--health-cmd", f"celery -A config inspect ping --destination {name}@$HOSTNAME --timeout 10",
             "--health-interval", "20s", "--health-timeout", "15s", "--health-start-period", "30s",
             APP_IMAGE, "celery", "-A", "config", "worker", "-Q", "gpu", "--concurrency", "1",
             "--prefetch-multiplier", "1", "--max-tasks-per-child", "1", "--hostname", f"{name}@%h",
             "--loglevel", "INFO"], capture=True)

    def manage(self, *args: str) -> str:
        return run([*self.compose, "exec", "-T", "web", "python", "manage.py", *args], capture=True).stdout.decode()

    def logs(self) -> None:
        print("\n======== container logs (last 60 lines each) ========", flush=True)
        run([*self.compose, "logs", "--no-color", "--tail", "60"], check=False)
        for name in GPU_WORKERS:
            print(f"---- {PROJECT}-{name} ----", flush=True)
            run(["docker", "logs", "--tail", "60", f"{PROJECT}-{name}"], check=False)

    def down(self) -> None:
        for name in GPU_WORKERS:
            run(["docker", "rm", "-f", "-v", f"{PROJECT}-{name}"], capture=True, check=False)
        run([*self.compose, "down", "-v", "--remove-orphans"], capture=True, check=False)

    # The public API
    def api(self, method: str, path: str, who: str = "admin", body=None, raw: bytes | None = None,
            expect: tuple[int, ...] = (200, 201, 202, 204)):
        data, headers = None, {"Authorization": f"Token {self.tokens[who]}", "Host": "127.0.0.1"}
        if raw is not None:
            data, headers["Content-Type"] = raw, "application/x-ndjson"
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        for _ in range(3):  # a well-behaved client waits out a 429 as Retry-After says
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as exc:
                status, payload = exc.code, exc.read()
                if status == 429 and 429 not in expect:
                    time.sleep(min(60, int(exc.headers.get("Retry-After") or 5)))
                    continue
            break
        if status not in expect:
            raise DeployTestFailed(f"{method} {path} as {who}: {status} {payload[:500]!r}")
        if not payload:
            return None
        if path.split("?")[0].endswith("/export/"):
            return [json.loads(line) for line in payload.decode().splitlines() if line.strip()]
        return json.loads(payload)


# --- the scenario ----------------------------------------------------------------------------------------------

def task_lines(first: int, count: int) -> bytes:
    """Prompts with three answers of plainly different quality (raters below prefer the fuller answer)."""
    lines = []
    for i in range(first, first + count):
        topic = f"topic {i}"
        lines.append(json.dumps({"id": f"deploy-{i}", "prompt": f"Explain {topic} to a newcomer.", "completions": [
            {"text": f"{topic.title()} in short: it is how the parts fit together. First the idea, then an example, "
                     f"then where it breaks, so a newcomer can use it on day one.", "model": "careful"},
            {"text": f"{topic.title()} is a thing people use.", "model": "terse"},
            {"text": "No idea.", "model": "lazy"},
        ]}))
    return ("\n".join(lines) + "\n").encode()


def rank_everything(stack: Stack, project: int, rater: str) -> int:
    """The rater loop over the API: next, rank the longest answer first, submit; until no task is left."""
    done = 0
    while True:
        assignment = stack.api("POST", f"/api/projects/{project}/tasks/next/", rater)
        if not assignment:
            return done
        ordered = sorted(assignment["completions"], key=lambda c: -len(c["text"]))
        stack.api("POST", f"/api/assignments/{assignment['id']}/submit/", rater,
                  {"order": [[c["id"]] for c in ordered], "time_spent_ms": 1500})
        done += 1


def runs(stack: Stack, project: int) -> list[dict]:
    return stack.api("GET", f"/api/projects/{project}/training-runs/")["results"]


def finished_run(stack: Stack, project: int, timeout: float, run_id: int | None = None) -> dict:
    """Wait until the run (default: the project's first) has ended; fail unless it succeeded."""
    def probe():
        rows = [r for r in runs(stack, project) if run_id is None or r["id"] == run_id]
        row = rows[-1] if rows else None
        return row if row and row["status"] in ("succeeded", "failed", "skipped") else None
    run_row = wait_for(f"training run {run_id or '#1'} to finish", probe, timeout, 3)
    if run_row["status"] != "succeeded":
        raise DeployTestFailed(f"training ended {run_row['status']}: {run_row['message']}")
    return run_row


def scenario(stack: Stack, backup_dir: Path) -> None:
    with step("operator: create the admin and two raters (manage.py create_user) and wait for the API"):
        wait_for("web to answer", lambda: urllib.request.urlopen(
            urllib.request.Request(stack.base + "/accounts/login/", headers={"Host": "127.0.0.1"}),
            timeout=5).status == 200, 180)
        stack.tokens["admin"] = stack.manage("create_user", "admin", "--superuser").strip()
        for rater in ("rater-a", "rater-b"):
            stack.tokens[rater] = stack.manage("create_user", rater).strip()

    with step("API: create a project, add the raters, import 40 tasks, set the retrain policy"):
        project = stack.api("POST", "/api/projects/", body={"name": "Deploy test", "k": 3, "overlap": 2})["id"]
        for rater in ("rater-a", "rater-b"):
            stack.api("POST", f"/api/projects/{project}/members/", body={"username": rater, "role": "rater"})
        imported = stack.api("POST", f"/api/projects/{project}/import/", raw=task_lines(0, 40))
        if imported["tasks"] != 40:
            raise DeployTestFailed(f"expected 40 tasks imported: {imported}")
        stack.api("PATCH", f"/api/projects/{project}/retrain-policy/", body={
            "min_new_rankings": 60, "min_train_rankings": 20, "min_heldout_pairs": 10,
            "hyperparameters": {"epochs": 1, "max_length": 64, "batch_rankings": 8}})

    with step("join GPU-queue worker gpu-a (docker run: secret, database and broker URLs, model store only)"):
        stack.start_gpu_worker("gpu-a")

    with step("API: two raters rank every task (next → submit)"):
        counts = {rater: rank_everything(stack, project, rater) for rater in ("rater-a", "rater-b")}
        if counts != {"rater-a": 40, "rater-b": 40}:
            raise DeployTestFailed(f"each rater should rank the 40 tasks once: {counts}")
        log(f"  rankings: {counts}")

    with step("beat starts a retrain; it runs on gpu-a and the version is promoted"):
        first = finished_run(stack, project, 600)
        if first["trigger"] != "schedule" or not first["worker"].startswith("gpu-a@"):
            raise DeployTestFailed(f"expected a scheduled run on gpu-a: {first}")
        versions = stack.api("GET", f"/api/projects/{project}/reward-models/")["results"]
        active = [v for v in versions if v["is_active"]]
        if not active:
            raise DeployTestFailed(f"no version was promoted: {versions}")
        log(f"  v{active[0]['number']} on {first['worker']}: held-out accuracy "
            f"{active[0]['metrics']['heldout_accuracy']}, gate: {active[0]['gate_reason']}")
        probe = {"prompt": "Explain topic 7 to a newcomer.",
                 "completions": ["Topic 7 in short: it is how the parts fit together, with an example.", "No idea."]}
        scores = stack.api("POST", f"/api/projects/{project}/score/", body=probe)["scores"]
        log(f"  scores of a full and a lazy answer: {[round(s, 3) for s in scores]}")

    with step("API: an active-learning round on the promoted version"):
        queued = stack.api("POST", f"/api/projects/{project}/active-learning/rounds/", body={"batch_size": 5},
                           expect=(202,))
        done = wait_for("the round", lambda: (lambda r: r if r["status"] in ("done", "failed") else None)(
            stack.api("GET", f"/api/projects/{project}/active-learning/rounds/{queued['id']}/")), 300, 3)
        if done["status"] != "done" or not done["items"]:
            raise DeployTestFailed(f"round ended {done['status']}: {done.get('error')}")
        log(f"  round {done['id']}: {len(done['items'])} items selected ({done['strategy']})")

    with step("API: export TRL pairs"):
        pairs = stack.api("GET", f"/api/projects/{project}/export/?kind=trl")
        if len(pairs) != 80 * 3 or not all({"prompt", "chosen", "rejected"} <= set(p) for p in pairs):
            raise DeployTestFailed(f"expected 240 TRL pairs (80 rankings × 3), got {len(pairs)}")
        log(f"  {len(pairs)} pairs")

    with step("join a second GPU-queue worker gpu-b; new tasks and rankings for a longer second training"):
        stack.start_gpu_worker("gpu-b")
        stack.api("PATCH", f"/api/projects/{project}/retrain-policy/", body={
            "hyperparameters": {"epochs": 4, "max_length": 64, "batch_rankings": 8}})
        stack.api("POST", f"/api/projects/{project}/import/", raw=task_lines(40, 40))
        for rater in ("rater-a", "rater-b"):
            rank_everything(stack, project, rater)

    with step("kill the worker container mid-training; the job finishes on the other worker"):
        def training_past_a_checkpoint():
            rows = runs(stack, project)
            newest = rows[0] if len(rows) >= 2 else None
            return newest if newest and newest["status"] == "running" and newest["step"] >= 4 else None
        victim_run = wait_for("the second training to pass its first checkpoint", training_past_a_checkpoint, 300, 1)
        victim = victim_run["worker"].split("@")[0]
        survivor = next(name for name in GPU_WORKERS if name != victim)
        run(["docker", "kill", f"{PROJECT}-{victim}"], capture=True)
        log(f"  killed {victim} at step {victim_run['step']}/{victim_run['total']}; waiting for {survivor}")
        second = finished_run(stack, project, 600, run_id=victim_run["id"])
        if not second["worker"].startswith(f"{survivor}@") or second["attempts"] < 2:
            raise DeployTestFailed(f"expected the run to finish on {survivor} after a redelivery: {second}")
        if len(runs(stack, project)) != 2:
            raise DeployTestFailed(f"a lost training must be resumed, not trained again: {runs(stack, project)}")
        resumed = next(v for v in stack.api("GET", f"/api/projects/{project}/reward-models/")["results"]
                       if v["number"] == second["version_number"])["metrics"]["resumed_from_step"]
        if not resumed:
            raise DeployTestFailed("the redelivered training started over instead of resuming from its checkpoint")
        log(f"  finished on {second['worker']} after {second['attempts']} deliveries, resumed from step {resumed}: "
            f"v{second['version_number']}")

    with step("every container reports healthy"):
        containers = {s: stack.container(s) for s in ("postgres", "redis", "web", "worker-cpu", "beat")}
        containers[survivor] = f"{PROJECT}-{survivor}"
        def all_healthy():
            states = {name: stack.health(cid) for name, cid in containers.items()}
            return states if all(v == "healthy" for v in states.values()) else None
        log(f"  {wait_for('health checks', all_healthy, 150, 5)}")

    with step("backup, wipe, restore: the active version still scores the same"):
        before = stack.api("POST", f"/api/projects/{project}/score/", body=probe)
        env = {"COMPOSE": " ".join(stack.compose)}
        run([str(ROOT / "deploy/backup.sh"), str(backup_dir)], env=env, capture=True)
        run([*stack.compose, "stop", "web", "worker-cpu", "beat"], capture=True)
        run(["docker", "stop", f"{PROJECT}-{survivor}"], capture=True)
        run([*stack.compose, "exec", "-T", "postgres", "psql", "-q", "-U", "verdict", "-d", "postgres", "-c",
             "DROP DATABASE verdict WITH (FORCE)", "-c", "CREATE DATABASE verdict OWNER verdict"], capture=True)
        run([*stack.compose, "run", "--rm", "--no-deps", "-T", "migrate", "sh", "-c",
             "find /var/lib/verdict/models -mindepth 1 -delete"], capture=True)
        tables = run([*stack.compose, "exec", "-T", "postgres", "psql", "-tA", "-U", "verdict", "-d", "verdict", "-c",
                      "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"], capture=True).stdout.decode()
        files = run([*stack.compose, "run", "--rm", "--no-deps", "-T", "migrate", "sh", "-c",
                     "find /var/lib/verdict/models -mindepth 1 | wc -l"], capture=True).stdout.decode()
        if tables.strip() != "0" or files.strip().splitlines()[-1] != "0":
            raise DeployTestFailed(f"the wipe left {tables.strip()} tables and {files.strip()} model files")
        log("  wiped: no tables in the database, no files in the model store")
        run([str(ROOT / "deploy/restore.sh"), str(backup_dir)], env=env, capture=True)
        run(["docker", "start", f"{PROJECT}-{survivor}"], capture=True)
        after = wait_for("the restored scoring API", lambda: stack.api(
            "POST", f"/api/projects/{project}/score/", body=probe, expect=(200, 404, 503)), 120, 2)
        if after.get("version") != before["version"] or any(
                abs(a - b) > 1e-5 for a, b in zip(after["scores"], before["scores"], strict=True)):
            raise DeployTestFailed(f"scores changed across backup and restore: {before} → {after}")
        log(f"  v{after['version']} scores {[round(s, 4) for s in after['scores']]} before and after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the stack running at the end (and on failure)")
    parser.add_argument("--public-images", action="store_true",
                        help="python:3.11-slim, postgres:16 and redis:7 from a registry, not images built from Debian")
    options = parser.parse_args()
    stack = None
    tmp = Path(tempfile.mkdtemp(prefix="verdict-deploytest-"))
    try:
        with step("host: Docker, Compose and debootstrap present, dockerd running"):
            compose = ensure_tools()
            log(f"  compose: {' '.join(compose)}")
        with step("build images (Debian base, PostgreSQL, Redis, Verdict)" if not options.public_images
                  else "build the Verdict image"):
            images = build_images(options.public_images)
        stack = Stack(compose, images, tmp)
        stack.down()  # leftovers of an earlier run
        with step(f"compose up with host networking: PostgreSQL :{stack.ports['postgres']}, "
                  f"Redis :{stack.ports['redis']}, web :{stack.ports['web']}, migrate, worker-cpu, beat"):
            stack.up()
        scenario(stack, tmp / "backup")
        if not options.keep:
            with step("tear down"):
                stack.down()
    except (DeployTestFailed, AssertionError, subprocess.TimeoutExpired, KeyError, TypeError) as exc:
        log(f"✘ FAILED: {type(exc).__name__}: {exc}")
        if stack is not None:
            stack.logs()
            if not options.keep:
                stack.down()
        return 1
    finally:
        if not options.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    log("deploy test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
