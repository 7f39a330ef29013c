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
from .gateway.callbacks import QUARANTINED
from .journal.store import Journal
from .outcomes import Outcome
from .result_target import check_output_path, refuse_replacing
from .results import ResultRow, summary_rows, write_results
from .sheets.read import Sheet, canonical_columns
from .team.sending import people_rows


def summaries(journal: Journal, batch_id: str | None = None) -> list[dict[str, Any]]:
    """Per batch: rows, counts and amounts per outcome, created and last updated."""
    batches: dict[str, dict[str, Any]] = {}
    order = [o.value for o in Outcome]
    for total in journal.outcome_totals(batch_id):
        entry = batches.setdefault(
            total.batch_id,
            {"batch": total.batch_id, "source": total.source, "created_at": total.created_at,
             "updated_at": total.updated_at, "account": total.account, "rows": 0, "counts": {},
             "amounts": {}, "flagged": 0},
        )  # fmt: skip
        entry["rows"] += total.count
        entry["counts"][total.outcome] = total.count
        entry["amounts"][total.outcome] = total.amount
        entry["updated_at"] = max(entry["updated_at"], total.updated_at)
        entry["flagged"] += total.flagged
    lives = journal.lives()  # the batch's life (team controls): draft when never submitted
    for entry in batches.values():
        life = lives.get(entry["batch"])
        entry["state"] = life.state if life is not None else "draft"
        entry["counts"] = {k: entry["counts"][k] for k in order if k in entry["counts"]}
        entry["amounts"] = {k: entry["amounts"][k] for k in order if k in entry["amounts"]}
    return list(batches.values())


QUARANTINE_SHOWN = 10


def quarantined_callbacks(journal: Journal, batch_id: str | None = None) -> dict[str, Any]:
    """Signed callbacks the receiver refused to apply (a moved field boundary, a stale
    timestamp, an unknown tradeNo, ...): how many (in one batch, or in the whole journal,
    tradeNos no batch knows included), and the latest few with their fields (never ``sign``)."""
    count, records = journal.quarantined_callbacks(batch_id, QUARANTINE_SHOWN)
    latest = [
        {"received_at": r.received_at, "tradeNo": r.trade_no, "status": r.status,
         "reason": r.effect.removeprefix(QUARANTINED), "fields": json.loads(r.fields)}
        for r in records
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
    planned = journal.report_source(batch_id)
    source, headers, digest, stored = (
        planned.source,
        planned.headers,
        planned.content_hash,
        planned.stored,
    )
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
                         account=account, sandbox=sandbox, content_hash=digest,
                         people=people_rows(journal, batch_id))  # fmt: skip
    write_results(output, sheet, results, table, sandbox=sandbox)
    return summary
