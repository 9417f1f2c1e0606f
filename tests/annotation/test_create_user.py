"""manage.py create_user: the first account of a fresh deployment, and its API token."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def create(*args: str, **env) -> str:
    out = io.StringIO()
    call_command("create_user", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


@pytest.mark.django_db
def test_prints_a_token_that_works_on_the_api():
    key = create("ops", "--superuser")
    user = get_user_model().objects.get(username="ops")
    assert user.is_superuser and user.is_staff and not user.has_usable_password()
    assert Token.objects.get(user=user).key == key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    created = client.post("/api/projects/", {"name": "From a token", "k": 2}, format="json")
    assert created.status_code == 201, created.content


@pytest.mark.django_db
def test_a_rater_account_with_a_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "a-long-password-for-ops")
    create("alice")
    user = get_user_model().objects.get(username="alice")
    assert not user.is_staff and user.check_password("a-long-password-for-ops")


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["taken", "  "])
def test_a_taken_or_blank_name_is_refused_and_nothing_is_written(make_user, name):
    make_user("taken")
    before = (get_user_model().objects.count(), Token.objects.count())
    with pytest.raises(CommandError, match="username"):
        create(name)
    assert (get_user_model().objects.count(), Token.objects.count()) == before
