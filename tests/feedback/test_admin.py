"""The judge admin: an ML engineer configures a judge by naming its key's variable (no key field anywhere), sees its
questions, failures and spend, and reads replies as escaped text."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from feedback.models import Judge, JudgeVerdict

pytestmark = pytest.mark.django_db
XSS = "<script>alert(1)</script>"


def test_judges_and_verdicts_in_the_admin(client, make_user, project, make_task):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    judge = Judge.objects.create(project=project, name="gpt", base_url="http://127.0.0.1:9/v1", model="m",
                                 api_key_env="OPENAI_API_KEY")
    task = make_task(project, ["x", "y"])
    first, second = task.completions.order_by("id")
    JudgeVerdict.objects.create(judge=judge, task=task, first=first, second=second, template_version="v",
                                outcome=JudgeVerdict.FAILED, reply=XSS, error="not A, B or TIE", attempts=2,
                                cost=Decimal("0.02"))
    listing = client.get(reverse("admin:feedback_judge_changelist")).content.decode()
    assert "gpt" in listing and "0.02" in listing
    form = client.get(reverse("admin:feedback_judge_change", args=[judge.pk])).content.decode()
    assert 'name="api_key_env"' in form and "OPENAI_API_KEY" in form and 'name="api_key"' not in form
    detail = client.get(reverse("admin:feedback_judgeverdict_change",
                                args=[JudgeVerdict.objects.get().pk])).content.decode()
    assert XSS not in detail and "&lt;script&gt;" in detail
    assert client.get(reverse("admin:feedback_judgeverdict_add")).status_code == 403


def test_a_bad_variable_name_is_refused(client, make_user, project):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    response = client.post(reverse("admin:feedback_judge_add"), {
        "project": project.pk, "name": "j", "enabled": "on", "backend": "openai", "base_url": "http://x:1/v1",
        "model": "m", "api_key_env": "sk-live-abc123", "temperature": "0", "max_tokens": "8", "timeout_s": "60",
        "max_retries": "4", "parse_retries": "1", "principles": "[]", "template": "", "cost_per_1k_input": "0",
        "cost_per_1k_output": "0"})
    assert response.status_code == 200 and "an environment variable name" in response.content.decode()
    assert not Judge.objects.exists()


def test_a_template_without_the_answers_is_refused(project):
    from django.core.exceptions import ValidationError

    judge = Judge(project=project, name="j", base_url="http://x:1/v1", model="m", template="Which is better? $prompt")
    with pytest.raises(ValidationError, match="second"):
        judge.full_clean()
    judge.template, judge.principles = "", ["", "x"]
    with pytest.raises(ValidationError, match="principles"):
        judge.full_clean()


@pytest.mark.django_db(transaction=True)  # the run is queued on commit
def test_an_admin_action_queues_runs_on_the_judges_queue(client, make_user, project, settings):
    import redis

    from feedback.models import JudgeRun

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the queues are read from Redis (make test)")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("default", "gpu")
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    http = Judge.objects.create(project=project, name="gpt", base_url="http://vllm:8000/v1", model="m")
    rm = Judge.objects.create(project=project, name="rm", backend=Judge.REWARD_MODEL)
    response = client.post(reverse("admin:feedback_judge_changelist"),
                           {"action": "start_runs", "_selected_action": [http.pk, rm.pk]}, follow=True)
    assert "2 run(s) queued" in response.content.decode()
    assert JudgeRun.objects.filter(status=JudgeRun.QUEUED).count() == 2
    assert (broker.llen("default"), broker.llen("gpu")) == (1, 1)  # the HTTP judge's run, the model's run
    broker.delete("default", "gpu")
