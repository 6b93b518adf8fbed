"""CSV exports never hand a spreadsheet a formula, and keep numbers numbers."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from exotrace._text import csv_cell, csv_row
from exotrace.clinic import sdtm_tables, write_sdtm

from .test_exports import export  # noqa: F401  (the shared export fixture)


@pytest.mark.parametrize(("value", "cell"), [
    ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
    ("+33 1 23 45 67", "'+33 1 23 45 67"),
    ("-pain at site", "'-pain at site"),
    ("@cmd", "'@cmd"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("headache", "headache"),
    ("a=b", "a=b"),                  # only the first character matters
    ("-1.5", "-1.5"),                # a negative number written as text stays a number
    ("+2e10", "+2e10"),
    ("-inf", "'-inf"),               # not a number a spreadsheet reads: neutralised
    (-1.5, -1.5),                    # numbers are never touched
    (None, None),
    ("", ""),
])
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell


def test_csv_row_neutralises_every_text_cell():
    assert csv_row({"a": "=1", "b": 2, "c": "-3", "d": "@x"}) == {
        "a": "'=1", "b": 2, "c": "-3", "d": "'@x"}


def test_sdtm_export_neutralises_a_formula_in_a_free_text_term(export, tmp_path):  # noqa: F811
    first = export.adverse_events[0]
    evil = dataclasses.replace(first, event=dataclasses.replace(
        first.event, term='=HYPERLINK("http://evil.example","see")'))
    data = dataclasses.replace(export, adverse_events=(evil,) + export.adverse_events[1:])
    assert sdtm_tables(data)["AE"][0]["AETERM"].startswith("=")  # the table keeps the term
    paths = write_sdtm(data, tmp_path / "sdtm")
    with paths["AE"].open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["AETERM"] == '\'=HYPERLINK("http://evil.example","see")'
    assert rows[1]["AETERM"] == "atrial fibrillation"
    with paths["DM"].open(newline="", encoding="utf-8") as fh:
        assert [r["AGE"] for r in csv.DictReader(fh)] == ["64", "58"]
