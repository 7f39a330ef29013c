"""Read-side views of the journal: batch summaries for ``status`` and the result file rebuilt
for ``report``, both from the journal alone (the input file is not needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import IN_PROCESS
from .errors import InputError
from .journal import Journal
from .outcomes import Outcome
from .result_target import check_output_path, refuse_replacing
from .results import ResultRow, summary_rows, write_results
from .sheets.read import Sheet, canonical_columns


def summaries(journal: Journal, batch_id: str | None = None) -> list[dict[str, Any]]:
    """Per batch: rows, counts and amounts per outcome, created and last updated."""
    where, args = ("WHERE r.batch_id = ?", (batch_id,)) if batch_id else ("", ())
    with journal.errors():
        return _summaries(journal, where, args)


def _summaries(journal: Journal, where: str, args: tuple[str, ...]) -> list[dict[str, Any]]:
    cursor = journal.db.execute(
        "SELECT r.batch_id, b.source, b.created_at, COALESCE(b.account, ''), "
        "CASE WHEN r.outcome = 'pending' AND r.in_flight THEN 'unknown' ELSE r.outcome END, "
        "count(*), sum(r.amount), max(r.updated_at), sum(r.flag != '') "
        f"FROM rows r JOIN batches b USING (batch_id) {where} "
        "GROUP BY r.batch_id, 5 ORDER BY b.created_at, r.batch_id",
        args,
    )
    batches: dict[str, dict[str, Any]] = {}
    order = [o.value for o in Outcome]
    for batch, source, created, account, outcome, count, amount, updated, flagged in cursor:
        entry = batches.setdefault(
            batch,
            {"batch": batch, "source": source, "created_at": created, "updated_at": updated,
             "account": account, "rows": 0, "counts": {}, "amounts": {}, "flagged": 0},
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


QUARANTINE_SHOWN = 10


def quarantined_callbacks(journal: Journal, batch_id: str | None = None) -> dict[str, Any]:
    """Signed callbacks the receiver refused to apply (a moved field boundary, a stale
    timestamp, an unknown tradeNo, ...): how many (in one batch, or in the whole journal,
    tradeNos no batch knows included), and the latest few with their fields (never ``sign``)."""
    where = "WHERE c.effect LIKE 'quarantined:%'"
    args: tuple[str, ...] = ()
    if batch_id:
        where += " AND c.trade_no IN (SELECT trade_no FROM rows WHERE batch_id = ?)"
        args = (batch_id,)
    [count] = journal.db.execute(f"SELECT count(*) FROM callbacks c {where}", args).fetchone()
    latest = [
        {"received_at": received, "tradeNo": trade_no, "status": status,
         "reason": effect.removeprefix("quarantined: "), "fields": json.loads(fields)}
        for received, trade_no, status, effect, fields in journal.db.execute(
            "SELECT c.received_at, c.trade_no, c.status, c.effect, c.fields FROM callbacks c "
            f"{where} ORDER BY c.id DESC LIMIT {QUARANTINE_SHOWN}",
            args,
        )
    ]  # fmt: skip
    return {"count": count, "latest": latest}


def require_batch(journal: Journal, given: str) -> str:
    """The batch id that ``given`` names: the whole id, or a prefix of exactly one."""
    found = journal.batch_ids(given)
    if given in found:
        return given
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(
            f"no batch {given!r} in the journal {journal.path}; `batchpay status` lists them"
        )
    shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
    raise InputError(f"{given!r} names {len(found)} batches ({shown}): give more of the id")


def write_report(journal: Journal, batch_id: str, output: Path) -> dict[str, Any]:
    """Rewrite the batch's result file from the journal, with the latest states. A file at
    ``output`` that is not this batch's result is refused (see ``result_target``)."""
    check_output_path(output)
    batch_id = require_batch(journal, batch_id)
    with journal.errors():
        source, headers_json, digest = journal.db.execute(
            "SELECT source, headers, content_hash FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        headers: list[str] = json.loads(headers_json)
        cursor = journal.db.execute(
            "SELECT cells, errors FROM rows WHERE batch_id = ? ORDER BY position", (batch_id,)
        )
        stored = [(json.loads(cells), errors) for cells, errors in cursor]
    rows = journal.rows(batch_id, fields=False)
    refuse_replacing(output, batch_id, {r.trade_no for r in rows if r.trade_no}, journal)
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
    account = summary["account"]
    # A batch of the in-process sandbox has its account (config.in_process_account).
    sandbox = IN_PROCESS in account or journal.sandbox_account(account)
    table = summary_rows(batch_id, source, journal.path, summary["counts"], summary["amounts"],
                         account=account, sandbox=sandbox, content_hash=digest)  # fmt: skip
    write_results(output, sheet, results, table, sandbox=sandbox)
    return summary
