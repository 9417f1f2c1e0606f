"""System checks for settings that only break under load: a training outliving the broker's redelivery timeout."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def training_fits_in_visibility_timeout(app_configs=None, **kwargs) -> list[Error]:
    """With Redis and acks_late, a message not acknowledged within visibility_timeout goes to another worker."""
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if not broker.startswith(("redis://", "rediss://")):
        return []
    timeout = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}).get("visibility_timeout", 3600)
    limit = settings.VERDICT_RM_TIME_LIMIT
    if timeout > limit:
        return []
    return [Error(
        f"the broker's visibility_timeout ({timeout} s) must exceed the training time limit VERDICT_RM_TIME_LIMIT "
        f"({limit} s): otherwise Redis hands a training that is still running to a second worker",
        hint="raise VERDICT_VISIBILITY_TIMEOUT or lower VERDICT_RM_TIME_LIMIT",
        id="rewardmodel.E001",
    )]
