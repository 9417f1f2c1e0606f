"""Parsing the rater's POSTed ranking into a RankingPayload (validation of its content is submission.py's job)."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy

from annotation.models import Ranking
from annotation.submission import MAX_RATIONALE_CHARS, MAX_TIME_SPENT_MS, RankingPayload

SKIP_REASONS = {"skip"} | {f"flag:{flag}" for flag in Ranking.FLAG_CHOICES}


class RankingForm(forms.Form):
    """What the rate page posts: JSON tie groups for the overall and per-criterion rankings, plus the extras."""

    order = forms.JSONField(error_messages={"required": gettext_lazy("rank the outputs before submitting")})
    criteria_orders = forms.JSONField(required=False)
    rationale = forms.CharField(required=False, max_length=MAX_RATIONALE_CHARS, strip=False)
    flags = forms.MultipleChoiceField(required=False, choices=[(f, f) for f in Ranking.FLAG_CHOICES])
    time_spent_ms = forms.IntegerField(required=False, min_value=0)

    def clean_criteria_orders(self) -> dict:
        value = self.cleaned_data.get("criteria_orders") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError("must map criterion names to orders")
        # A criterion the rater left empty is simply not rated.
        return {name: order for name, order in value.items() if order not in ([], None)}

    def clean_time_spent_ms(self) -> int:
        return min(self.cleaned_data.get("time_spent_ms") or 0, MAX_TIME_SPENT_MS)

    def payload(self) -> RankingPayload:
        data = self.cleaned_data
        return RankingPayload(
            order=data["order"],
            criteria_orders=data["criteria_orders"],
            rationale=data["rationale"],
            flags=list(data["flags"]),
            time_spent_ms=data["time_spent_ms"],
        )

    def error_dict(self) -> dict[str, str]:
        return {field: " ".join(str(m) for m in messages) for field, messages in self.errors.items()}

    def submitted_state(self) -> dict:
        """The rater's input as posted, so a refused submission can be shown again without losing anything."""
        return {
            "order": _json_or_empty(self["order"].value(), list),
            "criteria_orders": _json_or_empty(self["criteria_orders"].value(), dict),
            "time_spent_ms": _int_or_zero(self["time_spent_ms"].value()),
        }


def _json_or_empty(raw, kind: type):
    if isinstance(raw, kind):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw else kind()
    except ValueError:
        return kind()
    return value if isinstance(value, kind) else kind()


def _int_or_zero(raw) -> int:
    try:
        return max(0, min(int(raw), MAX_TIME_SPENT_MS))
    except (TypeError, ValueError):
        return 0
