from django.apps import AppConfig


class QualityConfig(AppConfig):
    """Rater and consensus statistics: agreement today; consensus, reliability and leaderboards next (issue 10)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "quality"
