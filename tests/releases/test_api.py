"""The releases API: managers make, list, read, diff and download releases; raters get 403 and outsiders 404; a
bad or taken name answers 400 / 409 and writes nothing; nothing updates a release; request work is bounded."""

from __future__ import annotations

import io
import zipfile

import pytest

from annotation.models import Project
from releases.build import create_release
from releases.models import DatasetRelease, ReleaseRanking
from tests.conftest import client_for
from tests.releases.conftest import revise


def url(project, *rest) -> str:
    return "/".join([f"/api/projects/{project.pk}/releases", *map(str, rest)]) + "/"


def test_a_manager_makes_lists_reads_and_downloads_a_release(project, plain_manager, ranked):
    client = client_for(plain_manager)  # a manager by membership, not staff
    made = client.post(url(project), {"name": "v1", "description": "first cut", "include_eval": True}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["name"], body["n_rankings"], body["n_pairs"]) == ("v1", 3, 17)
    assert body["splits"] == {"train": {"rankings": 2, "pairs": 11}, "heldout": {"rankings": 1, "pairs": 6}}
    assert body["created_by"] == "lead" and len(body["sha256"]) == 64

    listed = client.get(url(project))
    assert listed.status_code == 200 and [r["name"] for r in listed.json()["results"]] == ["v1"]
    assert "ranking_ids" not in listed.json()["results"][0]
    detail = client.get(url(project, body["id"]))
    assert detail.status_code == 200
    assert detail.json()["ranking_ids"] == sorted([ranked.strict.pk, ranked.tied.pk, ranked.streamed.pk])

    download = client.get(url(project, body["id"], "download"))
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert 'filename="v1.zip"' in download["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as zf:
        assert "v1/rankings/heldout-00000-of-00001.parquet" in zf.namelist()
    assert client.get(url(project, body["id"], "download") + "?format=").status_code == 400


def test_diff_shows_a_revised_ranking(project, manager, ranked):
    first = create_release(project, "v1")
    revise(ranked.strict, [[0], [1], [2], [3]])
    second = create_release(project, "v2")
    diff = client_for(manager).get(url(project, first.pk, "diff", second.pk))
    assert diff.status_code == 200
    body = diff.json()
    assert body["rankings"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 1}
    assert body["changed"] == [{"ranking_id": ranked.strict.pk, "fields": ["order"]}]
    assert body["pairs"] == {"added": 3, "removed": 3} and not body["identical"]


def test_raters_get_403_and_outsiders_404(project, rater, make_user, ranked):
    release = create_release(project, "v1")
    outsider = make_user("outsider")
    paths = [url(project), url(project, release.pk), url(project, release.pk, "diff", release.pk),
             url(project, release.pk, "download")]
    for user, code in ((rater, 403), (outsider, 404)):
        client = client_for(user)
        for path in paths:
            assert client.get(path).status_code == code, (user, path)
        assert client.post(url(project), {"name": "v2"}, format="json").status_code == code
    assert list(DatasetRelease.objects.values_list("name", flat=True)) == ["v1"]


def test_a_release_of_another_project_is_404(project, manager, ranked):
    release = create_release(project, "v1")
    other = Project.objects.create(name="Other")
    client = client_for(manager)
    assert client.get(url(other, release.pk)).status_code == 404
    assert client.get(url(project, release.pk, "diff", 10**6)).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"name": "v 1"}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 65}, "name"),
    ({}, "name"),
    ({"name": 5}, "name"),
    ({"name": "v1", "include_eval": "yes"}, "include_eval"),
    ({"name": "v1", "license": "not a license"}, "license"),
])
def test_bad_input_is_400_naming_the_field_and_writes_nothing(project, manager, ranked, body, field):
    answer = client_for(manager).post(url(project), body, format="json")
    assert answer.status_code == 400 and field in answer.json(), answer.content
    assert not DatasetRelease.objects.exists() and not ReleaseRanking.objects.exists()


def test_a_taken_name_is_409_and_writes_nothing(project, manager, ranked):
    create_release(project, "v1", "kept")
    answer = client_for(manager).post(url(project), {"name": "v1", "description": "new"}, format="json")
    assert answer.status_code == 409 and "v1" in answer.json()["detail"]
    assert list(DatasetRelease.objects.values_list("description", flat=True)) == ["kept"]


def test_nothing_to_release_is_409(project, manager):
    answer = client_for(manager).post(url(project), {"name": "v1"}, format="json")
    assert answer.status_code == 409 and "no ranking" in answer.json()["detail"]
    assert not DatasetRelease.objects.exists()


def test_requests_are_bounded_the_commands_are_not(project, manager, ranked, settings):
    release = create_release(project, "v1")
    settings.VERDICT_RELEASE_API_MAX_RANKINGS = 1
    client = client_for(manager)
    made = client.post(url(project), {"name": "v2"}, format="json")
    assert made.status_code == 409 and "create_release" in made.json()["detail"]
    download = client.get(url(project, release.pk, "download"))
    assert download.status_code == 409 and "export_release" in download.json()["detail"]
    assert DatasetRelease.objects.count() == 1


def test_nothing_updates_or_deletes_a_release(project, manager, ranked):
    release = create_release(project, "v1", "kept")
    client = client_for(manager)
    for method in ("put", "patch", "delete"):
        answer = getattr(client, method)(url(project, release.pk), {"description": "changed"}, format="json")
        assert answer.status_code == 405
    assert DatasetRelease.objects.get().description == "kept"
