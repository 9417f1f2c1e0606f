"""Who may see and do what in the API: everything is scoped to project membership.

Staff and superusers see every project and act as managers everywhere. Other users see only the
projects they are members of; managers of a project may import, export and reprioritise its tasks.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission

from annotation.models import Membership, Project


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def visible_projects(user) -> QuerySet[Project]:
    """Projects this user may see at all (others answer 404)."""
    if is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def managed_project_ids(user) -> QuerySet:
    return Membership.objects.filter(user=user, role=Membership.MANAGER).values("project_id")


def is_manager(user, project: Project) -> bool:
    if is_admin(user):
        return True
    return Membership.objects.filter(user=user, project=project, role=Membership.MANAGER).exists()


def can_create_projects(user) -> bool:
    """Staff, or anyone who already manages a project."""
    return is_admin(user) or Membership.objects.filter(user=user, role=Membership.MANAGER).exists()


class IsProjectManager(BasePermission):
    """Object permission on a Project: the user manages it (or is staff)."""

    message = "Only managers of this project may do this."

    def has_object_permission(self, request, view, obj: Project) -> bool:
        return is_manager(request.user, obj)
