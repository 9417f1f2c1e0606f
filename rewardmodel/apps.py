from django.apps import AppConfig
from django.db.models.signals import post_migrate

RETRAIN_CHECK_NAME = "rewardmodel: retrain when enough new rankings"
REQUEUE_NAME = "rewardmodel: requeue trainings whose worker was lost"


def ensure_retrain_schedule(sender=None, **kwargs) -> None:
    """A django-celery-beat entry (editable in the admin) that checks every RetrainPolicy every 10 minutes."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.MINUTES)
    # The check is light: it runs on `default`, so it never waits behind a long training on `gpu`.
    PeriodicTask.objects.get_or_create(
        name=RETRAIN_CHECK_NAME,
        defaults={"task": "rewardmodel.tasks.check_retrain_schedules", "interval": every, "queue": "default"},
    )
    every_2, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.get_or_create(
        name=REQUEUE_NAME,
        defaults={"task": "rewardmodel.tasks.requeue_lost_trainings", "interval": every_2, "queue": "default"},
    )


class RewardmodelConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rewardmodel"
    verbose_name = "Reward models"

    def ready(self) -> None:
        from rewardmodel import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(ensure_retrain_schedule, sender=self, dispatch_uid="rewardmodel-retrain-schedule")
