"""Celery plumbing: queue/serialisation/reliability settings, routing, and a real round trip over Redis."""

from __future__ import annotations

import pytest
from django.conf import settings

from config.celery import app, ping


def test_queues_serialisation_and_reliability_settings():
    assert {q.name for q in app.conf.task_queues} == {"default", "gpu"}
    assert app.conf.task_default_queue == "default"
    assert app.conf.task_serializer == "json" and app.conf.result_serializer == "json"
    assert app.conf.accept_content == ["json"]
    # A task is acknowledged only once done, and a killed worker's task goes back to the queue.
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.result_backend == "django-db"
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


@pytest.mark.parametrize(
    "task_name, queue",
    [
        ("rewardmodel.tasks.train_reward_model", "gpu"),
        ("rewardmodel.tasks.anything_else", "gpu"),
        ("rewardmodel.tasks.check_retrain_schedules", "default"),
        ("active_learning.tasks.run_round", "gpu"),
        ("verdict.ping", "default"),
        ("annotation.tasks.whatever", "default"),
    ],
)
def test_routing(task_name, queue):
    route = app.amqp.router.route({}, task_name)
    assert route["queue"].name == queue


redis_only = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real Redis broker)")


@redis_only
def test_a_routed_message_lands_in_exactly_one_redis_queue():
    """With both queues declared (as workers do), a gpu task is not also copied into `default`."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        names = [q.name for q in app.conf.task_queues]
        for q in app.amqp.queues.values():
            q(channel).declare()
            q(channel).purge()
        client = channel.client
        before = {n: client.llen(n) for n in names}
        app.send_task("rewardmodel.tasks.routing_probe", ignore_result=True)
        app.send_task("verdict.routing_probe", ignore_result=True)
        after = {n: client.llen(n) for n in names}
        for q in app.amqp.queues.values():
            q(channel).purge()
    assert after["gpu"] - before["gpu"] == 1
    assert after["default"] - before["default"] == 1


@redis_only
@pytest.mark.timeout(90)
@pytest.mark.django_db(transaction=True)
def test_ping_round_trip_through_a_real_worker_over_redis():
    from celery.contrib.testing.worker import start_worker

    assert app.conf.broker_url.startswith("redis://")
    with start_worker(app, queues=["default", "gpu"], perform_ping_check=False, concurrency=1, pool="solo",
                      shutdown_timeout=10):
        result = ping.delay()
        assert result.get(timeout=30) == "pong"
    from django_celery_results.models import TaskResult

    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS" and stored.task_name == "verdict.ping"
