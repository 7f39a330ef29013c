"""The sheets stage's whole job: a file read and every row validated, nothing planned or sent
(``batchpay validate`` loads only this, not the sending path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .read import Sheet, read_sheet
from .validate import Validation, validate


@dataclass
class Loaded:
    sheet: Sheet
    validation: Validation

    @property
    def where(self) -> str:
        return self.sheet.where


def load(
    path: Path, *, sheet: str | None, mobile_pattern: str, strict_duplicates: bool = False
) -> Loaded:
    loaded_sheet = read_sheet(path, sheet=sheet)
    validation = validate(loaded_sheet, mobile_pattern, strict_duplicates=strict_duplicates)
    return Loaded(loaded_sheet, validation)
