"""AI feedback on real judge outputs: GPT-4's and GPT-3.5 Turbo's recorded verdicts on every LLMFAO crowd pair
(../shared/data, read in place), served by a small local OpenAI-compatible server so that the platform's real client,
prompt, parser, position swap, retries and budget run against real judge behaviour, with no network.

One run, a fresh PostgreSQL database (``--db``), three parts:

1. **Calibration.** A K = 2 project, one task per LLMFAO pair (2,139), the crowd's 8,931 votes as the 124 workers'
   rankings. Both judges run over every task (``feedback.runs.run_judge``, both orders per pair), then a quality
   refresh. Each judge's agreement with the crowd *as the platform reports it* (``RaterQuality.crowd_agreement``) is
   compared with an independent computation from the CSVs (the judge's verdict against the strict plurality of the
   crowd's votes on the pair, where both name a winner): they must be equal.
2. **Hybrid routing.** Per seed, one vote of every pair with three or more is held out as the test; the others arrive
   in a random order. The platform's routing is replayed task by task with its own functions (the quality signal's
   ``consensus_with_known_raters`` and ``quality.overlap.decide``, the judge's floor of ``people_floor``): judges
   vote first, then people one at a time until the consensus is confident or the task's votes run out. Reliabilities
   are the refresh's, fitted on the non-test votes and the judges. Policies: every vote (all-human), dynamic overlap
   without judges, with GPT-4, with GPT-3.5, with both, at several consensus thresholds; and GPT-4 trusted alone
   (``judge_trust``). Reported: human votes used, and accuracy of the consensus winner against the held-out votes
   (non-tie), with a paired bootstrap interval of the difference from all-human.
3. **Failure drills.** The server times out, answers 429, or replies garbage on a share of calls, on 200 tasks: the
   run finishes (a run that gives up is started again, as an operator would), calls stay within the retry bounds, and
   the rankings equal a fault-free run's: nothing lost, nothing counted twice.

    .venv/bin/python bench/feedback_bench.py [--seeds 3]       # = make bench-feedback

Writes bench/results/feedback.json and feedback.png. Needs PostgreSQL (as ``make test``); exits 0 with a message
when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import http.server
import json
import os
import platform
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

JUDGES = {"gpt4": ("gpt-4", "llmfao-gpt4-judge-crowd-pairs.csv", "0.03", "0.06"),
          "gpt35": ("gpt-3.5-turbo", "llmfao-gpt35-judge-crowd-pairs.csv", "0.0015", "0.002")}
LABEL = {"gpt4": "GPT-4", "gpt35": "GPT-3.5 Turbo"}
THRESHOLDS = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


# --- the data ------------------------------------------------------------------------------------------------


def load_data():
    pairs = {}
    with open(DATA / "llmfao-pairs-crowd.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            pairs[int(row["id"])] = row
    votes = defaultdict(list)  # pair id → [(worker, left|right|tie)]
    with open(DATA / "llmfao-crowd-comparisons.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            votes[int(row["id"])].append((row["worker"], row["winner"]))
    verdicts = {}
    for key, (_, name, _, _) in JUDGES.items():
        with open(DATA / name, encoding="utf-8") as f:
            verdicts[key] = {int(row["id"]): row["winner"] for row in csv.DictReader(f)}
    # Some models gave word-for-word the same answer, so some pairs are the same question as another (same prompt,
    # same two texts). A server that reads only the question cannot tell them apart: where the recorded judges
    # answered the copies differently, those pairs are left out of every part, and out of the CSV figures too.
    copies = defaultdict(list)
    for i, row in pairs.items():
        copies[(row["text"], frozenset([row["result_x"], row["result_y"]]))].append(i)

    def winner_text(key, i):
        row, winner = pairs[i], verdicts[key][i]
        return "tie" if winner == "tie" else row["result_x" if winner == "left" else "result_y"]

    ambiguous = {i for ids in copies.values() if len(ids) > 1
                 for key in verdicts if len({winner_text(key, j) for j in ids}) > 1 for i in ids}
    pairs = {i: row for i, row in pairs.items() if i not in ambiguous}
    votes = {i: calls for i, calls in votes.items() if i in pairs}
    verdicts = {key: {i: v for i, v in answers.items() if i in pairs} for key, answers in verdicts.items()}
    return pairs, votes, verdicts, len(ambiguous)


def plurality(calls: list[str]) -> str | None:
    counts = Counter(calls).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def independent_agreement(votes, verdicts) -> tuple[int, int]:
    """From the CSVs alone: the judge's winner against the crowd's strict plurality, where both name a winner."""
    agree = compared = 0
    for pair_id, calls in votes.items():
        crowd, judge = plurality([c for _, c in calls]), verdicts[pair_id]
        if judge != "tie" and crowd in ("left", "right"):
            compared += 1
            agree += judge == crowd
    return agree, compared


# --- the recorded judges' server -----------------------------------------------------------------------------


class RecordedJudges:
    """Answers a chat-completions request with the recorded verdict of the pair whose texts the prompt holds, in the
    order the prompt shows them. A model name like ``gpt-4#timeout=0.2`` injects faults on that share of calls."""

    def __init__(self, pairs, verdicts, seed: int = 0):
        self.questions = {}  # (prompt, text shown as A, text shown as B) → (pair id, A is the pair's left answer)
        for pair_id, row in sorted(pairs.items()):
            self.questions.setdefault((row["text"], row["result_x"], row["result_y"]), (pair_id, True))
            self.questions.setdefault((row["text"], row["result_y"], row["result_x"]), (pair_id, False))
        self.verdicts = verdicts
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.calls = Counter()
        self.httpd = None

    def answer(self, body: dict) -> tuple[int, dict, dict]:
        model, _, fault = body.get("model", "").partition("#")
        judge = next(k for k, v in JUDGES.items() if v[0] == model)
        with self.lock:
            self.calls[model + ("#" + fault if fault else "")] += 1
            roll = self.rng.random()
        if fault:
            kind, share = fault.split("=")
            if roll < float(share):
                with self.lock:
                    self.calls[f"fault:{kind}"] += 1
                if kind == "timeout":
                    time.sleep(1.5)  # the judge's timeout is 1 s: the client gives up and retries
                elif kind == "429":
                    return 429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"}
                elif kind == "garbage":
                    return 200, self.completion("Both answers have merits; it depends on the reader."), {}
        text = body["messages"][-1]["content"]
        verdict = self.find(judge, text)
        return 200, self.completion(verdict), {}

    def find(self, judge: str, text: str) -> str:
        """The question's three texts, cut at the template's own markers (answers may hold fences themselves)."""
        marks = ("&&&\n", "\n&&&\n\nModel A output is in triple backticks:\n\n```\n",
                 "\n```\n\nModel B output is in triple pilcrows:\n\n¶¶¶\n", "\n¶¶¶\n\nWhat is better?")
        try:
            starts = [text.index(marks[0])]
            ends = [text.index(marks[1], starts[0])]
            starts.append(ends[0] + len(marks[1]))
            ends.append(text.rindex(marks[2]))
            starts.append(ends[1] + len(marks[2]))
            ends.append(text.rindex(marks[3]))
        except ValueError:
            return "no such question"
        prompt, first, second = (text[start + (len(marks[0]) if i == 0 else 0):end]
                                 for i, (start, end) in enumerate(zip(starts, ends, strict=True)))
        found = self.questions.get((prompt, first, second))
        if found is None:
            return "no such pair"
        pair_id, a_is_left = found
        winner = self.verdicts[judge][pair_id]
        if winner == "tie":
            return "TIE"
        return "A" if (winner == "left") == a_is_left else "B"

    @staticmethod
    def completion(text: str) -> dict:
        return {"id": "c", "object": "chat.completion", "created": 0, "model": "recorded",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 400, "completion_tokens": 1, "total_tokens": 401}}

    def start(self) -> str:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                status, payload, headers = server.answer(body)
                raw = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


# --- the platform -------------------------------------------------------------------------------------------


def setup_django(db: str) -> None:
    import psycopg

    base = os.environ.get("VERDICT_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "VERDICT_MODE": "test",
                       "DATABASE_URL": f"{base}/{db}"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_project(name: str, pairs, pair_ids):
    """A K = 2 project with one task per pair; completions shared by the pairs of a prompt (one per model)."""
    from annotation.models import Completion, Project, Prompt, RankingTask

    project = Project.objects.create(name=name, k=2, overlap=1)
    prompts, completions, tasks = {}, {}, {}
    for pair_id in pair_ids:
        row = pairs[pair_id]
        if row["prompt"] not in prompts:
            prompts[row["prompt"]] = Prompt.objects.create(project=project, external_id=str(row["prompt"]),
                                                           text=row["text"])
        prompt = prompts[row["prompt"]]
        for side in ("x", "y"):
            key = (row["prompt"], row[f"model_{side}"])
            if key not in completions:
                completions[key] = Completion.objects.create(prompt=prompt, model_name=str(row[f"model_{side}"]),
                                                             text=row[f"result_{side}"])
        task = RankingTask.objects.create(project=project, prompt=prompt)
        task.completions.set([completions[(row["prompt"], row["model_x"])],
                              completions[(row["prompt"], row["model_y"])]])
        tasks[pair_id] = (task, completions[(row["prompt"], row["model_x"])].pk,
                          completions[(row["prompt"], row["model_y"])].pk)
    return project, tasks


def add_crowd(project, tasks, votes) -> None:
    """The crowd's votes as its workers' rankings (left shown first), written in bulk."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from annotation.models import Assignment, Membership, Ranking

    users = {}
    for worker in sorted({w for calls in votes.values() for w, _ in calls}):
        users[worker] = get_user_model().objects.create(username=f"{project.pk}-worker-{worker}")
        Membership.objects.create(project=project, user=users[worker])
    now = timezone.now()
    assignments, rankings = [], []
    for pair_id, (task, left, right) in tasks.items():
        for worker, call in votes[pair_id]:
            order = [[left], [right]] if call == "left" else [[right], [left]] if call == "right" else [[left, right]]
            assignments.append(Assignment(task=task, rater=users[worker], status=Assignment.SUBMITTED,
                                          leased_at=now, expires_at=now, display_order=[left, right]))
            rankings.append((task, users[worker], order, [left, right]))
    Assignment.objects.bulk_create(assignments, batch_size=2000)
    Ranking.objects.bulk_create([Ranking(assignment=a, task=t, rater=u, order=o, display_order=d, time_spent_ms=20_000)
                                 for a, (t, u, o, d) in zip(assignments, rankings, strict=True)], batch_size=2000)


def make_judge(project, key: str, url: str, fault: str = ""):
    from decimal import Decimal

    from feedback.models import Judge

    model, _, cost_in, cost_out = JUDGES[key]
    return Judge.objects.create(project=project, name=key + (f" ({fault})" if fault else ""), base_url=url,
                                model=model + (f"#{fault}" if fault else ""), timeout_s=1.0 if fault else 30.0,
                                max_retries=4, parse_retries=1, principles=[],
                                cost_per_1k_input=Decimal(cost_in), cost_per_1k_output=Decimal(cost_out))


def calibration(pairs, votes, verdicts, url) -> dict:
    from feedback.runs import run_judge
    from quality.models import RaterQuality
    from quality.refresh import refresh_project

    ids = sorted(pairs)
    project, tasks = build_project("LLMFAO calibration", pairs, ids)
    add_crowd(project, tasks, votes)
    out = {"tasks": len(tasks), "crowd_votes": sum(len(votes[i]) for i in ids), "judges": {}}
    judges = {}
    for key in JUDGES:
        judges[key] = make_judge(project, key, url)
        started = time.monotonic()
        summary = run_judge(judges[key])
        seconds = time.monotonic() - started
        print(f"  {key}: {summary.rankings} rankings, {summary.questions} questions in {seconds:.0f} s, "
              f"cost {summary.cost}", flush=True)
        out["judges"][key] = {"run": summary.as_dict(), "seconds": round(seconds, 1),
                              "questions_per_second": round(summary.questions / seconds, 1)}
    started = time.monotonic()
    refresh_project(project)
    out["refresh_seconds"] = round(time.monotonic() - started, 1)
    for key, judge in judges.items():
        judge.refresh_from_db()
        q = RaterQuality.objects.get(project=project, rater_id=judge.user_id)
        agree, compared = independent_agreement(votes, verdicts[key])
        out["judges"][key].update({
            "platform_agreement": q.crowd_agreement, "platform_pairs": q.crowd_pairs,
            "platform_interval": [round(v, 4) for v in q.crowd_interval],
            "independent_agreement": agree / compared, "independent_pairs": compared,
            "equal": q.crowd_pairs == compared and abs(q.crowd_agreement - agree / compared) < 1e-12,
            "reliability": q.reliability, "reliability_interval": [q.reliability_low, q.reliability_high],
            "loo_agreement": q.loo_agreement})
        print(f"  {key}: platform {q.crowd_agreement:.4f} over {q.crowd_pairs} pairs, CSVs {agree / compared:.4f} "
              f"over {compared}; reliability {q.reliability:.3f} [{q.reliability_low:.3f}, "
              f"{q.reliability_high:.3f}]", flush=True)
    workers = RaterQuality.objects.filter(project=project, is_judge=False)
    out["worker_reliability_median"] = float(np.median([q.reliability for q in workers]))
    return out


# --- hybrid routing, replayed with the platform's functions -------------------------------------------------


def order_of(call: str, left: int, right: int) -> list[list[int]]:
    return [[left], [right]] if call == "left" else [[right], [left]] if call == "right" else [[left, right]]


def routing_seed(args) -> dict:
    """One seed: held-out votes, the refresh's reliabilities on the rest, then every policy over every task."""
    seed, votes, verdicts, completion = args
    import django

    django.setup()  # the models' modules, no database: the replay is pure
    from quality.overlap import decide
    from quality.refresh import RankingRow, fit_project
    from quality.signals import consensus_with_known_raters

    rng = random.Random(seed)
    test, pool = {}, {}
    for pair_id in sorted(votes):
        calls = list(votes[pair_id])
        if len(calls) < 3:
            continue
        rng.shuffle(calls)
        test[pair_id], pool[pair_id] = calls[0], calls[1:]
    rows = []

    def row(rater, pair_id, call):
        left, right = completion[pair_id]  # one id per (prompt, model), as the platform's completions
        return RankingRow(len(rows), pair_id, rater, order_of(call, left, right), [left, right], 0, [], pair_id,
                          judge=rater in JUDGES)

    for pair_id, calls in pool.items():
        rows.extend(row(w, pair_id, c) for w, c in calls)
        rows.extend(row(j, pair_id, verdicts[j][pair_id]) for j in JUDGES)
    fit = fit_project(rows)  # the refresh's fit
    index = {key: i for i, key in enumerate(fit.votes.raters)}
    known = {key: (float(fit.reliability[i]), float(np.exp(fit.log_nu[i])), [float(v) for v in fit.noise[i]])
             for key, i in index.items()}
    low = {j: float(fit.reliability_low[index[j]]) for j in JUDGES}

    fits = {}  # (pair, judges, people) → consensus: every policy of a family replays the same prefixes of votes

    def consensus_of(pair_id, judges, task_rows):
        key = (pair_id, judges, len(task_rows))
        if key not in fits:
            fits[key] = consensus_with_known_raters(task_rows, known)
        return fits[key]

    def replay(judges: tuple[str, ...], threshold: float | None, trust: float | None) -> dict:
        used, correct = 0, []
        for pair_id, calls in pool.items():
            task_rows = [row(j, pair_id, verdicts[j][pair_id]) for j in judges]
            floor = 0 if trust is not None and any(low[j] >= trust for j in judges) else 1
            people = 0
            while True:
                if threshold is None:  # all-human: every vote there is
                    done = people >= len(calls)
                    consensus = consensus_of(pair_id, judges, task_rows) if done else None
                else:
                    consensus = consensus_of(pair_id, judges, task_rows) if task_rows else None
                    confidence = consensus.confidence if consensus else 0.5
                    done = decide(people, floor, len(calls), confidence, threshold).done or people >= len(calls)
                if done:
                    break
                task_rows.append(row(calls[people][0], pair_id, calls[people][1]))
                people += 1
            used += people
            call = test[pair_id][1]
            if call == "tie":
                continue
            left, right = completion[pair_id]
            scores = consensus.scores if consensus else {}
            s_left, s_right = scores.get(str(left), 0.0), scores.get(str(right), 0.0)
            correct.append(0.5 if s_left == s_right else float((s_left > s_right) == (call == "left")))
        return {"votes": used, "correct": correct}

    policies = {"all-human": ((), None, None)}
    for t in THRESHOLDS:
        policies[f"people@{t}"] = ((), t, None)
        policies[f"gpt4@{t}"] = (("gpt4",), t, None)
        policies[f"gpt35@{t}"] = (("gpt35",), t, None)
        policies[f"both@{t}"] = (("gpt4", "gpt35"), t, None)
    trust = round(low["gpt4"] - 0.01, 3)  # a bar GPT-4 clears: tasks it settles alone need nobody
    for t in THRESHOLDS:
        policies[f"gpt4-trusted@{t}"] = (("gpt4",), t, trust)
    results = {name: replay(*spec) for name, spec in policies.items()}
    return {"seed": seed, "pool_votes": sum(len(c) for c in pool.values()), "tasks": len(pool),
            "judge_reliability_low": low, "trust": trust, "policies": results}


def summarise(seeds: list[dict], boot: int = 2000) -> dict:
    rng = np.random.default_rng(0)
    names = list(seeds[0]["policies"])
    base_votes = sum(s["policies"]["all-human"]["votes"] for s in seeds)
    out = {}
    for name in names:
        correct = np.concatenate([s["policies"][name]["correct"] for s in seeds])
        base = np.concatenate([s["policies"]["all-human"]["correct"] for s in seeds])
        diff = correct - base
        draws = rng.integers(0, len(diff), size=(boot, len(diff)))
        means = diff[draws].mean(axis=1)
        votes = sum(s["policies"][name]["votes"] for s in seeds)
        out[name] = {"vote_share": round(votes / base_votes, 4), "votes_per_seed": votes / len(seeds),
                     "accuracy": round(float(correct.mean()), 4),
                     "accuracy_diff": round(float(diff.mean()), 4),
                     "accuracy_diff_ci95": [round(float(np.quantile(means, 0.025)), 4),
                                            round(float(np.quantile(means, 0.975)), 4)]}
    return out


def cheapest_at_equal_accuracy(summary: dict, family: str) -> dict | None:
    """The family's policy with the fewest votes whose accuracy is not shown lower than all-human (the upper end
    of the difference's 95 % interval ≥ 0) and whose point estimate is within one point of it."""
    fits = [(v["vote_share"], name) for name, v in summary.items() if name.startswith(family + "@")
            and v["accuracy_diff_ci95"][1] >= 0 and v["accuracy_diff"] >= -0.01]
    if not fits:
        return None
    share, name = min(fits)
    return {"policy": name, **summary[name]}


# --- failure drills ------------------------------------------------------------------------------------------


def drills(pairs, votes, verdicts, url, n_tasks: int) -> dict:
    from annotation.models import Ranking
    from feedback.backends import JudgeUnavailable
    from feedback.models import JudgeVerdict
    from feedback.runs import run_judge

    rng = random.Random(7)
    ids = sorted(rng.sample(sorted(pairs), n_tasks))
    project, tasks = build_project("LLMFAO failure drills", pairs, ids)
    clean = make_judge(project, "gpt4", url)
    run_judge(clean)
    expected = {r.task_id: r.order for r in Ranking.objects.filter(rater_id=clean.user_id)}
    out = {}
    for fault in ("timeout=0.2", "429=0.3", "garbage=0.2"):
        judge = make_judge(project, "gpt4", url, fault)
        before = SERVER.calls.copy()
        started, restarts, runs = time.monotonic(), 0, []
        while True:
            try:
                summary = run_judge(judge)
                runs.append(summary.as_dict())
                failed = JudgeVerdict.objects.filter(judge=judge, outcome=JudgeVerdict.FAILED).count()
                if summary.failed_tasks == 0 and not failed:
                    break
            except JudgeUnavailable as exc:
                runs.append({"gave_up": str(exc)})
            restarts += 1
            if restarts > 10:
                break
        calls = sum(n for k, n in SERVER.calls.items() if k.endswith(fault)) - sum(
            n for k, n in before.items() if k.endswith(fault))
        got = {r.task_id: r.order for r in Ranking.objects.filter(rater_id=judge.user_id)}
        questions = JudgeVerdict.objects.filter(judge=judge).count()
        bound = questions * (judge.max_retries + 1) * (judge.parse_retries + 1) * (restarts + 1)
        out[fault] = {"tasks": len(tasks), "runs": len(runs), "restarts": restarts, "calls": calls,
                      "questions": questions, "calls_per_question": round(calls / max(questions, 1), 3),
                      "call_bound": bound, "within_bound": calls <= bound,
                      "rankings": len(got), "rankings_per_task_max": max(Counter(
                          Ranking.objects.filter(rater_id=judge.user_id).values_list("task_id", flat=True)).values()),
                      "same_as_fault_free": got == expected, "seconds": round(time.monotonic() - started, 1),
                      "faults_injected": SERVER.calls[f"fault:{fault.split('=')[0]}"] - before[
                          f"fault:{fault.split('=')[0]}"], "runs_detail": runs}
        print(f"  {fault}: {len(got)}/{len(tasks)} rankings, same as fault-free: {got == expected}, {calls} calls "
              f"for {questions} questions, {restarts} restart(s)", flush=True)
    return out


# --- the figure ----------------------------------------------------------------------------------------------


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    styles = {"people": ("people only (dynamic overlap)", "tab:gray"), "gpt4": ("GPT-4 + people", "tab:blue"),
              "gpt35": ("GPT-3.5 + people", "tab:orange"), "both": ("both judges + people", "tab:green"),
              "gpt4-trusted": ("GPT-4 trusted (0 people allowed)", "tab:purple")}
    for family, (label, colour) in styles.items():
        points = sorted((v["vote_share"], v["accuracy"]) for n, v in summary.items() if n.startswith(family + "@"))
        trusted = family == "gpt4-trusted"  # the same points as GPT-4's except where the judge settles tasks alone
        ax.plot(*zip(*points, strict=True), "s--" if trusted else "o-", color=colour, label=label,
                markersize=3 if trusted else 5, linewidth=1 if trusted else 2, zorder=2 if trusted else 3)
    base = summary["all-human"]
    ax.axhline(base["accuracy"], color="black", linestyle="--", linewidth=1, label="all-human (every vote)")
    ax.axvline(0.5, color="black", linestyle=":", linewidth=1)
    ax.set_xlabel("human votes used (share of all-human)")
    ax.set_ylabel("consensus accuracy vs held-out human votes")
    ax.set_title("Hybrid routing on LLMFAO with recorded GPT-4 / GPT-3.5 verdicts")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


SERVER: RecordedJudges


def main() -> int:
    global SERVER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--drill-tasks", type=int, default=200)
    parser.add_argument("--db", default="verdict_feedback_bench")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if not (DATA / "llmfao-gpt4-judge-crowd-pairs.csv").exists():
        print(f"skipped: the LLMFAO judge data is not in {DATA}")
        return 0
    pairs, votes, verdicts, ambiguous = load_data()
    ids = {}
    completion = {i: tuple(ids.setdefault((row["prompt"], row[f"model_{side}"]), len(ids)) for side in "xy")
                  for i, row in pairs.items()}
    started = time.monotonic()
    base = os.environ.get("VERDICT_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "VERDICT_MODE": "test",
                       "DATABASE_URL": f"{base}/{args.db}"})  # before the pool: its processes set Django up too
    print(f"routing replay over {args.seeds} seed(s) (2 processes)…", flush=True)
    with get_context("spawn").Pool(min(2, args.seeds)) as pool:
        routed = pool.map_async(routing_seed, [(s, dict(votes), verdicts, completion) for s in range(args.seeds)])
        setup_django(args.db)
        import logging

        logging.getLogger("feedback").setLevel(logging.ERROR)
        SERVER = RecordedJudges(pairs, verdicts)
        url = SERVER.start()
        print("calibration: both judges over every LLMFAO pair, then a quality refresh…", flush=True)
        calibrated = calibration(pairs, votes, verdicts, url)
        print("failure drills…", flush=True)
        drilled = drills(pairs, votes, verdicts, url, args.drill_tasks)
        seeds = routed.get()
    summary = summarise(seeds)
    headline = {family: cheapest_at_equal_accuracy(summary, family)
                for family in ("people", "gpt4", "gpt35", "both", "gpt4-trusted")}
    for family, best in headline.items():
        print(f"  {family}: " + (f"{best['policy']} uses {best['vote_share']:.2f} of the votes, accuracy "
                                 f"{best['accuracy']:.3f} ({best['accuracy_diff']:+.3f} "
                                 f"[{best['accuracy_diff_ci95'][0]:+.3f}, {best['accuracy_diff_ci95'][1]:+.3f}])"
                                 if best else "no policy reaches all-human accuracy"), flush=True)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "feedback", "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "seconds": round(time.monotonic() - started, 1), "seeds": args.seeds, "thresholds": THRESHOLDS,
        "pairs": len(pairs), "ambiguous_pairs_left_out": ambiguous, "calibration": calibrated,
        "routing": {"summary": summary, "at_equal_accuracy": headline,
                    "per_seed": [{k: v for k, v in s.items() if k != "policies"} for s in seeds]},
        "drills": drilled,
    }
    (out_dir / "feedback.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(summary, out_dir / "feedback.png")
    print(f"wrote {out_dir / 'feedback.json'} and feedback.png in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
