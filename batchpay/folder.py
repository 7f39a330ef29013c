"""Folder mode for scheduled runs: ``batchpay run DIR --archive DONE_DIR`` sends each new
spreadsheet in DIR once and moves finished ones (with their result file) to DONE_DIR. A lock
keeps two scheduled runs from working on the same folder at once."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import JournalError
from .sheet import CSV_SUFFIXES, WORKBOOK_SUFFIXES

LOCK_NAME = ".batchpay.lock"


def waiting_files(folder: Path) -> list[Path]:
    """Spreadsheets in the folder, oldest name first; not result files, not hidden files, not
    the lock files spreadsheet programs leave (~$name.xlsx, .~lock.name#)."""
    found = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith((".", "~$")) or ".result." in name:
            continue
        if path.suffix.lower() in CSV_SUFFIXES | WORKBOOK_SUFFIXES:
            found.append(path)
    return found


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    fd = os.open(folder / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise JournalError(
                f"{folder}: another batchpay run ({holder}) is working on this folder; this one "
                "sends nothing and leaves it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


def archive(paths: list[Path], done: Path) -> list[Path]:
    """Move the files into ``done``; a name already there gets the time appended."""
    done.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in paths:
        if not path.exists():
            continue
        target = done / path.name
        if target.exists():
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            target = done / f"{path.stem}.{stamp}{path.suffix}"
        shutil.move(str(path), target)
        moved.append(target)
    return moved
