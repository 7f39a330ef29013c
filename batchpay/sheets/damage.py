"""Spreadsheet damage: what a spreadsheet program did to values before batchpay saw them.

Read from the cells' types and the sheet's structure, not only from the text: an account
number stored as a number, text in scientific notation, a date where digits belong, a mobile
that lost its leading zero, float noise in an amount, formulas, merged cells, duplicated
payouts. Each finding names the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .limits import cell_name
from .read import DATE, NUMBER, Sheet

ERROR, WARNING = "error", "warning"

NUMBER_CELL = (
    "was stored as a number by the spreadsheet, so leading zeros or digits beyond the 15th "
    "may be lost: format the column as Text and re-enter the numbers"
)
SCIENTIFIC = (
    "is in scientific notation: a spreadsheet turned the number into {value} and its digits "
    "are gone; format the column as Text in the original file and export it again"
)
DATE_CELL = (
    "was turned into a date by the spreadsheet: format the column as Text and re-enter the value"
)
FLOAT_NOISE = (
    "is {whole} with floating-point noise (from a formula or a conversion): enter {whole} as a "
    "whole number, or format the column as Text"
)
MOBILE_RESTORED = (
    "was stored as a number and lost its leading zero; read as {fixed}. Format the column as "
    "Text to keep the zero"
)
FORMULA = (
    "is a formula; its last calculated value {value!r} is used. Paste values instead of formulas "
    "to be sure of what is sent"
)
MERGED = "is part of merged cells {range}: unmerge them and give every row its own value"
DUPLICATE = (
    "has the same account number and amount as row {other}: is this one payment entered twice? "
    "(--strict-duplicates makes this an error)"
)
DUPLICATE_STRICT = "has the same account number and amount as row {other}"
BLANK_ROWS = "{where}: blank row(s) {rows} were skipped"

# What one line says for many cells with the same finding. The advice fits the size: a column
# of damaged cells is exported again from the source, not re-typed.
GROUP_TEXT = {
    "number-cell": (
        "stored as numbers by the spreadsheet, so leading zeros or digits beyond the 15th may "
        "be lost: format the column as Text and export it again from the source (the payroll "
        "or HR system)"
    ),
    "scientific": (
        "in scientific notation (a spreadsheet turned the numbers into something like 8.8E+17 "
        "and their digits are gone): format the column as Text in the original file and export "
        "it again"
    ),
    "date-cell": "turned into dates by the spreadsheet: format the column as Text and export it "
    "again from the source",
    "float-noise": "whole amounts with floating-point noise (from a formula or a conversion): "
    "enter whole numbers, or format the column as Text",
    "mobile-restored": "stored as numbers and lost their leading zero; read with the zero put "
    "back. Format the column as Text to keep the zeros",
    "formula": "formulas; their last calculated values are used. Paste values instead of "
    "formulas to be sure of what is sent",
    "merged": "part of merged cells: unmerge them and give every row its own value",
    "duplicate": "the same account number and amount as another row: is one payment entered "
    "twice? (--strict-duplicates makes this an error)",
    "duplicate-strict": "the same account number and amount as another row",
}

_SCIENTIFIC = re.compile(r"[+-]?[0-9](?:[.,][0-9]+)?[eE][+-]?[0-9]+")
DIGIT_COLUMNS = ("accountNo", "mobile", "amount")


@dataclass(frozen=True)
class Finding:
    position: int  # the row's position in the sheet's frame
    column: str  # canonical column name
    rule: str
    severity: str = ERROR
    fixed: str | None = None  # the value to use instead (a restored mobile)
    kind: str = ""  # a key of GROUP_TEXT: the same for every cell with this finding


def findings(
    sheet: Sheet,
    fields: pd.DataFrame,
    amounts: np.ndarray,
    mobile_pattern: str,
    *,
    strict_duplicates: bool,
) -> list[Finding]:
    found: list[Finding] = []
    for column in DIGIT_COLUMNS:
        if not sheet.has(column):
            continue
        texts = fields[column]
        types = sheet.types(column)
        scientific = texts.str.fullmatch(_SCIENTIFIC.pattern).to_numpy(dtype=bool, na_value=False)
        if types is None:  # a CSV: every cell is text
            kinds, flagged = None, scientific
        else:
            kinds = types.to_numpy()
            flagged = (kinds == NUMBER) | (kinds == DATE) | scientific
        for position in np.flatnonzero(flagged):
            kind = "text" if kinds is None else str(kinds[position])
            found.extend(
                _cell(column, int(position), str(texts.iat[int(position)]), kind, mobile_pattern)
            )
    found.extend(_structure(sheet))
    found.extend(_duplicates(sheet, fields, amounts, strict_duplicates))
    return found


def _cell(column: str, position: int, text: str, kind: str, mobile_pattern: str) -> list[Finding]:
    if kind == DATE:
        return [Finding(position, column, DATE_CELL, kind="date-cell")]
    if kind != NUMBER:  # text in scientific notation
        return [Finding(position, column, SCIENTIFIC.format(value=text), kind="scientific")]
    if column == "accountNo":
        return [Finding(position, column, NUMBER_CELL, kind="number-cell")]
    if column == "mobile":
        restored = [
            "0" * zeros + text
            for zeros in (1, 2)
            if text.isdigit() and re.fullmatch(mobile_pattern, "0" * zeros + text)
        ]
        if len(restored) == 1:
            rule = MOBILE_RESTORED.format(fixed=restored[0])
            return [Finding(position, column, rule, WARNING, restored[0], "mobile-restored")]
        return [Finding(position, column, NUMBER_CELL, kind="number-cell")]
    # amount: numbers are fine, float noise is not
    try:
        value = float(text)
    except ValueError:
        return []
    whole = round(value)
    if value != whole and abs(value - whole) < 1e-6:
        return [Finding(position, column, FLOAT_NOISE.format(whole=whole), kind="float-noise")]
    return []


def _structure(sheet: Sheet) -> list[Finding]:
    found: list[Finding] = []
    if not sheet.merged and not sheet.formulas:
        return found
    position_of = {int(row): i for i, row in enumerate(sheet.row_numbers)}
    canonical_at = {position: name for name, position in sheet.columns.items()}
    for r0, c0, r1, c1 in sheet.merged:
        span = f"{cell_name(c0, r0)}:{cell_name(c1, r1)}"
        # Only the data rows and known columns inside the range: a range over A1:XFD1048576
        # is as quick as one over two cells.
        first, last = np.searchsorted(sheet.row_numbers, [r0, r1 + 1])
        columns = sorted(col for col in canonical_at if c0 <= col <= c1)
        for position in range(int(first), int(last)):
            for col in columns:
                rule = MERGED.format(range=span)
                found.append(Finding(position, canonical_at[col], rule, kind="merged"))
    for row, col in sorted(sheet.formulas):
        if col in canonical_at and row in position_of:
            position = position_of[row]
            value = str(sheet.frame.iat[position, col])
            rule = FORMULA.format(value=value)
            found.append(Finding(position, canonical_at[col], rule, WARNING, kind="formula"))
    return found


def _duplicates(
    sheet: Sheet, fields: pd.DataFrame, amounts: np.ndarray, strict: bool
) -> list[Finding]:
    """The same account number and amount twice: often one payment entered twice."""
    accounts = fields["accountNo"]
    given = accounts.ne("").to_numpy(dtype=bool, na_value=False) & (amounts >= 0)
    pairs = pd.DataFrame({"accountNo": accounts, "amount": amounts}, index=accounts.index)
    repeated = pairs.duplicated(keep=False).to_numpy(dtype=bool) & given
    if not repeated.any():
        return []
    positions = np.flatnonzero(repeated)
    texts = accounts.iloc[positions].tolist()
    first_row: dict[tuple[str, int], int] = {}
    found = []
    rows = sheet.row_numbers
    for position, text in zip(map(int, positions), texts, strict=True):
        key = (str(text), int(amounts[position]))
        if key not in first_row:
            first_row[key] = position
            continue
        first = first_row[key]
        for here, other in ((first, position), (position, first)):
            rule = (DUPLICATE_STRICT if strict else DUPLICATE).format(other=int(rows[other]))
            kind = "duplicate-strict" if strict else "duplicate"
            found.append(Finding(here, "accountNo", rule, ERROR if strict else WARNING, kind=kind))
    return found


def blank_rows_note(sheet: Sheet) -> list[str]:
    if not sheet.blank_rows:
        return []
    rows = sheet.blank_rows
    shown = ", ".join(str(r) for r in rows[:10]) + (
        f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    )
    return [BLANK_ROWS.format(where=sheet.where, rows=shown)]
