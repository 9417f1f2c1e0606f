"""Celery job of the notifications app (queue `default`): one webhook delivery, retried with backoff."""

from __future__ import annotations

from celery import shared_task

from notifications.delivery import attempt


@shared_task(name="notifications.tasks.deliver_webhook", bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=None, soft_time_limit=60, time_limit=90)
def deliver_webhook(self, delivery_id: int) -> str:
    """Attempt the delivery; when it should be tried again, the job is sent again with a countdown (the cap on
    attempts is the delivery's own count, VERDICT_WEBHOOK_MAX_ATTEMPTS, so max_retries is None here)."""
    wait = attempt(int(delivery_id))
    if wait is not None:
        raise self.retry(countdown=wait)
    return "done"
