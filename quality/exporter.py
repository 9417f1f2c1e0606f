"""Exporting the per-task consensus as a stream of dicts (JSON Lines through ``annotation.exporter.jsonl_lines``).

- ``iter_consensus``: one row per task with a consensus: the completions (id, model, text), the consensus order,
  every pair with the probability that the consensus has it right, the task's confidence and how many rankings it
  rests on.
- ``iter_consensus_pairs``: TRL preference rows ``{"prompt", "chosen", "rejected", "probability"}`` for the pairs
  the consensus is sure of (probability ≥ ``min_probability``, by default the project's consensus threshold).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Prefetch

from annotation.models import Completion, Project
from quality.models import TaskConsensus

CHUNK_SIZE = 500


def _rows(project: Project):
    return (TaskConsensus.objects.filter(task__project=project).select_related("task__prompt")
            .prefetch_related(Prefetch("task__completions",
                                       queryset=Completion.objects.only("id", "model_name", "text", "prompt_id")))
            .order_by("task_id").iterator(chunk_size=CHUNK_SIZE))


def iter_consensus(project: Project) -> Iterator[dict]:
    for row in _rows(project):
        task = row.task
        yield {
            "task_id": task.id,
            "prompt_id": task.prompt_id,
            "prompt_external_id": task.prompt.external_id,
            "prompt": task.prompt.text,
            "completions": [{"id": c.id, "model": c.model_name, "text": c.text} for c in task.completions.all()],
            "order": row.order,
            "pairs": [{"better": b, "worse": w, "probability": p} for b, w, p in row.pairs],
            "confidence": row.confidence,
            "rankings": row.rankings,
            "is_gold": task.is_gold,
            "updated_at": row.updated_at.isoformat(),
        }


def iter_consensus_pairs(project: Project, min_probability: float | None = None) -> Iterator[dict]:
    threshold = project.consensus_threshold if min_probability is None else min_probability
    for row in _rows(project):
        by_id = {c.id: c for c in row.task.completions.all()}
        for better, worse, p in row.pairs:
            chosen, rejected = by_id.get(better), by_id.get(worse)
            if p < threshold or chosen is None or rejected is None:
                continue
            yield {"prompt": row.task.prompt.text, "chosen": chosen.text, "rejected": rejected.text,
                   "probability": p, "task_id": row.task_id, "chosen_model": chosen.model_name,
                   "rejected_model": rejected.model_name, "rankings": row.rankings}
