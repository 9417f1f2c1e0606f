"""config.display: the one way the admin shows figures, shares, times and stored JSON."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from config.display import data_table, figure, percent, when


def test_figures_have_three_significant_digits():
    assert figure(0.123456789012) == "0.123"
    assert figure(0.5) == "0.5"
    assert figure(-0.51234) == "-0.512"
    assert figure(1234.5678) == "1230"
    assert figure(0.0000123456) == "0.0000123"
    assert figure(3) == "3" and figure(123456) == "123,456"
    assert figure(None) == "–" and figure(float("nan")) == "–" and figure(float("inf")) == "∞"
    assert figure(True) == "yes"


def test_one_percentage_format():
    assert percent(0.27777777) == "27.8%"
    assert percent(1) == "100.0%"
    assert percent(None) == "—"


def test_times_are_localized_not_iso(settings):
    settings.TIME_ZONE = "UTC"
    at = dt.datetime(2026, 3, 4, 15, 30, 12, 123456, tzinfo=dt.UTC)
    shown = when(at.isoformat())
    assert "2026-03-04T" not in shown and "2026" in shown and "Mar" in shown
    assert when(timezone.now()) != timezone.now().isoformat()
    assert when("not a time") == "not a time" and when(None) == "–"


def test_data_table_rounds_escapes_and_nests():
    html = str(data_table({"mean_score": 0.1234567890123456, "when": "2026-03-04T15:30:12+00:00",
                           "note": "<script>x</script>", "inner": {"n": 5, "values": [0.11111111, 2.2222222]}}))
    assert "<th>mean score</th><td>0.123</td>" in html
    assert "0.1234567890123456" not in html and "2026-03-04T" not in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "<th>values</th><td>0.111, 2.22</td>" in html
    assert data_table({}) == "–"


def test_summary_statistics_read_on_one_line():
    html = str(data_table({"margin_selected": {"mean": 0.45123, "min": 0.000000463, "max": 3.3}}))
    assert "<td>mean 0.451 (min 4.63e-07, max 3.3)</td>" in html
