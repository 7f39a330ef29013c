"""Where the result file goes: checked before anything is read or sent, and never over the
result of another batch.

A result file is the record of which rows were paid. Replacing another batch's (last month's
``payroll.result.xlsx`` beside a new ``payroll.xlsx``, or someone's own spreadsheet at that
path) would destroy that record, so it is refused before the confirmation, naming the file and
``-o``; the same batch's result (a dry run's, then the real run's, or a re-run's) is simply
replaced. A result written by the in-process sandbox records no money and is never evidence of
anything: any run may replace it.

Refusing rather than writing beside under a new name: a cron job, or a script that reads the
result file after the run, would otherwise read last month's file as this month's result.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .accounts import only_practice
from .errors import OutputError, RefusedError, describe
from .outcomes import Outcome
from .results import RESULT_COLUMNS
from .sheets.read import normalize_header
from .sheets.write import FORMULA_STARTS

RESULT_SUFFIXES = (".xlsx", ".csv")

BAD_SUFFIX = "{path}: the result file must end in .xlsx or .csv (-o); nothing was sent"
UNUSABLE = (
    "{path}: the result file cannot be written there: {why}; choose another with -o; nothing "
    "was sent"
)
ANOTHER_BATCH = (
    "refused: {path} holds the result of {owner}, not of this batch ({batch}); it is kept as "
    "the record of that batch. Move it away, or choose another result file with -o; nothing "
    "was sent"
)
NOT_A_RESULT = (
    "refused: {path} exists and is not a batchpay result file ({why}); it is not replaced. "
    "Move it away, or choose another result file with -o; nothing was sent"
)


def check_output_path(path: Path) -> None:
    """Refuse (``OutputError``, exit 2) a result path that cannot be written: another suffix,
    a folder, something that is not a regular file, a folder that cannot be made or written
    (a file in the way, /proc, a read-only disk). Proved by creating and removing a file
    beside it; folders made for the proof are removed again, so a refusal changes nothing."""

    def unusable(why: str) -> OutputError:
        return OutputError(UNUSABLE.format(path=path, why=why))

    if path.is_dir():
        raise unusable("it is a folder")
    if path.suffix.lower() not in RESULT_SUFFIXES:
        raise OutputError(BAD_SUFFIX.format(path=path))
    if path.exists() and not path.is_file():
        raise unusable("it is not a regular file")
    folder = path.parent
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise unusable(f"{folder} is a file, not a folder")
    made: list[Path] = []
    try:
        for ancestor in reversed(missing):
            try:
                ancestor.mkdir()
            except OSError as exc:
                why = describe(exc, name_file=False)
                raise unusable(f"the folder {ancestor} cannot be made: {why}") from exc
            made.append(ancestor)
        try:
            # mkstemp as write_tables does: owner-only, beside the target, renamed over it.
            handle, probe = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".probe", dir=path.parent
            )
            os.close(handle)
            os.unlink(probe)
        except OSError as exc:
            why = describe(exc, name_file=False)
            raise unusable(f"no file can be created in {path.parent}: {why}") from exc
    finally:
        for ancestor in reversed(made):
            with suppress(OSError):
                ancestor.rmdir()


@dataclass(frozen=True)
class ExistingResult:
    """What an existing file at the result path says about itself."""

    batch: str = ""  # a result workbook's Summary names its batch; a CSV does not
    sandbox: bool = False  # the Summary's "sandbox" row says yes
    account: str = ""  # the Summary's "account" row, when it has one
    trade_nos: frozenset[str] = frozenset()  # of the rows that were planned (not invalid)
    placed: frozenset[str] = frozenset()  # of those, the rows not held back as repeats


class NotAResult(Exception):
    """The file is not a batchpay result file; the message says why."""


def read_existing(path: Path, *, with_trade_nos: bool = True) -> ExistingResult:
    """The result file's own account of itself; ``NotAResult`` when it is none. A workbook's
    tradeNos are read only ``with_trade_nos`` (its Summary names the batch: reading every row
    of a 100k-row workbook takes seconds)."""
    try:
        if path.suffix.lower() == ".csv":
            return _read_csv(path)
        return _read_xlsx(path, with_trade_nos)
    except NotAResult:
        raise
    except (OSError, UnicodeError, csv.Error, ValueError) as exc:
        raise NotAResult(f"it cannot be read as one: {describe(exc)}") from exc


def _trade_nos(
    header: list[str], rows: Iterator[list[str]], *, csv_cells: bool = False
) -> tuple[frozenset[str], frozenset[str]]:
    """The planned rows' tradeNos, and those of them not held back as repeats."""
    missing = [c for c in RESULT_COLUMNS if c not in header]
    # The tradeNo column: batchpay's own, or the input's, headed as the input headed it.
    named = [i for i, name in enumerate(header) if normalize_header(name) == "tradeno"]
    if not named:
        missing.insert(0, "tradeNo")
    if missing:
        raise NotAResult(f"it has no {missing[0]!r} column")
    trade, outcome = named[0], header.index("outcome")
    planned: dict[str, str] = {
        row[trade]: row[outcome]
        for row in rows
        # An invalid row keeps the tradeNo its input had; the journal never planned it.
        if len(row) > outcome and row[trade] and row[outcome] != Outcome.INVALID.value
    }
    if csv_cells:
        # The leading ' that keeps a CSV cell inert in Excel is not part of the value.
        planned = {
            (t[1:] if t[:1] == "'" and t[1:].startswith(FORMULA_STARTS) else t): o
            for t, o in planned.items()
        }
    never_sent = {Outcome.REPEAT.value, Outcome.CANCELLED.value}
    placed = (t for t, o in planned.items() if o not in never_sent)
    return frozenset(planned), frozenset(placed)


def _read_csv(path: Path) -> ExistingResult:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise NotAResult("it is empty")
        trade_nos, placed = _trade_nos(header, reader, csv_cells=True)
        return ExistingResult(trade_nos=trade_nos, placed=placed)


def _read_xlsx(path: Path, with_trade_nos: bool) -> ExistingResult:
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        names = workbook.sheet_names
        if "Summary" not in names or "Results" not in names:
            raise NotAResult("it has no Results and Summary sheets")
        summary = {
            str(row[0]): str(row[1])
            for row in workbook.get_sheet_by_name("Summary").to_python()[1:]
            if len(row) > 1
        }
        if not summary.get("batch"):
            raise NotAResult("its Summary sheet names no batch")
        trade_nos: frozenset[str] = frozenset()
        placed: frozenset[str] = frozenset()
        if with_trade_nos:
            grid = workbook.get_sheet_by_name("Results").to_python()
            cells = (["" if v is None else str(v) for v in row] for row in grid[1:])
            header = [str(v) for v in grid[0]] if grid else []
            trade_nos, placed = _trade_nos(header, cells)
    except NotAResult:
        raise
    except Exception as exc:  # calamine raises its own error types for every malformed file
        raise NotAResult(f"it cannot be read as a workbook: {exc}") from exc
    return ExistingResult(
        batch=summary["batch"],
        sandbox=summary.get("sandbox", "").lower().startswith("yes"),
        account=summary.get("account", ""),
        trade_nos=trade_nos,
        placed=placed,
    )


class KnowsTradeNos(Protocol):
    def known_trade_nos(self, trade_nos: frozenset[str]) -> set[str]: ...


CARRIED_FORWARD = (
    "{path} held the result of {owner}; every payout in it is named in this batch's result "
    "(as repeat, with its tradeNo), so it is replaced"
)


def refuse_replacing(
    path: Path,
    batch_id: str,
    trade_nos: set[str],
    journal: KnowsTradeNos,
    *,
    account: str = "",
    sandbox: bool = False,
    carried: Callable[[], set[str]] = set,
) -> str:
    """Raise ``RefusedError`` (exit 1) when ``path`` holds something other than this batch's
    result: another batch's result, or a file that is not a batchpay result at all. Returns a
    note for the operator when another batch's result is replaced all the same, because
    nothing of it is lost (``carried``), else "".

    ``trade_nos``: this batch's. ``sandbox``: this run is against the in-process sandbox, whose
    journal holds only sandbox rows, so a result whose tradeNos it all knows is a sandbox
    result (a CSV has no Summary to say so). ``carried``: the tradeNos of other batches that
    this batch holds back as repeats; its result names each (the file fixed in one row and run
    again), so a result holding only those is carried forward, not lost."""
    if not path.is_file():
        return ""
    try:
        found = read_existing(path, with_trade_nos=False)
        if found.batch and found.batch != batch_id and not found.sandbox:
            found = read_existing(path)  # another batch's: its rows decide
    except NotAResult as exc:
        raise RefusedError(NOT_A_RESULT.format(path=path, why=exc)) from None
    if found.sandbox or only_practice(found.trade_nos):
        return ""  # practice: no money moved, nothing to keep
    same_account = not (account and found.account) or account == found.account
    if found.batch:
        if found.batch == batch_id and same_account:
            return ""
    elif found.trade_nos <= trade_nos:
        return ""  # tradeNos are unique forever: only this batch's result holds only these
    if sandbox and found.trade_nos and journal.known_trade_nos(found.trade_nos) == found.trade_nos:
        return ""
    if not found.batch:
        owner = "another batch (its tradeNos are not this batch's)"
    elif found.batch == batch_id:
        owner = f"batch {found.batch} on the gateway account {found.account}"
    else:
        owner = f"batch {found.batch}"
    if same_account and found.placed and found.placed <= carried():
        return CARRIED_FORWARD.format(path=path, owner=owner)
    raise RefusedError(ANOTHER_BATCH.format(path=path, owner=owner, batch=batch_id))
