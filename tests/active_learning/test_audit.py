"""The routing audit (active_learning.audit) and policy auto: strategies replayed against random on the evaluation
stream, and a round that uses what the audit shows, or random among fresh tasks."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning import pipeline
from active_learning.audit import AuditData, AuditResult, replay, verdict
from active_learning.models import RoutingAudit, SelectedItem
from annotation.assignment import next_assignment
from annotation.eval_stream import top_up
from annotation.models import RankingTask
from annotation.submission import RankingPayload, submit_ranking


def synthetic(n_prompts=40, per=4, noise=0.15, seed=0) -> AuditData:
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n_prompts * per, 24))
    quality = feats @ rng.normal(size=24)
    pairs, prompts = [], []
    for p in range(n_prompts):
        items = range(p * per, (p + 1) * per)
        for a in items:
            for b in items:
                if a < b:
                    better = (a, b) if quality[a] > quality[b] else (b, a)
                    pairs.append(better if rng.random() > noise else better[::-1])
                    prompts.append(p)
    return AuditData(feats, np.array(pairs), np.array(prompts))


def test_replay_is_paired_and_reproducible():
    one, two = replay(synthetic(), resamples=6), replay(synthetic(), resamples=6)
    assert one.strategies == two.strategies
    assert one.strategies["random"]["auc_gain_vs_random"] == 0
    for r in one.strategies.values():
        assert set(r) == {"final_accuracy", "auc_gain_vs_random", "auc_gain_ci95", "budget_share",
                          "budget_share_ci95"}
        lo, hi = r["auc_gain_ci95"]
        assert lo <= r["auc_gain_vs_random"] <= hi


def test_too_small_a_stream_is_refused():
    with pytest.raises(ValueError, match="needs at least 40"):
        replay(synthetic(n_prompts=3), resamples=2)


def test_verdict_needs_a_saving_and_no_loss():
    def result(share_hi, gain_lo):
        return AuditResult(labels=[1], strategies={
            "random": {"auc_gain_vs_random": 0.0, "auc_gain_ci95": [0, 0], "budget_share": 1.0,
                       "budget_share_ci95": [0.9, 1.0], "final_accuracy": 0.7},
            "dopt": {"auc_gain_vs_random": 0.02, "auc_gain_ci95": [gain_lo, 0.04], "budget_share": 0.6,
                     "budget_share_ci95": [0.4, share_hi], "final_accuracy": 0.72}})

    assert verdict(result(0.8, 0.005))[0] == "dopt"
    for share_hi, gain_lo in ((1.0, 0.005), (None, 0.005), (0.8, -0.001)):
        chosen, why = verdict(result(share_hi, gain_lo))
        assert chosen is None and "no strategy is shown to save labels" in why


@pytest.fixture
def streamed(project, rater, rater2, make_task, settings, tmp_path, lenient_gate):
    """A project with an evaluation stream of labelled tasks and an active tiny version that may route."""
    from active_learning.models import ActiveLearningPolicy
    from rewardmodel.models import RewardModelVersion
    from rewardmodel.testing import make_tiny_backbone

    project.overlap, project.eval_share = 1, 0.5
    project.save()
    tasks = [make_task(project) for _ in range(30)]
    top_up(project)
    for user in (rater, rater2):  # rank every task of the stream, and a few others
        for _ in range(12):
            a = next_assignment(project, user)
            if a is None:
                break
            ids = a.task.completions.order_by("id").values_list("id", flat=True)
            submit_ranking(a, RankingPayload(order=[[c] for c in ids]))
    settings.VERDICT_MODEL_ROOT = tmp_path
    make_tiny_backbone(tmp_path / "v1", seed=0)
    version = RewardModelVersion.objects.create(project=project, status=RewardModelVersion.READY, base_model="tiny",
                                                number=1, path="v1", job_key="k1", is_active=True,
                                                metrics={"train_rankings": 40, "heldout_pairs": 60})
    ActiveLearningPolicy.objects.create(project=project, audit_min_pairs=40)
    return project, tasks, version


def test_auto_audits_the_stream_and_says_why(streamed):
    project, _, version = streamed
    stream_pairs = RankingTask.objects.filter(project=project, eval_key__isnull=False, submitted_count=1).count() * 6
    assert stream_pairs >= 40
    rnd = pipeline.run_round(project, batch_size=4, seed=0)  # the policy's default strategy: auto
    assert rnd.strategy == "auto" and rnd.status == "done", rnd.error
    audit = RoutingAudit.objects.get(project=project)
    assert audit.model_version == version and audit.eval_pairs == stream_pairs
    assert set(audit.results["strategies"]) >= {"random", "dopt", "past_dopt", "gap_ucb", "bald", "uncertainty"}
    used = rnd.summary["strategy_used"]
    assert used == (audit.chosen or "random") and f"audit {audit.pk}" in rnd.summary["strategy_note"]
    if not audit.chosen:  # random among fresh tasks: no re-ask is created
        assert not rnd.items.filter(action=SelectedItem.CREATED).exists()
    again = pipeline.run_round(project, batch_size=4, seed=1)
    assert RoutingAudit.objects.filter(project=project).count() == 1  # no new labels: the audit stands
    assert f"audit {audit.pk}" in again.summary["strategy_note"]


def test_auto_waits_for_enough_stream_labels(streamed):
    from active_learning.models import ActiveLearningPolicy

    project, _, _ = streamed
    ActiveLearningPolicy.objects.filter(project=project).update(audit_min_pairs=10_000)
    rnd = pipeline.run_round(project, batch_size=4, seed=0)
    assert rnd.summary["strategy_used"] == "random" and "the audit needs 10000" in rnd.summary["strategy_note"]
    assert not RoutingAudit.objects.exists()
    assert not rnd.items.filter(action=SelectedItem.CREATED).exists()


def test_the_audit_in_the_api_and_the_admin(streamed, plain_manager, rater, token_client, client, make_user):
    project, _, _ = streamed
    url = f"/api/projects/{project.pk}/active-learning/audit/"
    assert token_client(plain_manager).get(url).status_code == 404  # none yet
    pipeline.run_round(project, batch_size=4, seed=0)
    body = token_client(plain_manager).get(url).json()
    assert body["eval_pairs"] >= 40 and "dopt" in body["results"]["strategies"]
    assert token_client(rater).get(url).status_code == 403
    assert token_client(make_user("stranger")).get(url).status_code == 404
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/active_learning/routingaudit/{body['id']}/change/")
    assert page.status_code == 200 and b"budget share [95 % CI]" in page.content


@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_auto_through_a_real_worker(streamed):
    """The round as production runs it: queued on Redis, taken by a Celery worker, audited there."""
    from django.conf import settings as django_settings

    if not django_settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (a real Redis broker)")
    from celery.contrib.testing.worker import start_worker

    from active_learning.tasks import run_round
    from config.celery import app

    project, _, _ = streamed
    with start_worker(app, queues=["gpu"], perform_ping_check=False, concurrency=1, pool="solo",
                      shutdown_timeout=10):
        out = run_round.delay(project.pk, batch_size=4, seed=0).get(timeout=120)
    assert out["status"] == "done"
    audit = RoutingAudit.objects.get(project=project)
    from active_learning.models import SelectionRound

    rnd = SelectionRound.objects.get(pk=out["round_id"])
    assert rnd.strategy == "auto" and f"audit {audit.pk}" in rnd.summary["strategy_note"]
