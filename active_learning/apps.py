from django.apps import AppConfig
from django.db.models.signals import post_migrate

REQUEUE_NAME = "active_learning: requeue rounds whose worker was lost"


def ensure_requeue_schedule(sender=None, **kwargs) -> None:
    """A django-celery-beat entry (editable in the admin) that requeues lost rounds every 2 minutes."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.get_or_create(
        name=REQUEUE_NAME,
        defaults={"task": "active_learning.tasks.requeue_lost_rounds", "interval": every, "queue": "default"},
    )


class ActiveLearningConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "active_learning"

    def ready(self) -> None:
        post_migrate.connect(ensure_requeue_schedule, sender=self, dispatch_uid="active-learning-requeue-schedule")
