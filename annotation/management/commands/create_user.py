"""Create an account (rater, or staff with --staff) and print its API token: the first step of a fresh deployment.

    manage.py create_user alice                 # a rater account; prints the API token
    manage.py create_user alice --project 3     # ... and a rater of project 3 (--role manager for a manager)
    manage.py create_user admin --superuser     # password from DJANGO_USER_PASSWORD, else none (token only)

Projects and memberships are then managed through the API (POST /api/projects/, /api/projects/{id}/members/). A
manager who is not staff adds there only people already in one of their projects: new accounts come from here.
"""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create a user (refused if the name is taken) and print its API token on stdout."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="May create projects and open the admin.")
        parser.add_argument("--superuser", action="store_true", help="Staff with every permission.")
        parser.add_argument("--project", help="Also make the user a member of this project (id or name).")
        parser.add_argument("--role", choices=["rater", "manager"], default="rater", help="Their role in --project.")

    def handle(self, *args, username: str, staff: bool, superuser: bool, project: str | None, role: str, **options):
        from annotation.importer import find_project
        from annotation.membership import set_role
        from annotation.models import Project

        User = get_user_model()
        target = None
        if project is not None:
            try:
                target = find_project(project)
            except Project.DoesNotExist as exc:
                raise CommandError(f"project: {exc}") from None
        username = username.strip()
        if not username:
            raise CommandError("username: may not be blank")
        if User.objects.filter(username=username).exists():
            raise CommandError(f"username: {username!r} is taken")
        password = os.environ.get("DJANGO_USER_PASSWORD") or None
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password, is_staff=staff or superuser,
                                            is_superuser=superuser)
            token = Token.objects.create(user=user)
            if target is not None:
                set_role(target, username, role)
        self.stderr.write(f"created {'superuser' if superuser else 'staff user' if staff else 'user'} {username}"
                          + (f", {role} of {target.name!r}" if target is not None else "")
                          + ("" if password else " (no password: API token only; set one with changepassword)"))
        self.stdout.write(token.key)
