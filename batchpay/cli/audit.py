"""``batchpay audit``: the audit trail, all of it or one batch's, and ``--verify``, which
recomputes the hash chain. Both end with the head (the latest row's number and hash): keep
a copy of it, and a later rewrite of the trail, or a cut-off tail, no longer matches."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from ..errors import AuditChainError
from .options import journal_option, open_journal

BROKEN = "audit row #{id} does not fit the chain: {reason}"


@click.command("audit")
@click.argument("batch", required=False)
@journal_option
@click.option("--json", "as_json", is_flag=True, help="Print the rows as one JSON object.")
@click.option(
    "--verify", is_flag=True,
    help="Recompute the whole hash chain: exit 1 naming the first row that does not fit.",
)  # fmt: skip
def audit_command(
    batch: str | None, journal_option: str | None, as_json: bool, verify: bool
) -> None:
    """List the audit trail (every row, or BATCH's: an unambiguous prefix of its id), each
    row with who did what and when, and the head: the latest row's number and hash.

    --verify recomputes the chain over every row (whatever BATCH says) and exits 1 naming the
    first row that was edited, deleted or moved. The chain has no key: whoever can write the
    journal can recompute it all, so compare the head with a copy kept elsewhere (a result
    file's Summary, a log, an earlier `audit --verify`).

    \b
    Example:
        batchpay audit --verify
        batchpay audit 3f2a9c81d07e --json
    """
    from ..team.audit import audit_head, batch_rows, head_text
    from ..team.audit import verify as verify_chain

    with open_journal(journal_option) as journal:
        rows = batch_rows(journal, batch)
        checked = verify_chain(journal) if verify else None
        head = checked.head if checked else audit_head(journal)
    broken = None
    if checked is not None and not checked.ok:
        broken = BROKEN.format(id=checked.broken_id, reason=checked.reason)
    if as_json:
        found: dict[str, object] = {
            "rows": [{**asdict(row), "details": json.loads(row.details)} for row in rows],
            "head": None if head is None else {"id": head[0], "hash": f"sha256:{head[1]}"},
        }
        if checked is not None:
            found["verified"] = checked.ok
            found["broken"] = None if checked.ok else {"id": checked.broken_id,
                                                       "reason": checked.reason}  # fmt: skip
        click.echo(json.dumps(found, ensure_ascii=False))
    else:
        if not rows:
            click.echo(f"no audit rows{f' for batch {batch}' if batch else ''}")
        for row in rows:
            who = f"{row.actor} ({row.actor_kind})"
            click.echo(f"#{row.id:<5} {row.at}  {who:<28} {row.action:<16} {row.batch or '-'}  "
                       f"{row.details}")  # fmt: skip
        if checked is not None and checked.ok:
            click.echo(f"audit trail verified: {checked.rows} row(s), each fits the chain")
        click.echo(head_text(head))
    if broken is not None:
        raise AuditChainError(broken)
