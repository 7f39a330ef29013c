"""The result file's rows: the input columns as they were, then the run's columns, built from
the journal's rows; and its Summary. ``sheets.write`` writes them (.xlsx or .csv by the
output's extension, atomically): every cell text but the amounts a person adds up
(``amountValue`` and the Summary's amounts), rows highlighted by outcome.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .journal.rows import JournalRow, now
from .outcomes import Outcome, reason
from .sheets.read import Sheet
from .sheets.write import Table, write_tables

RESULT_COLUMNS = (
    "outcome", "code", "msg", "status", "message", "platFormTradeNo", "attempts", "errors",
    "reason", "amountValue",
)  # fmt: skip
AMOUNT_VALUE = "amountValue"  # the whole amount as a number, to add up
# After every earlier column, so scripts that read columns by position keep working; and not
# in RESULT_COLUMNS, which is how a result file is recognised (older ones have no such column).
PAID_AMOUNT = "paidAmount"  # a partly paid row's amount paid, as the gateway said it
EXTRA_COLUMNS = (PAID_AMOUNT,)


@dataclass(frozen=True)
class ResultRow:
    """One input row's outcome: its journal row, or None when it was never planned."""

    journal: JournalRow | None
    errors: str


def default_output(source: Path) -> Path:
    suffix = source.suffix.lower()
    ext = ".csv" if suffix in {".csv", ".txt", ".tsv"} else ".xlsx"
    return source.with_name(f"{source.stem}.result{ext}")


INVALID_REASON = reason(Outcome.INVALID, "", "", "", "")


def paid_amount(row: JournalRow) -> str:
    """What a partly paid row's result shows as paid ("" for any other row: a paid row's
    amount is its amountValue); "100.00" is shown as 100, a number cell to add up."""
    if row.outcome is not Outcome.PARTIAL:
        return ""
    return row.pay_amount.removesuffix(".00").removesuffix(".0")


def _table(sheet: Sheet, results: Sequence[ResultRow]) -> tuple[list[str], Iterator[list[str]]]:
    trade_position = sheet.columns.get("tradeNo")
    header = list(sheet.headers)
    if trade_position is None:
        header.append("tradeNo")
    header.extend(RESULT_COLUMNS)
    header.extend(EXTRA_COLUMNS)
    values = sheet.frame.to_numpy()

    def rows() -> Iterator[list[str]]:
        for cells, result in zip(values, results, strict=True):
            row = cells.tolist()  # already text
            j = result.journal
            trade_no = (j.trade_no or "") if j else ""
            if trade_position is None:
                row.append(trade_no)
            elif trade_no:
                row[trade_position] = trade_no
            if j is None:
                row.extend([Outcome.INVALID.value, "", "", "", "", "", "0", result.errors,
                            INVALID_REASON, "", ""])  # fmt: skip
            else:
                errors = "; ".join(e for e in (result.errors, j.flag and f"flagged: {j.flag}") if e)
                paid = paid_amount(j)
                why = reason(j.outcome, j.code, j.msg, j.status, j.message, amount=j.amount,
                             paid=paid)  # fmt: skip
                row.extend(
                    [j.outcome.value, j.code, j.msg, j.status, j.message, j.platform_trade_no,
                     str(j.attempts), errors, why, str(j.amount), paid]
                )  # fmt: skip
            yield row

    return header, rows()


# Row highlighting in result workbooks, by outcome.
HIGHLIGHT = {
    Outcome.INVALID.value: "#F8CBAD",
    Outcome.REJECTED.value: "#F8CBAD",
    Outcome.FAILED.value: "#F8CBAD",
    Outcome.PARTIAL.value: "#F4B084",  # placed and paid in part: for a person to settle
    Outcome.UNKNOWN.value: "#FFE699",
    Outcome.PENDING.value: "#FFF2CC",
}
# The mark of a practice run: a result file is shown as proof of payment, and a practice
# file must never pass for one. Printed and on screen; no "&" (a code in page headers).
SANDBOX_MARK = "SANDBOX: not a real payment"
SANDBOX_NOTE = "a practice run against a simulated gateway; no money moved"
SANDBOX_PAGE_HEADER = f'&C&"-,Bold"{SANDBOX_MARK}'
SUMMARY_AMOUNT = ": amount"  # the Summary's labels of amounts (summary_rows)


def write_results(
    path: Path,
    sheet: Sheet,
    results: Sequence[ResultRow],
    summary: list[list[str]] | None = None,
    *,
    sandbox: bool = False,
) -> None:
    """``sandbox``: the run went to a simulated gateway; every sheet says so."""
    header, rows = _table(sheet, results)
    page_header, tab_color = (SANDBOX_PAGE_HEADER, "red") if sandbox else ("", "")
    tables = [
        Table("Results", header, rows, mark_column=header.index("outcome"), highlights=HIGHLIGHT,
              numbers_from=header.index(AMOUNT_VALUE), page_header=page_header,
              tab_color=tab_color)
    ]  # fmt: skip
    if summary:
        tables.append(
            Table(SUMMARY_SHEET, ["item", "value"], iter(summary), numbers_from=1,
                  numbers_when=lambda row: row[0].endswith(SUMMARY_AMOUNT),
                  title=f"{SANDBOX_MARK} ({SANDBOX_NOTE})" if sandbox else "",
                  page_header=page_header, tab_color=tab_color)
        )  # fmt: skip
    write_tables(path, tables)


SUMMARY_SHEET = "Summary"
# The Summary rows that say what a result file is evidence of (recover.py reads them back).
ACCOUNT_ITEM = "account"
SANDBOX_ITEM = "sandbox"
CONTENT_HASH_ITEM = "content hash"
WRITTEN_AT_ITEM = "written at (UTC)"
IN_PROCESS_SANDBOX = "yes: in-process sandbox, not a real payment"
NOT_SANDBOX = "no"
SANDBOX_UNKNOWN = "not recorded (rewritten from the journal by batchpay report)"


def summary_rows(
    batch_id: str, source: str, journal: Path, counts: dict[str, int], amounts: dict[str, int],
    *, dry_run: bool | None = None, account: str = "", sandbox: bool | None = None,
    content_hash: str = "", this_run: str = "", people: list[list[str]] | None = None,
) -> list[list[str]]:  # fmt: skip
    """The result workbook's Summary sheet (``dry_run`` None: not a run, a report;
    ``this_run``: what the run that wrote it did, when that is not what the rows show).

    ``account`` (the gateway account the rows were sent to, "" when not known) and
    ``sandbox`` (None: not known) say what the file is evidence of, for a later run whose
    journal was lost and for ``batchpay recover``; ``content_hash`` names the batch fully.
    """
    if sandbox is None:
        sandbox_text = SANDBOX_UNKNOWN
    else:
        sandbox_text = IN_PROCESS_SANDBOX if sandbox else NOT_SANDBOX
    rows = [
        ["batch", batch_id], ["source file", source], ["journal", str(journal)],
        [WRITTEN_AT_ITEM, now()], [ACCOUNT_ITEM, account], [SANDBOX_ITEM, sandbox_text],
        [CONTENT_HASH_ITEM, content_hash],
    ]  # fmt: skip
    if dry_run is not None:
        rows.append(["dry run", "yes" if dry_run else "no"])
    if this_run:
        rows.append(["this run", this_run])
    rows += people or []  # who submitted, approved and sent it; the audit trail's head
    for outcome, count in counts.items():
        rows.append([f"{outcome}: rows", str(count)])
        rows.append([f"{outcome}: amount", str(amounts[outcome])])
    rows.append(["total: rows", str(sum(counts.values()))])
    rows.append(["total: amount", str(sum(amounts.values()))])
    return rows
