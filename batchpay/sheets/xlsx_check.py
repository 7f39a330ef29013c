"""A workbook checked before any reader sees it: its zip's sizes from its directory, then
every part decompressed in chunks and counted, and the sheet to be read and its shared strings
held to every limit (``xlsx_plain`` proves a plain part within them at the speed of a byte
search; ``xlsx_stream`` decides every other part exactly). Returns the sheet's formula cells.
"""

from __future__ import annotations

import zipfile
import zlib
from array import array
from pathlib import Path
from xml.parsers import expat

from ..errors import InputError
from .xlsx_plain import PLAIN_PART_BYTES, plain_shared_lengths, plain_sheet
from .xlsx_stream import DAMAGED, Budget, SharedStrings, SheetScan, feed, part_chunks, sheet_parts

XLSX_SUFFIXES = {".xlsx", ".xlsm"}


def check_zip(path: Path) -> None:
    """Refuse a zip workbook (.xlsx, .xlsm, .ods, .xlsb) whose parts decompress to more than
    the limits, judged from its directory and then by decompressing every part in chunks."""
    _scan(path, None, xml=False)


def scan_xlsx(path: Path, sheet: str | None) -> set[tuple[int, int]]:
    """Check an .xlsx/.xlsm against every limit before it is read; the formula cells of the
    sheet to be read, as (sheet row, 0-based column)."""
    return _scan(path, sheet, xml=True)


def _scan(path: Path, sheet: str | None, *, xml: bool) -> set[tuple[int, int]]:
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            budget = Budget(where, path.stat().st_size)
            declared = sum(info.file_size for info in infos)
            if declared > budget.limit:
                raise budget.refusal(declared)
            return _scan_parts(archive, infos, budget, sheet, xml=xml)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise InputError(f"{where}: {DAMAGED.format(reason=_first_line(exc))}") from None
    except expat.ExpatError as exc:
        reason = f"its XML is not well formed: {_first_line(exc)}"
        raise InputError(f"{where}: {DAMAGED.format(reason=reason)}") from None


def _scan_parts(
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    budget: Budget,
    sheet: str | None,
    *,
    xml: bool,
) -> set[tuple[int, int]]:
    if not xml:
        for info in infos:
            for _ in part_chunks(archive, info, budget):
                pass
        return set()
    parts = sheet_parts(archive, budget, sheet)
    strings = [i for i in infos if i.filename.lower().endswith("sharedstrings.xml")]
    # Shared strings first: a sheet's cells are measured with them filled in. Each such part
    # is held to the limits; the cells are measured against the one readers use.
    used = next((i.filename for i in strings if i.filename == "xl/sharedStrings.xml"), None)
    used = used or (strings[0].filename if strings else None)
    longest = 0  # a bound on the characters of any shared string
    exact: dict[str, array[int]] = {}
    plain: dict[str, bytes] = {}
    for info in strings:
        data = _plain_candidate(archive, info, budget)
        bound = None if data is None else plain_shared_lengths(data)
        if bound is None:
            shared = SharedStrings(budget.where)
            stream = part_chunks(archive, info, budget) if data is None else iter([data])
            feed(shared.parser, stream)
            exact[info.filename] = shared.lengths
            bound = max(shared.lengths, default=0)
        elif info.filename == used:
            plain[info.filename] = data  # type: ignore[assignment]  # not None: bound is not
        longest = max(longest, bound)

    def lengths() -> array[int]:
        """Each shared string's characters, for the expat pass over a sheet."""
        if used in plain:
            shared = SharedStrings(budget.where)
            feed(shared.parser, iter([plain.pop(used)]))
            exact[used] = shared.lengths
        return exact.get(used or "", array("q"))

    found: list[set[tuple[int, int]]] = []
    for info in infos:
        if info.filename in parts:
            data = _plain_candidate(archive, info, budget)
            formulas = None if data is None else plain_sheet(budget.where, data, longest)
            if formulas is None:
                scan = SheetScan(budget.where, lengths())
                stream = part_chunks(archive, info, budget) if data is None else iter([data])
                feed(scan.parser, stream)
                scan.finish()
                formulas = scan.formulas
            found.append(formulas)
        elif info not in strings:
            for _ in part_chunks(archive, info, budget):
                pass  # counted: the reader may decompress it too
    return found[0] if len(found) == 1 else set()


def _plain_candidate(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget
) -> bytes | None:
    """The part whole, when it is small enough to be held for the plain tier; None leaves it
    to be streamed."""
    if info.file_size > PLAIN_PART_BYTES:
        return None
    return b"".join(part_chunks(archive, info, budget))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else type(exc).__name__
