"""Who belongs to a project, and in which role: adding raters and managers by user name (API and commands).

A manager who is not staff adds by name only people they already work with, the members of a project they manage;
any other name, taken or not, gets the same answer, so the member form cannot be used to find out who has an
account. New accounts are added by staff (``manage.py create_user NAME --project P``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction

from annotation.models import Membership, Project, RaterProfile
from annotation.permissions import STAFF_ACCOUNT, is_admin, managed_projects, may_act_on_member


class UnknownUser(ValueError):
    """No active account has this user name (or none that the caller may add)."""


def set_role(project: Project, username: str, role: str, by=None) -> tuple[Membership, bool]:
    """Make the user a member of the project in ``role`` (rater or manager); returns (membership, created).
    `by`, the manager asking (None: an operator's command), decides who may be found (see the module's docstring);
    PermissionDenied when `by` may not change that member (a staff account).

    A rater's profile is created with the membership so the quality pages can show them; pausing is untouched."""
    if role not in dict(Membership.ROLES):
        raise ValueError(f"role must be one of {[r for r, _ in Membership.ROLES]}")
    users = get_user_model().objects.filter(username=username, is_active=True)
    if by is not None and not is_admin(by):
        users = users.filter(memberships__project__in=managed_projects(by)).distinct()
        unknown = (f"no user named {username!r} among the members of your projects; a new account is added by "
                   "staff")
    else:
        unknown = f"no active user named {username!r}"
    user = users.first()
    if user is None:
        raise UnknownUser(unknown)
    if by is not None and not may_act_on_member(by, user):
        raise PermissionDenied(STAFF_ACCOUNT)
    with transaction.atomic():
        membership, created = Membership.objects.update_or_create(project=project, user=user,
                                                                  defaults={"role": role})
        if role == Membership.RATER:
            RaterProfile.objects.get_or_create(user=user)
    return membership, created
