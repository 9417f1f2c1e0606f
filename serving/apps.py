from django.apps import AppConfig
from django.db.models.signals import post_migrate

PURGE_NAME = "serving: delete captured samples past their retention"
WATCH_NAME = "serving: the Goodhart watch over policy runs"


def ensure_purge_schedule(sender=None, **kwargs) -> None:
    from config.celery import ensure_periodic_task

    ensure_periodic_task(PURGE_NAME, "serving.tasks.purge_captured_samples", 24 * 3600)
    ensure_periodic_task(WATCH_NAME, "serving.tasks.watch_policy_runs", 600)


class ServingConfig(AppConfig):
    """Verdict inside the RL loop: the reward server, captured policy outputs, the Goodhart watch. Above rewardmodel
    (it serves its versions), below active_learning (which routes captured groups back to raters)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "serving"
    verbose_name = "Reward serving"

    def ready(self) -> None:
        post_migrate.connect(ensure_purge_schedule, sender=self, dispatch_uid="serving-purge-schedule")
