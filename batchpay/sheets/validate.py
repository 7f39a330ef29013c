"""Validate a sheet: a pandera schema built from ``schemas/sheet.json``, run lazily so that
every problem of every row is reported at once, plus the checks only a workbook's cell types
allow (a number where text belongs).

The result is data: a list of Problems, each naming the sheet row, the column as headed in the
file, the value and the rule in plain words.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from ..config import DEFAULT_MOBILE_PATTERN
from . import damage
from .damage import ERROR, WARNING
from .read import CANONICAL, Sheet
from .read_csv import ARROW_TEXT

NUMBER_CELL_RULE = damage.NUMBER_CELL
TOO_LONG = "has {length:,} characters, more than the limit of {limit:,} for this column"
SHOWN_CHARACTERS = 80  # of a long value in a message; the JSON output keeps it whole


def shown(value: str) -> str:
    """A value as a message quotes it: whole, or its start and its length when long."""
    if len(value) <= 2 * SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:SHOWN_CHARACTERS]!r}... ({len(value):,} characters)"


@dataclass(frozen=True)
class Problem:
    row: int  # the sheet row number
    column: str  # the column's header as written in the file
    value: str
    rule: str
    severity: str = ERROR
    # What kind of problem, the same for every cell it hits (a key of damage.GROUP_TEXT, or
    # "rule" and "unique" for the sheet's rules): many problems are shown grouped by it.
    kind: str = field(default="rule", compare=False)

    def describe(self) -> str:
        prefix = "warning: " if self.severity == WARNING else ""
        if not self.value.strip():
            return f"{prefix}row {self.row}, column {self.column!r} is empty: it {self.rule}"
        return f"{prefix}row {self.row}, column {self.column!r}: {shown(self.value)} {self.rule}"


@dataclass
class Validation:
    """The sheet's rows, normalized, and what is wrong with them."""

    fields: pd.DataFrame  # canonical columns as normalized text; amount as whole-number text
    amounts: np.ndarray  # int64 amount per row, 0 where the amount is invalid
    invalid: np.ndarray  # bool per row
    problems: list[Problem]  # errors: each makes its row invalid
    row_errors: list[str]  # per row: "column: problem; ..." (warnings too) or ""
    warnings: list[Problem] = field(default_factory=list)  # rows stay valid
    notes: list[str] = field(default_factory=list)  # about the file as a whole

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
        source = Path(__file__).resolve().parents[2] / "schemas" / "sheet.json"
    rules: dict[str, Any] = json.loads(source.read_text("utf-8"))["columns"]
    return rules


def _matches(pattern: str, optional: bool) -> Callable[[pd.Series], pd.Series]:
    def check(series: pd.Series) -> pd.Series:
        if optional:
            empty = series.eq("")
            if empty.all():  # an optional column left empty (or absent): nothing to match
                return empty
        ok = series.str.fullmatch(pattern).fillna(False).astype(bool)
        return ok | empty if optional else ok

    return check


def _at_most(limit: int) -> Callable[[pd.Series], pd.Series]:
    def check(series: pd.Series) -> pd.Series:
        return series.str.len().le(limit).astype(bool)

    return check


def _unique_when_given(series: pd.Series) -> pd.Series:
    given = series.ne("")
    if not given.any():
        return ~given
    return ~(given & series.duplicated(keep=False))


def parse_amounts(series: pd.Series, pattern: str | None = None) -> pd.Series:
    """Whole amounts as int64; -1 where the text is not a whole amount."""
    pattern = pattern or sheet_rules()["amount"]["pattern"]
    ok = series.str.fullmatch(pattern).fillna(False).astype(bool)
    digits = series.where(ok, "-1").str.replace(",", "", regex=False)
    digits = digits.str.replace(r"\..*", "", regex=True)
    # More than 18 digits would overflow int64; no payroll amount is that large.
    too_long = digits.str.len() > 18
    whole = digits.where(~too_long, "-1").astype("int64[pyarrow]")  # a vectorized cast
    return pd.Series(whole.to_numpy(dtype=np.int64), index=series.index)


VALUE_SUFFIX = ".value"


@cache
def build_schema(mobile_pattern: str) -> pa.DataFrameSchema:
    columns = {}
    for name, rule in sheet_rules().items():
        optional = not rule["required"]
        pattern = mobile_pattern if name == "mobile" else rule["pattern"]
        checks = [pa.Check(_matches(pattern, optional), name=name)]
        if rule.get("unique"):
            checks.append(pa.Check(_unique_when_given, name=f"{name}:unique"))
        if "maxLength" in rule:
            checks.append(pa.Check(_at_most(rule["maxLength"]), name=f"{name}:maxLength"))
        columns[name] = pa.Column(str, checks=checks, nullable=False, required=True)
        if "minimum" in rule:
            # The amount's value, parsed once (-1 where the text is not a whole amount).
            columns[f"{name}{VALUE_SUFFIX}"] = pa.Column(
                "int64", checks=pa.Check.ge(rule["minimum"], name=f"{name}:minimum")
            )
    return pa.DataFrameSchema(columns, strict=False)


def validate(
    sheet: Sheet, mobile_pattern: str = DEFAULT_MOBILE_PATTERN, *, strict_duplicates: bool = False
) -> Validation:
    texts = {name: sheet.text(name) for name in CANONICAL}
    fields = pd.DataFrame(texts).astype(ARROW_TEXT)
    fields.index = pd.RangeIndex(len(fields))
    rules = sheet_rules()
    # Damage first: a restored value must be in place before the rules run, and a cell's
    # damage explains it better than the rule its damaged text then breaks.
    amounts = parse_amounts(fields["amount"]).to_numpy()
    found = damage.findings(
        sheet, fields, amounts, mobile_pattern, strict_duplicates=strict_duplicates
    )
    for finding in found:
        if finding.fixed is not None:
            fields.loc[finding.position, finding.column] = finding.fixed
    # (position, canonical column, priority, rule, severity, kind)
    failures = [(f.position, f.column, 0, f.rule, f.severity, f.kind) for f in found]
    checked = fields.assign(**{"amount" + VALUE_SUFFIX: amounts})
    try:
        build_schema(mobile_pattern).validate(checked, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        for position, column_name, check in zip(
            cases["index"], cases["column"], cases["check"], strict=True
        ):
            column = str(column_name).removesuffix(VALUE_SUFFIX)
            kind = str(check).partition(":")[2]
            rule, priority = rules[column]["rule"], 2
            if kind == "unique":
                rule = "appears more than once in the file: " + rule
            elif kind == "maxLength":
                # After the column's pattern: where both fail, its rule (which says the
                # length too) is the one shown, as before the limits had a check of their own.
                length = len(str(fields.at[int(position), column]))
                rule = TOO_LONG.format(length=length, limit=rules[column]["maxLength"])
                priority = 3
            group = kind if kind in ("unique", "maxLength") else "rule"
            failures.append((int(position), column, priority, rule, ERROR, group))

    invalid = np.zeros(len(fields), dtype=bool)
    row_errors = [""] * len(fields)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    seen: set[tuple[int, str, str]] = set()
    # Problems in the order a reader meets them: by row, then by the column's place in the file.
    failures.sort(key=lambda f: (f[0], sheet.columns.get(f[1], -1), f[2]))
    for position, column, _, rule, severity, kind in failures:
        if (position, column, severity) in seen:
            continue  # one problem of each kind per cell: the first rule that fails
        seen.add((position, column, severity))
        header = sheet.header_of(column) if sheet.has(column) else column
        raw = str(sheet.frame.iat[position, sheet.columns[column]]) if sheet.has(column) else ""
        problem = Problem(int(sheet.row_numbers[position]), header, raw, rule, severity, kind)
        if severity == ERROR:
            invalid[position] = True
            problems.append(problem)
        else:
            warnings.append(problem)
        quoted = shown(raw) if raw.strip() else "empty, it"
        label = f"warning: {header}" if severity == WARNING else header
        row_errors[position] += ("; " if row_errors[position] else "") + f"{label}: {quoted} {rule}"
    amounts = np.where(invalid, 0, np.maximum(amounts, 0))
    # Valid amounts in one form ("1,000.00" -> "1000"), so that reformatting the column does
    # not make a different batch; invalid rows keep their text.
    fields["amount"] = _canonical_amounts(fields["amount"], amounts, invalid)
    notes = [*sheet.notes, *damage.blank_rows_note(sheet), *_trimmed_notes(sheet, texts)]
    return Validation(fields, amounts, invalid, problems, row_errors, warnings, notes)


def _canonical_amounts(texts: pd.Series, amounts: np.ndarray, invalid: np.ndarray) -> pd.Series:
    """Valid amounts as the text of their value ("1,000.00" -> "1000"); invalid rows keep
    their text."""
    values = pd.Series(pc.cast(pyarrow.array(amounts), pyarrow.large_string()), index=texts.index)
    return texts.where(invalid, values.astype(ARROW_TEXT))


def _trimmed_notes(sheet: Sheet, texts: dict[str, pd.Series]) -> list[str]:
    """Surrounding spaces (non-breaking ones too) are removed; say where, once per column.
    ``texts``: the columns as ``sheet.text`` stripped them. Stripping only removes characters,
    so a value changed exactly where its length did."""
    notes = []
    for name, position in sheet.columns.items():
        raw = pc.binary_length(pyarrow.array(sheet.frame[position]))
        lengths = pc.binary_length(pyarrow.array(texts[name]))
        changed = np.flatnonzero(
            pc.not_equal(raw, lengths).to_numpy(zero_copy_only=False).astype(bool)
        )
        if len(changed):
            rows = ", ".join(str(sheet.row_numbers[i]) for i in changed[:10])
            more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
            notes.append(
                f"{sheet.where}: surrounding spaces removed from {len(changed)} value(s) in "
                f"column {sheet.headers[position]!r} (row {rows}{more})"
            )
    return notes
