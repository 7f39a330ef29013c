"""Read an .xls, .ods or .xlsb workbook in a child process with a memory limit.

Those files cannot be checked before reading the way an .xlsx is (``xlsx_check``): .xls and
.xlsb are binary, and an .ods says how often a cell repeats (``number-columns-repeated``) in
ways that only reading resolves. A reader that then asks for more memory than the limit gets
an allocation failure here, and aborts or fails this process, not batchpay's: the parent sees
a child that did not answer and refuses the file in one line.

Run as ``python -m batchpay.sheets.read_child PATH [SHEET]``; writes a pickle of ``("ok", Loaded)``
or ``("failed", ReadFailure args)`` to stdout.
"""

from __future__ import annotations

import os
import pickle
import resource
import subprocess
import sys
from pathlib import Path

from ..errors import InputError
from .read_workbook import Loaded, ReadFailure, load_with_calamine

MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of the child, in bytes
CPU_SECONDS = 120
WALL_SECONDS = 300

CHILD_FAILED = (
    "{path}: reading this workbook needed more than {limit} MiB of memory or {seconds} s, "
    "the limits for {suffix} files, or the reader failed on it ({how}); save it as .xlsx "
    "from Excel or LibreOffice and try again"
)


def read_in_child(path: Path, sheet: str | None) -> Loaded:
    """What ``load_with_calamine`` returns, read in a child process held to the limits;
    ReadFailure as there, InputError when the child did not answer."""
    command = [sys.executable, "-m", "batchpay.sheets.read_child", str(path)]
    if sheet is not None:
        command.append(sheet)
    # The child imports this package as the parent did, installed or from a source tree.
    here = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=WALL_SECONDS, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        raise _failed(path, f"still reading after {WALL_SECONDS} s") from None
    if done.returncode != 0:
        how = f"exit {done.returncode}" if done.returncode > 0 else f"signal {-done.returncode}"
        raise _failed(path, how)
    try:
        # Our own child's answer, made of plain values and the two classes above.
        kind, payload = pickle.loads(done.stdout)
    except Exception:
        raise _failed(path, "no answer") from None
    if kind == "ok" and isinstance(payload, Loaded):
        return payload
    raise ReadFailure(*payload)


def _failed(path: Path, how: str) -> InputError:
    return InputError(
        CHILD_FAILED.format(
            path=path, limit=MEMORY_LIMIT // 2**20, seconds=CPU_SECONDS,
            suffix=path.suffix.lower(), how=how,
        )
    )  # fmt: skip


def main(argv: list[str]) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    path, sheet = argv[0], (argv[1] if len(argv) > 1 else None)
    answer: tuple[str, object]
    try:
        try:
            answer = ("ok", load_with_calamine(path, sheet))
        except ReadFailure as failure:
            answer = ("failed", failure.args)
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        return 3
    sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
