"""An empty beneficiaries template that a spreadsheet program cannot damage: every column is
formatted as Text, so account numbers and mobiles keep their zeros and digits."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import InputError
from .validate import sheet_rules
from .write import Table, write_tables

# (header, canonical name, example). A finance clerk fills these. tradeNo and notifyUrl are
# left out: batchpay assigns each row's tradeNo (a typed one can collide with an earlier
# order's and leave the row unknown), and BATCHPAY_NOTIFY_URL gives every row its notifyUrl;
# IT can add either column at the end, and batchpay reads it (HOW_TO says so).
COLUMNS = (
    ("First Name", "firstname", "Maria"),
    ("Last Name", "lastname", "Dela Cruz"),
    ("Account No", "accountNo", "000123456789"),
    ("Mobile", "mobile", "0917123456"),
    ("Email", "email", "maria.delacruz@example.ph"),
    ("Amount", "amount", "15000"),
    ("Remark", "remark", "Payroll Nov 2026"),
)
# A rule that gives its own example is shown without a second one.
HAS_EXAMPLE = ("e.g.", "such as")
ROWS_PREPARED = 10_000  # rows that carry the data validation
AMOUNT_CHECK = "AND(ISNUMBER(VALUE({c})),VALUE({c})>=100,VALUE({c})=INT(VALUE({c})))"
DATA_VALIDATION: dict[str, dict[str, object]] = {
    # canonical name -> xlsxwriter data_validation options; {c} is the column's first cell
    "accountNo": {"validate": "length", "criteria": "between", "minimum": 1, "maximum": 34},
    "mobile": {"validate": "length", "criteria": "==", "value": 10},
    "amount": {
        "validate": "custom",
        "value": "=" + AMOUNT_CHECK,
    },
    "email": {"validate": "custom", "value": '=ISNUMBER(FIND("@",{c}))'},
}
HOW_TO = (
    "Fill one row per beneficiary on the Beneficiaries sheet; keep the header row.",
    "Every column is formatted as Text: type or paste values (Paste Special > Values), so "
    "account numbers and mobiles keep their leading zeros and all their digits.",
    "Check the file: batchpay validate FILE. Send it: batchpay run FILE.",
    "For IT: batchpay assigns every row's Trade No and sends BATCHPAY_NOTIFY_URL as its "
    "Notify URL. A Trade No or Notify URL column added after the last one is read when "
    "present (each row's own then wins).",
)
RULE_WIDTH = 80  # the Instructions' text column, in characters
LINE_HEIGHT = 15  # points per line of the default font (Calibri 11)


def rule_text(required: bool, rule: str, example: str) -> str:
    """A column's line on the Instructions sheet: one example, the rule's own if it has one."""
    shown = f" (e.g. {example})" if example and not any(e in rule for e in HAS_EXAMPLE) else ""
    return f"{'required' if required else 'optional'}: {rule}{shown}"


def _height(text: str) -> float:
    """Points for wrapped ``text`` in the text column. Set on the row rather than left to
    the spreadsheet: not every program sizes a wrapped row when it opens the file, and an
    unsized row prints its lines over the next row's."""
    per_line = RULE_WIDTH - 8  # words wrap before the edge
    return LINE_HEIGHT * max(1, math.ceil(len(text) / per_line)) + 3


def write_template(path: Path, *, force: bool = False) -> None:
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; choose another name or pass --force")
    suffix = path.suffix.lower()
    header = [name for name, _, _ in COLUMNS]
    if suffix == ".csv":
        write_tables(path, [Table("Beneficiaries", header, iter([]))])
    elif suffix == ".xlsx":
        _write_xlsx(path, header)
    else:
        raise InputError(f"{path}: a template ends in .xlsx or .csv")


def _write_xlsx(path: Path, header: list[str]) -> None:
    import xlsxwriter

    rules = sheet_rules()
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    text = workbook.add_format({"num_format": "@"})
    bold = workbook.add_format({"bold": True, "num_format": "@", "bg_color": "#DDEBF7"})
    sheet = workbook.add_worksheet("Beneficiaries")
    sheet.freeze_panes(1, 0)
    for col, (name, canonical, example) in enumerate(COLUMNS):
        sheet.set_column(col, col, max(14, len(example) + 4), text)
        sheet.write_string(0, col, name, bold)
        rule = rules[canonical]
        message = ("Required. " if rule["required"] else "Optional. ") + rule["rule"]
        options: dict[str, object] = dict(DATA_VALIDATION.get(canonical, {"validate": "any"}))
        if isinstance(options.get("value"), str):
            first_cell = xlsxwriter.utility.xl_rowcol_to_cell(1, col)
            options["value"] = str(options["value"]).format(c=first_cell)
        options.update(
            input_title=name[:32], input_message=message[:255], error_title="batchpay",
            error_message=f"{name} {rule['rule']}"[:255], ignore_blank=True,
        )  # fmt: skip
        sheet.data_validation(1, col, ROWS_PREPARED, col, options)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.hide_gridlines(0)
    notes = workbook.add_worksheet("Instructions")
    wrap = workbook.add_format({"text_wrap": True, "valign": "top", "num_format": "@"})
    top = workbook.add_format({"valign": "top", "bold": True, "num_format": "@"})
    notes.set_column(0, 0, 16)
    notes.set_column(1, 1, RULE_WIDTH, wrap)
    notes.fit_to_pages(1, 0)
    notes.write_string(0, 0, "How to", bold)
    for row, line in enumerate(HOW_TO, start=1):
        notes.set_row(row, _height(line))
        notes.write_string(row, 1, line, wrap)
    start = len(HOW_TO) + 2
    notes.write_row(start, 0, ["Column", "Rule (example)"], bold)
    for row, (name, canonical, example) in enumerate(COLUMNS, start=start + 1):
        rule = rules[canonical]
        line = rule_text(bool(rule["required"]), rule["rule"], example)
        notes.set_row(row, _height(line))
        notes.write_string(row, 0, name, top)
        notes.write_string(row, 1, line, wrap)
    workbook.close()
