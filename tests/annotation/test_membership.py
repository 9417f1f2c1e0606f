"""Members through the API: a manager adds raters by user name, changes a role, and bad input writes nothing."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import Membership, RaterProfile


@pytest.fixture
def as_manager(project, manager) -> APIClient:
    client = APIClient()
    client.force_authenticate(manager)
    return client


def test_manager_adds_a_rater_then_makes_them_manager(project, as_manager, make_user):
    newcomer = make_user("newcomer")
    added = as_manager.post(f"/api/projects/{project.pk}/members/", {"username": "newcomer"}, format="json")
    assert added.status_code == 201, added.content
    assert added.json() == {"username": "newcomer", "role": "rater", "paused": False}
    assert RaterProfile.objects.filter(user=newcomer).exists()
    changed = as_manager.post(f"/api/projects/{project.pk}/members/", {"username": "newcomer", "role": "manager"},
                              format="json")
    assert changed.status_code == 200
    assert Membership.objects.get(project=project, user=newcomer).role == Membership.MANAGER
    listed = as_manager.get(f"/api/projects/{project.pk}/members/").json()["results"]
    assert [m["username"] for m in listed] == ["manager", "newcomer", "rater1", "rater2"]
    assert {m["username"]: m["role"] for m in listed}["newcomer"] == "manager"


@pytest.mark.parametrize("body, field", [
    ({"username": "nobody-by-this-name"}, "username"),
    ({"username": "rater1", "role": "owner"}, "role"),
    ({"role": "rater"}, "username"),
])
def test_bad_member_requests_name_the_field_and_write_nothing(project, as_manager, body, field):
    before = list(Membership.objects.filter(project=project).values_list("user__username", "role"))
    response = as_manager.post(f"/api/projects/{project.pk}/members/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert list(Membership.objects.filter(project=project).values_list("user__username", "role")) == before


def test_an_inactive_account_cannot_be_added(project, as_manager, make_user):
    make_user("gone", is_active=False)
    response = as_manager.post(f"/api/projects/{project.pk}/members/", {"username": "gone"}, format="json")
    assert response.status_code == 400 and "username" in response.json()
