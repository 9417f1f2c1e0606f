"""The Goodhart watch (serving.watch): per policy run, windows of reward distribution, reward–length correlation,
share far from the training data and rater disagreement; alarms flag the run and call the webhook; API and admin."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from active_learning import pipeline
from annotation.assignment import next_assignment
from annotation.submission import RankingPayload, submit_ranking
from serving import capture, watch
from serving.models import CapturePolicy, PolicyRun, WatchWindow
from tests.conftest import client_for
from tests.test_rewardmodel_api import trained  # noqa: F401 - an active tiny version

pytestmark = [pytest.mark.usefixtures("model_root"), pytest.mark.django_db]


@pytest.fixture
def webhook():
    """A real HTTP server on localhost that records what it is POSTed."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def capture_steps(project, version, run: str, steps: range, per_step: int = 8, reward=len) -> None:
    for step in steps:
        prompt = f"prompt at step {step}?"
        completions = [f"reply {step}.{i} " + "padding words " * i for i in range(per_step)]
        capture.capture(project, run, step, [(prompt, c) for c in completions], [float(reward(c)) for c in completions],
                        version.pk)


def test_windows_follow_the_run_and_a_length_exploit_is_flagged_once(project, trained, webhook):  # noqa: F811
    url, received = webhook
    CapturePolicy.objects.create(project=project, enabled=True, webhook_url=url)
    capture_steps(project, trained, "grpo", range(0, 3))  # reward = length: the classic exploit
    assert watch.watch_all() == 1
    run = PolicyRun.objects.get(name="grpo")
    window = run.windows.get()
    assert window.samples == 24 and (window.step_min, window.step_max) == (0, 2)
    assert window.length_correlation == pytest.approx(1.0)
    lengths = [len(f"reply {s}.{i} " + "padding words " * i) for s in range(3) for i in range(8)]
    assert window.reward_mean == pytest.approx(np.mean(lengths))
    assert window.reward_quantiles == pytest.approx(np.quantile(lengths, [0.1, 0.25, 0.5, 0.75, 0.9]).tolist())
    assert 0.0 <= window.far_share <= 1.0  # the version's training data stands as the reference
    run.refresh_from_db()
    assert run.flagged and "reward–length correlation 1.00 > 0.50" in run.flag_reason
    assert len(received) == 1 and received[0]["run"] == "grpo" and received[0]["window"]["samples"] == 24

    assert watch.watch_all() == 0  # nothing new: no window
    capture_steps(project, trained, "grpo", range(3, 6))
    assert watch.watch_all() == 1
    windows = list(run.windows.order_by("id"))
    assert [(w.step_min, w.step_max) for w in windows] == [(0, 2), (3, 5)]
    assert windows[1].first_sample > windows[0].last_sample
    assert len(received) == 1  # flagged already: no second call


def test_a_run_without_exploit_is_not_flagged(project, trained):  # noqa: F811
    CapturePolicy.objects.create(project=project, enabled=True, alarm_far_share=1.0)
    capture_steps(project, trained, "calm", range(0, 3), reward=lambda c: float(hash(c) % 7))
    window = watch.watch_run(PolicyRun.objects.get(name="calm"))
    assert window is not None and window.alarms == [] and abs(window.length_correlation) < 0.5
    assert not PolicyRun.objects.get(name="calm").flagged


def test_far_share_measures_distance_from_the_training_data():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 16)) + np.array([5.0] + [0.0] * 15)  # a cluster
    feats = train / np.linalg.norm(train, axis=1, keepdims=True)
    sims = feats @ feats.T
    np.fill_diagonal(sims, -np.inf)
    reference = watch.Reference(feats, float(np.quantile(1 - sims.max(1), 0.95)))
    assert watch.far_share(reference, train[:50]) == 0.0  # training items are at distance 0 of themselves
    away = rng.normal(size=(50, 16)) - np.array([5.0] + [0.0] * 15)  # the opposite direction
    assert watch.far_share(reference, away) == 1.0


def test_rater_disagreement_on_routed_groups_raises_the_alarm(project, trained, rater):  # noqa: F811
    project.overlap, project.eval_share = 1, 0
    project.save()
    CapturePolicy.objects.create(project=project, enabled=True, groups_per_round=5, alarm_length_correlation=1.0,
                                 alarm_far_share=1.0)
    capture_steps(project, trained, "hacker", range(0, 5), per_step=4)
    tasks = pipeline.run_round(project, "uncertainty", 1, seed=0).summary["captured"]["tasks"]
    assert len(tasks) == 5
    while (assignment := next_assignment(project, rater)) is not None and assignment.task_id in tasks:
        completions = list(assignment.task.completions.all())
        worst_first = sorted(completions, key=lambda c: c.metadata["reward"])  # raters reverse the reward model
        submit_ranking(assignment, RankingPayload(order=[[c.pk] for c in worst_first]))
    run = PolicyRun.objects.get(name="hacker")
    window = watch.watch_run(run)
    assert window.ranked_pairs == 5 * 6 and window.disagreement == 1.0
    assert any("raters disagree with the reward model on 100% of 30 pairs" in a for a in window.alarms)
    assert watch.watch_run(run) is None  # the same rankings are not counted twice


def test_api_and_admin_show_the_watch(project, trained, manager, rater, client, make_user):  # noqa: F811
    CapturePolicy.objects.create(project=project, enabled=True)
    capture_steps(project, trained, "grpo", range(0, 3))
    watch.watch_all()
    run = PolicyRun.objects.get(name="grpo")
    runs = client_for(manager).get(f"/api/projects/{project.pk}/policy-runs/")
    assert runs.status_code == 200
    row = runs.json()["results"][0] if "results" in runs.json() else runs.json()[0]
    assert row["name"] == "grpo" and row["flagged"] and row["samples"] == 24
    assert row["latest_window"]["length_correlation"] == pytest.approx(1.0)
    windows = client_for(manager).get(f"/api/projects/{project.pk}/policy-runs/{run.pk}/watch/").json()
    windows = windows["results"] if "results" in windows else windows
    assert [w["samples"] for w in windows] == [24]
    assert client_for(rater).get(f"/api/projects/{project.pk}/policy-runs/").status_code in (403, 404)

    client.force_login(manager)  # staff without the serving app's permissions
    assert client.get(f"/admin/serving/policyrun/{run.pk}/watch.png").status_code == 403
    client.force_login(make_user("engineer", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/serving/policyrun/{run.pk}/change/")
    assert page.status_code == 200 and b"Goodhart watch" in page.content
    png = client.get(f"/admin/serving/policyrun/{run.pk}/watch.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert WatchWindow.objects.filter(run=run).count() == 1
