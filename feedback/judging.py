"""Asking a judge about a task: every pair of its completions, in both orders, each question once, within budget.

Position bias is cancelled by asking each pair twice, once with each answer shown first: a pair has a winner only
when both orders name the same completion; a tie in both orders is a tie; anything else (the judge preferred
whichever came first, or one order tied) is recorded as *inconsistent* and counts as a tie. A question already
answered under the same template version is not asked again (a rerun or a resumed run pays nothing twice); a failed
one is asked again.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum

from feedback import prompting
from feedback.backends import JudgeUnavailable, backend_for
from feedback.models import Judge, JudgeVerdict
from feedback.parsing import Unparseable, parse_pairwise


class BudgetExhausted(RuntimeError):
    pass


@dataclass
class PairOutcome:
    first_id: int  # the lower completion id
    second_id: int
    winner_id: int | None  # None: a tie, an inconsistent pair, or a failure
    inconsistent: bool = False
    failed: bool = False


def spent(judge: Judge) -> Decimal:
    return JudgeVerdict.objects.filter(judge=judge).aggregate(total=Sum("cost"))["total"] or Decimal(0)


def cost_of(judge: Judge, prompt_tokens: int, completion_tokens: int) -> Decimal:
    return (Decimal(prompt_tokens) * judge.cost_per_1k_input + Decimal(completion_tokens) * judge.cost_per_1k_output
            ) / 1000


def ask(judge: Judge, backend, version: str, task, first, second) -> JudgeVerdict:
    """The judge's verdict on `first` (as A) against `second` (as B): the recorded one if it has one, else asked now.
    Raises BudgetExhausted before a call the budget cannot pay, and JudgeUnavailable (after recording the failure)
    when the endpoint gave no answer."""
    done = JudgeVerdict.objects.filter(judge=judge, first=first, second=second, template_version=version).first()
    if done is not None and done.outcome != JudgeVerdict.FAILED:
        return done
    if judge.budget is not None and spent(judge) >= judge.budget:
        raise BudgetExhausted(f"judge {judge.name!r} has spent its budget of {judge.budget}")
    fields = {"task": task, "attempts": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": Decimal(0),
              "outcome": JudgeVerdict.FAILED, "reply": "", "error": ""}
    unavailable = None
    for _ in range(judge.parse_retries + 1):
        fields["attempts"] += 1
        try:
            reply = backend.ask(task.prompt.text, first.text, second.text)
        except JudgeUnavailable as exc:
            fields["error"], unavailable = str(exc)[:500], exc
            break
        fields["prompt_tokens"] += reply.prompt_tokens
        fields["completion_tokens"] += reply.completion_tokens
        fields["reply"] = reply.text[:2000]
        try:
            fields["outcome"], fields["error"] = parse_pairwise(reply.text), ""
            break
        except Unparseable as exc:
            fields["error"] = str(exc)[:500]
    fields["cost"] = cost_of(judge, fields["prompt_tokens"], fields["completion_tokens"])
    if done is not None:  # a failure asked again: its earlier cost was paid, and stays counted
        fields["cost"] += done.cost
        fields["attempts"] += done.attempts
    verdict = _record(judge, first, second, version, fields)
    if unavailable is not None:
        raise unavailable
    return verdict


def _record(judge, first, second, version, fields) -> JudgeVerdict:
    key = {"judge": judge, "first": first, "second": second, "template_version": version}
    try:
        with transaction.atomic():
            verdict, _ = JudgeVerdict.objects.update_or_create(**key, defaults=fields)
    except IntegrityError:  # another worker recorded the same question meanwhile: keep theirs
        verdict = JudgeVerdict.objects.get(**key)
    return verdict


def combine(first_id: int, second_id: int, ab: JudgeVerdict, ba: JudgeVerdict) -> PairOutcome:
    """One pair's outcome from its two orders (ab: first shown as A; ba: second shown as A)."""
    if JudgeVerdict.FAILED in (ab.outcome, ba.outcome):
        return PairOutcome(first_id, second_id, None, failed=True)
    pick_ab = {JudgeVerdict.A: first_id, JudgeVerdict.B: second_id}.get(ab.outcome)
    pick_ba = {JudgeVerdict.A: second_id, JudgeVerdict.B: first_id}.get(ba.outcome)
    if pick_ab == pick_ba:
        return PairOutcome(first_id, second_id, pick_ab)
    return PairOutcome(first_id, second_id, None, inconsistent=True)


def judge_task(judge: Judge, task, backend=None) -> list[PairOutcome]:
    """Every pair of the task's completions, both orders. Raises BudgetExhausted or JudgeUnavailable part-way;
    what was answered before is kept, and a rerun continues from there."""
    backend = backend or backend_for(judge)
    version = prompting.template_version(judge, backend.identity())
    completions = sorted(task.completions.all(), key=lambda c: c.pk)
    outcomes = []
    for first, second in itertools.combinations(completions, 2):
        ab = ask(judge, backend, version, task, first, second)
        ba = ask(judge, backend, version, task, second, first)
        outcomes.append(combine(first.pk, second.pk, ab, ba))
    return outcomes
