"""Locks beside the journal: a batch is sent by one process at a time (``batch_lock``), and
a folder's files by one ``run DIR`` (``exclusive``). OS file locks: the kernel releases them
when the process ends, however it ends. A batch's lock file stays behind, so it is also
evidence that the batch was run with a journal at that path (``recover``)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ..errors import JournalError, mapped


@contextmanager
def exclusive(lock_file: Path, refusal: str) -> Iterator[None]:
    """Hold ``lock_file`` for this process, or raise ``refusal`` (``{holder}`` filled in).

    An OS file lock: the kernel releases it when the process ends, however it ends.
    """
    with mapped(JournalError, f"the lock file {lock_file}"):
        lock_file.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(lock_file, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise JournalError(refusal.format(holder=holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def lock_file(journal_path: Path, batch_id: str) -> Path:
    """Where the batch's lock lives. Every run of the batch leaves it behind, so it is also
    evidence that the batch was run with a journal at this path."""
    return journal_path.with_name(journal_path.name + ".locks") / f"{batch_id}.lock"


def batch_lock(journal_path: Path, batch_id: str) -> AbstractContextManager[None]:
    """Hold the batch for this process; a second process on the same batch is refused."""
    path = lock_file(journal_path, batch_id)
    return exclusive(
        path,
        f"batch {batch_id} is being sent by {{holder}} right now; wait for it to finish (or "
        "stop it), then run again",
    )
