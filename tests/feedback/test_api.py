"""The feedback API for managers: list judges (the key's variable name, never a key), start a judge run on the
workers (202, a progress row), follow it; the job itself ranks tasks, resumes and records a dead endpoint."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Ranking
from feedback.models import Judge, JudgeRun
from feedback.tasks import run_judge_job

pytestmark = pytest.mark.django_db(transaction=True)  # a run asks several tasks at once, on its own connections


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def judge(project, make_task, chat_server, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sk-api-secret")
    for _ in range(3):
        make_task(project, ["x", "y"])
    chat_server.answer = lambda request: (200, "TIE", {})
    return Judge.objects.create(project=project, name="llm", base_url=chat_server.url, model="m",
                                api_key_env="JUDGE_KEY")


def test_start_a_run_follow_it_and_its_job(project, manager, rater, judge, chat_server):
    listed = client_for(manager).get(f"/api/projects/{project.pk}/judges/")
    assert listed.status_code == 200 and listed.json()["results"][0]["api_key_env"] == "JUDGE_KEY"
    assert "sk-api-secret" not in listed.content.decode()
    started = client_for(manager).post(f"/api/projects/{project.pk}/judges/{judge.pk}/runs/", {"limit": 2},
                                       format="json")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    run = JudgeRun.objects.get(pk=started.json()["id"])
    assert run_judge_job.apply(args=(run.pk,)).get()["status"] == "done"  # the job, as a worker runs it
    run.refresh_from_db()
    assert (run.tasks_done, run.tasks_total, run.attempts) == (2, 2, 1) and run.summary["stopped_by"] == "limit"
    assert Ranking.objects.filter(source=Ranking.JUDGE).count() == 2
    assert run_judge_job.apply(args=(run.pk,)).get() == {"run_id": run.pk, "status": "done"}  # not run twice
    followed = client_for(manager).get(f"/api/projects/{project.pk}/judge-runs/").json()["results"][0]
    assert followed["progress"] == 1.0 and followed["judge"] == "llm"
    bad = client_for(manager).post(f"/api/projects/{project.pk}/judges/{judge.pk}/runs/", {"limit": 0},
                                   format="json")
    assert bad.status_code == 400 and "limit" in bad.json()
    assert client_for(rater).post(f"/api/projects/{project.pk}/judges/{judge.pk}/runs/", {},
                                  format="json").status_code == 403


def test_a_dead_endpoint_fails_the_run_with_a_message(project, manager, judge, chat_server):
    chat_server.answer = lambda request: (503, None, {"retry-after-ms": "5"})
    judge.max_retries = 0
    judge.save()
    run = JudgeRun.objects.create(judge=judge)
    assert run_judge_job.apply(args=(run.pk,)).get()["status"] == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "503" in run.message and "sk-api" not in run.message


def test_managers_add_judges_and_bad_settings_are_refused(project, manager, rater):
    url = f"/api/projects/{project.pk}/judges/"
    body = {"name": "gpt-4o", "base_url": "http://vllm:8000/v1", "model": "gpt-4o", "api_key_env": "OPENAI_API_KEY",
            "principles": ["Prefer the more honest answer."], "concurrency": 8, "requests_per_minute": 500}
    made = client_for(manager).post(url, body, format="json")
    assert made.status_code == 201, made.content
    judge = Judge.objects.get(pk=made.json()["id"])
    assert (judge.project, judge.api_key_env, judge.concurrency) == (project, "OPENAI_API_KEY", 8)
    assert client_for(manager).post(url, body, format="json").status_code == 409
    rm = client_for(manager).post(url, {"name": "rm", "backend": "reward_model"}, format="json")
    assert rm.status_code == 201 and rm.json()["principles"]  # the HHH constitution by default
    refused = {
        "api_key_env": {**body, "name": "a", "api_key_env": "sk-live-1234"},  # a key, not a variable's name
        "backend": {**body, "name": "b", "backend": "local", "model": "/models/llama"},  # staff only (admin)
        "template": {**body, "name": "c", "template": "Which is better? $first"},
        "principles": {**body, "name": "d", "principles": [""]},
        "model": {**body, "name": "e", "model": ""},
        "concurrency": {**body, "name": "f", "concurrency": 0},
    }
    for field, bad in refused.items():
        answer = client_for(manager).post(url, bad, format="json")
        assert answer.status_code == 400 and field in answer.json(), (field, answer.content)
    assert "sk-live" not in Judge.objects.values_list("api_key_env", flat=True)
    assert Judge.objects.filter(project=project).count() == 2
    assert client_for(rater).post(url, {**body, "name": "g"}, format="json").status_code == 403
