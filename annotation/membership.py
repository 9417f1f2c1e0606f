"""Who belongs to a project, and in which role: adding raters and managers by user name (API and commands)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.models import Membership, Project, RaterProfile


class UnknownUser(ValueError):
    """No active account has this user name."""


def set_role(project: Project, username: str, role: str) -> tuple[Membership, bool]:
    """Make the user a member of the project in ``role`` (rater or manager); returns (membership, created).

    A rater's profile is created with the membership so the quality pages can show them; pausing is untouched."""
    if role not in dict(Membership.ROLES):
        raise ValueError(f"role must be one of {[r for r, _ in Membership.ROLES]}")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise UnknownUser(f"no active user named {username!r}")
    with transaction.atomic():
        membership, created = Membership.objects.update_or_create(project=project, user=user,
                                                                  defaults={"role": role})
        if role == Membership.RATER:
            RaterProfile.objects.get_or_create(user=user)
    return membership, created
