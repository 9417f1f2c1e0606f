"""Who may see, rate and manage a project: the one access rule, used by every API view, web view and admin page.

Roles, from least to most:

* ``SEE``     members of the project (raters and managers), staff and superusers
* ``RATE``    members only, staff included only when they are members: rankings must come from enrolled raters
* ``MANAGE``  the project's managers, staff and superusers (import, export, tasks, reward models' rounds)

:func:`project_for` is the check-then-act entry point (as Zulip's ``access_stream_by_id``): it returns the project
or raises ``Http404`` for whoever may not see it (outsiders cannot tell which projects exist) and
``PermissionDenied`` (403) for a user who may see it but lacks the role.  Both are Django exceptions, so web views,
DRF views and admin views answer the same way.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404

from annotation.models import Membership, Project
from config.ids import MAX_ID

SEE, RATE, MANAGE = "see", "rate", "manage"
ROLES = (SEE, RATE, MANAGE)

DENIED = {
    RATE: "Only members of this project can rate its tasks.",
    MANAGE: "Only managers of this project can do this.",
}


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def _allowed(user, membership: str | None, role: str) -> bool:
    """Whether ``user``, whose membership role in the project is ``membership`` (None: not a member), may act in
    ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if role == RATE:
        return membership is not None
    if role == MANAGE:
        return is_admin(user) or membership == Membership.MANAGER
    return is_admin(user) or membership is not None


def project_for(user, project_id, role: str = SEE) -> Project:
    """The project with this id if ``user`` may act on it in ``role``: 404 if they may not see it, 403 if they may
    see it but not in this role."""
    try:
        pk = int(project_id)
    except (TypeError, ValueError):
        raise Http404("No such project.") from None
    if not 0 < pk <= MAX_ID:
        raise Http404("No such project.")
    # One query for the project and the user's role in it: the rater loop runs this on every request.
    my_role = Membership.objects.filter(project=OuterRef("pk"), user_id=getattr(user, "pk", None)).values("role")[:1]
    project = Project.objects.filter(pk=pk).annotate(_my_role=Subquery(my_role)).first()
    if project is None:
        raise Http404("No such project.")
    membership = project._my_role
    if not _allowed(user, membership, SEE):
        raise Http404("No such project.")
    if not _allowed(user, membership, role):
        raise PermissionDenied(DENIED[role])
    return project


def visible_projects(user) -> QuerySet[Project]:
    """Projects this user may see at all (SEE), for lists; others answer 404."""
    if is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def managed_projects(user) -> QuerySet[Project]:
    """Projects this user may manage (MANAGE), for lists."""
    if is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role=Membership.MANAGER).distinct()


STAFF_ACCOUNT = "Staff accounts' roles and pauses are changed by staff."


def may_act_on_member(actor, member) -> bool:
    """Whether `actor`, who manages a project, may change `member`'s role in it or pause them: staff may act on
    anyone; a project's own managers on anyone but staff (a manager must not demote or pause a superuser)."""
    return is_admin(actor) or not is_admin(member)


def can_create_projects(user) -> bool:
    """Staff, or anyone who already manages a project."""
    return is_admin(user) or Membership.objects.filter(user=user, role=Membership.MANAGER).exists()
