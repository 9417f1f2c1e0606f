"""Import preference data a team already has (pairs or rankings) as rankings with provenance, streaming.

One row is one judgement, in any of these shapes (told apart per row):

- **pairs** (TRL's format): ``{"prompt", "chosen", "rejected"}``;
- **HH-RLHF transcripts**: ``{"chosen", "rejected"}`` without a prompt, each the whole dialogue
  (``"\\n\\nHuman: …\\n\\nAssistant: …"``): the prompt is the dialogue they share up to its last ``Assistant:``,
  the completions what each says after it, so ``prompt + chosen`` is the original transcript;
- **rankings**: ``{"prompt", "completions": [text or {"text", "model"}], "ranking": [[0], [2, 1]]}``, tie groups
  of 0-based indexes, best first.

Optional everywhere: ``id`` (the prompt's external id), ``rater`` (or ``annotator``/``worker``: the dataset's own
id for whoever judged), ``metadata``; pairs also take ``chosen_model``/``rejected_model``. Chat-style values (a
list of ``{"role", "content"}`` messages) are accepted and flattened to text.

Each row becomes a prompt, its completions, a *complete* task (never served to raters), and one ranking by the
dataset's import account (an inactive user, ``import:<dataset>``, never a member), marked ``source=imported``
with the dataset's name and the original rater id. Imported rankings train reward models like any ranking, export
like any ranking, and are left out of rater statistics (``Ranking.objects.from_raters()``).

Files are JSONL (optionally gzipped) or Parquet, read in batches: memory is bounded by a batch, not the file. The
whole import is one transaction: rows are checked and written a batch at a time, and any bad row (every one is
reported, up to ``MAX_ERRORS``) rolls all of it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotation import bulk
from annotation.importer import (
    MAX_ID_CHARS,
    MAX_MODEL_CHARS,
    ImportFailed,
    TextLimits,
    _bounded,
    _check_storable,
    _LineError,
    _metadata,
    tie_groups,
)
from annotation.models import Assignment, Completion, Project, Prompt, Ranking, RankingTask
from annotation.pairs import ranking_to_pairs
from annotation.rows import RowError, RowSource
from verdict_client import messages

BATCH = 1000
MAX_ERRORS = 50
MAX_COMPLETIONS = 16
TASK_SOURCE = "preference_import"
HH_ASSISTANT = "\n\nAssistant:"
RATER_KEYS = ("rater", "annotator", "worker")
PAIR_KEYS = {"prompt", "chosen", "rejected", "chosen_model", "rejected_model", "id", "metadata", *RATER_KEYS}
RANKED_KEYS = {"prompt", "completions", "ranking", "id", "metadata", *RATER_KEYS}
Progress = Callable[[int, int | None], None]  # (rows read, rows in the file if known)


@dataclass
class PreferenceImportSummary:
    dataset: str
    rows: int = 0
    rankings: int = 0
    pairs: int = 0
    completions: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Row:
    number: int
    prompt: str
    completions: list[tuple[str, str]]  # (text, model)
    order: list[list[int]]  # tie groups of indexes into completions
    external_id: str
    rater: str
    metadata: dict


def _message_text(value: Any, where: str) -> str:
    """A string, or chat messages flattened (verdict_client.messages: the RL client flattens the same way)."""
    try:
        return messages.flatten(value)
    except ValueError:
        raise _LineError(f"{where} must be a string or a list of {{role, content}} messages") from None


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt, chosen answer, rejected answer) from two HH-RLHF transcripts that share their dialogue."""
    shared = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        shared += 1
    cut = chosen.rfind(HH_ASSISTANT, 0, shared)
    if cut < 0 or cut + len(HH_ASSISTANT) > shared:
        raise _LineError("no 'prompt', and 'chosen' and 'rejected' share no dialogue ending in '\\n\\nAssistant:' "
                         "(HH-RLHF transcripts); give a 'prompt'")
    end = cut + len(HH_ASSISTANT)
    return chosen[:end], chosen[end:], rejected[end:]


def _short(obj: dict, key: str, limit: int) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _LineError(f"{key!r} must be a string or a number, got {type(value).__name__}")
    if len(value) > limit:
        raise _LineError(f"{key!r} is longer than {limit} characters")
    _check_storable(value, repr(key))
    return value


def parse_row(obj: Any, number: int, limits: TextLimits) -> _Row:
    if not isinstance(obj, dict):
        raise _LineError(f"each row must be an object, got {type(obj).__name__}")
    obj = {k: v for k, v in obj.items() if v is not None}
    ranked = "ranking" in obj or "completions" in obj
    unknown = sorted(set(obj) - (RANKED_KEYS if ranked else PAIR_KEYS))
    if unknown:
        allowed = RANKED_KEYS if ranked else PAIR_KEYS
        raise _LineError(f"unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    raters = [k for k in RATER_KEYS if k in obj]
    if len(raters) > 1:
        raise _LineError(f"give one of {list(RATER_KEYS)}, not {raters}")
    rater = _short(obj, raters[0], 200) if raters else ""
    if ranked:
        for key in ("prompt", "completions", "ranking"):
            if key not in obj:
                raise _LineError(f"a ranking row needs {key!r}")
        prompt = _message_text(obj["prompt"], "'prompt'")
        comps = obj["completions"]
        if not isinstance(comps, list) or not 2 <= len(comps) <= MAX_COMPLETIONS:
            raise _LineError(f"'completions' must be a list of 2 to {MAX_COMPLETIONS} completions")
        completions = []
        for i, c in enumerate(comps):
            if isinstance(c, dict):
                completions.append((_message_text(c.get("text"), f"completions[{i}].text"), _short(c, "model", 200)))
            else:
                completions.append((_message_text(c, f"completions[{i}]"), ""))
        order = tie_groups(obj["ranking"], len(completions), "ranking")
    else:
        for key in ("chosen", "rejected"):
            if key not in obj:
                raise _LineError(f"a pair row needs {key!r}")
        chosen = _message_text(obj["chosen"], "'chosen'")
        rejected = _message_text(obj["rejected"], "'rejected'")
        if "prompt" in obj:
            prompt = _message_text(obj["prompt"], "'prompt'")
        else:
            prompt, chosen, rejected = split_transcripts(chosen, rejected)
        completions = [(chosen, _short(obj, "chosen_model", MAX_MODEL_CHARS)),
                       (rejected, _short(obj, "rejected_model", MAX_MODEL_CHARS))]
        order = [[0], [1]]
    if not prompt.strip():
        raise _LineError("'prompt' is empty")
    _bounded(prompt, "'prompt'", limits.prompt_chars, limits, "max_prompt_chars")
    _check_storable(prompt, "'prompt'")
    for i, (text, _) in enumerate(completions):
        _bounded(text, f"completion {i}", limits.completion_chars, limits, "max_completion_chars")
        _check_storable(text, f"completion {i}")
    return _Row(number, prompt, completions, order, _short(obj, "id", MAX_ID_CHARS), rater, _metadata(obj, "row"))


def read_rows(path: Path) -> tuple[Iterator[tuple[int, Any]], int | None]:
    """(row number, decoded object or a RowError) pairs, streamed (``annotation.rows``), after a scan of the read
    bounds (``annotation.rows.TooLarge`` for a file over one); and the row count (lines, blank ones included)."""
    source = RowSource.of(Path(path))
    try:
        source.check()
        total = source.scan().rows
    except RowError as exc:
        raise ValueError(str(exc)) from None
    return source.rows(), total


def import_account(dataset: str):
    """The inactive user an imported dataset's rankings belong to: it cannot log in and is never a member."""
    user, created = get_user_model().objects.get_or_create(
        username=f"import:{dataset}"[:150], defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def import_preferences(project: Project, path: Path, dataset: str = "",
                       progress: Progress | None = None) -> PreferenceImportSummary:
    """Import the file at `path` into `project`; raises ImportFailed (nothing written) if any row is bad."""
    path = Path(path)
    dataset = (dataset or path.name.split(".")[0]).strip()
    if not dataset or len(dataset) > 200:
        raise ImportFailed([(0, "the dataset name must be 1 to 200 characters")])
    rows, total = read_rows(path)
    limits = TextLimits.of(project)
    summary = PreferenceImportSummary(dataset)
    errors: list[tuple[int, str]] = []
    seen_ids: set[str] = set()
    batch: list[_Row] = []
    with transaction.atomic():
        account = import_account(dataset)
        for number, obj in rows:
            summary.rows += 1
            try:
                if isinstance(obj, _LineError):
                    raise obj
                row = parse_row(obj, number, limits)
                if row.external_id:
                    if row.external_id in seen_ids:
                        raise _LineError(f"duplicate id {row.external_id!r}")
                    seen_ids.add(row.external_id)
            except _LineError as exc:
                errors.append((number, str(exc)))
                if len(errors) >= MAX_ERRORS:
                    break
                continue
            if not errors:  # after the first error, only check the rest: nothing more is written
                batch.append(row)
                if len(batch) >= BATCH:
                    _write(project, account, dataset, batch, summary, errors)
                    batch = []
            if progress and summary.rows % BATCH == 0:
                progress(summary.rows, total)
        if batch and not errors:
            _write(project, account, dataset, batch, summary, errors)
        if not errors and not summary.rankings:
            errors.append((0, "the file has no rows"))
        if errors:
            transaction.set_rollback(True)
    if progress:
        progress(summary.rows, total)
    if errors:
        raise ImportFailed(sorted(errors))
    n = summary.rankings  # one prompt, task, lease and ranking per row
    bulk.analyze({Prompt: n, Completion: summary.completions, RankingTask: n,
                  RankingTask.completions.through: summary.completions, Assignment: n, Ranking: n})
    return summary


def _write(project: Project, account, dataset: str, rows: list[_Row], summary: PreferenceImportSummary,
           errors: list[tuple[int, str]]) -> None:
    ids = [r.external_id for r in rows if r.external_id]
    taken = set(Prompt.objects.filter(project=project, external_id__in=ids).values_list("external_id", flat=True))
    if taken:
        errors.extend((r.number, f"id {r.external_id!r} already exists in project {project.name!r}")
                      for r in rows if r.external_id in taken)
        return
    # Ids reserved, rows streamed with COPY (annotation.bulk): four times fewer round trips than bulk_create.
    now = timezone.now()
    n = len(rows)
    prompt_ids, task_ids = bulk.reserve_ids(Prompt, n), bulk.reserve_ids(RankingTask, n)
    assignment_ids, ranking_ids = bulk.reserve_ids(Assignment, n), bulk.reserve_ids(Ranking, n)
    completion_ids = iter(bulk.reserve_ids(Completion, sum(len(r.completions) for r in rows)))
    prompts, completions, tasks, links, assignments, rankings = [], [], [], [], [], []
    for i, r in enumerate(rows):
        cids = []
        for text, model in r.completions:
            cid = next(completion_ids)
            cids.append(cid)
            completions.append((cid, prompt_ids[i], model, text, {}))
            links.append((task_ids[i], cid))
        order = [[cids[j] for j in group] for group in r.order]
        prompts.append((prompt_ids[i], project.pk, r.external_id, r.prompt, r.metadata, now))
        tasks.append((task_ids[i], project.pk, prompt_ids[i], 0, RankingTask.COMPLETE, False, None, TASK_SOURCE, 1,
                      now))
        assignments.append((assignment_ids[i], task_ids[i], account.pk, Assignment.SUBMITTED, now, now, cids, ""))
        rankings.append((ranking_ids[i], assignment_ids[i], task_ids[i], account.pk, order, {}, "", [], 0, cids, now,
                         0, 1.0, Ranking.IMPORTED, dataset, r.rater))
    bulk.insert_rows(Prompt, ("id", "project", "external_id", "text", "metadata", "created_at"), prompts)
    bulk.insert_rows(Completion, ("id", "prompt", "model_name", "text", "metadata"), completions)
    bulk.insert_rows(RankingTask, ("id", "project", "prompt", "priority", "status", "is_gold", "gold_order", "source",
                                   "submitted_count", "created_at"), tasks)
    bulk.insert_rows(RankingTask.completions.through, ("rankingtask", "completion"), links)
    bulk.insert_rows(Assignment, ("id", "task", "rater", "status", "leased_at", "expires_at", "display_order",
                                  "skip_reason"), assignments)
    bulk.insert_rows(Ranking, ("id", "assignment", "task", "rater", "order", "criteria_orders", "rationale", "flags",
                               "time_spent_ms", "display_order", "submitted_at", "revision", "weight", "source",
                               "dataset", "original_rater"), rankings)
    summary.rankings += len(rows)
    summary.completions += len(completions)
    summary.pairs += sum(len(ranking_to_pairs(r.order)) for r in rows)
