"""The commands about batches already planned: status, report, reconcile, recover."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from ..config import (
    SendOptions,
    gateway_from_env,
    journal_path,
    mobile_pattern,
)
from ..errors import ConfigError
from ..outcomes import exit_code
from .options import (
    journal_option,
    network_options,
    open_journal,
    settings,
    warn_about_secret_file,
)

QUARANTINE_HEADING = (
    "{count} quarantined callback(s): correctly signed but refused, no row changed "
    "(a moved field boundary, a stale timestamp or an unknown tradeNo; `status --json` shows "
    "their fields). Latest:"
)


@click.command()
@click.argument("batch", required=False)
@journal_option
@click.option("--json", "as_json", is_flag=True, help="Print the batches as one JSON object.")
def status(batch: str | None, journal_option: str | None, as_json: bool) -> None:
    """List the journal's batches, or one BATCH, with counts and amounts per outcome.

    \b
    Example:
        batchpay status
        batchpay status 3f2a9c81d07e --json
    """
    from ..reporting import quarantined_callbacks, require_batch, summaries

    with open_journal(journal_option) as journal:
        if batch:
            batch = require_batch(journal, batch)
        found = summaries(journal, batch)
        quarantined = quarantined_callbacks(journal, batch)
    if as_json:
        click.echo(json.dumps({"batches": found, "quarantined": quarantined},
                              ensure_ascii=False))  # fmt: skip
        return
    if not found:
        click.echo("no batches in the journal")
    for entry in found:
        flagged = f", {entry['flagged']} flagged" if entry["flagged"] else ""
        click.echo(
            f"batch {entry['batch']}  {entry['source']}  {entry['rows']} rows{flagged}  "
            f"created {entry['created_at']}  updated {entry['updated_at']}"
        )
        click.echo(f"  account {entry['account'] or '(not recorded: before release 0.2)'}")
        click.echo(f"  state {entry['state']}")
        for outcome, count in entry["counts"].items():
            click.echo(f"  {outcome:<11} {count:>7}  {entry['amounts'][outcome]:>15,}")
    if quarantined["count"]:
        click.echo(QUARANTINE_HEADING.format(count=quarantined["count"]))
        for record in quarantined["latest"]:
            click.echo(
                f"  {record['received_at']}  tradeNo {record['tradeNo'] or '-'}  {record['reason']}"
            )


@click.command()
@click.argument("batch")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Result file to write (.xlsx or .csv).")  # fmt: skip
@journal_option
def report(batch: str, output: Path, journal_option: str | None) -> None:
    """Rewrite BATCH's result file from the journal, with the latest statuses.

    \b
    Example:
        batchpay report 3f2a9c81d07e -o payroll.result.xlsx
    """
    from ..reporting import write_report

    with open_journal(journal_option) as journal:
        summary = write_report(journal, batch, output)
    counts = ", ".join(f"{count} {outcome}" for outcome, count in summary["counts"].items())
    click.echo(f"wrote {output}: {counts}")


@click.command("reconcile")
@click.argument("batch", required=False)
@journal_option
@network_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def reconcile_command(
    batch: str | None, journal_option: str | None, concurrency: int, rate: float | None,
    timeout: float, max_attempts: int, ca_bundle: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Ask the status query about rows that are processing or unknown (in BATCH, or in every
    batch) and record the answers. Needs BATCHPAY_QUERY_URL.

    Exit code 0 when every row asked about is processing or paid, 3 otherwise.

    \b
    Example:
        batchpay reconcile 3f2a9c81d07e
    """
    import asyncio
    import contextlib

    from ..errors import JournalError
    from ..gateway.reconcile import NEEDS_RECONCILE, reconcile
    from ..journal.locks import batch_lock
    from ..reporting import require_batch, summaries

    config = gateway_from_env(settings(), need=("BATCHPAY_QUERY_URL",))
    warn_about_secret_file(settings())
    options = SendOptions(concurrency=concurrency, rate=rate, timeout=timeout,
                          max_attempts=max_attempts, ca_bundle=ca_bundle)  # fmt: skip
    with open_journal(journal_option) as journal, contextlib.ExitStack() as locks:
        if batch:
            batch = require_batch(journal, batch)
        # Only this gateway account's batches: another account's tradeNos mean nothing here,
        # and its "order not found" would make their rows look safe to send again.
        listed = summaries(journal, batch)
        batches = [s["batch"] for s in listed if s["account"] == config.account]
        others = [s for s in listed if s["account"] != config.account]
        if others and batch:
            owner = others[0]["account"] or "(not recorded)"
            raise click.ClickException(
                f"batch {batch} belongs to the gateway account {owner}, not {config.account}: "
                "ask that gateway about it"
            )
        if others:
            click.echo(f"{len(others)} batch(es) of other gateway accounts are not asked about "
                       f"(this is {config.account})", err=True)  # fmt: skip
        # A batch a run is sending right now is left to it: its claimed rows read unknown,
        # and an answer recorded here would clear a claim the run still stands on.
        free = []
        for candidate in batches:
            try:
                locks.enter_context(batch_lock(journal.path, candidate))
            except JournalError:
                click.echo(f"batch {candidate} is being sent right now: not asked about",
                           err=True)  # fmt: skip
            else:
                free.append(candidate)
        batches = free
        rows = [row for b in batches for row in journal.rows(b) if row.outcome in NEEDS_RECONCILE]
        result = asyncio.run(reconcile(config, options, journal, rows))
        asked = {row.trade_no for row in rows}
        latest = [row for b in batches for row in journal.rows(b) if row.trade_no in asked]
        found = [s for b in batches for s in summaries(journal, b)]
    code = 4 if result.stop_reason else exit_code(row.outcome for row in latest)
    if as_json:
        click.echo(json.dumps({"queried": result.queried, "requests": result.requests,
                               "stop_reason": result.stop_reason, "batches": found,
                               "exit_code": code}, ensure_ascii=False))  # fmt: skip
    else:
        click.echo(f"asked about {result.queried} row(s) in {len(batches)} batch(es)")
        for entry in found:
            counts = ", ".join(f"{n} {o}" for o, n in entry["counts"].items())
            click.echo(f"  batch {entry['batch']}: {counts}")
        if result.stop_reason:
            click.echo(f"stopped: {result.stop_reason}")
    sys.exit(code)


RECOVER_NEEDS_QUERY = (
    "recover needs BATCHPAY_QUERY_URL (file key query_url): only the gateway's status query "
    "can say which of the file's rows were placed"
)


@click.command("recover")
@click.argument("result_file", type=click.Path(dir_okay=False, path_type=Path))
@journal_option
@network_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def recover_command(
    result_file: Path, journal_option: str | None, concurrency: int, rate: float | None,
    timeout: float, max_attempts: int, ca_bundle: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Rebuild a batch whose journal was lost from its RESULT_FILE (.xlsx or .csv, as batchpay
    wrote it), then ask the status query about every tradeNo in it. Needs BATCHPAY_QUERY_URL.

    Placed orders become processing, paid, failed or partial; only the gateway's "no such order"
    (not_found_codes) makes a row pending, for the next run to send; any other answer leaves
    it unknown. A tradeNo a spreadsheet damaged is refused, never guessed.

    Exit code 0 when every row is processing or paid, 3 when some are failed, partial,
    rejected or unknown, 4 when some are pending (run the input again to send them).

    \b
    Example:
        batchpay recover payroll.result.xlsx
    """
    from ..journal.store import Journal
    from ..rebuild import rebuild
    from ..recover import check_evidence, recover
    from ..result_file import read_result_file
    from ..team.audit import Action, os_actor, record

    env = settings()
    if not env.get("BATCHPAY_QUERY_URL"):
        raise ConfigError(RECOVER_NEEDS_QUERY)
    config = gateway_from_env(env, need=("BATCHPAY_URL", "BATCHPAY_QUERY_URL"))
    options = SendOptions(concurrency=concurrency, rate=rate, timeout=timeout,
                          max_attempts=max_attempts, ca_bundle=ca_bundle)  # fmt: skip
    result = read_result_file(result_file)
    check_evidence(result, config.account)
    rebuilt = rebuild(result, mobile_pattern(env))
    with Journal(journal_path(journal_option, env, sandbox=False)) as journal:
        done = recover(config, options, journal, rebuilt)
        path = journal.path
        # A batch written into the journal from a file: on the record, like any money option.
        record(journal, os_actor(), Action.RECOVER, done.batch_id, result_file=str(result_file),
               rows=done.rows, counts=done.counts)  # fmt: skip
    if as_json:
        click.echo(json.dumps({"result_file": str(result_file), "journal": str(path),
                               **done.as_json()}, ensure_ascii=False))  # fmt: skip
        sys.exit(done.exit_code)
    for note in done.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"rebuilt batch {done.batch_id} ({done.rows} rows) in {path} from {result_file}; "
        f"asked the gateway about {done.queried} tradeNo(s) in {done.requests} request(s)"
    )
    for outcome, count in done.counts.items():
        click.echo(f"  {outcome:<11} {count:>7}")
    if done.stop_reason:
        click.echo(f"stopped: {done.stop_reason}; `batchpay reconcile {done.batch_id}` asks again")
    click.echo(f"next: {recover_next_step(done.counts, done.batch_id, done.source)}")
    sys.exit(done.exit_code)


def recover_next_step(counts: Mapping[str, int], batch_id: str, source: str) -> str:
    if counts.get("unknown"):
        return (
            f"{counts['unknown']} row(s) are unknown (no definite answer): do not pay them by "
            f"hand; `batchpay reconcile {batch_id}` asks again, and a run asks before sending"
        )
    if counts.get("pending"):
        named = f" ({source})" if source else ""
        return (
            f"run the original input{named} again: it resumes batch {batch_id} and sends only "
            f"the {counts['pending']} row(s) the gateway never received"
        )
    return f"nothing left to send; `batchpay status {batch_id}` shows the batch"
