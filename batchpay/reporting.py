"""Read-side views of the journal: batch summaries for ``status`` and the result file rebuilt
for ``report``, both from the journal alone (the input file is not needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .journal import Journal
from .outcomes import Outcome
from .results import ResultRow, summary_rows, write_results
from .sheet import Sheet, canonical_columns


def summaries(journal: Journal, batch_id: str | None = None) -> list[dict[str, Any]]:
    """Per batch: rows, counts and amounts per outcome, created and last updated."""
    where, args = ("WHERE r.batch_id = ?", (batch_id,)) if batch_id else ("", ())
    cursor = journal.db.execute(
        "SELECT r.batch_id, b.source, b.created_at, "
        "CASE WHEN r.outcome = 'pending' AND r.in_flight THEN 'unknown' ELSE r.outcome END, "
        "count(*), sum(r.amount), max(r.updated_at), sum(r.flag != '') "
        f"FROM rows r JOIN batches b USING (batch_id) {where} "
        "GROUP BY r.batch_id, 4 ORDER BY b.created_at, r.batch_id",
        args,
    )
    batches: dict[str, dict[str, Any]] = {}
    order = [o.value for o in Outcome]
    for batch, source, created, outcome, count, amount, updated, flagged in cursor:
        entry = batches.setdefault(
            batch,
            {"batch": batch, "source": source, "created_at": created, "updated_at": updated,
             "rows": 0, "counts": {}, "amounts": {}, "flagged": 0},
        )  # fmt: skip
        entry["rows"] += count
        entry["counts"][outcome] = count
        entry["amounts"][outcome] = amount
        entry["updated_at"] = max(entry["updated_at"], updated)
        entry["flagged"] += flagged
    for entry in batches.values():
        entry["counts"] = {k: entry["counts"][k] for k in order if k in entry["counts"]}
        entry["amounts"] = {k: entry["amounts"][k] for k in order if k in entry["amounts"]}
    return list(batches.values())


def require_batch(journal: Journal, batch_id: str) -> None:
    found = journal.db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
    if found is None:
        raise InputError(
            f"no batch {batch_id!r} in the journal {journal.path}; `batchpay status` lists them"
        )


def write_report(journal: Journal, batch_id: str, output: Path) -> dict[str, Any]:
    """Rewrite the batch's result file from the journal, with the latest states."""
    require_batch(journal, batch_id)
    source, headers_json, digest = journal.db.execute(
        "SELECT source, headers, content_hash FROM batches WHERE batch_id = ?", (batch_id,)
    ).fetchone()
    headers: list[str] = json.loads(headers_json)
    cursor = journal.db.execute(
        "SELECT cells, errors FROM rows WHERE batch_id = ? ORDER BY position", (batch_id,)
    )
    stored = [(json.loads(cells), errors) for cells, errors in cursor]
    rows = journal.rows(batch_id, fields=False)
    width = len(headers)
    frame = pd.DataFrame([(cells + [""] * width)[:width] for cells, _ in stored], dtype=object)
    sheet = Sheet(
        path=Path(source), sheet_name=None, headers=headers, frame=frame,
        row_numbers=np.asarray([r.sheet_row for r in rows]),
        columns=canonical_columns(headers, source),
    )  # fmt: skip
    results = [
        ResultRow(None if row.outcome is Outcome.INVALID else row, errors)
        for row, (_, errors) in zip(rows, stored, strict=True)
    ]
    [summary] = summaries(journal, batch_id)
    # The journal does not record (yet) which gateway account a batch went to, nor whether it
    # was a sandbox's: the Summary says so rather than guess.
    table = summary_rows(batch_id, source, journal.path, summary["counts"], summary["amounts"],
                         content_hash=digest)  # fmt: skip
    write_results(output, sheet, results, table)
    return summary
