"""Curation's records: a log of the data browser's bulk actions, and the two admin views over lower apps' rows
(the browser over tasks, the review queue over rankings) as proxy models, so the admin lists them on their own pages
without changing how annotation's own task and ranking admins behave."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models import Project, Ranking, RankingTask


class BulkAction(models.Model):
    """Who changed which tasks from the data browser, how, and when (priority, re-ask, exclude, include, export)."""

    PRIORITY, REASK, EXCLUDE, INCLUDE, EXPORT = "priority", "reask", "exclude", "include", "export"
    ACTIONS = [(PRIORITY, "Set priority"), (REASK, "Re-ask"), (EXCLUDE, "Exclude from training"),
               (INCLUDE, "Include in training"), (EXPORT, "Export rankings")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="bulk_actions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=16, choices=ACTIONS)
    params = models.JSONField(default=dict, blank=True, help_text="The filters or ids chosen, and the action's value.")
    tasks = models.PositiveIntegerField(help_text="Tasks selected.")
    changed = models.PositiveIntegerField(help_text="Tasks changed (or created, for a re-ask).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} on {self.tasks} tasks of {self.project}"


class BrowsedTask(RankingTask):
    class Meta:
        proxy = True
        verbose_name = "task"
        verbose_name_plural = "tasks (data browser)"


class ReviewedRanking(Ranking):
    class Meta:
        proxy = True
        verbose_name = "ranking"
        verbose_name_plural = "rankings (review)"
