"""The commands around a run: status, report, reconcile, listen, sandbox, template."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config import (
    SANDBOX_MERCHANT_NO,
    SANDBOX_NOTIFY_URL,
    SendOptions,
    default_journal_path,
    gateway_from_env,
    journal_path,
    mobile_pattern,
    practice_journal_path,
    protocol_from_env,
    read_secret,
    secret_file_warnings,
)
from ..errors import ConfigError
from ..outcomes import exit_code

if TYPE_CHECKING:  # each command imports what it needs: --version and completion start fast
    from ..journal.store import Journal


@dataclass
class Root:
    """What the top-level group decided, kept as click's context object: the one place the
    command line's settings are read (the process environment included, read once)."""

    environ: Mapping[str, str]  # the process environment
    env: Mapping[str, str]  # BATCHPAY_* settings: the environment over the configuration file
    from_file: Mapping[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    profile: str | None = None
    quiet: bool = False
    verbose: int = 0
    log_file: Path | None = None
    log_format: str = "text"


def root_options() -> Root:
    """The top-level group's decisions, for the command running now."""
    root = click.get_current_context().find_object(Root)
    if root is None:  # a command is only ever run under the group, which sets it
        raise RuntimeError("batchpay's commands run under the batchpay group")
    return root


def settings() -> Mapping[str, str]:
    """BATCHPAY_* settings: the environment over the configuration file (options apply on
    top, in each command)."""
    return root_options().env


def warn_about_secret_file(env: Mapping[str, str]) -> list[str]:
    """Print the secret file's permission warnings on stderr (not under -q); returns them."""
    warnings = secret_file_warnings(env)
    if not root_options().quiet:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    return warnings


def journal_option(func: Any) -> Any:
    return click.option(
        "--journal", "journal_option", metavar="PATH",
        help="The SQLite journal (default: $BATCHPAY_JOURNAL, else the user data directory).",
    )(func)  # fmt: skip


def open_journal(option: str | None) -> Journal:
    from ..journal.store import Journal

    path = journal_path(option, settings(), sandbox=False)
    if not path.exists():
        raise click.ClickException(f"no journal at {path}: nothing has been run with it yet")
    return Journal(path)


def network_options(func: Any) -> Any:
    """The options of every command that talks to the gateway (run, reconcile)."""
    options = [
        click.option("--concurrency", type=click.IntRange(1, 1024), default=8,
                     show_default=True, help="Requests in flight at once."),
        click.option("--rate", type=click.FloatRange(min=0, min_open=True),
                     help="At most R requests a second."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
                     show_default=True, help="Seconds per attempt."),
        click.option("--max-attempts", type=click.IntRange(1, 100), default=5,
                     show_default=True, help="Attempts per row for retryable answers."),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     envvar="BATCHPAY_CA_BUNDLE",
                     help="Extra CA certificates (PEM) to trust. TLS verification cannot be "
                     "turned off."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


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

    Placed orders become processing, paid or failed; only the gateway's "no such order"
    (not_found_codes) makes a row pending, for the next run to send; any other answer leaves
    it unknown. A tradeNo a spreadsheet damaged is refused, never guessed.

    Exit code 0 when every row is processing or paid, 3 when some are failed, rejected or
    unknown, 4 when some are pending (run the input again to send them).

    \b
    Example:
        batchpay recover payroll.result.xlsx
    """
    from ..journal.store import Journal
    from ..recover import check_evidence, read_result_file, rebuild, recover

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


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; keep loopback behind your HTTPS reverse proxy.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--path",
    "route",
    default="/notify",
    show_default=True,
    help="Path the callbacks are posted to (as in BATCHPAY_NOTIFY_URL).",
)
@journal_option
def listen(host: str, port: int, route: str, journal_option: str | None) -> None:
    """Receive the gateway's status callbacks and record them in the journal, until Ctrl-C.

    Each callback's signature is checked over the fields as received, then every field's
    shape (a captured callback with a moved field boundary keeps a valid signature). A bad
    body or signature gets a 4xx and changes nothing; a signed callback that fails a shape
    rule or names an unknown tradeNo gets a 4xx, changes nothing and is quarantined for
    `batchpay status` to show. GET /health answers {"status": "ok"}. Run it behind your HTTPS
    reverse proxy; BATCHPAY_NOTIFY_URL is its public address.

    \b
    Example:
        batchpay listen --port 8080 --path /vexora/notify
    """
    from aiohttp import web

    from ..gateway.callbacks import callback_app, server_options

    env = settings()
    secret = read_secret(env)
    warn_about_secret_file(env)
    path = journal_path(journal_option, env, sandbox=False)
    click.echo(f"listening on http://{host}:{port}{route} (journal {path}); Ctrl-C stops")
    quiet = root_options().quiet

    def show(effect: Any) -> None:  # one line per callback: tradeNo, status, what was done
        if not quiet:
            click.echo(effect.line())

    app = callback_app(path, secret, protocol_from_env(env), route, on_effect=show)
    web.run_app(app, host=host, port=port, print=None, **server_options())


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Default: a free port.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=RATE",
    help="Inject a fault into a share of first payout requests: 429, 503 (not placed), "
    "hang, reset, garbage, 500 (placed, then no proper answer), bad_sign (signature "
    "error), refuse (1004, not placed), e.g. --fault 503=0.1.",
)
@click.option("--query-fault", "query_faults", multiple=True, metavar="KIND=RATE",
              help="The same kinds on a share of first status queries (a query places nothing), "
              "e.g. --query-fault 503=0.3 --query-fault garbage=0.1.")  # fmt: skip
@click.option(
    "--latency", type=click.FloatRange(min=0), default=0.0, help="Seconds added to every answer."
)
@click.option(
    "--jitter", type=click.FloatRange(min=0), default=0.0, help="Up to this many seconds more."
)
@click.option(
    "--retry-after", type=click.FloatRange(min=0), default=0.0, help="Retry-After of 429 and 503."
)
@click.option(
    "--hang-seconds", type=click.FloatRange(min=0), default=3600.0, help="How long 'hang' hangs."
)
@click.option("--every-request", is_flag=True, help="Faults on every request, not only first ones.")
@click.option(
    "--settle-after",
    type=click.FloatRange(min=0),
    help="Orders become paid or failed after this many seconds (default: stay processing).",
)
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, help="Share that fail.")
@click.option(
    "--callback-repeats",
    type=click.IntRange(1, 10),
    default=1,
    show_default=True,
    help="Post each final callback this many times (the real gateway repeats them).",
)
@click.option("--out-of-order", is_flag=True, help="Follow each final callback by a stale one.")
@click.option("--no-callbacks", is_flag=True, help="Settle orders without posting callbacks.")
@click.option("--seed", type=int, help="Seed for the faults' randomness.")
def sandbox_command(
    host: str,
    port: int,
    faults: tuple[str, ...],
    query_faults: tuple[str, ...],
    latency: float,
    jitter: float,
    retry_after: float,
    hang_seconds: float,
    every_request: bool,
    settle_after: float | None,
    fail_rate: float,
    callback_repeats: int,
    out_of_order: bool,
    no_callbacks: bool,
    seed: int | None,
) -> None:
    """Run the simulated Vexora gateway until Ctrl-C, and print the settings that use it.

    It takes BATCHPAY_SECRET or BATCHPAY_SECRET_FILE when set; otherwise it makes a secret and
    keeps it in a file readable by you only, whose path it prints.

    Faults: --fault applies to payout requests, --query-fault to status queries; each hits a
    tradeNo's first request of that kind (every request with --every-request).

    \b
    Example:
        batchpay sandbox --port 8099 --fault 503=0.1
        batchpay sandbox --fault hang=0.05 --query-fault 503=0.3 --hang-seconds 5
    """
    import asyncio

    from ..sandbox.server import FAULT_KINDS, Faults, SandboxGateway, SandboxServer, Settlement

    rates = _fault_rates(faults, "--fault")
    query_rates = _fault_rates(query_faults, "--query-fault")
    try:
        fault_plan = Faults(
            rates=rates, query_rates=query_rates, latency=latency, jitter=jitter,
            retry_after=retry_after, hang_seconds=hang_seconds, every_request=every_request,
            seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        hint = "--fault" if set(rates) - set(FAULT_KINDS) else "--query-fault"
        raise click.BadParameter(str(exc), param_hint=hint) from None
    env = settings()
    merchant = env.get("BATCHPAY_MERCHANT_NO") or SANDBOX_MERCHANT_NO
    secret_file = _sandbox_secret_file(env)
    secret = env.get("BATCHPAY_SECRET") or secret_file.read_text(encoding="utf-8").strip()
    settlement = None
    if settle_after is not None:
        settlement = Settlement(
            delay=settle_after, fail_rate=fail_rate, notify=not no_callbacks,
            repeats=callback_repeats, out_of_order=out_of_order, seed=seed,
        )  # fmt: skip
    gateway = SandboxGateway(
        merchant, secret, faults=fault_plan, mobile_pattern=mobile_pattern(env),
        settlement=settlement, announce=True,
    )  # fmt: skip
    server = SandboxServer(gateway, host=host, port=port)

    async def serve() -> None:
        await server.start()
        click.echo(f"sandbox gateway on {server.base_url} (Ctrl-C stops it). Use it with:")
        click.echo(f"  export BATCHPAY_URL={server.payout_url}")
        click.echo(f"  export BATCHPAY_QUERY_URL={server.query_url}")
        click.echo(f"  export BATCHPAY_MERCHANT_NO={merchant}")
        if not env.get("BATCHPAY_SECRET"):
            click.echo(f"  export BATCHPAY_SECRET_FILE={secret_file}")
        click.echo(f"  export BATCHPAY_NOTIFY_URL={SANDBOX_NOTIFY_URL}")
        # Practice keeps to a journal of its own: the real journal never holds a sandbox's
        # batches (they would be refused there as another account's, but need not be).
        click.echo(f"  export BATCHPAY_JOURNAL={practice_journal_path()}")
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        click.echo("sandbox stopped", err=True)


def _fault_rates(items: tuple[str, ...], option: str) -> dict[str, float]:
    """``KIND=RATE`` options as a dict (a bare KIND means always)."""
    rates = {}
    for item in items:
        kind, _, value = item.partition("=")
        try:
            rates[kind] = float(value or "1")
        except ValueError:
            raise click.BadParameter(f"{item!r} is not KIND=RATE", param_hint=option) from None
        if not 0 <= rates[kind] <= 1:
            raise click.BadParameter(f"{item!r}: RATE is between 0 and 1", param_hint=option)
    return rates


def _sandbox_secret_file(env: Mapping[str, str]) -> Path:
    if env.get("BATCHPAY_SECRET_FILE"):
        return Path(env["BATCHPAY_SECRET_FILE"]).expanduser()
    path = default_journal_path(sandbox=True).with_name("sandbox-secret")
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(secrets.token_hex(16))
    return path


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def template(path: Path, force: bool) -> None:
    """Write an empty beneficiaries template: .xlsx (Text-formatted columns, data validation,
    an Instructions sheet) or .csv (the header row).

    \b
    Example:
        batchpay template november-payroll.xlsx
    """
    from ..sheets.template import write_template

    write_template(path, force=force)
    click.echo(f"wrote {path}")
