"""The result workbook's writer: every text cell is text and reads back as written, amounts
are numbers, every sheet prints readably and a sandbox run says so."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import openpyxl

from batchpay.results import HIGHLIGHT
from batchpay.sheets.write import Table, write_xlsx

# Text that needs each of xlsxwriter's per-cell steps, and text that needs none.
TRICKY = [
    " lead", "trail ", "\u00a0nbsp", "nbsp\u00a0", "tab\tin", "new\nline", "end\n",
    "\u2028", "\x85end", "end\x85", "_x0041_", "a_x00e9_b", "<r>rich</r>", "<r>x",
    "a & b < c > d", 'quote"s', "\x01ctrl", "x\x1fy", "\x00", "\ufffe", "a\uffffb",
]  # fmt: skip
PLAIN = ["", "plain", "x" * 40_000, "_x00zz_", "José Peña", "emoji \U0001f600", "=SUM(A1)",
         "+63", "-5", "@x", "1e5", "0012345678901234", "_x", "a_b", "x\u00a0y"]  # fmt: skip
OUTCOMES = ["processing", "invalid", "failed", "unknown", "pending", "paid", "rejected"]


def tables(texts: list[str]) -> list[Table]:
    rows = [
        [text, f"r{i}", OUTCOMES[i % len(OUTCOMES)], texts[-i - 1], ""]
        for i, text in enumerate(texts)
    ]
    return [
        Table(
            "Results",
            ["text", "id", "outcome", "other", "empty"],
            iter(rows),
            mark_column=2,
            highlights=HIGHLIGHT,
        ),
        Table("Summary", ["item", "value"], iter([["a", "1"], [" b", "&"]])),
    ]


# What openpyxl reads back as written (it leaves xlsxwriter's _xHHHH_ escapes of control
# characters escaped, and xlsxwriter cuts a cell at Excel's 32,767 characters).
READ_BACK = [t for t in TRICKY if not any(c < " " and c not in "\t\n" for c in t)
             and "_x" not in t and "\ufffe" not in t and "\uffff" not in t]  # fmt: skip


def test_every_text_reads_back_as_written_and_stays_text(tmp_path: Path) -> None:
    texts = [*READ_BACK, *[t for t in PLAIN if len(t) < 32_767], "<r>a & b</r>", "<r>rich</r>"]
    path = tmp_path / "r.xlsx"
    write_xlsx(path, tables(texts))
    workbook = openpyxl.load_workbook(path)
    rows = list(workbook["Results"].iter_rows(min_row=2))
    assert [row[0].value or "" for row in rows] == texts
    assert [row[3].value or "" for row in rows] == texts[::-1]
    assert {c.data_type for row in rows for c in row if c.value is not None} == {"s"}
    summary = [[c.value for c in row] for row in workbook["Summary"].iter_rows()]
    assert summary == [["item", "value"], ["a", "1"], [" b", "&"]]
    workbook.close()


# -- what a person opens, prints and adds up (issue 14) ------------------------------------


def run_to(tmp_path: Path, output: Path, *args: str) -> dict[str, Any]:
    """A run of payroll_rows(5), row 3 invalid, with --skip-invalid; its --json summary."""
    from helpers import invoke, payroll_rows, write_csv

    rows = payroll_rows(5)
    rows[2][5] = "nobody"
    path = write_csv(tmp_path / "p.csv", rows)
    result = invoke("run", str(path), "--yes", "--skip-invalid", "-o", str(output), "--json", *args)
    assert result.exit_code == 3, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def test_amounts_are_number_cells_and_everything_else_is_text(
    sandbox: Any, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    output = tmp_path / "r.xlsx"
    run_to(tmp_path, output)
    workbook = openpyxl.load_workbook(output)
    results = workbook["Results"]
    header = [c.value for c in results[1]]
    # Issue 15 adds paidAmount after them: a partly paid row's amount paid (none here).
    assert header[-4:] == ["errors", "reason", "amountValue", "paidAmount"]
    amount_column = header.index("amountValue") + 1
    amounts = [results.cell(row=r, column=amount_column) for r in range(2, 7)]
    assert [results.cell(row=r, column=len(header)).value for r in range(2, 7)] == [None] * 5
    assert [c.value for c in amounts] == [1000, 1001, None, 1003, 1004]
    assert {c.data_type for c in amounts if c.value is not None} == {"n"}
    assert amounts[0].number_format == "#,##0"
    text_types = {
        c.data_type for row in results.iter_rows(min_row=2, max_col=amount_column - 1) for c in row
        if c.value is not None
    }  # fmt: skip
    assert text_types == {"s"}  # account numbers, mobiles, the Amount column itself: text
    assert results.cell(row=2, column=header.index("Account No") + 1).value.startswith("00")

    summary = {r[0].value: r[1] for r in workbook["Summary"].iter_rows(min_row=2)}
    amount_cells = [cell for label, cell in summary.items() if label.endswith(": amount")]
    # invalid (its amount is not counted), processing, total: in Outcome's order.
    assert [c.value for c in amount_cells] == [0, 4008, 4008]
    assert {c.data_type for c in amount_cells} == {"n"}
    others = [cell for label, cell in summary.items() if not label.endswith(": amount")]
    assert {c.data_type for c in others} == {"s"}  # counts, batch, paths: text as before
    workbook.close()

    csv_output = tmp_path / "r.csv"
    run_to(tmp_path, csv_output)
    with csv_output.open(encoding="utf-8-sig", newline="") as stream:
        lines = list(csv.reader(stream))
    amount_values = [row[-2] for row in lines]
    assert amount_values == ["amountValue", "1000", "1001", "", "1003", "1004"]
    assert [row[-1] for row in lines] == ["paidAmount", "", "", "", "", ""]


def test_every_sheet_prints_landscape_one_page_wide_with_its_header_on_each_page(
    sandbox: Any, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    output = tmp_path / "r.xlsx"
    run_to(tmp_path, output)
    workbook = openpyxl.load_workbook(output)
    for name, header_rows in (("Results", "$1:$1"), ("Summary", "$1:$1")):
        sheet = workbook[name]
        assert sheet.page_setup.orientation == "landscape", name
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, name
        assert (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight) == (1, 0), name
        assert sheet.print_title_rows == header_rows, name
        assert sheet.oddFooter.right.text == "Page &P of &N", name
        # A run against a gateway (here the sandbox over loopback, as a real one would be
        # reached) is not marked as practice.
        assert not sheet.oddHeader.center.text, name
    assert workbook["Summary"]["A1"].value == "item"
    workbook.close()


def test_a_sandbox_run_is_marked_on_screen_and_on_every_printed_page(tmp_path: Path) -> None:
    from helpers import invoke, payroll_rows, write_csv

    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    output = tmp_path / "r.xlsx"
    journal = tmp_path / "sandbox-journal.sqlite3"
    result = invoke("run", str(path), "--sandbox", "--yes", "-o", str(output), "--json",
                    "--journal", str(journal))  # fmt: skip
    assert result.exit_code == 0, result.output
    batch = json.loads(result.stdout)["batch"]
    report = tmp_path / "report.xlsx"
    assert invoke("report", batch, "-o", str(report), "--journal", str(journal)).exit_code == 0
    for written in (output, report):
        workbook = openpyxl.load_workbook(written)
        summary = workbook["Summary"]
        assert summary["A1"].value == (
            "SANDBOX: not a real payment (a practice run against a simulated gateway; no money "
            "moved)"
        )
        assert summary["A2"].value == "item"  # the table follows the mark
        assert summary.print_title_rows == "$1:$2"  # the mark is printed on every page too
        for sheet in workbook:
            assert sheet.oddHeader.center.text == "SANDBOX: not a real payment", sheet.title
        workbook.close()


def test_number_cells_are_numbers_and_text_stays_text(tmp_path: Path) -> None:
    def make() -> list[Table]:
        rows = [[f"r{i}", OUTCOMES[i % len(OUTCOMES)], str(1000 * i) if i % 3 else ""]
                for i in range(14)]  # fmt: skip
        rows.append(["odd", "failed", "12 PHP"])  # not a whole number: kept as text
        return [
            Table("Results", ["id", "outcome", "amountValue"], iter(rows), mark_column=1,
                  highlights=HIGHLIGHT,
                  numbers_from=2, title="a title", page_header="&Cmark"),
            Table("Summary", ["item", "value"], iter([["a: amount", "5"], ["a: rows", "5"]]),
                  numbers_from=1, numbers_when=lambda row: row[0].endswith(": amount")),
        ]  # fmt: skip

    path = tmp_path / "numbers.xlsx"
    write_xlsx(path, make())
    workbook = openpyxl.load_workbook(path)
    cells = [row[2] for row in workbook["Results"].iter_rows(min_row=3)]
    assert [c.value for c in cells] == [None, 1000, 2000, None, 4000, 5000, None, 7000, 8000,
                                        None, 10000, 11000, None, 13000, "12 PHP"]  # fmt: skip
    assert [c.data_type for c in cells if c.value is not None][:-1] == ["n"] * 9
    assert cells[-1].data_type == "s"
    summary = workbook["Summary"]
    assert (summary["B2"].value, summary["B3"].value) == (5, "5")
    workbook.close()
