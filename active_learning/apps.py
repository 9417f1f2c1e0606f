from django.apps import AppConfig
from django.db.models.signals import post_migrate

REQUEUE_NAME = "active_learning: requeue rounds whose worker was lost"


def ensure_requeue_schedule(sender=None, **kwargs) -> None:
    """A beat entry that requeues lost rounds every 2 minutes (VERDICT_REQUEUE_LOST_EVERY; on `default`)."""
    from django.conf import settings

    from config.celery import ensure_periodic_task

    ensure_periodic_task(REQUEUE_NAME, "active_learning.tasks.requeue_lost_rounds", settings.VERDICT_REQUEUE_LOST_EVERY)


class ActiveLearningConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "active_learning"

    def ready(self) -> None:
        post_migrate.connect(ensure_requeue_schedule, sender=self, dispatch_uid="active-learning-requeue-schedule")
