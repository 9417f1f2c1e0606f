from django.apps import AppConfig
from django.db.models.signals import post_migrate

REFRESH_NAME = "quality: refresh projects with new rankings"


def ensure_refresh_schedule(sender=None, **kwargs) -> None:
    from config.celery import ensure_periodic_task

    ensure_periodic_task(REFRESH_NAME, "quality.tasks.refresh_stale_projects", 600)


class QualityConfig(AppConfig):
    """Rater and consensus statistics: agreement, consensus with rater reliability, gold scoring, dynamic overlap,
    pauses and the model leaderboard."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "quality"
    verbose_name = "Rater quality"

    def ready(self) -> None:
        from quality import signals  # noqa: F401  (connects the ranking_submitted receiver)

        post_migrate.connect(ensure_refresh_schedule, sender=self, dispatch_uid="quality-refresh-schedule")
