"""CSV that spreadsheets cannot turn against their users: every CSV the platform writes goes through here.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice and
Google Sheets (``=HYPERLINK("http://evil/", "x")`` as a model's name); OWASP's rule is to prefix such a cell with a
single quote, which the spreadsheet shows as text. Numbers are left alone (a negative score stays a number), and
bidirectional controls become visible markers as on every page (config.text).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from config.text import show_bidi_controls

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    if not isinstance(value, str):
        return value
    value = show_bidi_controls(value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_text(header: list[str], rows: Iterable[dict | list]) -> str:
    """CSV of `rows` (dicts keyed by `header`, extra keys ignored, or lists), every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        values = [row.get(h) for h in header] if isinstance(row, dict) else row
        writer.writerow([safe_cell(v) for v in values])
    return out.getvalue()
