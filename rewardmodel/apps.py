from django.apps import AppConfig
from django.db.models.signals import post_migrate

RETRAIN_CHECK_NAME = "rewardmodel: retrain when enough new rankings"
REQUEUE_NAME = "rewardmodel: requeue trainings whose worker was lost"


def ensure_retrain_schedule(sender=None, **kwargs) -> None:
    """Beat entries: check every RetrainPolicy every 10 minutes, requeue lost trainings every 2 (settings
    VERDICT_RETRAIN_CHECK_EVERY, VERDICT_REQUEUE_LOST_EVERY). Both are light and run on `default`, so they never wait
    behind a long training on `gpu`."""
    from django.conf import settings

    from config.celery import ensure_periodic_task

    ensure_periodic_task(RETRAIN_CHECK_NAME, "rewardmodel.tasks.check_retrain_schedules",
                         settings.VERDICT_RETRAIN_CHECK_EVERY)
    ensure_periodic_task(REQUEUE_NAME, "rewardmodel.tasks.requeue_lost_trainings", settings.VERDICT_REQUEUE_LOST_EVERY)


class RewardmodelConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rewardmodel"
    verbose_name = "Reward models"

    def ready(self) -> None:
        from rewardmodel import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(ensure_retrain_schedule, sender=self, dispatch_uid="rewardmodel-retrain-schedule")
