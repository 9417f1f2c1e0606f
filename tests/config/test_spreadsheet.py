"""config.spreadsheet: the OWASP rule for every CSV cell the platform writes."""

from __future__ import annotations

import pytest

from config.spreadsheet import csv_text, safe_cell


@pytest.mark.parametrize("cell, shown", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("model-a", "model-a"), ("a=b", "a=b"), (-1.5, -1.5), (3, 3), (None, None),
    ("\u202e=1", "<U+202E>=1"),
])
def test_cells(cell, shown):
    assert safe_cell(cell) == shown


def test_a_table():
    table = csv_text(["model", "score"], [{"model": "=cmd", "score": -0.5, "extra": 1}])
    assert table == "model,score\r\n'=cmd,-0.5\r\n"
