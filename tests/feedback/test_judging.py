"""Judges against a real local OpenAI-compatible server: strict parsing, both orders, retries, failures recorded
and never guessed, the budget, resuming without asking twice, and the key read from the environment only."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from feedback import prompting
from feedback.backends import JudgeUnavailable
from feedback.judging import BudgetExhausted, judge_task
from feedback.models import Judge, JudgeVerdict
from feedback.parsing import Unparseable, parse_pairwise

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("reply, outcome", [("A", "A"), ("b", "B"), (" TIE\n", "TIE"), ("**A**", "A"), ("'B'.", "B"),
                                            ("Answer: tie", "TIE"), ("(A)", "A")])
def test_replies_that_are_a_verdict(reply, outcome):
    assert parse_pairwise(reply) == outcome


@pytest.mark.parametrize("reply", ["", "A is better", "Both A and B", "AB", "I think B", "tie, but A is close",
                                   "Model A", "C"])
def test_replies_that_are_not(reply):
    with pytest.raises(Unparseable):
        parse_pairwise(reply)


def prefers_the_word_good(request: dict) -> tuple[int, str, dict]:
    """A judge without position bias: the answer containing 'good' wins, wherever it is shown."""
    text = request["messages"][-1]["content"]
    a = text.split("```")[1]
    b = text.split("¶¶¶")[1]
    if ("good" in a) == ("good" in b):
        return 200, "TIE", {}
    return 200, "A" if "good" in a else "B", {}


@pytest.fixture
def judge(project, chat_server, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test-secret-123")
    return Judge.objects.create(project=project, name="local", base_url=chat_server.url, model="judge-7b",
                                api_key_env="JUDGE_TEST_KEY", max_retries=2, cost_per_1k_input=Decimal("0.5"),
                                cost_per_1k_output=Decimal("1.5"))


def test_both_orders_and_a_consistent_winner(judge, chat_server, make_task):
    chat_server.answer = prefers_the_word_good
    task = make_task(judge.project, ["a good answer", "a poor answer", "a weak one"])
    outcomes = judge_task(judge, task)
    assert len(outcomes) == 3 and len(chat_server.requests) == 6  # 3 pairs × 2 orders
    by_text = {c.pk: c.text for c in task.completions.all()}
    for o in outcomes:
        texts = {by_text[o.first_id], by_text[o.second_id]}
        if "a good answer" in texts:
            assert by_text[o.winner_id] == "a good answer" and not o.inconsistent
        else:
            assert o.winner_id is None and not o.inconsistent  # a tie in both orders
    request = chat_server.requests[0]
    assert request["model"] == "judge-7b" and request["temperature"] == 0.0
    assert "Judge by these principles" in request["messages"][0]["content"]
    assert chat_server.headers[0]["authorization"] == "Bearer sk-test-secret-123"
    verdict = JudgeVerdict.objects.filter(judge=judge).first()
    assert verdict.prompt_tokens == 100 and verdict.cost == Decimal("0.0515")  # (100 × 0.5 + 1 × 1.5) / 1000
    # The key lives in the environment only: nowhere in the database.
    assert "sk-test-secret" not in json.dumps(list(Judge.objects.values()), default=str)
    assert not JudgeVerdict.objects.filter(reply__contains="sk-test").exists()


def test_a_position_biased_judge_is_inconsistent_not_a_winner(judge, chat_server, make_task):
    chat_server.answer = lambda request: (200, "A", {})  # always the first shown
    task = make_task(judge.project, ["x", "y"])
    [outcome] = judge_task(judge, task)
    assert outcome.winner_id is None and outcome.inconsistent


def test_429_and_500_are_retried_then_answered(judge, chat_server, make_task):
    script = [(429, None, {"retry-after-ms": "10"}), (500, None, {"retry-after-ms": "10"})]
    chat_server.answer = lambda request: script.pop(0) if script else (200, "B", {})
    task = make_task(judge.project, ["x", "y"])
    [outcome] = judge_task(judge, task)
    assert len(chat_server.requests) == 4 and outcome.winner_id is None and outcome.inconsistent  # B then B


def test_garbage_is_asked_again_then_recorded_as_a_failure(judge, chat_server, make_task):
    chat_server.answer = lambda request: (200, "Well, it depends on what you value.", {})
    task = make_task(judge.project, ["x", "y"])
    [outcome] = judge_task(judge, task)
    assert outcome.failed and outcome.winner_id is None
    verdicts = JudgeVerdict.objects.filter(judge=judge)
    assert verdicts.count() == 2 and set(verdicts.values_list("outcome", flat=True)) == {JudgeVerdict.FAILED}
    assert all(v.attempts == 2 and "not A, B or TIE" in v.error for v in verdicts)  # parse_retries = 1
    assert len(chat_server.requests) == 4

    chat_server.answer = lambda request: (200, "TIE", {})  # a rerun asks the failures again, in place
    [outcome] = judge_task(judge, task)
    assert not outcome.failed and verdicts.count() == 2 and len(chat_server.requests) == 6
    assert all(v.attempts == 3 for v in verdicts.all())


def test_a_dead_endpoint_is_recorded_and_raised(judge, chat_server, make_task):
    chat_server.answer = lambda request: (503, None, {"retry-after-ms": "10"})
    task = make_task(judge.project, ["x", "y"])
    with pytest.raises(JudgeUnavailable) as failed:
        judge_task(judge, task)
    assert "503" in str(failed.value) and "sk-test" not in str(failed.value)
    assert len(chat_server.requests) == 3  # the first try and max_retries = 2
    assert JudgeVerdict.objects.get(judge=judge).outcome == JudgeVerdict.FAILED


def test_a_rerun_asks_nothing_twice(judge, chat_server, make_task):
    chat_server.answer = prefers_the_word_good
    task = make_task(judge.project, ["good", "bad", "meh"])
    first = judge_task(judge, task)
    assert len(chat_server.requests) == 6
    assert judge_task(judge, task) == first and len(chat_server.requests) == 6
    judge.principles = ["Prefer the shorter answer."]  # a new template version: asked again
    judge.save()
    judge_task(judge, task)
    assert len(chat_server.requests) == 12
    assert JudgeVerdict.objects.filter(judge=judge).values("template_version").distinct().count() == 2


def test_the_budget_stops_before_the_call_it_cannot_pay(judge, chat_server, make_task):
    chat_server.answer = prefers_the_word_good
    judge.budget = Decimal("0.1")  # two questions at 0.0515
    judge.save()
    task = make_task(judge.project, ["good", "bad", "meh"])
    with pytest.raises(BudgetExhausted):
        judge_task(judge, task)
    assert len(chat_server.requests) == 2 and JudgeVerdict.objects.filter(judge=judge).count() == 2


def test_a_missing_key_is_a_clear_error(judge, make_task, monkeypatch):
    monkeypatch.delenv("JUDGE_TEST_KEY")
    with pytest.raises(JudgeUnavailable, match="JUDGE_TEST_KEY"):
        judge_task(judge, make_task(judge.project, ["x", "y"]))


def test_templates_are_checked():
    prompting.check_template(prompting.DEFAULT_TEMPLATE)
    with pytest.raises(prompting.TemplateError, match=r"\$second"):
        prompting.check_template("$prompt $first")
    with pytest.raises(prompting.TemplateError, match=r"\$answer"):
        prompting.check_template("$prompt $first $second $answer")


def test_the_key_appears_in_no_log_line(judge, chat_server, make_task, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    chat_server.answer = lambda request: (200, "nonsense", {}) if len(chat_server.requests) < 2 else (401, None, {})
    with pytest.raises(JudgeUnavailable):
        judge_task(judge, make_task(judge.project, ["x", "y"]))
    assert caplog.records and "sk-test-secret" not in caplog.text
