"""Making a release: what goes in (trainable rankings; the evaluation stream only when asked), the hash, and that a
release never changes: not when its rankings are revised or deleted, not when someone tries to save it."""

from __future__ import annotations

import pytest

from annotation.models import Ranking, RankingTask
from releases.build import DuplicateName, NothingToRelease, ReleaseError, create_release
from releases.diff import diff_releases
from releases.export import iter_release_pairs, iter_release_rankings
from releases.models import DatasetRelease, Immutable, ReleaseRanking
from tests.releases.conftest import revise


def test_a_release_holds_what_training_learns_from(project, manager, ranked):
    release = create_release(project, "v1", "first", user=manager)
    assert release.ranking_ids == sorted([ranked.strict.pk, ranked.tied.pk])
    assert (release.n_rankings, release.n_pairs) == (2, 11)  # 6 + 5: ties give no pair
    assert release.splits == {"train": {"rankings": 2, "pairs": 11}}
    assert release.by_source == {"rater": 2} and release.created_by == manager
    assert len(release.sha256) == 64

    with_eval = create_release(project, "v1-eval", include_eval=True)
    assert with_eval.splits == {"train": {"rankings": 2, "pairs": 11}, "heldout": {"rankings": 1, "pairs": 6}}
    held = list(iter_release_rankings(with_eval, "heldout"))
    assert [r["ranking_id"] for r in held] == [ranked.streamed.pk] and held[0]["split"] == "heldout"
    assert with_eval.sha256 != release.sha256


def test_weight_zero_rankings_are_left_out(project, ranked):
    Ranking.objects.filter(pk=ranked.tied.pk).update(weight=0)
    Ranking.objects.filter(pk=ranked.strict.pk).update(weight=0.7)
    release = create_release(project, "v1")
    assert release.ranking_ids == [ranked.strict.pk]
    assert {p["weight"] for p in iter_release_pairs(release, "train")} == {0.7}


def test_what_training_leaves_out_stays_out(project, ranked):
    RankingTask.objects.filter(pk=ranked.tied.task_id).update(excluded_from_training=True)
    assert create_release(project, "v1").ranking_ids == [ranked.strict.pk]


def test_same_rankings_same_hash(project, ranked):
    assert create_release(project, "a").sha256 == create_release(project, "b").sha256


def test_revising_or_deleting_rankings_leaves_the_release_as_it_was(project, ranked):
    release = create_release(project, "v1")
    before = list(iter_release_rankings(release, "train"))
    pairs_before = {(p["chosen"], p["rejected"]) for p in iter_release_pairs(release, "train")}
    assert pairs_before >= {("C", "A"), ("C", "D"), ("C", "B"), ("A", "D"), ("A", "B"), ("D", "B")}

    revise(Ranking.objects.get(pk=ranked.strict.pk), [[0], [1], [2], [3]])  # A ≻ B ≻ C ≻ D now
    release.refresh_from_db()
    assert list(iter_release_rankings(release, "train")) == before
    assert {(p["chosen"], p["rejected"]) for p in iter_release_pairs(release, "train")} == pairs_before

    later = create_release(project, "v2")
    assert later.n_pairs == release.n_pairs
    assert later.sha256 != release.sha256
    diff = diff_releases(release, later)
    assert diff["rankings"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 1}
    assert diff["changed"] == [{"ranking_id": ranked.strict.pk, "fields": ["order"]}]
    # C≻A, C≻B, D≻B, A≻D… three of the six pairs flipped: C≻A, C≻B, D≻B became A≻C, B≻C, B≻D
    assert diff["pairs"] == {"added": 3, "removed": 3}
    assert diff["by_source"]["rater"]["changed"] == 1

    # Deleting the ranking, or the completions it ranked, changes nothing either.
    Ranking.objects.filter(pk=ranked.strict.pk).delete()
    ranked.tied.task.completions.get(text="H").delete()  # E = F ≻ G ≻ H: H's three pairs go
    assert list(iter_release_rankings(release, "train")) == before
    gone = diff_releases(release, create_release(project, "v3"))
    assert gone["rankings"] == {"added": 0, "removed": 1, "changed": 1, "unchanged": 0}
    assert gone["removed_ids"] == [ranked.strict.pk]
    assert gone["changed"] == [{"ranking_id": ranked.tied.pk, "fields": ["completions"]}]
    assert gone["pairs"] == {"added": 0, "removed": 9}  # 6 of the deleted ranking, 3 of H
    assert gone["by_source"]["rater"] == {"added": 0, "removed": 1, "changed": 1, "pairs_added": 0,
                                          "pairs_removed": 9}


def test_a_release_cannot_be_saved_again(project, ranked):
    release = create_release(project, "v1")
    release.description = "changed"
    with pytest.raises(Immutable):
        release.save()
    row = ReleaseRanking.objects.filter(release=release).first()
    row.n_pairs = 0
    with pytest.raises(Immutable):
        row.save()
    assert DatasetRelease.objects.get(pk=release.pk).description == ""


def test_bad_duplicate_and_empty_releases_write_nothing(project, ranked, make_task):
    create_release(project, "v1")
    with pytest.raises(DuplicateName):
        create_release(project, "v1")
    for bad in ("", "-v", "v 1", "v/1", "x" * 65, "v1\n"):
        with pytest.raises(ReleaseError) as exc:
            create_release(project, bad)
        assert exc.value.field == "name"
    with pytest.raises(ReleaseError) as exc:
        create_release(project, "v9", license="not a license")
    assert exc.value.field == "license"
    Ranking.objects.update(weight=0)
    with pytest.raises(NothingToRelease):
        create_release(project, "empty")
    assert list(DatasetRelease.objects.values_list("name", flat=True)) == ["v1"]
    assert ReleaseRanking.objects.count() == 2
