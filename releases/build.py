"""Making a dataset release: freeze what training sees of a project's rankings, row by row, and hash it.

What goes in (:func:`selection`): the project's trainable rankings as ``rewardmodel.snapshot.trainable_rankings``
gives them (unflagged, not rejected in review, of tasks not excluded from training; people's, and AI judges' only
when the retrain policy trains on them), of raters with a
training weight above 0, and with at least one strict pair (a ranking that ties everything teaches nothing and
training skips it). Those of the evaluation stream, which training never learns from, go in only with
``include_eval``, as the ``heldout`` split: a ranking's split is fixed by its task (in the stream or not), so it
never moves between releases the way a seeded prompt split with a changing fraction could.

Each ranking is frozen as its ``annotation.exporter.iter_rankings`` row plus ``split``: the export's own row shape,
and its pairs are ``annotation.exporter.trl_rows`` of that row, so the one ranking→pairs function decides them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet

from annotation.exporter import iter_rankings, trl_rows
from annotation.models import Project, Ranking
from releases.models import HELDOUT, TRAIN, DatasetRelease, ReleaseRanking, validate_license, validate_release_name
from rewardmodel.snapshot import snapshot_hash, trainable_rankings

BATCH = 1000


class ReleaseError(Exception):
    """A release that cannot be made as asked; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class DuplicateName(ReleaseError):
    pass


class NothingToRelease(ReleaseError):
    pass


def selection(project: Project, include_eval: bool = False) -> list[tuple[str, QuerySet[Ranking]]]:
    """(split, rankings) for what a release of `project` holds, before dropping rankings without a pair."""
    trainable = trainable_rankings(project.pk).filter(weight__gt=0)
    chosen = [(TRAIN, trainable.filter(task__eval_key__isnull=True))]
    if include_eval:
        chosen.append((HELDOUT, trainable.filter(task__eval_key__isnull=False)))
    return chosen


def count_selection(project: Project, include_eval: bool = False) -> int:
    """How many rankings a release would read (an upper bound: those without a pair are dropped)."""
    return sum(qs.count() for _, qs in selection(project, include_eval))


def check_inputs(project: Project, name: str, license: str = "") -> None:
    """The checks the API and the command share; raises ReleaseError naming the field."""
    for field, value, validate in (("name", name, validate_release_name), ("license", license, validate_license)):
        if field == "license" and not value:
            continue
        try:
            validate(value)
        except ValidationError as exc:
            raise ReleaseError(field, " ".join(exc.messages)) from None
    if DatasetRelease.objects.filter(project=project, name=name).exists():
        raise DuplicateName("name", f"project {project.name!r} already has a release named {name!r}")


def _order_of(row: dict) -> list[list[int]]:
    """The ranking's tie groups restricted to the completions the row holds (a deleted completion gives no pair)."""
    present = {c["id"] for c in row["completions"]}
    groups = [[int(c) for c in group if int(c) in present] for group in row["order"]]
    return [g for g in groups if g]


def create_release(project: Project, name: str, description: str = "", license: str = "",
                   include_eval: bool = False, user=None,
                   progress: Callable[[str, int, int | None], None] | None = None) -> DatasetRelease:
    """Freeze the project's rankings (see the module) as the release `name`; raises ReleaseError (nothing
    written) for a bad or taken name, or when no ranking qualifies."""
    check_inputs(project, name, license)
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            # One consistent view of the rankings for the whole release, however long it takes to read.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        try:
            with transaction.atomic():
                release = DatasetRelease.objects.create(project=project, name=name, description=description,
                                                        license=license, include_eval=include_eval, created_by=user)
        except IntegrityError:  # made by someone else meanwhile
            raise DuplicateName("name", f"project {project.name!r} already has a release named {name!r}") from None
        records, splits, sources = [], {}, Counter()
        batch: list[ReleaseRanking] = []
        total = count_selection(project, include_eval)
        read = 0
        for split, rankings in selection(project, include_eval):
            counts = splits.setdefault(split, {"rankings": 0, "pairs": 0})
            for row in iter_rankings(project, rankings=rankings):
                read += 1
                if progress is not None:
                    progress("freezing", read, total)
                n_pairs = sum(1 for _ in trl_rows(row))
                if not n_pairs:
                    continue
                row["split"] = split
                data, digest = ReleaseRanking.encode(row)
                batch.append(ReleaseRanking(release=release, ranking_id=row["ranking_id"], split=split,
                                            source=row["source"], n_pairs=n_pairs, order=_order_of(row),
                                            digest=digest, data=data))
                records.append([row["ranking_id"], split, digest])
                counts["rankings"] += 1
                counts["pairs"] += n_pairs
                sources[row["source"]] += 1
                if len(batch) >= BATCH:
                    ReleaseRanking.objects.bulk_create(batch)
                    batch.clear()
            if not counts["rankings"]:
                del splits[split]
        ReleaseRanking.objects.bulk_create(batch)
        if not records:
            raise NothingToRelease("project", f"project {project.name!r} has no ranking to release: none is "
                                   "unflagged, of a rater with a training weight above 0, with a strict preference"
                                   + ("" if include_eval else " and outside the evaluation stream"))
        records.sort()
        fields = {"n_rankings": len(records), "n_pairs": sum(s["pairs"] for s in splits.values()),
                  "splits": splits, "by_source": dict(sorted(sources.items())), "sha256": snapshot_hash(records)}
        # The one write after creation, in the transaction that made it: the counts are known only at the end.
        DatasetRelease.objects.filter(pk=release.pk).update(**fields)
    return DatasetRelease.objects.get(pk=release.pk)
