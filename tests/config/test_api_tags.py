"""The API docs are in sections by app and area (config.api_contract.VerdictAutoSchema.get_tags), not one
"projects" section of nearly every endpoint."""

from __future__ import annotations

from collections import Counter

import pytest

from config.api_contract import tag_for

MAX_PER_TAG = 12


@pytest.mark.django_db
def test_every_operation_has_a_tag_and_no_tag_holds_too_many(client):
    schema = client.get("/api/schema/?format=json").json()
    tags = Counter()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert len(operation.get("tags", [])) == 1, f"{method.upper()} {path}: {operation.get('tags')}"
            tags[operation["tags"][0]] += 1
    assert len(tags) >= 6, tags
    assert max(tags.values()) <= MAX_PER_TAG, tags
    for expected in ("projects", "tasks & rankings", "imports & exports", "quality", "reward models", "judges",
                     "serving", "active learning"):
        assert expected in tags, tags


def test_tags_follow_the_view_module_and_the_path():
    assert tag_for("quality.api", "/api/projects/{project_id}/quality/") == "quality"
    assert tag_for("rewardmodel.api", "/api/projects/{project_id}/reward-models/") == "reward models"
    assert tag_for("annotation.api", "/api/projects/{id}/export/") == "imports & exports"
    assert tag_for("annotation.api", "/api/projects/{project_pk}/tasks/next/") == "tasks & rankings"
    assert tag_for("annotation.api", "/api/projects/{id}/") == "projects"
    assert tag_for("newapp.api", "/api/thing/") == "newapp"
