from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    """AI feedback: LLM judges (and reward-model versions) that rank like raters, guided by a constitution. Above
    rewardmodel (a version can judge), below active_learning (which spends people where judges are unsure)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "feedback"
    verbose_name = "AI feedback"
