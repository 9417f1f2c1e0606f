"""How the admin shows figures, shares, times and stored JSON: one rule per kind of value, for every app's admin.

Stored JSON (a round's summary, a pick's scores, a run's parameters) keeps full precision; pages show numbers to 3
significant digits, shares as one percentage format, times in the site's localized format (not ISO strings), and a
JSON object as a small definition table rather than a raw dump. Text inside is escaped and its bidirectional
controls made visible (config.text). :class:`RecordAdmin` is the admin of a record written by the system (a run, a
round, a report): viewable, never added or edited by hand.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from config.text import show_bidi_controls

DASH = "–"
# An ISO 8601 date-time as isoformat() writes it: only such strings are shown as times.
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def figure(value, digits: int = 3) -> str:
    """A number to `digits` significant digits (``0.1234567`` → ``0.123``, ``1234.5`` → ``1230``, ``3`` → ``3``);
    integers are shown whole, None and NaN as a dash, infinities as ∞."""
    if value is None or isinstance(value, bool):
        return DASH if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    value = float(value)
    if math.isnan(value):
        return DASH
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    shown = f"{value:.{digits}g}"
    if "e" in shown:
        mantissa, exponent = shown.split("e")
        if -5 <= int(exponent) < 0:  # 0.0000123 reads better than 1.23e-05
            shown = f"{value:.{digits - 1 - int(exponent)}f}".rstrip("0").rstrip(".")
        elif 0 <= int(exponent) < 15:  # 1.23e+03 → 1230: a count-like magnitude, shown whole
            shown = f"{float(shown):.0f}"
    return shown


def percent(value) -> str:
    """A share in [0, 1] as a percentage with one decimal (``0.27777`` → ``27.8%``), a dash when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * float(value):.1f}%"


def when(value) -> str:
    """A time (a datetime, or an ISO string as stored in JSON) in the site's localized date-time format, in the
    current time zone; anything else as text."""
    if value in (None, ""):
        return DASH
    if isinstance(value, str):
        parsed = parse_datetime(value) if _ISO_DATETIME.match(value) else None
        if parsed is None:
            return show_bidi_controls(value)
        value = parsed
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return formats.date_format(value, "DATETIME_FORMAT")
    if isinstance(value, dt.date):
        return formats.date_format(value, "DATE_FORMAT")
    return show_bidi_controls(value)


def _label(key) -> str:
    return show_bidi_controls(str(key)).replace("_", " ")


def value_html(value, depth: int = 0) -> SafeString | str:
    """One JSON value as HTML: numbers by :func:`figure`, ISO times by :func:`when`, objects as nested tables,
    lists of numbers as a comma-separated line, other lists one item a line. Everything text is escaped."""
    if isinstance(value, dict):
        if value and set(value) <= {"mean", "min", "max"}:  # a summary statistic: one line reads better than a table
            spread = ", ".join(f"{k} {figure(value[k])}" for k in ("min", "max") if k in value)
            mean = f"mean {figure(value['mean'])}" if "mean" in value else ""
            return f"{mean} ({spread})" if mean and spread else mean or spread
        return data_table(value, depth + 1) if value else DASH
    if isinstance(value, list | tuple):
        if not value:
            return DASH
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            shown = [figure(v) for v in value[:20]]
            more = f" … ({len(value)} in all)" if len(value) > 20 else ""
            return ", ".join(shown) + more
        return format_html_join(format_html("<br>"), "{}", ((value_html(v, depth),) for v in value[:50]))
    if isinstance(value, str):
        return when(value) if _ISO_DATETIME.match(value) else show_bidi_controls(value)
    return figure(value)


def data_table(mapping: dict | None, depth: int = 0) -> SafeString | str:
    """A JSON object as a small two-column table (key, value), keys with underscores read as words."""
    if not mapping:
        return DASH
    if depth > 4:  # deeper than any stored summary: show it flat rather than recurse on
        return show_bidi_controls(str(mapping))
    rows = ((_label(k), value_html(v, depth)) for k, v in mapping.items())
    return format_html('<table class="data-table"><tbody>{}</tbody></table>',
                       format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))


class RecordAdmin:
    """ModelAdmin mixin for records the system writes (runs, rounds, reports, imports): anyone allowed to view
    them sees every field read-only, with no Save buttons and no Add; only a superuser may delete one."""

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)
