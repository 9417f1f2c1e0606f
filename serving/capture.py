"""Keeping what a policy's RL trainer scored, where the project opted in (CapturePolicy).

A trainer's call names its run and step (the client sends them). Consecutive items with the same prompt form a
*group*: a GRPO step scores several completions of each prompt, which is exactly a K-way ranking task if raters are
asked. Groups are kept whole or not at all: a group is kept with probability ``sample_rate`` (a hash of the group,
so a retried call keeps the same ones), up to ``daily_cap`` samples a day; a (prompt, completion) already kept is not
kept twice (content hash). Samples older than ``retention_days`` are deleted by a beat task (serving.tasks).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from serving.models import CapturedSample, CapturePolicy, PolicyRun


def _hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def groups_of(pairs: list[tuple[str, str]]) -> list[list[int]]:
    """Indices of consecutive items that share a prompt."""
    out: list[list[int]] = []
    for i, (prompt, _) in enumerate(pairs):
        if out and pairs[out[-1][0]][0] == prompt:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def capture(project, run_name: str, step: int | None, pairs: list[tuple[str, str]], scores: list[float],
            version_id: int) -> int:
    """Keep what the project's policy says of one scoring call; returns the samples kept."""
    policy = CapturePolicy.objects.filter(project=project, enabled=True).first()
    if policy is None or not run_name:
        return 0
    since = timezone.now() - timedelta(days=1)
    room = policy.daily_cap - CapturedSample.objects.filter(project=project, created_at__gte=since).count()
    rows = []
    for group in groups_of(pairs):
        key = _hash(run_name, str(step), pairs[group[0]][0])[:32]
        if int(key[:8], 16) / 0xFFFFFFFF >= policy.sample_rate or len(rows) + len(group) > room:
            continue
        rows.extend((key, i) for i in group)
    # A (prompt, completion) already kept, or twice in this call, is kept once; counted here because bulk_create
    # with ignore_conflicts does not say which rows it skipped (a concurrent duplicate is still skipped there).
    hashes = {i: _hash(pairs[i][0], pairs[i][1]) for _, i in rows}
    seen = set(CapturedSample.objects.filter(project=project, content_hash__in=set(hashes.values()))
               .values_list("content_hash", flat=True))
    fresh = []
    for key, i in rows:
        if hashes[i] not in seen:
            seen.add(hashes[i])
            fresh.append((key, i))
    rows = fresh
    if not rows:
        return 0
    with transaction.atomic():
        run, _ = PolicyRun.objects.get_or_create(project=project, name=run_name[:200])
        if step is not None and (run.last_step is None or step > run.last_step):
            run.last_step = step
        run.save()
        created = CapturedSample.objects.bulk_create(
            [CapturedSample(project=project, run=run, step=step, group_key=key, prompt=pairs[i][0],
                            completion=pairs[i][1], reward=float(scores[i]), version_id=version_id,
                            content_hash=hashes[i]) for key, i in rows],
            ignore_conflicts=True)
    return len(created)


def purge(now=None) -> int:
    """Delete samples past their project's retention; returns how many."""
    now = now or timezone.now()
    deleted = 0
    for policy in CapturePolicy.objects.all():
        cutoff = now - timedelta(days=policy.retention_days)
        deleted += CapturedSample.objects.filter(project=policy.project_id, created_at__lt=cutoff,
                                                 task__isnull=True).delete()[0]
    return deleted
