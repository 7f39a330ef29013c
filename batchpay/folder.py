"""Folder mode for scheduled runs: ``batchpay run DIR --archive DONE_DIR`` sends each new
spreadsheet in DIR once and moves finished ones (with their result file) to DONE_DIR. A lock
keeps two scheduled runs from working on the same folder at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BatchpayError, InvalidRowsError
from .journal.locks import exclusive
from .payrun import RunRequest
from .results import default_output
from .sheets.read import CSV_SUFFIXES, WORKBOOK_SUFFIXES
from .summary import Summary

LOCK_NAME = ".batchpay.lock"
# What batchpay itself writes beside an input: never an input of its own.
PRODUCED = re.compile(r"\.(result|problems)\.")
KEPT = (
    "{name} stays in the folder, not archived: every row was placed in batch {batch} on "
    "{date} and nothing was sent; to pay it again, run it alone with --pay-again, or remove it"
)


def waiting_files(folder: Path) -> list[Path]:
    """Spreadsheets in the folder, oldest name first; not result files, not hidden files, not
    the lock files spreadsheet programs leave (~$name.xlsx, .~lock.name#)."""
    found = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith((".", "~$")) or PRODUCED.search(name):
            continue
        if path.suffix.lower() in CSV_SUFFIXES | WORKBOOK_SUFFIXES:
            found.append(path)
    return found


def folder_lock(folder: Path) -> AbstractContextManager[None]:
    return exclusive(
        folder / LOCK_NAME,
        f"{folder}: another batchpay run ({{holder}}) is working on this folder; this one sends "
        "nothing and leaves it to finish",
    )


def archive(paths: list[Path], done: Path) -> dict[Path, Path]:
    """Move the files into ``done``; a name already there gets the time appended. Returns
    where each file that existed went."""
    done.mkdir(parents=True, exist_ok=True)
    moved = {}
    for path in paths:
        if not path.exists():
            continue
        target = done / path.name
        if target.exists():
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            target = done / f"{path.stem}.{stamp}{path.suffix}"
        shutil.move(str(path), target)
        moved[path] = target
    return moved


@dataclass
class FolderRun:
    """What a folder run did: each file's report (its summary as JSON, or its error) and the
    worst exit code."""

    folder: Path
    reports: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "files": self.reports}


def run_folder(
    folder: Path,
    done: Path | None,
    base: RunRequest,
    one: Callable[[RunRequest], Summary],
    say: Callable[[str], None],
    on_summary: Callable[[Summary], None],
) -> FolderRun:
    """Each waiting spreadsheet in turn; finished ones (exit 0 or 3) move to ``done``. An input
    error skips that file; a stopped run (exit 4) stops the folder. The worst exit code wins.
    ``say`` receives the lines for the operator (a file's error, a file kept back);
    ``on_summary`` each finished file's summary, with the result file where it now is."""
    codes: list[int] = []
    reports: list[dict[str, Any]] = []
    with folder_lock(folder):
        for path in waiting_files(folder):
            request = dataclasses.replace(
                base, file=path, output=default_output(path),
                # Whoever dropped a refused file learns what to fix, beside it.
                refusal_report=path.with_name(f"{path.stem}.problems.xlsx"),
            )  # fmt: skip
            try:
                summary = one(request)
            except BatchpayError as exc:
                say(f"error: {exc}")
                codes.append(exc.exit_code)
                failed: dict[str, Any] = {
                    "source": str(path), "error": str(exc), "exit_code": exc.exit_code,
                }  # fmt: skip
                if isinstance(exc, InvalidRowsError):
                    failed["problems"] = exc.problems
                    failed["problems_report"] = str(request.refusal_report)
                reports.append(failed)
                continue
            codes.append(summary.exit_code)
            report = summary.as_json()
            if summary.nothing_sent and summary.earlier is not None:
                # Last month's file again: not done, but waiting for a person's --pay-again.
                earlier = summary.earlier
                report["kept"] = KEPT.format(name=path.name, batch=earlier.batch_id,
                                             date=earlier.date)  # fmt: skip
                say(report["kept"])
            elif done is not None and summary.exit_code in (0, 3) and not summary.dry_run:
                moved = archive([path, request.output], done)
                report["archived"] = [str(p) for p in moved.values()]
                # The result file is where it now is, not where it was written.
                result = moved.get(request.output)
                if result is not None:
                    summary = dataclasses.replace(summary, result_file=str(result))
                    report["result_file"] = str(result)
            reports.append(report)
            on_summary(summary)
            if summary.exit_code == 4:
                break  # stopped: the gateway refused systematically, or an interrupt
    return FolderRun(folder, reports, max(codes, default=0))
