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

The file is never held whole. A scan checks the read bounds (``annotation.rows``: decompressed bytes, line length,
lines, decompression ratio) without parsing anything, and raises ``TooLarge`` for a file over one. A first pass then
checks every line (ids are remembered as 8-byte hashes, so a million-line file's duplicate check takes 16 MB) and
writes nothing; if any line is bad, ``ImportFailed`` carries every ``(line_no, message)`` (it stops reading at
``MAX_ERRORS``) and the database is left untouched.
The second pass writes in batches of ``BATCH_SIZE`` lines inside one transaction, with PostgreSQL's COPY
(``annotation.bulk``). Files are JSON Lines (plain or gzipped) or Parquet with the same fields
(``annotation.rows``); ``progress(phase, rows done, rows in all or None)`` is called as it goes.
"""

from __future__ import annotations

import functools
import hashlib
import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation import bulk
from annotation.guidelines import record_revision
from annotation.models import Completion, Project, Prompt, RankingTask
from annotation.rows import ReadBounds, RowError, RowSource

TOP_LEVEL_KEYS = {"prompt", "id", "metadata", "priority", "completions", "gold"}
COMPLETION_KEYS = {"text", "model", "metadata"}
MAX_ID_CHARS = 200  # Prompt.external_id
MAX_MODEL_CHARS = 200  # Completion.model_name
INT32 = (-(2**31), 2**31 - 1)  # RankingTask.priority is an IntegerField
BATCH_SIZE = 2000
EXISTING_ID_CHUNK = 5000
MAX_ERRORS = 1_000  # reading stops here: a file with this many bad lines is refused without reading the rest
PROGRESS_EVERY = 5000
Progress = Callable[[str, int, int | None], None]  # (phase: "checking" | "writing", rows done, rows in all)


class ImportFailed(Exception):
    """The file was refused; `errors` lists every ``(line_no, message)``, 1-based line numbers."""

    def __init__(self, errors: list[tuple[int, str]], total: int | None = None):
        self.errors = errors
        self.total = total if total is not None else len(errors)  # errors found (the list may stop at MAX_ERRORS)
        shown = "; ".join(f"line {n}: {m}" for n, m in errors[:5])
        more = f" (and {self.total - 5} more)" if self.total > 5 else ""
        super().__init__(f"{self.total} error(s), nothing imported: {shown}{more}")


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


_LineError = RowError  # a bad line: its message says why


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


@functools.lru_cache(maxsize=16)
def _run_longer_than(limit: int) -> re.Pattern:
    return re.compile(r"(?<!\S)\S{" + str(limit + 1) + ",}")


def _bounded(text: str, where: str, max_chars: int, limits: TextLimits, setting: str) -> str:
    if len(text) > max_chars:
        raise _LineError(f"{where} has {len(text):,} characters; this project allows at most {max_chars:,} "
                         f"(Project.{setting})")
    # Only a text longer than the limit can hold a longer run; the regex then looks at word starts only (linear).
    if len(text) > limits.unbroken_run and _run_longer_than(limits.unbroken_run).search(text):
        run = longest_unbroken_run(text)
        raise _LineError(f"{where} has a run of {run:,} characters without a space or line break; this project "
                         f"allows at most {limits.unbroken_run:,} (Project.max_unbroken_run)")
    return text


def _parse_record(obj: Any, line_no: int, k: int, limits: TextLimits) -> _Record:
    if isinstance(obj, RowError):
        raise obj
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


def _accepted_record(obj: dict, line_no: int) -> _Record:
    """A record from a row the first pass accepted, without checking it again (the second pass: half the work)."""
    completions = [(c["text"], c.get("model") or "", c.get("metadata") or {}) for c in obj["completions"]]
    gold = tie_groups(obj["gold"], len(completions)) if obj.get("gold") is not None else None
    return _Record(line_no, obj["prompt"], obj.get("id") or "", obj.get("metadata") or {}, obj.get("priority") or 0,
                   completions, gold)


def _id_hash(external_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(external_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little", signed=True)


def _records(project: Project, source: RowSource) -> Iterable[tuple[int, _Record | RowError]]:
    limits = TextLimits.of(project)
    for line_no, obj in source.rows():
        try:
            yield line_no, _parse_record(obj, line_no, project.k, limits)
        except RowError as exc:
            yield line_no, exc


def check_file(project: Project, source: RowSource, progress: Progress | None = None,
               lines: int | None = None) -> int:
    """The first pass: check every line and write nothing. Returns the number of records; raises ImportFailed.
    `lines` (the scan's count, blank lines included) is the total its progress reports against."""
    errors: list[tuple[int, str]] = []
    error_count = 0
    hashes, hash_lines = array("q"), array("q")  # external ids as 8-byte hashes, and their lines
    pending: dict[str, int] = {}  # ids not yet checked against the database
    records = 0

    def fail(line_no: int, message: str) -> None:
        nonlocal error_count
        error_count += 1
        if len(errors) < MAX_ERRORS:
            errors.append((line_no, message))

    def check_existing() -> None:
        for existing in Prompt.objects.filter(project=project, external_id__in=list(pending)).values_list(
                "external_id", flat=True):
            fail(pending[existing], f"id {existing!r} already exists in project {project.name!r}")
        pending.clear()

    for line_no, record in _records(project, source):
        if isinstance(record, RowError):
            fail(line_no, str(record))
            if error_count >= MAX_ERRORS:
                errors.append((line_no, f"stopped reading here after {MAX_ERRORS:,} errors"))
                raise ImportFailed(errors, total=error_count)
            continue
        records += 1
        if record.external_id:
            hashes.append(_id_hash(record.external_id))
            hash_lines.append(line_no)
            pending.setdefault(record.external_id, line_no)
            if len(pending) >= EXISTING_ID_CHUNK:
                check_existing()
        if progress and records % PROGRESS_EVERY == 0:
            progress("checking", records, lines)
    check_existing()
    if progress:
        progress("checking", records, records)
    for line_no, first, external_id in _duplicate_ids(source, project, hashes, hash_lines):
        fail(line_no, f"duplicate id {external_id!r} (first used on line {first})")
    if not records and not error_count:
        fail(0, "the file has no records")
    if error_count:
        raise ImportFailed(sorted(errors), total=error_count)
    return records


def _duplicate_ids(source: RowSource, project: Project, hashes: array, lines: array) -> list[tuple[int, int, str]]:
    """(line, first line, id) for every repeated id: equal hashes are found by sorting, then confirmed by reading
    those lines' ids again (a hash collision is not a duplicate)."""
    if len(hashes) < 2:
        return []
    h = np.frombuffer(hashes, dtype=np.int64)
    order = np.argsort(h, kind="stable")
    repeated = np.flatnonzero(h[order][1:] == h[order][:-1])
    if not len(repeated):
        return []
    suspects = set(np.asarray(lines, dtype=np.int64)[np.union1d(order[repeated], order[repeated + 1])].tolist())
    first_line: dict[str, int] = {}
    found = []
    for line_no, record in _records(project, source):
        if line_no in suspects and isinstance(record, _Record):
            first = first_line.setdefault(record.external_id, line_no)
            if first != line_no:
                found.append((line_no, first, record.external_id))
    return found


def import_jsonl(project: Project, source: str | bytes | Path | IO | Iterable[str | bytes] | RowSource,
                 progress: Progress | None = None, bounds: ReadBounds | None = None) -> ImportSummary:
    """Check then import `source`: JSONL text or bytes, a path to a .jsonl(.gz) or .parquet file, an uploaded file,
    or an iterable of lines.

    Raises TooLarge (nothing read past the bound, nothing written) for a file over a read bound, ImportFailed
    (nothing written) when any line is bad; otherwise returns what was created.
    """
    rows = RowSource.of(source, bounds)
    before = rows.fingerprint()
    scan = scan_file(rows)
    total = check_file(project, rows, progress, lines=scan.rows)
    if rows.fingerprint() != before:  # the second pass trusts the first: the file must not change in between
        raise ImportFailed([(0, "the file changed while it was being checked; nothing imported")])
    try:
        summary = _write(project, rows, total, progress)
    except IntegrityError as exc:
        # Another import added one of these ids between checking and writing; the transaction rolled back.
        raise ImportFailed([(0, f"conflict while writing, nothing imported (concurrent import?): {exc}")]) from exc
    bulk.analyze({Prompt: summary.prompts, Completion: summary.completions, RankingTask: summary.tasks,
                  RankingTask.completions.through: summary.completions})
    return summary


def scan_file(rows: RowSource, stop_after: int | None = None):
    """The file's bounds checked before anything is parsed (``RowSource.scan``, up to `stop_after` decompressed
    bytes); a file that cannot be read at all becomes ImportFailed. Returns the scan (rows, decompressed bytes)."""
    try:
        rows.check()
        return rows.scan(stop_after)
    except RowError as exc:
        raise ImportFailed([(0, str(exc))]) from None


def _write(project: Project, source: RowSource, total: int, progress: Progress | None) -> ImportSummary:
    summary = ImportSummary()
    batch: list[_Record] = []
    with transaction.atomic():
        for line_no, obj in source.rows():
            batch.append(_accepted_record(obj, line_no))
            if len(batch) >= BATCH_SIZE:
                _write_batch(project, batch, summary)
                batch = []
                if progress:
                    progress("writing", summary.tasks, total)
        if batch:
            _write_batch(project, batch, summary)
    if progress:
        progress("writing", summary.tasks, total)
    return summary


def _write_batch(project: Project, records: list[_Record], summary: ImportSummary) -> None:
    """One batch: ids reserved, then prompts, completions, tasks and their links streamed (``annotation.bulk``)."""
    now = timezone.now()
    prompt_ids = bulk.reserve_ids(Prompt, len(records))
    completion_ids = iter(bulk.reserve_ids(Completion, sum(len(r.completions) for r in records)))
    task_ids = bulk.reserve_ids(RankingTask, len(records))
    prompts, completions, tasks, links = [], [], [], []
    for record, prompt_id, task_id in zip(records, prompt_ids, task_ids, strict=True):
        prompts.append((prompt_id, project.pk, record.external_id, record.prompt, record.metadata, now))
        ids = []
        for text, model, meta in record.completions:
            cid = next(completion_ids)
            ids.append(cid)
            completions.append((cid, prompt_id, model, text, meta))
            links.append((task_id, cid))
        gold = [[ids[i] for i in group] for group in record.gold] if record.gold else None
        tasks.append((task_id, project.pk, prompt_id, record.priority, RankingTask.OPEN, gold is not None, gold,
                      "import", 0, now))
        summary.gold_tasks += gold is not None
    bulk.insert_rows(Prompt, ("id", "project", "external_id", "text", "metadata", "created_at"), prompts)
    bulk.insert_rows(Completion, ("id", "prompt", "model_name", "text", "metadata"), completions)
    bulk.insert_rows(RankingTask, ("id", "project", "prompt", "priority", "status", "is_gold", "gold_order",
                                   "source", "submitted_count", "created_at"), tasks)
    bulk.insert_rows(RankingTask.completions.through, ("rankingtask", "completion"), links)
    summary.prompts += len(prompts)
    summary.completions += len(completions)
    summary.tasks += len(tasks)


def find_or_create_project(ref: str, create: bool, k: int, overlap: int) -> tuple[Project, bool]:
    """(project, created): the project by id or name, or with `create` a new one named `ref`; raises ValueError
    with the reason (a missing project without `create`, k outside 2–9, overlap below 1)."""
    try:
        return find_project(ref), False
    except Project.DoesNotExist as exc:
        if not create:
            raise ValueError(f"{exc} (use --create-project to create it)") from None
    if not 2 <= k <= 9:
        raise ValueError("--k must be between 2 and 9")
    if overlap < 1:
        raise ValueError("--overlap must be at least 1")
    project = Project.objects.create(name=ref, k=k, overlap=overlap)
    record_revision(project)  # its (empty) guidelines are revision 1, as for a project made anywhere else
    return project, True


def find_project(ref: str | int) -> Project:
    """A project by id (digits) or exact name; raises Project.DoesNotExist with a clear message."""
    ref = str(ref).strip()
    if ref.isdigit():
        found = Project.objects.filter(pk=int(ref)).first()
        if found:
            return found
    found = list(Project.objects.filter(name=ref).order_by("pk")[:10])
    if len(found) == 1:
        return found[0]
    if found:  # names are unique per manager, not across the platform (Project.name)
        raise Project.DoesNotExist(f"{len(found)} projects are named {ref!r} (ids "
                                   f"{', '.join(str(p.pk) for p in found)}): give the id")
    raise Project.DoesNotExist(f"no project with id or name {ref!r}")
