"""The data browser's query: full-text search, filters and their validation."""

from __future__ import annotations

import pytest

from annotation.models import Prompt, RankingTask
from curation.search import BrowseFilters, browse
from quality.refresh import refresh_project
from tests.curation.helpers import rate_all

pytestmark = pytest.mark.django_db


def _filters(**data) -> dict:
    form = BrowseFilters(data)
    assert form.is_valid(), form.errors
    return form.cleaned_data


@pytest.fixture
def tasks(project, make_task):
    project.k = 2
    project.save()
    pasta = make_task(project, ["Boil the pasta for ten minutes.", "Bake it."], prompt_text="How do I cook spaghetti?")
    rust = make_task(project, ["Use a borrow checker.", "Write unsafe code everywhere."],
                     prompt_text="How do I write memory-safe systems code?")
    moon = make_task(project, ["About 384,400 kilometres.", "Very far."], prompt_text="Distance to the moon?")
    Prompt.objects.filter(pk=moon.prompt_id).update(metadata={"topic": "astronomy", "lang": "en"})
    return pasta, rust, moon


def test_full_text_search_finds_prompts_and_completions_by_stemmed_words(project, tasks):
    pasta, rust, moon = tasks
    assert list(browse(project, _filters(q="spaghetti"))) == [pasta]
    assert list(browse(project, _filters(q="boiling"))) == [pasta]  # stemmed: boil ~ boiling, in a completion
    assert list(browse(project, _filters(q="kilometres"))) == [moon]
    assert set(browse(project, _filters(q="pasta or borrow"))) == {pasta, rust}
    assert list(browse(project, _filters(q='"borrow checker" -spaghetti'))) == [rust]
    assert list(browse(project, _filters(q="nothingmatchesthis"))) == []


def test_filters_by_status_model_metadata_rater_and_exclusion(project, tasks, rater, rater2):
    pasta, rust, moon = tasks
    RankingTask.objects.filter(pk=rust.pk).update(status=RankingTask.COMPLETE, excluded_from_training=True)
    assert set(browse(project, _filters(status="open"))) == {pasta, moon}
    assert list(browse(project, _filters(excluded="yes"))) == [rust]
    assert list(browse(project, _filters(metadata="topic=astronomy"))) == [moon]
    assert list(browse(project, _filters(metadata="topic=cooking"))) == []
    assert set(browse(project, _filters(model="model-1"))) == {pasta, rust, moon}
    assert list(browse(project, _filters(model="gpt-9"))) == []
    rate_all(project, [rater])
    ranked_by_rater = set(browse(project, _filters(rater=rater.pk)))
    assert ranked_by_rater == {pasta, moon}  # the complete task was not served
    assert set(browse(project, _filters(source="human"))) == ranked_by_rater
    assert list(browse(project, _filters(source="judge"))) == []


def test_confidence_and_contested_filters_follow_the_consensus(project, tasks, rater, rater2):
    pasta, rust, moon = tasks
    rate_all(project, [rater])
    rate_all(project, [rater2], choose=lambda ids: [[c] for c in sorted(ids, reverse=True)])  # they disagree
    refresh_project(project)
    with_consensus = set(browse(project, _filters(min_confidence=0.0)))
    assert with_consensus == {pasta, rust, moon}
    assert set(browse(project, _filters(contested="yes"))) == with_consensus  # one vote each way: never sure
    assert list(browse(project, _filters(contested="no"))) == []
    ordered = list(browse(project, _filters(ordering="least_confident")))
    assert len(ordered) == 3


@pytest.mark.parametrize("data, field", [
    ({"metadata": "no-equals-sign"}, "metadata"),
    ({"min_confidence": "0.9", "max_confidence": "0.2"}, "max_confidence"),
    ({"status": "finished"}, "status"),
    ({"q": "x" * 201}, "q"),
    ({"rater": "-3"}, "rater"),
])
def test_bad_filters_name_the_field(data, field):
    form = BrowseFilters(data)
    assert not form.is_valid()
    assert field in form.errors


def test_search_uses_the_full_text_indexes(project, tasks):
    from django.db import connection

    from annotation.models import Completion

    if connection.vendor != "postgresql":
        pytest.skip("full-text indexes are PostgreSQL's")
    from curation.search import _text_match

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned; ask whether the index fits
        for model, index in ((Prompt, "prompt_text_fts"), (Completion, "completion_text_fts")):
            plan = model.objects.filter(_text_match("moon")).explain()
            assert index in plan, plan
