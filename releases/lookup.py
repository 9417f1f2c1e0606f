"""Finding a release from the command line: a project (id or exact name) and a release (id or name in it)."""

from __future__ import annotations

from annotation.importer import find_project
from annotation.models import Project
from releases.models import DatasetRelease


class UnknownRelease(Exception):
    pass


def find_release(project: str, release: str) -> DatasetRelease:
    try:
        target = find_project(project)
    except Project.DoesNotExist as exc:
        raise UnknownRelease(str(exc)) from None
    found = DatasetRelease.objects.filter(project=target, name=release).select_related("project").first()
    if found is None and release.isdigit():
        found = DatasetRelease.objects.filter(project=target, pk=int(release)).select_related("project").first()
    if found is None:
        names = list(DatasetRelease.objects.filter(project=target).order_by("-id").values_list("name", flat=True)[:10])
        known = f"; its releases: {', '.join(names)}" if names else "; it has no release yet"
        raise UnknownRelease(f"project {target.name!r} has no release {release!r}{known}")
    return found
