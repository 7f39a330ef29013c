"""The result workbook's writer: TextWorksheet's fast cells are xlsxwriter's own, byte for byte."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xlsxwriter.worksheet import Worksheet

from batchpay.results import Table, _write_xlsx

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
        Table("Results", ["text", "id", "outcome", "other", "empty"], iter(rows), mark_column=2),
        Table("Summary", ["item", "value"], iter([["a", "1"], [" b", "&"]])),
    ]


def parts(path: Path) -> dict[str, bytes]:
    """Every part of the workbook but docProps/core.xml (it holds the time of writing)."""
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist() if n != "docProps/core.xml"}


def write_both(folder: Path, make: Callable[[], list[Table]]) -> tuple[Path, Path]:
    fast, stock = folder / "fast.xlsx", folder / "stock.xlsx"
    fast.unlink(missing_ok=True)
    stock.unlink(missing_ok=True)
    _write_xlsx(fast, make())
    _write_xlsx(stock, make(), worksheet_class=Worksheet)
    return fast, stock


def test_fast_text_cells_are_written_as_xlsxwriter_writes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [*TRICKY, *PLAIN]
    fast, stock = write_both(tmp_path, lambda: tables(texts))
    assert parts(fast) == parts(stock)

    # Not vacuously: in the fast workbook xlsxwriter's own _write_cell wrote only the tricky
    # cells (each in two columns) and the Summary's " b" and "&"; the fast path wrote the
    # empty cells of highlighted rows.
    calls: list[str] = []
    original = Worksheet._write_cell

    def counted(self: Any, row: int, col: int, cell: Any) -> None:
        calls.append(cell.string)
        original(self, row, col, cell)

    monkeypatch.setattr(Worksheet, "_write_cell", counted)
    _write_xlsx(tmp_path / "counted.xlsx", tables(texts))
    assert sorted(calls) == sorted([*TRICKY, *TRICKY, " b", "&"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(st.text(st.characters(codec="utf-8"), max_size=12), min_size=1, max_size=8))
def test_any_text_is_written_as_xlsxwriter_writes_it(tmp_path: Path, texts: list[str]) -> None:
    fast, stock = write_both(tmp_path, lambda: tables(texts))
    assert parts(fast) == parts(stock)
