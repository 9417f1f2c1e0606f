"""Importing prompts and their candidate completions from JSONL into a project, all or nothing.

One line is one prompt and becomes one Prompt, its Completions and one RankingTask::

    {"prompt": "…", "id": "ext-1", "metadata": {…}, "priority": 0,
     "completions": [{"text": "…", "model": "…", "metadata": {…}}, …],
     "gold": [[0], [2, 1]]}

Only ``prompt`` (non-empty) and ``completions`` (each with a ``text`` string, which may be empty: models
do answer nothing sometimes) are required. ``gold`` is a known order of the completions as tie
groups of 0-based indexes into ``completions``, best first; it turns the task into a gold task.

Prompts and completions are bounded by the project's ``max_prompt_chars``, ``max_completion_chars`` and
``max_unbroken_run`` (the longest stretch without whitespace: one degenerate 1 MB "word" freezes browsers).

Every line is validated before anything is written. If any line is bad, ``ImportFailed`` carries
every ``(line_no, message)`` and the database is left untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from annotation.models import Completion, Project, Prompt, RankingTask

TOP_LEVEL_KEYS = {"prompt", "id", "metadata", "priority", "completions", "gold"}
COMPLETION_KEYS = {"text", "model", "metadata"}
MAX_ID_CHARS = 200  # Prompt.external_id
MAX_MODEL_CHARS = 200  # Completion.model_name
INT32 = (-(2**31), 2**31 - 1)  # RankingTask.priority is an IntegerField
BATCH_SIZE = 1000
EXISTING_ID_CHUNK = 5000


class ImportFailed(Exception):
    """The file was refused; `errors` lists every ``(line_no, message)``, 1-based line numbers."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        shown = "; ".join(f"line {n}: {m}" for n, m in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} error(s), nothing imported: {shown}{more}")


@dataclass
class ImportSummary:
    prompts: int = 0
    completions: int = 0
    tasks: int = 0
    gold_tasks: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Record:
    line_no: int
    prompt: str
    external_id: str
    metadata: dict
    priority: int
    completions: list[tuple[str, str, dict]]  # (text, model, metadata)
    gold: list[list[int]] | None = None
    errors: list[str] = field(default_factory=list)


class _LineError(ValueError):
    pass


def _check_storable(value: Any, where: str) -> None:
    """PostgreSQL cannot store NUL characters or lone surrogates (json.loads lets both through)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise _LineError(f"{where} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _LineError(f"{where} contains an invalid unicode escape (lone surrogate)") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_storable(k, where)
            _check_storable(v, where)
    elif isinstance(value, list):
        for v in value:
            _check_storable(v, where)


def _text(
    obj: dict, key: str, where: str, required: bool, max_chars: int | None = None, allow_empty: bool = False
) -> str:
    if key not in obj or obj[key] is None:
        if required:
            raise _LineError(f"{where}: missing required field {key!r}")
        return ""
    value = obj[key]
    if not isinstance(value, str):
        raise _LineError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    if required and not allow_empty and not value.strip():
        raise _LineError(f"{where}: {key!r} is empty")
    if max_chars is not None and len(value) > max_chars:
        raise _LineError(f"{where}: {key!r} is longer than {max_chars} characters")
    _check_storable(value, f"{where}: {key!r}")
    return value


def _metadata(obj: dict, where: str) -> dict:
    value = obj.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _LineError(f"{where}: 'metadata' must be an object, got {type(value).__name__}")
    _check_storable(value, f"{where}: 'metadata'")
    return value


def tie_groups(value: Any, n: int, field: str = "gold") -> list[list[int]]:
    """Tie groups of 0-based completion indexes, best first, covering 0..n-1 exactly once (`field` names it in
    errors)."""
    if not isinstance(value, list) or not value:
        raise _LineError(f"{field!r} must be a non-empty list of tie groups of completion indexes, best first")
    groups: list[list[int]] = []
    for group in value:
        if isinstance(group, int) and not isinstance(group, bool):
            group = [group]
        if not isinstance(group, list) or not group:
            raise _LineError(f"{field!r}: each tie group must be a non-empty list of completion indexes")
        for i in group:
            if not isinstance(i, int) or isinstance(i, bool):
                raise _LineError(f"{field!r}: indexes must be integers, got {i!r}")
            if not 0 <= i < n:
                raise _LineError(f"{field!r}: index {i} is out of range for {n} completions (0-based)")
        groups.append(sorted(group))
    flat = [i for g in groups for i in g]
    if len(flat) != len(set(flat)):
        raise _LineError(f"{field!r}: an index appears more than once")
    if len(flat) != n:
        missing = sorted(set(range(n)) - set(flat))
        raise _LineError(f"{field!r} must order every completion; missing indexes {missing}")
    return groups


@dataclass(frozen=True)
class TextLimits:
    """A project's bounds on imported text (Project.max_prompt_chars, max_completion_chars, max_unbroken_run)."""

    prompt_chars: int
    completion_chars: int
    unbroken_run: int

    @classmethod
    def of(cls, project: Project) -> TextLimits:
        return cls(project.max_prompt_chars, project.max_completion_chars, project.max_unbroken_run)


LONGEST_RUN = re.compile(r"\S+")


def longest_unbroken_run(text: str) -> int:
    """Length of the longest stretch without whitespace (a degenerate repetition is one huge 'word')."""
    return max((m.end() - m.start() for m in LONGEST_RUN.finditer(text)), default=0)


def _bounded(text: str, where: str, max_chars: int, limits: TextLimits, setting: str) -> str:
    if len(text) > max_chars:
        raise _LineError(f"{where} has {len(text):,} characters; this project allows at most {max_chars:,} "
                         f"(Project.{setting})")
    run = longest_unbroken_run(text)
    if run > limits.unbroken_run:
        raise _LineError(f"{where} has a run of {run:,} characters without a space or line break; this project "
                         f"allows at most {limits.unbroken_run:,} (Project.max_unbroken_run)")
    return text


def _parse_line(raw: str, line_no: int, k: int, limits: TextLimits) -> _Record:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _LineError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise _LineError(f"each line must be a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - TOP_LEVEL_KEYS)
    if unknown:
        raise _LineError(f"unknown field(s) {unknown}; allowed: {sorted(TOP_LEVEL_KEYS)}")
    prompt = _bounded(_text(obj, "prompt", "prompt", required=True), "'prompt'", limits.prompt_chars, limits,
                      "max_prompt_chars")
    external_id = _text(obj, "id", "id", required=False, max_chars=MAX_ID_CHARS)
    metadata = _metadata(obj, "prompt")
    priority = obj.get("priority", 0)
    if priority is None:
        priority = 0
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise _LineError(f"'priority' must be an integer, got {type(priority).__name__}")
    if not INT32[0] <= priority <= INT32[1]:
        raise _LineError("'priority' is out of the 32-bit integer range")
    comps = obj.get("completions")
    if comps is None:
        raise _LineError("missing required field 'completions'")
    if not isinstance(comps, list):
        raise _LineError(f"'completions' must be a list, got {type(comps).__name__}")
    if not 2 <= len(comps) <= k:
        raise _LineError(f"'completions' has {len(comps)} item(s); this project needs between 2 and {k}")
    completions = []
    for i, c in enumerate(comps):
        where = f"completions[{i}]"
        if not isinstance(c, dict):
            raise _LineError(f"{where} must be an object with 'text', got {type(c).__name__}")
        unknown = sorted(set(c) - COMPLETION_KEYS)
        if unknown:
            raise _LineError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(COMPLETION_KEYS)}")
        completions.append(
            (
                # An empty output is real model behaviour (PandaLM has some) and worth ranking last.
                _bounded(_text(c, "text", where, required=True, allow_empty=True), f"{where}: 'text'",
                         limits.completion_chars, limits, "max_completion_chars"),
                _text(c, "model", where, required=False, max_chars=MAX_MODEL_CHARS),
                _metadata(c, where),
            )
        )
    gold = tie_groups(obj["gold"], len(completions)) if obj.get("gold") is not None else None
    return _Record(line_no, prompt, external_id, metadata, priority, completions, gold)


def _decode(line: str | bytes, line_no: int) -> str:
    if isinstance(line, bytes):
        try:
            return line.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise _LineError(f"not valid UTF-8 (byte {exc.start})") from None
    return line.lstrip("\ufeff") if line_no == 1 else line


def _iter_lines(source: str | bytes | Iterable[str | bytes]) -> Iterable[str | bytes]:
    if isinstance(source, str | bytes):
        return source.splitlines()
    return source


def parse_jsonl(project: Project, source: str | bytes | Iterable[str | bytes]) -> list[_Record]:
    """Validate every line; raise ImportFailed with all errors, or return the parsed records."""
    errors: list[tuple[int, str]] = []
    records: list[_Record] = []
    first_line_of_id: dict[str, int] = {}
    limits = TextLimits.of(project)
    for line_no, line in enumerate(_iter_lines(source), start=1):
        try:
            raw = _decode(line, line_no)
            if not raw.strip():
                continue
            record = _parse_line(raw, line_no, project.k, limits)
        except _LineError as exc:
            errors.append((line_no, str(exc)))
            continue
        if record.external_id:
            first = first_line_of_id.setdefault(record.external_id, line_no)
            if first != line_no:
                errors.append((line_no, f"duplicate id {record.external_id!r} (first used on line {first})"))
                continue
        records.append(record)
    ids = list(first_line_of_id)
    for start in range(0, len(ids), EXISTING_ID_CHUNK):
        chunk = ids[start : start + EXISTING_ID_CHUNK]
        for existing in Prompt.objects.filter(project=project, external_id__in=chunk).values_list(
            "external_id", flat=True
        ):
            errors.append((first_line_of_id[existing], f"id {existing!r} already exists in project {project.name!r}"))
    if not records and not errors:
        errors.append((0, "the file has no records"))
    if errors:
        raise ImportFailed(sorted(errors))
    return records


def import_jsonl(project: Project, source: str | bytes | Iterable[str | bytes]) -> ImportSummary:
    """Validate then import `source` (text, bytes, or an iterable of lines, e.g. an open file).

    Raises ImportFailed (nothing written) when any line is bad; otherwise returns what was created.
    """
    records = parse_jsonl(project, source)
    try:
        return _write(project, records)
    except IntegrityError as exc:
        # Another import added one of these ids between validation and writing; the transaction rolled back.
        raise ImportFailed([(0, f"conflict while writing, nothing imported (concurrent import?): {exc}")]) from exc


def _write(project: Project, records: list[_Record]) -> ImportSummary:
    summary = ImportSummary()
    with transaction.atomic():
        prompts = Prompt.objects.bulk_create(
            [Prompt(project=project, external_id=r.external_id, text=r.prompt, metadata=r.metadata) for r in records],
            batch_size=BATCH_SIZE,
        )
        completion_rows = [
            Completion(prompt=p, model_name=model, text=text, metadata=meta)
            for p, r in zip(prompts, records, strict=True)
            for text, model, meta in r.completions
        ]
        completion_rows = Completion.objects.bulk_create(completion_rows, batch_size=BATCH_SIZE)
        tasks: list[RankingTask] = []
        task_completion_ids: list[list[int]] = []
        offset = 0
        for p, r in zip(prompts, records, strict=True):
            ids = [c.pk for c in completion_rows[offset : offset + len(r.completions)]]
            offset += len(r.completions)
            gold_order = [[ids[i] for i in group] for group in r.gold] if r.gold else None
            tasks.append(
                RankingTask(
                    project=project,
                    prompt=p,
                    priority=r.priority,
                    is_gold=gold_order is not None,
                    gold_order=gold_order,
                    source="import",
                )
            )
            task_completion_ids.append(ids)
        tasks = RankingTask.objects.bulk_create(tasks, batch_size=BATCH_SIZE)
        through = RankingTask.completions.through
        links = [
            through(rankingtask_id=t.pk, completion_id=cid)
            for t, ids in zip(tasks, task_completion_ids, strict=True)
            for cid in ids
        ]
        through.objects.bulk_create(links, batch_size=BATCH_SIZE * 4)
    summary.prompts = len(prompts)
    summary.completions = len(completion_rows)
    summary.tasks = len(tasks)
    summary.gold_tasks = sum(1 for t in tasks if t.is_gold)
    return summary


def find_project(ref: str | int) -> Project:
    """A project by id (digits) or exact name; raises Project.DoesNotExist with a clear message."""
    ref = str(ref).strip()
    if ref.isdigit():
        found = Project.objects.filter(pk=int(ref)).first()
        if found:
            return found
    found = Project.objects.filter(name=ref).first()
    if found:
        return found
    raise Project.DoesNotExist(f"no project with id or name {ref!r}")
