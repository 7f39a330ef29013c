"""Validate a sheet: a pandera schema built from ``schemas/sheet.json``, run lazily so that
every problem of every row is reported at once, plus the checks only a workbook's cell types
allow (a number where text belongs).

The result is data: a list of Problems, each naming the sheet row, the column as headed in the
file, the value and the rule in plain words.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from .config import DEFAULT_MOBILE_PATTERN
from .sheet import CANONICAL, NUMBER, Sheet

NUMBER_CELL_RULE = (
    "was stored as a number by the spreadsheet, so leading zeros or digits beyond the 15th "
    "may be lost: format the column as Text and re-enter the numbers"
)


@dataclass(frozen=True)
class Problem:
    row: int  # the sheet row number
    column: str  # the column's header as written in the file
    value: str
    rule: str

    def describe(self) -> str:
        if not self.value.strip():
            return f"row {self.row}, column {self.column!r} is empty: it {self.rule}"
        return f"row {self.row}, column {self.column!r}: {self.value!r} {self.rule}"


@dataclass
class Validation:
    """The sheet's rows, normalized, and what is wrong with them."""

    fields: pd.DataFrame  # canonical columns as normalized text; amount as whole-number text
    amounts: np.ndarray  # int64 amount per row, 0 where the amount is invalid
    invalid: np.ndarray  # bool per row
    problems: list[Problem]
    row_errors: list[str]  # per row: "column: problem; ..." or ""

    @property
    def valid_count(self) -> int:
        return int((~self.invalid).sum())


@cache
def sheet_rules() -> dict[str, Any]:
    try:
        # Installed: the top-level schemas/ folder ships as the package batchpay.schemas.
        source = resources.files("batchpay.schemas").joinpath("sheet.json")
    except ModuleNotFoundError:
        # Run from a source tree without installing (python -m batchpay in a clone).
        source = Path(__file__).resolve().parent.parent / "schemas" / "sheet.json"
    rules: dict[str, Any] = json.loads(source.read_text("utf-8"))["columns"]
    return rules


def _matches(pattern: str, optional: bool) -> Callable[[pd.Series], pd.Series]:
    def check(series: pd.Series) -> pd.Series:
        ok = series.str.fullmatch(pattern).fillna(False).astype(bool)
        return ok | series.eq("") if optional else ok

    return check


def _amount_ok(pattern: str, minimum: int) -> Callable[[pd.Series], pd.Series]:
    def check(series: pd.Series) -> pd.Series:
        return parse_amounts(series, pattern) >= minimum

    return check


def _unique_when_given(series: pd.Series) -> pd.Series:
    return ~(series.ne("") & series.duplicated(keep=False))


def parse_amounts(series: pd.Series, pattern: str | None = None) -> pd.Series:
    """Whole amounts as int64; -1 where the text is not a whole amount."""
    pattern = pattern or sheet_rules()["amount"]["pattern"]
    ok = series.str.fullmatch(pattern).fillna(False).astype(bool)
    digits = series.where(ok, "-1").str.replace(",", "", regex=False).str.split(".").str[0]
    # More than 18 digits would overflow int64; no payroll amount is that large.
    too_long = digits.str.len() > 18
    return pd.to_numeric(digits.where(~too_long, "-1")).astype("int64")


@cache
def build_schema(mobile_pattern: str) -> pa.DataFrameSchema:
    columns = {}
    for name, rule in sheet_rules().items():
        optional = not rule["required"]
        pattern = mobile_pattern if name == "mobile" else rule["pattern"]
        checks = [
            pa.Check(
                _amount_ok(pattern, rule["minimum"])
                if name == "amount"
                else _matches(pattern, optional),
                name=name,
            )
        ]
        if rule.get("unique"):
            checks.append(pa.Check(_unique_when_given, name=f"{name}:unique"))
        columns[name] = pa.Column(str, checks=checks, nullable=False, required=True)
    return pa.DataFrameSchema(columns, strict=False)


def validate(sheet: Sheet, mobile_pattern: str = DEFAULT_MOBILE_PATTERN) -> Validation:
    fields = pd.DataFrame({name: sheet.text(name) for name in CANONICAL}).astype(str)
    fields.index = pd.RangeIndex(len(fields))
    rules = sheet_rules()
    # (position, canonical column, priority, rule): a cell's damage outranks its pattern rule
    failures: list[tuple[int, str, int, str]] = []
    try:
        build_schema(mobile_pattern).validate(fields, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        for position, check in zip(cases["index"], cases["check"], strict=True):
            column, _, kind = str(check).partition(":")
            rule = rules[column]["rule"]
            if kind == "unique":
                rule = "appears more than once in the file: " + rule
            failures.append((int(position), column, 1, rule))
    for column in ("accountNo", "mobile"):
        types = sheet.types(column)
        if types is not None:
            for position in np.flatnonzero(types.to_numpy() == NUMBER):
                failures.append((int(position), column, 0, NUMBER_CELL_RULE))

    amounts = parse_amounts(fields["amount"]).to_numpy()
    invalid = np.zeros(len(fields), dtype=bool)
    row_errors = [""] * len(fields)
    problems = []
    seen: set[tuple[int, str]] = set()
    # Problems in the order a reader meets them: by row, then by the column's place in the file.
    failures.sort(key=lambda f: (f[0], sheet.columns.get(f[1], -1), f[2]))
    for position, column, _, rule in failures:
        if (position, column) in seen:
            continue  # one problem per cell: the first rule that fails
        seen.add((position, column))
        invalid[position] = True
        header = sheet.header_of(column) if sheet.has(column) else column
        raw = str(sheet.frame.iat[position, sheet.columns[column]]) if sheet.has(column) else ""
        problems.append(Problem(int(sheet.row_numbers[position]), header, raw, rule))
        shown = repr(raw) if raw.strip() else "empty, it"
        row_errors[position] += ("; " if row_errors[position] else "") + f"{header}: {shown} {rule}"
    problems.sort(key=lambda p: p.row)
    amounts = np.where(invalid, 0, np.maximum(amounts, 0))
    # Valid amounts in one form ("1,000.00" -> "1000"), so that reformatting the column does
    # not make a different batch; invalid rows keep their text.
    fields["amount"] = fields["amount"].where(invalid, pd.Series(amounts).astype(str))
    return Validation(fields, amounts, invalid, problems, row_errors)
