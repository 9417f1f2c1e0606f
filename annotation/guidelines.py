"""A project's guidelines over time: the one place that records a revision, restores one, diffs two, previews a
draft, and tells a rater whether the guidelines changed since they last ranked.

Every path that changes ``Project.guidelines`` (the admin's project form, the API's create and PATCH, a restore,
``load_demo``, ``import_preferences --create-project``) saves the project and then calls :func:`record_revision`,
which writes a :class:`~annotation.models.GuidelinesRevision` only when the text differs from the latest one, so
calling it after any save is safe.  Guidelines are Markdown from managers, shown to raters: always rendered through
annotation.markdown (sanitised), and diffs are escaped.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from annotation.markdown import render_markdown
from annotation.models import GuidelinesRevision, Project, Ranking
from config.text import show_bidi_controls

# A preview renders one draft per request: bounded so that a request cannot make the server parse megabytes.
MAX_PREVIEW_CHARS = 100_000
# difflib is quadratic in the worst case: a diff compares at most this many lines of each side.
MAX_DIFF_LINES = 2_000


class PreviewTooLong(ValueError):
    """A draft longer than MAX_PREVIEW_CHARS."""


def latest_revision(project: Project) -> GuidelinesRevision | None:
    return GuidelinesRevision.objects.filter(project=project).order_by("-number").first()


def record_revision(project: Project, *, by=None, note: str = "") -> GuidelinesRevision | None:
    """Record the project's current guidelines as its next revision, unless they equal the latest one; returns the
    new revision or None. Call it after saving the project, inside or outside a transaction."""
    with transaction.atomic():
        # The project's row lock orders concurrent editors: numbers stay 1, 2, 3 … with no duplicate.
        text = Project.objects.select_for_update().values_list("guidelines", flat=True).get(pk=project.pk)
        latest = latest_revision(project)
        if latest is not None and latest.text == text:
            return None
        user = by if by is not None and getattr(by, "is_authenticated", False) else None
        return GuidelinesRevision.objects.create(
            project=project, number=(latest.number + 1) if latest else 1, text=text, edited_by=user,
            note=note[:300],
        )


def restore_revision(project: Project, number: int, *, by=None) -> GuidelinesRevision | None:
    """Make revision `number`'s text the project's guidelines again (recorded as a new revision, so the history
    only grows); None when they are that text already."""
    revision = GuidelinesRevision.objects.get(project=project, number=number)
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).update(guidelines=revision.text)
        project.guidelines = revision.text
        return record_revision(project, by=by, note=f"restored revision {number}")


def preview(text: str) -> SafeString:
    """A draft rendered exactly as raters will see it (the same sanitiser as the rate page)."""
    if len(text) > MAX_PREVIEW_CHARS:
        raise PreviewTooLong(f"at most {MAX_PREVIEW_CHARS:,} characters, got {len(text):,}")
    return render_markdown(text)


def diff_html(old: str, new: str) -> SafeString:
    """A side-by-side HTML table of the changes from `old` to `new` (difflib; every line escaped by it, and bidi
    controls shown as markers first). At most MAX_DIFF_LINES lines of each are compared."""
    def lines(text: str) -> list[str]:
        all_lines = show_bidi_controls(text).splitlines()
        if len(all_lines) > MAX_DIFF_LINES:
            return all_lines[:MAX_DIFF_LINES] + [f"… {len(all_lines) - MAX_DIFF_LINES:,} more lines not compared"]
        return all_lines

    table = difflib.HtmlDiff(tabsize=4, wrapcolumn=80).make_table(
        lines(old), lines(new), fromdesc="previous", todesc="this revision", context=True, numlines=3)
    # HtmlDiff escapes &, < and > in the text itself; the rest of the table is its own fixed markup.
    return mark_safe(table)  # noqa: S308 - difflib escapes the compared lines


def revision_diff(revision: GuidelinesRevision) -> SafeString:
    """The diff between `revision` and the one before it (against nothing for revision 1)."""
    previous = (GuidelinesRevision.objects.filter(project_id=revision.project_id, number__lt=revision.number)
                .order_by("-number").values_list("text", flat=True).first())
    if previous == revision.text:
        return mark_safe(f"<p>{escape('No change in the text.')}</p>")
    return diff_html(previous or "", revision.text)


@dataclass(frozen=True)
class RaterNotice:
    """What the rate page says about the guidelines: when they last changed, and whether that was after this rater's
    last ranking in the project (then the page highlights it)."""

    updated_at: datetime | None
    changed_since_last_ranking: bool


def rater_notice(project: Project, user) -> RaterNotice:
    """Two indexed queries: the latest revision, and the rater's last ranking in the project."""
    latest = (GuidelinesRevision.objects.filter(project=project).order_by("-number")
              .values_list("created_at", flat=True).first())
    if latest is None:
        return RaterNotice(None, False)
    last_ranked = Ranking.objects.filter(rater=user, task__project=project).aggregate(last=Max("submitted_at"))["last"]
    # A rater who never ranked here reads the guidelines for the first time: nothing "changed" for them.
    return RaterNotice(latest, last_ranked is not None and latest > last_ranked)
