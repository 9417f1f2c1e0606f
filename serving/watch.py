"""The Goodhart watch: is a policy run optimising the reward model rather than what it stands for?

A reward model is a proxy; an RL policy pushed against it finds where it is wrong. Per policy run, each pass (a beat
task, serving.tasks) adds a window over the captured samples since the previous one (at most ``MAX_SAMPLES``, the
rest in later passes) with:

- the **reward distribution** (mean, spread, quantiles): a reward climbing while nothing else changes is the
  classic sign of over-optimisation (Gao, Schulman & Hilton 2022);
- the **reward–length correlation** (Spearman): the best-known exploit, longer answers scored higher;
- the **share far from the training data**: samples whose nearest training item, in the active version's feature
  space (cosine), is farther than 95 % of training items are from their own nearest neighbour — where the reward
  model extrapolates;
- the **rater disagreement**: of the pairs raters ranked on this run's captured groups (routed by
  active_learning.captured) since the previous window, the share where the reward model had scored the loser higher
  — the measured over-optimisation signal, available once raters have answered.

A window that crosses one of the project's alarms (CapturePolicy) flags the run (admin) and POSTs the window to the
project's webhook, once per flag; an engineer clears the flag in the admin.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone
from scipy.stats import spearmanr

from annotation.models import Completion, Ranking, RankingTask
from annotation.pairs import ranking_to_pairs
from rewardmodel import registry, scoring
from serving.models import CapturedSample, CapturePolicy, PolicyRun, WatchWindow

log = logging.getLogger(__name__)

MAX_SAMPLES = 2000  # per window: bounded work per pass
REFERENCE_ITEMS = 400  # training completions that stand for the training data
MIN_SAMPLES = 20  # fewer new samples wait for the next pass
MIN_RANKED_PAIRS = 20  # disagreement below this many pairs is shown, never alarmed on
FAR_QUANTILE = 0.95


@dataclass
class Reference:
    """The training data as the version sees it: normalised features and the far threshold."""

    features: np.ndarray
    threshold: float


def reference_for(version, seed: int = 0) -> Reference | None:
    """Up to REFERENCE_ITEMS completions of the rankings the version trained on, embedded by the version."""
    ranking_ids = list(version.snapshot.get("ranking_ids") or [])
    if not ranking_ids:
        return None
    rng = np.random.default_rng(seed)
    chosen = rng.choice(ranking_ids, size=min(len(ranking_ids), REFERENCE_ITEMS), replace=False).tolist()
    task_ids = Ranking.objects.filter(pk__in=chosen).values_list("task_id", flat=True)
    items = list(Completion.objects.filter(tasks__in=task_ids).select_related("prompt").distinct()
                 .order_by("id")[: REFERENCE_ITEMS * 4])
    if len(items) < 3:
        return None
    picked = rng.choice(len(items), size=min(len(items), REFERENCE_ITEMS), replace=False)
    items = [items[i] for i in sorted(picked)]
    feats = _normalised(scoring.embed(version, [c.prompt.text for c in items], [c.text for c in items]))
    sims = feats @ feats.T
    np.fill_diagonal(sims, -np.inf)
    own_distance = 1.0 - sims.max(axis=1)  # each training item's distance to its nearest other training item
    return Reference(feats, float(np.quantile(own_distance, FAR_QUANTILE)))


def _normalised(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def far_share(reference: Reference, features) -> float:
    distance = 1.0 - (_normalised(features) @ reference.features.T).max(axis=1)
    return float((distance > reference.threshold).mean())


def length_correlation(rewards: np.ndarray, lengths: np.ndarray) -> float | None:
    if len(rewards) < 3 or np.ptp(rewards) == 0 or np.ptp(lengths) == 0:
        return None
    return float(spearmanr(rewards, lengths).statistic)


def rater_disagreement(run: PolicyRun, after_ranking: int) -> tuple[int, float | None, int]:
    """(ranked pairs, share where the reward model scored the raters' loser higher, the newest ranking id) over
    rankings of the run's routed groups with ids above ``after_ranking``."""
    tasks = RankingTask.objects.filter(pk__in=CapturedSample.objects.filter(run=run, task__isnull=False)
                                       .values("task_id"))
    rankings = list(Ranking.objects.filter(task__in=tasks, pk__gt=after_ranking).from_people().order_by("id")
                    .values_list("id", "order")[:10_000])
    if not rankings:
        return 0, None, after_ranking
    ids = {c for _, order in rankings for group in order for c in group}
    reward = {pk: meta.get("reward") for pk, meta in Completion.objects.filter(pk__in=ids)
              .values_list("id", "metadata")}
    pairs = [(w, lo) for _, order in rankings for w, lo in ranking_to_pairs(order)
             if reward.get(w) is not None and reward.get(lo) is not None and reward[w] != reward[lo]]
    wrong = sum(reward[w] < reward[lo] for w, lo in pairs)
    return len(pairs), (wrong / len(pairs) if pairs else None), rankings[-1][0]


def alarms_of(window: WatchWindow, policy: CapturePolicy) -> list[str]:
    out = []
    if window.length_correlation is not None and window.length_correlation > policy.alarm_length_correlation:
        out.append(f"reward–length correlation {window.length_correlation:.2f} > "
                   f"{policy.alarm_length_correlation:.2f}")
    if window.far_share is not None and window.far_share > policy.alarm_far_share:
        out.append(f"{window.far_share:.0%} of samples far from the training data > {policy.alarm_far_share:.0%}")
    if (window.disagreement is not None and window.ranked_pairs >= MIN_RANKED_PAIRS
            and window.disagreement > policy.alarm_disagreement):
        out.append(f"raters disagree with the reward model on {window.disagreement:.0%} of {window.ranked_pairs} "
                   f"pairs > {policy.alarm_disagreement:.0%}")
    return out


def watch_run(run: PolicyRun, version=None, reference_of: Callable[[], Reference | None] | None = None,
              min_samples: int = MIN_SAMPLES) -> WatchWindow | None:
    """Add the run's next window, if it has enough new samples or new rankings; flag and notify on an alarm."""
    previous = run.windows.order_by("-id").first()
    after = previous.last_sample if previous else 0
    after_ranking = previous.last_ranking if previous else 0
    rows = list(CapturedSample.objects.filter(run=run, pk__gt=after).order_by("id")
                .values_list("id", "step", "prompt", "completion", "reward")[:MAX_SAMPLES])
    pairs, disagreement, last_ranking = rater_disagreement(run, after_ranking)
    if len(rows) < min_samples and pairs < MIN_RANKED_PAIRS:
        return None
    policy = CapturePolicy.for_project(run.project)
    version = version or registry.active_version(run.project)
    rewards = np.array([r[4] for r in rows], dtype=np.float64)
    steps = [r[1] for r in rows if r[1] is not None]
    window = WatchWindow(
        run=run, first_sample=rows[0][0] if rows else after, last_sample=rows[-1][0] if rows else after,
        step_min=min(steps) if steps else None, step_max=max(steps) if steps else None, samples=len(rows),
        reward_mean=float(rewards.mean()) if len(rows) else 0.0, reward_std=float(rewards.std()) if len(rows) else 0.0,
        reward_quantiles=[float(q) for q in np.quantile(rewards, [0.1, 0.25, 0.5, 0.75, 0.9])] if len(rows) else [],
        length_correlation=length_correlation(rewards, np.array([len(r[3]) for r in rows], dtype=np.float64)),
        ranked_pairs=pairs, disagreement=disagreement, last_ranking=last_ranking)
    if rows and version is not None:
        reference = reference_of() if reference_of else reference_for(version)
        if reference is not None:
            window.far_share = far_share(reference, scoring.embed(version, [r[2] for r in rows],
                                                                  [r[3] for r in rows]))
    window.alarms = alarms_of(window, policy)
    with transaction.atomic():
        window.save()
        newly_flagged = bool(window.alarms) and not PolicyRun.objects.filter(pk=run.pk, flagged=True).exists()
        if newly_flagged:
            PolicyRun.objects.filter(pk=run.pk).update(flagged=True, flag_reason="; ".join(window.alarms),
                                                       flagged_at=timezone.now())
    if newly_flagged and policy.webhook_url:
        notify(policy.webhook_url, run, window)
    return window


def as_dict(window: WatchWindow) -> dict:
    return {"id": window.pk, "samples": window.samples, "first_sample": window.first_sample,
            "last_sample": window.last_sample, "step_min": window.step_min, "step_max": window.step_max,
            "reward_mean": window.reward_mean, "reward_std": window.reward_std,
            "reward_quantiles": window.reward_quantiles, "length_correlation": window.length_correlation,
            "far_share": window.far_share, "ranked_pairs": window.ranked_pairs, "disagreement": window.disagreement,
            "alarms": window.alarms, "created_at": window.created_at.isoformat()}


def notify(url: str, run: PolicyRun, window: WatchWindow, timeout: float = 5.0) -> bool:
    """POST the flag to the project's webhook; a failure is logged, never retried into a storm."""
    body = json.dumps({"event": "verdict.policy_run.flagged", "project": run.project_id, "run": run.name,
                       "reason": "; ".join(window.alarms), "window": as_dict(window)}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a manager's own URL
            return 200 <= response.status < 300
    except Exception as exc:  # the watch goes on; the flag is in the admin either way
        log.warning("webhook %s for run %s failed: %s", url, run.pk, exc)
        return False


def watch_all() -> int:
    """A pass over every run of every project that captures; returns the windows added."""
    added = 0
    for policy in CapturePolicy.objects.filter(enabled=True).select_related("project"):
        version = registry.active_version(policy.project)
        memo: dict = {}

        def reference_of(version=version, memo=memo) -> Reference | None:  # embedded once per project and pass
            if "reference" not in memo:
                memo["reference"] = reference_for(version)
            return memo["reference"]

        for run in PolicyRun.objects.filter(project=policy.project):
            added += watch_run(run, version, reference_of) is not None
    return added
