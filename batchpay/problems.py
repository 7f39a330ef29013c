"""What a person reads about a file's problems: on screen, one line each (grouped by column and
kind when there are many), and in full, one entry per cell, in a report spreadsheet or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .sheets.damage import GROUP_TEXT, WARNING
from .sheets.validate import Problem, Validation
from .sheets.write import Table, write_tables

SHOWN_IN_FULL = 20  # up to this many problems are listed one by one
FIRST_OF_EACH = 3  # beyond that, one line per kind of problem names its first rows
VALUE_SHOWN = 24  # characters of a value shown in a grouped line

FULL_LIST = (
    "{where}: the full list, one entry per cell: batchpay validate {path} --report FILE (or --json)"
)


def _shown(value: str) -> str:
    return repr(value if len(value) <= VALUE_SHOWN else value[: VALUE_SHOWN - 1] + "…")


def everything(validation: Validation) -> list[Problem]:
    """Errors and warnings in the order a reader meets them."""
    return sorted([*validation.problems, *validation.warnings], key=lambda p: p.row)


def grouped_line(where: str, members: Sequence[Problem]) -> str:
    """One line for many cells with the same kind of problem in one column."""
    first = members[0]
    severity = "warning" if first.severity == WARNING else "error"
    # One cell: its own rule; many: what they share (the advice fits many cells).
    text = GROUP_TEXT.get(first.kind, first.rule) if len(members) > 1 else first.rule
    shown = ", ".join(f"row {p.row} {_shown(p.value)}" for p in members[:FIRST_OF_EACH])
    more = f" ... and {len(members) - FIRST_OF_EACH} more" if len(members) > FIRST_OF_EACH else ""
    return (
        f"{where}: {len(members)} row(s), column {first.column!r} ({severity}): {text}: "
        f"{shown}{more}"
    )


def problem_lines(where: str, path: Path, validation: Validation) -> list[str]:
    """Notes about the file, then the errors and warnings, one line each: every one when there
    are few; one line per column and kind of problem, with its first rows, when there are
    many (a 300-row workbook whose accounts and mobiles became numbers reads in four lines)."""
    problems = everything(validation)
    lines = list(validation.notes)
    if len(problems) <= SHOWN_IN_FULL:
        return lines + [f"{where}: {p.describe()}" for p in problems]
    groups: dict[tuple[str, str, str], list[Problem]] = {}
    for problem in problems:
        key = (problem.severity, problem.column, problem.kind)
        groups.setdefault(key, []).append(problem)
    lines += [grouped_line(where, members) for members in groups.values()]
    lines.append(FULL_LIST.format(where=where, path=path))
    return lines


def write_report(path: Path, validation: Validation) -> None:
    """The full problem list as a spreadsheet (.xlsx or .csv): one row per cell."""
    rows = [["", "", "", "note", note] for note in validation.notes]
    rows += [[str(p.row), p.column, p.value, p.severity, p.rule] for p in everything(validation)]
    header = ["row", "column", "value", "severity", "problem"]
    write_tables(path, [Table("Problems", header, iter(rows))])


def as_json(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """Every problem, one entry per cell, for --json."""
    return [
        {"row": p.row, "column": p.column, "value": p.value, "problem": p.rule,
         "severity": p.severity, "kind": p.kind}
        for p in problems
    ]  # fmt: skip
