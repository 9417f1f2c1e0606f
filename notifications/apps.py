from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Webhooks: signed HTTP POSTs to a project's endpoints when its imports, trainings, promotions, rounds and
    rater pauses happen (the lower apps' signals; notifications.receivers)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        from notifications import receivers  # noqa: F401  (connects the lower apps' signals)
