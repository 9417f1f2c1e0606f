"""One active-learning round for a project: candidates → features → stability → selection → routing.

This is the glue between the database, the reward-model app (``rewardmodel.*``) and the pure modules
``stability``, ``design`` and ``selection``.  Without an active reward-model version that the promotion gate lets
drive routing (``registry.version_for_routing``) the round still runs: features then come from the frozen default
backbone, the ensemble alone judges stability, the last-layer strategies (``dopt``, ``past_dopt``, ``gap_ucb``,
``bald``), which need the version's head, start cold as ``random``, and the round's summary says why.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from active_learning import audit, captured, embedding, routing
from active_learning.design import LastLayer
from active_learning.models import ActiveLearningPolicy, CachedEmbedding, RoutingAudit, SelectedItem, SelectionRound
from active_learning.selection import AUTO, DESIGN_STRATEGIES, POLICIES, RANDOM, select
from active_learning.signals import round_finished
from active_learning.stability import fit_ensemble, pair_features, pair_stability, rater_votes
from annotation import eval_stream
from annotation.models import Completion, Project, Ranking, RankingTask
from annotation.pairs import ranking_to_pairs
from rewardmodel import registry, scoring
from rewardmodel.metrics import clean

log = logging.getLogger(__name__)

MAX_CANDIDATE_TASKS = 2000
MAX_LABELLED_COMPARISONS = 20000


# --- reward-model access -----------------------------------------------------------------------


def _texts(completions: list[Completion]) -> tuple[list[str], list[str]]:
    return [c.prompt.text for c in completions], [c.text for c in completions]


def version_scores_of(version, prompts: list[str], texts: list[str]) -> np.ndarray | None:
    if version is None:
        return None
    return np.asarray(scoring.score(version, prompts, texts), dtype=np.float64).reshape(-1)


def version_scores(version, completions: list[Completion]) -> np.ndarray | None:
    return version_scores_of(version, *_texts(completions))


# --- cached features ---------------------------------------------------------------------------


def feature_source(version) -> str:
    if version is not None:
        return f"version:{version.pk}"
    return f"backbone:{embedding.default_backbone_path()}"


def text_features(version, prompts: list[str], texts: list[str]) -> np.ndarray:
    """The version's last-layer features of (prompt, completion) texts; the frozen backbone's without a version."""
    if version is not None:
        return np.asarray(scoring.embed(version, prompts, texts), dtype=np.float32)
    return embedding.embed_texts(prompts, texts)


def _compute_features(version, completions: list[Completion]) -> np.ndarray:
    return text_features(version, *_texts(completions))


def completion_features(version, completions: list[Completion], chunk: int = 256) -> tuple[np.ndarray, str]:
    """(n, d) features in the order of ``completions``, computing and caching only what is not cached."""
    source = feature_source(version)
    ids = [c.pk for c in completions]
    cached = {
        e.completion_id: e.as_array()
        for e in CachedEmbedding.objects.filter(source_key=source, completion_id__in=ids).only(
            "completion_id", "dim", "vector"
        )
    }
    missing = [c for c in completions if c.pk not in cached]
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        vectors = _compute_features(version, part)
        rows = [
            CachedEmbedding(
                source_key=source, completion=c, dim=v.shape[0], vector=np.ascontiguousarray(v, dtype="<f4").tobytes()
            )
            for c, v in zip(part, vectors, strict=True)
        ]
        CachedEmbedding.objects.bulk_create(rows, ignore_conflicts=True)
        cached.update({c.pk: np.asarray(v, dtype=np.float32) for c, v in zip(part, vectors, strict=True)})
    if not completions:
        return np.zeros((0, 0), dtype=np.float32), source
    return np.stack([cached[i] for i in ids]), source


# --- candidates and labels ---------------------------------------------------------------------


@dataclass
class Candidates:
    pairs: list[tuple[int, int]]  # completion ids, a < b
    task_of: dict[tuple[int, int], int] = field(default_factory=dict)  # a task holding the pair (open first)
    open: set = field(default_factory=set)  # pairs of an open task: routing them raises a priority, no re-ask


def candidate_pairs(project: Project, max_tasks: int = MAX_CANDIDATE_TASKS) -> Candidates:
    """Every pair of completions shown together in a non-gold task outside the evaluation stream (routing must not
    choose what judges it), least-rated tasks first."""
    tasks = (
        RankingTask.objects.filter(project=project, is_gold=False, eval_key__isnull=True)
        .order_by("submitted_count", "-priority", "id")
        .prefetch_related("completions")[:max_tasks]
    )
    out = Candidates(pairs=[])
    open_task: dict[tuple[int, int], bool] = {}
    for task in tasks:
        ids = sorted(c.pk for c in task.completions.all())
        for pair in itertools.combinations(ids, 2):
            is_open = task.status == RankingTask.OPEN
            if pair not in out.task_of:
                out.pairs.append(pair)
                out.task_of[pair] = task.pk
                open_task[pair] = is_open
            elif is_open and not open_task[pair]:
                out.task_of[pair] = task.pk
                open_task[pair] = True
    out.open = {p for p, is_open in open_task.items() if is_open}
    return out


def labelled_comparisons(project: Project, limit: int = MAX_LABELLED_COMPARISONS) -> list[tuple[int, int]]:
    """(winner, loser) completion ids from every submitted ranking of the project (gold tasks included)."""
    out: list[tuple[int, int]] = []
    rankings = Ranking.objects.filter(task__project=project).from_people().order_by("-submitted_at")
    for order in rankings.values_list("order", flat=True):
        out.extend(ranking_to_pairs(order))
        if len(out) >= limit:
            break
    return out[:limit]


def ask_counts(project: Project, pairs: list[tuple[int, int]]) -> tuple[np.ndarray, dict[int, int]]:
    """How often each (unordered) pair, and each prompt (all its pairs together), was already routed back."""
    pair_counts: dict[tuple[int, int], int] = {}
    prompt_counts: dict[int, int] = {}
    items = SelectedItem.objects.filter(round__project=project, round__status=SelectionRound.DONE)
    for a, b, prompt in items.values_list("completion_a_id", "completion_b_id", "completion_a__prompt_id"):
        key = (min(a, b), max(a, b))
        pair_counts[key] = pair_counts.get(key, 0) + 1
        prompt_counts[prompt] = prompt_counts.get(prompt, 0) + 1
    return np.array([pair_counts.get(p, 0) for p in pairs], dtype=np.int64), prompt_counts


# --- the round ---------------------------------------------------------------------------------


class RoundError(ValueError):
    """A round could not be started: bad strategy, batch size or project."""


def _validate(strategy: str, batch_size: int) -> None:
    if strategy not in POLICIES:
        raise RoundError(f"unknown strategy {strategy!r}; choose one of {', '.join(POLICIES)}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= 1000:
        raise RoundError("batch_size must be an integer between 1 and 1000")


def create_round(
    project: Project,
    strategy: str | None = None,
    batch_size: int | None = None,
    trigger: str = SelectionRound.ON_DEMAND,
    dedupe_key: str = "",
    seed: int | None = None,
) -> tuple[SelectionRound, bool]:
    """Record a queued round (policy defaults fill the gaps).  Returns (round, created).

    With a ``dedupe_key`` an existing round with the same key is returned instead of a second one.
    """
    policy = ActiveLearningPolicy.for_project(project)
    strategy = strategy or policy.strategy
    batch_size = batch_size if batch_size is not None else policy.batch_size
    _validate(strategy, batch_size)
    params = {
        "seed": int(seed) if seed is not None else int(timezone.now().timestamp()) % 100_000,
        "max_asks": policy.max_asks,
        "max_asks_per_prompt": policy.max_asks_per_prompt,
        "contested_share": policy.contested_share,
        "ensemble_size": policy.ensemble_size,
        "priority": policy.priority_boost,
        "audit_min_pairs": policy.audit_min_pairs,
    }
    try:
        with transaction.atomic():
            rnd = SelectionRound.objects.create(
                project=project,
                strategy=strategy,
                batch_size=batch_size,
                trigger=trigger,
                dedupe_key=dedupe_key,
                params=params,
            )
    except IntegrityError:
        if not dedupe_key:
            raise
        return SelectionRound.objects.get(project=project, dedupe_key=dedupe_key), False
    return rnd, True


def _summary(stab, chosen: np.ndarray, n_labels: int, n_candidates: int, n_contested: int) -> dict:
    def stats(x: np.ndarray) -> dict:
        if len(x) == 0:
            return {}
        return {"mean": float(np.mean(x)), "min": float(np.min(x)), "max": float(np.max(x))}

    def histogram(x: np.ndarray) -> dict:
        counts, edges = np.histogram(x, bins=10) if len(x) else (np.zeros(0), np.zeros(0))
        return {"counts": counts.astype(int).tolist(), "edges": [round(float(e), 4) for e in edges]}

    return {
        "candidates": n_candidates,
        "labelled_comparisons": n_labels,
        "selected": int(len(chosen)),
        "instability_all": stats(stab.instability),
        "instability_selected": stats(stab.instability[chosen]),
        "bald_selected": stats(stab.bald[chosen]),
        "margin_selected": stats(stab.margin[chosen]),
        "flips_all": int(stab.flip.sum()),
        "contested_skipped": n_contested,
        # The raw scores, not `instability`: that is a percentile rank, uniform over the candidates by construction,
        # so its histogram is flat whatever the model thinks. The margin is what ranks by default (small = unsure).
        "margin_histogram": histogram(stab.margin),
        "bald_histogram": histogram(stab.bald),
    }


def execute_round(rnd: SelectionRound) -> SelectionRound:
    """Run a queued (or failed, re-delivered) round to completion; a finished round is returned as is."""
    rnd.refresh_from_db()
    if rnd.status == SelectionRound.DONE:
        return rnd
    SelectionRound.objects.filter(pk=rnd.pk).update(attempts=F("attempts") + 1)
    rnd.refresh_from_db(fields=["attempts"])
    if rnd.attempts > settings.VERDICT_MAX_DELIVERIES:  # its worker was lost every time: stop redelivering it
        SelectionRound.objects.filter(pk=rnd.pk).update(
            status=SelectionRound.FAILED, finished_at=timezone.now(), stage="failed",
            error=f"gave up: started {rnd.attempts} times and its worker was lost each time (killed, out of memory?)")
        rnd.refresh_from_db()
        _announce(rnd)
        return rnd
    SelectionRound.objects.filter(pk=rnd.pk).update(status=SelectionRound.RUNNING, error="", started_at=timezone.now(),
                                                    progress=0.0, stage="starting")
    try:
        _run(rnd)
    except Exception as exc:
        log.exception("active-learning round %s failed", rnd.pk)
        SelectionRound.objects.filter(pk=rnd.pk).update(
            status=SelectionRound.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000], finished_at=timezone.now(),
            stage="failed",
        )
        _announce(rnd)
        raise
    rnd.refresh_from_db()
    _announce(rnd)
    return rnd


def _stage(rnd: SelectionRound, progress: float, stage: str) -> None:
    """Where a running round is, for the admin's progress panel and the API (one small UPDATE per stage)."""
    SelectionRound.objects.filter(pk=rnd.pk).update(progress=progress, stage=stage)


def _announce(rnd: SelectionRound) -> None:
    """``signals.round_finished`` for a round that ended (done or failed), as recorded once that write commits;
    robust: a listener's error never fails the round."""

    def send() -> None:
        rnd.refresh_from_db()
        round_finished.send(sender=SelectionRound, round=rnd)

    transaction.on_commit(send, robust=True)


def _run(rnd: SelectionRound) -> None:
    project = rnd.project
    params = rnd.params
    seed = int(params.get("seed", 0))
    _stage(rnd, 0.05, "evaluation stream")
    eval_marked = eval_stream.top_up(project)  # routing is on: keep an unbiased sample apart before choosing
    version, version_note = registry.version_for_routing(project)
    _stage(rnd, 0.1, "candidates and labels")
    cands = candidate_pairs(project)
    labels = labelled_comparisons(project)
    needed = sorted({i for p in cands.pairs for i in p} | {i for p in labels for i in p})
    completions = list(Completion.objects.filter(pk__in=needed).select_related("prompt").order_by("pk"))
    index = {c.pk: n for n, c in enumerate(completions)}
    _stage(rnd, 0.2, f"features of {len(completions)} completions")
    feats, source = completion_features(version, completions)
    _stage(rnd, 0.5, "ensemble and stability")
    pairs = np.array([(index[a], index[b]) for a, b in cands.pairs], dtype=np.int64).reshape(-1, 2)
    comps = np.array([(index[w], index[lo]) for w, lo in labels], dtype=np.int64).reshape(-1, 2)

    if len(comps):
        heads = fit_ensemble(feats, comps, n_members=int(params.get("ensemble_size", 8)), seed=seed)
    else:  # no labels yet: every member is the zero head, so only the reward model's margin / flips speak
        heads = np.zeros((1, feats.shape[1] if feats.size else 1))
    parent = getattr(version, "parent", None) if version is not None else None
    active_scores = version_scores(version, completions)
    stab = pair_stability(
        heads,
        feats if feats.size else np.zeros((0, heads.shape[1])),
        pairs,
        active_scores=active_scores,
        parent_scores=version_scores(parent, completions),
    )
    strategy, design, strategy_note, fresh_only = rnd.strategy, None, "", False
    if strategy == AUTO:
        strategy, strategy_note = decide_auto(project, version, version_note, int(params.get("audit_min_pairs", 150)))
        fresh_only = strategy == RANDOM  # nothing shown to help: cost the project nothing (no re-asks)
    if strategy in DESIGN_STRATEGIES:
        if active_scores is None:
            strategy, strategy_note = RANDOM, f"cold start: {rnd.strategy} reads the active version's last layer; " \
                                              f"random until a version passes the gate ({version_note})"
        else:
            design = LastLayer.of(feats, active_scores, pairs, comps)
    _stage(rnd, 0.7, f"selection ({strategy})")
    pair_asks, prompt_asks = ask_counts(project, cands.pairs)
    prompt_of = np.array([completions[index[a]].prompt_id for a, _ in cands.pairs], dtype=np.int64)
    prompt_cap = int(params.get("max_asks_per_prompt", 3))
    votes = rater_votes(comps, pairs)
    contested = votes.contested(float(params.get("contested_share", 0.3)))
    eligible = np.array([prompt_asks.get(int(p), 0) < prompt_cap for p in prompt_of], dtype=bool) & ~contested
    if fresh_only:  # pairs of open tasks only: raising a priority, never a re-ask of labelled work
        eligible &= np.array([p in cands.open for p in cands.pairs], dtype=bool)
    chosen = select(
        strategy,
        stab.instability,
        rnd.batch_size,
        features=pair_features(feats, pairs) if len(pairs) else None,
        ask_counts=pair_asks,
        max_asks=int(params.get("max_asks", 2)),
        seed=seed,
        eligible=eligible,
        groups=prompt_of,
        design=design,
    )

    _stage(rnd, 0.8, "captured groups")
    captured_summary, captured_route = _captured_groups(project, version, heads, strategy, seed)
    _stage(rnd, 0.9, "routing")

    def row(i: int) -> dict:
        return {**stab.row(i), "votes": int(votes.total[i]), "rater_split": float(votes.minority_share[i])}

    with transaction.atomic():
        SelectedItem.objects.filter(round=rnd).delete()  # a failed earlier attempt left nothing routed
        routing.route(
            rnd,
            [(cands.pairs[i], cands.task_of[cands.pairs[i]], row(int(i))) for i in chosen],
            priority=int(params.get("priority", 100)),
        )
        captured_summary["tasks"] = captured_route(int(params.get("priority", 100)))
        SelectionRound.objects.filter(pk=rnd.pk).update(
            status=SelectionRound.DONE,
            progress=1.0,
            stage="done",
            model_version=version,
            feature_source=source[:300],
            summary={
                **_summary(stab, chosen, len(comps), len(pairs), int(contested.sum())),
                "model_note": version_note,
                "strategy_used": strategy,
                "strategy_note": strategy_note,
                "eval_stream_marked": eval_marked,
                "captured": captured_summary,
            },
            finished_at=timezone.now(),
        )


# --- the policy's captured outputs ------------------------------------------------------------


def _captured_groups(project: Project, version, heads: np.ndarray, strategy: str, seed: int):
    """Choose captured groups to rank (active_learning.captured) outside the transaction, where the slow scoring is;
    returns the round summary's part and a callable that writes the tasks inside it."""
    room, note = captured.room_for(project)
    groups = captured.open_groups(project) if room else []
    summary = {"considered": len(groups), "note": note, "tasks": []}
    if not groups:
        return summary, lambda priority: []
    prompts, texts, group_of, pairs = captured.items_of(groups)
    feats = text_features(version, prompts, texts)
    if heads.shape[1] != feats.shape[1]:  # no labels nor candidates yet: the zero head of the features' size
        heads = np.zeros((1, feats.shape[1]))
    scores = version_scores_of(version, prompts, texts)
    rewards = scores if scores is not None else np.array([s.reward for g in groups for s in g.samples])
    instability = captured.group_instability(heads, feats, scores, group_of, pairs, len(groups))
    picks = captured.choose(instability, room, strategy, seed)
    summary["instability"] = [round(float(instability[i]), 4) for i in picks]
    summary["note"] = (f"{len(picks)} of {len(groups)} groups, "
                       f"{'at random' if strategy == RANDOM else 'least stable first'} (at most {room} this round)")
    return summary, lambda priority: captured.make_tasks(project, groups, picks, rewards, group_of, priority)


# --- policy auto ------------------------------------------------------------------------------


def stream_comparisons(project: Project) -> tuple[list[tuple[int, int]], list[int]]:
    """(winner, loser) completion ids of the evaluation stream's rankings, and each one's prompt."""
    pairs, prompts = [], []
    rankings = Ranking.objects.filter(task__project=project, task__eval_key__isnull=False).select_related("task")
    for order, prompt in rankings.values_list("order", "task__prompt_id").iterator():
        for w, lo in ranking_to_pairs(order):
            pairs.append((w, lo))
            prompts.append(prompt)
    return pairs[:MAX_LABELLED_COMPARISONS], prompts[:MAX_LABELLED_COMPARISONS]


def run_audit(project: Project, version) -> RoutingAudit:
    """Replay every strategy against random on the evaluation stream with `version`'s features; recorded."""
    import time

    began = time.monotonic()
    labels, prompts = stream_comparisons(project)
    ids = sorted({c for p in labels for c in p})
    completions = list(Completion.objects.filter(pk__in=ids).select_related("prompt").order_by("pk"))
    index = {c.pk: n for n, c in enumerate(completions)}
    feats, _ = completion_features(version, completions)
    data = audit.AuditData(feats, np.array([(index[w], index[lo]) for w, lo in labels], dtype=np.int64),
                           np.array(prompts))
    result = audit.replay(data)
    chosen, reason = audit.verdict(result)
    return RoutingAudit.objects.create(project=project, model_version=version, eval_pairs=len(labels),
                                       results=clean(result.as_dict()),  # never reached: null, not Infinity
                                       chosen=chosen or "", reason=reason,
                                       seconds=round(time.monotonic() - began, 2))


def decide_auto(project: Project, version, version_note: str, min_pairs: int) -> tuple[str, str]:
    """The strategy policy auto uses this round, and why (the round's summary records both)."""
    if version is None:
        return RANDOM, f"auto: random among fresh tasks (cold start: {version_note})"
    labelled, _ = stream_comparisons(project)
    if len(labelled) < min_pairs:
        return RANDOM, (f"auto: random among fresh tasks (the evaluation stream has {len(labelled)} labelled pairs; "
                        f"the audit needs {min_pairs})")
    latest = RoutingAudit.objects.filter(project=project, model_version=version).first()
    if latest is None or latest.eval_pairs != len(labelled):  # a new version, or new labels: audit again
        try:
            latest = run_audit(project, version)
        except ValueError as exc:  # too few prompts in the stream to split
            return RANDOM, f"auto: random among fresh tasks ({exc})"
    if not latest.chosen:
        return RANDOM, f"auto: random among fresh tasks (audit {latest.pk}: {latest.reason})"
    return latest.chosen, f"auto: {latest.chosen} (audit {latest.pk}: {latest.reason})"


def run_round(
    project: Project,
    strategy: str | None = None,
    batch_size: int | None = None,
    trigger: str = SelectionRound.ON_DEMAND,
    dedupe_key: str = "",
    seed: int | None = None,
) -> SelectionRound:
    rnd, _ = create_round(project, strategy, batch_size, trigger, dedupe_key, seed)
    return execute_round(rnd)

