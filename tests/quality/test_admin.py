"""The quality admin reads as words and figures, not as database values: consensus orders by completion letter and
model (their text escaped, on hover), gold accuracy as one percentage format on both pages, times in the site's
format, and the quality records read-only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from annotation.models import Completion
from quality.models import GoldScore, PauseEvent, QualityReport, RaterQuality, TaskConsensus
from tests.quality.helpers import best_first, rate_once

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def root(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def contested(project, make_task, rater):
    """A task with a contested consensus over completions of four models (one with markup in its text)."""
    task = make_task(project, texts=["a fine answer", XSS, "another answer", "the last answer"])
    ids = sorted(task.completions.values_list("id", flat=True))
    Completion.objects.filter(pk=ids[0]).update(model_name="gpt-4")
    Completion.objects.filter(pk=ids[1]).update(model_name="llama")
    # Best first: the first, then the second and third tied, then the fourth.
    TaskConsensus.objects.create(task=task, order=[ids[0], ids[1], ids[2], ids[3]], confidence=0.51234567,
                                 scores={str(ids[0]): 1.5, str(ids[1]): 0.25, str(ids[2]): 0.25, str(ids[3]): -2.0},
                                 pairs=[[ids[0], ids[1], 0.87654321]], rankings=3)
    RaterQuality.objects.create(project=project, rater=rater, rankings=9, reliability=0.8, gold_accuracy=0.27777777,
                                gold_tasks=3)
    finished = dt.datetime(2026, 3, 4, 15, 30, 12, tzinfo=dt.UTC)
    QualityReport.objects.create(project=project, status=QualityReport.DONE, progress=1.0, finished_at=finished,
                                 started_at=finished, summary={"rankings": 9, "seconds": 0.1234567, "tasks": 1,
                                                               "contested_tasks": 1})
    PauseEvent.objects.create(project=project, rater=rater, paused=True, reason="clicks at random")
    return task, ids


def test_consensus_orders_name_models_not_ids(root, project, contested):
    task, ids = contested
    body = root.get(reverse("admin:annotation_project_quality", args=[project.pk])).content.decode()
    table = body.split('id="contested-table"', 1)[1].split("</table>", 1)[0]
    text = strip_tags(table)
    assert "A (gpt-4) ≻ B (llama) = C (model-2) ≻ D (model-3)" in text
    assert " ≻ ".join(str(i) for i in ids) not in table
    assert XSS not in body and "&lt;img src=x onerror=alert(1)&gt;" in table  # the text, escaped, in a title
    # The consensus's own admin list and page say the same.
    listing = root.get(reverse("admin:quality_taskconsensus_changelist")).content.decode()
    assert "A (gpt-4)" in listing and "0.512" in listing and "0.51234567" not in listing
    page = root.get(reverse("admin:quality_taskconsensus_change", args=[task.pk])).content.decode()
    assert "A (gpt-4) ≻ B (llama) = C (model-2)" in strip_tags(page) and "A ≻ B" in page and "0.877" in page


def test_gold_accuracy_is_a_percentage_as_on_the_agreement_page(root, project, contested):
    quality = root.get(reverse("admin:annotation_project_quality", args=[project.pk])).content.decode()
    assert "27.8% (3)" in quality and "0.2778" not in quality


def test_times_are_localized(root, project, contested):
    body = root.get(reverse("admin:annotation_project_quality", args=[project.pk])).content.decode()
    assert "2026-03-04T" not in body and "Refreshed March 4, 2026" in body and "in 0.123 s" in body
    event = PauseEvent.objects.get()
    assert event.at.isoformat() not in body
    assert timezone.localtime(event.at).strftime("%Y") in body.split('id="pause-log"', 1)[1]


def test_gold_scores_are_percentages(root, project, rater, make_task):
    make_task(project)
    rate_once(project, rater, best_first)
    from annotation.models import Ranking

    GoldScore.objects.create(ranking=Ranking.objects.get(), accuracy=0.27777777, pairs=6)
    assert "27.8%" in root.get(reverse("admin:quality_goldscore_changelist")).content.decode()


@pytest.mark.parametrize("model", ["qualityreport", "raterquality", "taskconsensus", "pauseevent"])
def test_quality_records_are_read_only_for_staff(make_user, project, contested, model):
    staff = make_user("staffer", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="quality"))
    client = Client()
    client.force_login(staff)
    obj = {"qualityreport": QualityReport, "raterquality": RaterQuality, "taskconsensus": TaskConsensus,
           "pauseevent": PauseEvent}[model].objects.first()
    body = client.get(reverse(f"admin:quality_{model}_change", args=[obj.pk])).content.decode()
    assert 'name="_save"' not in body and 'name="_continue"' not in body and "deletelink" not in body
    assert client.get(reverse(f"admin:quality_{model}_add")).status_code == 403
