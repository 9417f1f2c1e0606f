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
    assert added.json() == {"user_id": newcomer.pk, "username": "newcomer", "role": "rater", "paused": False}
    assert RaterProfile.objects.filter(user=newcomer).exists()
    changed = as_manager.post(f"/api/projects/{project.pk}/members/", {"username": "newcomer", "role": "manager"},
                              format="json")
    assert changed.status_code == 200
    assert Membership.objects.get(project=project, user=newcomer).role == Membership.MANAGER
    listed = as_manager.get(f"/api/projects/{project.pk}/members/").json()["results"]
    assert [m["username"] for m in listed] == ["manager", "newcomer", "rater1", "rater2"]
    assert {m["username"]: m["role"] for m in listed}["newcomer"] == "manager"
    # The id a pause takes is in the list (it was missing: issue 24).
    rater = next(m for m in listed if m["username"] == "rater1")
    paused = as_manager.post(f"/api/projects/{project.pk}/raters/{rater['user_id']}/pause/", {"reason": "check"},
                             format="json")
    assert paused.status_code == 200 and Membership.objects.get(project=project, user_id=rater["user_id"]).paused


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


# --- What a manager who is not staff may learn and do (issue 20, finding 11) -----------------------------------


def test_a_plain_manager_cannot_probe_usernames(project, plain_manager, token_client, make_user):
    """On main: 400 "no active user named" for a free name, 201 for a taken one (and the stranger joined)."""
    make_user("stranger")
    client = token_client(plain_manager)
    answers = [client.post(f"/api/projects/{project.pk}/members/", {"username": name}, format="json")
               for name in ("stranger", "nobody-by-this-name")]
    assert [a.status_code for a in answers] == [400, 400]
    first, second = (a.json()["username"][0] for a in answers)
    assert first.replace("stranger", "X") == second.replace("nobody-by-this-name", "X")  # the same answer
    assert not Membership.objects.filter(user__username="stranger").exists()


def test_a_plain_manager_adds_people_from_their_other_projects(project, plain_manager, token_client, make_user):
    from annotation.models import Project

    other = Project.objects.create(name="Other", k=2, overlap=1)
    colleague = make_user("colleague")
    Membership.objects.create(project=other, user=plain_manager, role=Membership.MANAGER)
    Membership.objects.create(project=other, user=colleague, role=Membership.RATER)
    added = token_client(plain_manager).post(f"/api/projects/{project.pk}/members/", {"username": "colleague"},
                                             format="json")
    assert added.status_code == 201, added.content


@pytest.mark.parametrize("flag", ["is_superuser", "is_staff"])
def test_a_plain_manager_cannot_demote_or_pause_staff(project, plain_manager, token_client, make_user, flag):
    boss = make_user("boss", **{flag: True, "is_staff": True})
    Membership.objects.create(project=project, user=boss, role=Membership.MANAGER)
    client = token_client(plain_manager)
    demote = client.post(f"/api/projects/{project.pk}/members/", {"username": "boss", "role": "rater"}, format="json")
    pause = client.post(f"/api/projects/{project.pk}/raters/{boss.pk}/pause/", {"reason": "x"}, format="json")
    assert demote.status_code == 403 and pause.status_code == 403, (demote.content, pause.content)
    membership = Membership.objects.get(project=project, user=boss)
    assert membership.role == Membership.MANAGER and not membership.paused


def test_a_refused_name_does_not_reveal_other_projects(project, plain_manager, token_client):
    """On main: a rename to a name taken by a project the manager cannot see was a 409 naming it."""
    from annotation.models import Project

    Project.objects.create(name="Acme secret launch", k=2, overlap=1)
    client = token_client(plain_manager)
    renamed = client.patch(f"/api/projects/{project.pk}/", {"name": "Acme secret launch"}, format="json")
    assert renamed.status_code == 200, renamed.content
    created = client.post("/api/projects/", {"name": "Acme secret launch", "k": 2}, format="json")
    assert created.status_code == 409  # the caller's own project has that name now: that they may know
    assert Project.objects.filter(name="Acme secret launch").count() == 2


def test_duplicate_criteria_are_refused(project, plain_manager, token_client):
    client = token_client(plain_manager)
    for criteria in (["helpful", "helpful"], ["Helpful", " helpful "], ["a"] * 21, [""]):
        response = client.patch(f"/api/projects/{project.pk}/", {"criteria": criteria}, format="json")
        assert response.status_code == 400 and "criteria" in response.json(), (criteria, response.content)
    project.refresh_from_db()
    assert project.criteria == ["helpful", "harmless", "honest"]


def test_new_accounts_join_a_project_through_create_user(project, capsys):
    from django.core.management import call_command

    call_command("create_user", "fresh", "--project", str(project.pk), "--role", "rater")
    assert len(capsys.readouterr().out.strip()) == 40  # the token
    assert Membership.objects.get(project=project, user__username="fresh").role == Membership.RATER
