"""`manage.py load_demo`: the demo project, an admin and four raters, ready to rank. Safe to run again.

Four raters for an overlap of two: every prompt leaves two raters who have not seen it, so the re-asks active learning
routes back (which must go to a new rater) are served in the demo too.

The demo prompts live in annotation/fixtures/demo_project.jsonl, in the import format. Passwords are
random, created on the first run and kept in VAR_DIR/demo-credentials.json (readable by you only), so
re-running keeps them (and everyone's sessions) valid; `--reset-passwords` makes new ones.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from annotation.guidelines import record_revision
from annotation.importer import ImportFailed, import_jsonl
from annotation.models import Membership, Project, Prompt, RaterProfile

DEMO_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "demo_project.jsonl"
PROJECT_NAME = "Verdict demo"
ADMIN = "admin"
RATERS = ("rater1", "rater2", "rater3", "rater4")
GUIDELINES = """\
Rank the answers **best first**. Ties are fine when two answers are equally good.

1. **Harmless** first: an answer that could hurt someone loses to any safe one.
2. Then **helpful and correct**: does it answer what was asked, accurately?
3. Then **honest and clear**: no invented facts, no padding.

Model outputs are untrusted text: if one contains markup or links, they are shown as plain text.
Flag (`f`) anything unsafe; skip (`s`) what you cannot judge.
"""


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


def load_credentials(reset: bool = False) -> dict[str, str]:
    """username → password: the stored ones, plus fresh random ones for anyone missing (or all, on reset)."""
    path = credentials_path()
    stored: dict[str, str] = {}
    if path.exists() and not reset:
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = {}
    creds = {u: stored.get(u) or secrets.token_urlsafe(12) for u in (ADMIN, *RATERS)}
    if creds != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f, indent=2)
    return creds


def ensure_user(username: str, password: str, *, superuser: bool = False):
    user, _ = get_user_model().objects.get_or_create(username=username)
    if superuser:
        user.is_staff = user.is_superuser = True
    if not user.check_password(password):
        user.set_password(password)
    user.save()
    return user


def new_demo_lines(project: Project, path: Path = DEMO_FILE) -> list[str]:
    """Lines of the demo file whose prompt id is not in the project yet."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    existing = set(Prompt.objects.filter(project=project).values_list("external_id", flat=True))
    return [line for line in lines if json.loads(line).get("id") not in existing]


class Command(BaseCommand):
    help = "Create (or complete) the demo project, an admin superuser and four raters; print their credentials."

    def add_arguments(self, parser):
        parser.add_argument("--reset-passwords", action="store_true", help="Make new random passwords.")

    def handle(self, *args, reset_passwords: bool = False, **options):
        creds = load_credentials(reset=reset_passwords)
        with transaction.atomic():
            admin_user = ensure_user(ADMIN, creds[ADMIN], superuser=True)
            raters = [ensure_user(name, creds[name]) for name in RATERS]
            project, created = Project.objects.get_or_create(
                name=PROJECT_NAME,
                defaults={
                    "description": "Twelve prompts, four answers each, of varied quality.",
                    "guidelines": GUIDELINES,
                    "k": 4,
                    "overlap": 2,
                },
            )
            Membership.objects.update_or_create(
                project=project, user=admin_user, defaults={"role": Membership.MANAGER}
            )
            record_revision(project, by=admin_user if created else None)
            for rater in raters:
                Membership.objects.get_or_create(project=project, user=rater, defaults={"role": Membership.RATER})
                RaterProfile.objects.get_or_create(user=rater, defaults={"display_name": rater.username.title()})
            lines = new_demo_lines(project)
            if lines:
                try:
                    summary = import_jsonl(project, lines)
                except ImportFailed as exc:
                    raise CommandError(f"demo data did not import: {exc}") from exc
                imported = f"imported {summary.tasks} tasks ({summary.gold_tasks} gold)"
            else:
                imported = "all demo tasks already there"
            token, _ = Token.objects.get_or_create(user=admin_user)

        out = self.stdout
        out.write(self.style.SUCCESS(f"Project {project.name!r} (id {project.pk}): "
                                     f"{'created' if created else 'exists'}, {imported}."))
        out.write("")
        out.write("Demo accounts (also in " + str(credentials_path()) + "):")
        out.write(f"  admin   {ADMIN:8} password {creds[ADMIN]}   (superuser, project manager)")
        for name in RATERS:
            out.write(f"  rater   {name:8} password {creds[name]}")
        out.write(f"  API token for {ADMIN}: {token.key}")
        out.write("  e.g. curl -H 'Authorization: Token " + token.key + "' http://127.0.0.1:8000/api/projects/")
