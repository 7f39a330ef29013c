"""An uploaded spreadsheet: saved under a name the server chooses, in a private folder, then
read and validated by the command line's own reader (``team.submitting.load_file``) and, when
every row is valid, planned as a draft batch.

A file with invalid rows is not planned: the journal keeps batches that may be paid, and a
draft of rows nobody may submit would only crowd the list. Its problems are shown from an
upload record kept in memory (``u-`` ids); it is fixed and uploaded again. The client's file
name is only ever shown (escaped by the templates), never part of a path.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import BatchpayError
from ..journal.store import Journal
from ..problems import problem_lines
from ..sheets.damage import WARNING
from ..sheets.load import Loaded, load
from ..team.submitting import Submission, load_file, plan_draft

EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".csv")
MAX_UPLOAD = 20 * 1024 * 1024  # bytes
ROWS_SHOWN = 200  # rows that need fixing shown in the page's table; the lines list them all
UPLOADS_KEPT = 200  # upload records kept in memory (the oldest go first)

BAD_EXTENSION = (
    "{name}: not a spreadsheet batchpay reads; upload a .xlsx, .xlsm, .xls, .ods or .csv"
)
TOO_BIG = f"the file is larger than {MAX_UPLOAD // (1024 * 1024)} MB: split the payroll"
NO_FILE = "no file was uploaded: choose a spreadsheet first"
NAME_SHOWN = 120  # characters of the client's file name kept for display


def shown_name(raw: str | None) -> str:
    """The client's file name for display only: its last part, bounded, printable."""
    text = raw or "upload"
    last = PureWindowsPath(PurePosixPath(text).name).name or "upload"
    printable = "".join(ch if ch.isprintable() else "?" for ch in last)
    return printable[:NAME_SHOWN]


def extension_of(name: str) -> str | None:
    suffix = PurePosixPath(name.lower()).suffix
    return suffix if suffix in EXTENSIONS else None


def uploads_dir(journal: Path) -> Path:
    """The private folder beside the journal: a batch's file must outlive a restart, since a
    stopped batch is resumed (``run_batch`` reads its file again)."""
    folder = journal.with_name(journal.name + ".uploads")
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def saved_path(folder: Path, extension: str) -> Path:
    return folder / f"{secrets.token_hex(16)}{extension}"


@dataclass
class Cell:
    text: str
    severity: str = ""  # "error", "warning" or "" (no problem in this cell)
    problem: str = ""


@dataclass
class ShownRow:
    row: int
    invalid: bool
    cells: list[Cell]


@dataclass
class Upload:
    """What a person sees of one uploaded file."""

    id: str
    name: str  # the client's name, for display
    by: str
    batch: str | None = None  # planned as this batch (every row valid)
    error: str = ""  # unreadable, or refused when planned: one line
    lines: list[str] = field(default_factory=list)  # as `batchpay validate` groups them
    headers: list[str] = field(default_factory=list)
    rows_shown: list[ShownRow] = field(default_factory=list)
    rows_to_fix: int = 0
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    warnings: int = 0
    total: int = 0  # of the valid rows

    @property
    def submittable(self) -> bool:
        return self.batch is not None and not self.invalid and not self.error


def describe(upload: Upload, loaded: Loaded, saved: Path) -> None:
    """The upload's problems, totals and rows to fix, from the loaded file."""
    v = loaded.validation
    where = loaded.where.replace(str(saved), upload.name)
    upload.lines = [line.replace(str(saved), upload.name)
                    for line in problem_lines(where, Path(upload.name), v)]  # fmt: skip
    upload.rows, upload.valid = len(v.fields), v.valid_count
    upload.invalid, upload.warnings = upload.rows - upload.valid, len(v.warnings)
    upload.total = int(v.amounts[~v.invalid].sum())
    sheet = loaded.sheet
    upload.headers = [str(h) for h in sheet.headers]
    marks: dict[int, dict[str, tuple[str, str]]] = {}
    for problem in [*v.warnings, *v.problems]:  # errors last: they win a shared cell
        severity = "warning" if problem.severity == WARNING else "error"
        marks.setdefault(problem.row, {})[problem.column] = (severity, problem.rule)
    upload.rows_to_fix = len(marks)
    numbers = [int(n) for n in sheet.row_numbers]
    for position, number in enumerate(numbers):
        if number not in marks:
            continue
        if len(upload.rows_shown) >= ROWS_SHOWN:
            break
        values = ["" if value is None else str(value) for value in sheet.frame.iloc[position]]
        found = marks[number]
        cells = [Cell(text, *found.get(header, ("", "")))
                 for header, text in zip(upload.headers, values, strict=False)]  # fmt: skip
        upload.rows_shown.append(ShownRow(number, bool(v.invalid[position]), cells))


def read_and_plan(journal_path: Path, upload: Upload, saved: Path, what: Submission) -> None:
    """In a worker thread: read the saved file as the command line does; plan it as a draft
    when every row is valid. Every refusal is one line on the upload."""
    try:
        loaded = load_file(what)
    except BatchpayError as exc:
        upload.error = str(exc).replace(str(saved), upload.name)
        return
    describe(upload, loaded, saved)
    if upload.invalid:
        return
    try:
        with Journal(journal_path) as journal:
            upload.batch = plan_draft(journal, what, loaded).batch_id
    except BatchpayError as exc:
        upload.error = str(exc).replace(str(saved), upload.name)


def read_again(
    folder: Path, batch: str, source: str, name: str, mobile_pattern: str
) -> Upload | None:
    """After a restart: a console upload's problems and warnings, from its saved file (read
    as it was when planned); None for a file the console did not save or that is gone."""
    saved = Path(source)
    if saved.parent != folder or not saved.is_file():
        return None
    upload = Upload("u-" + secrets.token_hex(8), name, "", batch=batch)
    try:
        loaded = load(saved, sheet=None, mobile_pattern=mobile_pattern)
    except BatchpayError as exc:
        upload.error = str(exc).replace(str(saved), name)
        return upload
    describe(upload, loaded, saved)
    return upload


class UploadRecords:
    """Upload records by id, and the latest upload of each planned batch (its warnings)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Upload] = {}
        self._by_batch: dict[str, Upload] = {}

    def new(self, name: str, by: str) -> Upload:
        upload = Upload("u-" + secrets.token_hex(8), name, by)
        with self._lock:
            while len(self._by_id) >= UPLOADS_KEPT:
                del self._by_id[next(iter(self._by_id))]
            self._by_id[upload.id] = upload
        return upload

    def planned(self, upload: Upload) -> None:
        if upload.batch is not None:
            with self._lock:
                self._by_batch[upload.batch] = upload

    def get(self, upload_id: str) -> Upload | None:
        with self._lock:
            return self._by_id.get(upload_id)

    def of_batch(self, batch: str) -> Upload | None:
        with self._lock:
            return self._by_batch.get(batch)
