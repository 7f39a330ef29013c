"""The commands around a run: status, report, reconcile, listen, sandbox, template."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .callbacks import callback_app
from .config import (
    SANDBOX_MERCHANT_NO,
    SendOptions,
    default_journal_path,
    gateway_from_env,
    journal_path,
    mobile_pattern,
    protocol_from_env,
    read_secret,
)
from .journal import Journal
from .outcomes import exit_code
from .reconcile import NEEDS_RECONCILE, reconcile
from .reporting import require_batch, summaries, write_report
from .sending import SANDBOX_NOTIFY_URL
from .template import write_template


def root_options() -> dict[str, Any]:
    """What the top-level group decided (quiet, configuration file, settings)."""
    context = click.get_current_context(silent=True)
    obj = context.find_root().obj if context is not None else None
    return obj if isinstance(obj, dict) else {}


def settings() -> Mapping[str, str]:
    """BATCHPAY_* settings: the environment over the configuration file (options apply on
    top, in each command)."""
    found: Mapping[str, str] = root_options().get("env", os.environ)
    return found


def journal_option(func: Any) -> Any:
    return click.option(
        "--journal", "journal_option", metavar="PATH",
        help="The SQLite journal (default: $BATCHPAY_JOURNAL, else the user data directory).",
    )(func)  # fmt: skip


def open_journal(option: str | None) -> Journal:
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
    with open_journal(journal_option) as journal:
        if batch:
            require_batch(journal, batch)
        found = summaries(journal, batch)
    if as_json:
        click.echo(json.dumps({"batches": found}, ensure_ascii=False))
        return
    if not found:
        click.echo("no batches in the journal")
    for entry in found:
        flagged = f", {entry['flagged']} flagged" if entry["flagged"] else ""
        click.echo(
            f"batch {entry['batch']}  {entry['source']}  {entry['rows']} rows{flagged}  "
            f"created {entry['created_at']}  updated {entry['updated_at']}"
        )
        for outcome, count in entry["counts"].items():
            click.echo(f"  {outcome:<11} {count:>7}  {entry['amounts'][outcome]:>15,}")


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
    config = gateway_from_env(settings(), need=("BATCHPAY_QUERY_URL",))
    options = SendOptions(concurrency=concurrency, rate=rate, timeout=timeout,
                          max_attempts=max_attempts, ca_bundle=ca_bundle)  # fmt: skip
    with open_journal(journal_option) as journal:
        if batch:
            require_batch(journal, batch)
        batches = [batch] if batch else [s["batch"] for s in summaries(journal)]
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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--path", "route", default="/notify", show_default=True)
@journal_option
def listen(host: str, port: int, route: str, journal_option: str | None) -> None:
    """Receive the gateway's status callbacks and record them in the journal, until Ctrl-C.

    Each callback's signature is checked over the fields as received; a bad signature or an
    unknown tradeNo gets a 4xx and changes nothing. GET /health answers {"status": "ok"}.
    Run it behind your HTTPS reverse proxy; BATCHPAY_NOTIFY_URL is its public address.

    \b
    Example:
        batchpay listen --port 8080 --path /vexora/notify
    """
    from aiohttp import web

    env = settings()
    secret = read_secret(env)
    path = journal_path(journal_option, env, sandbox=False)
    app = callback_app(path, secret, protocol_from_env(env), route)
    click.echo(f"listening on http://{host}:{port}{route} (journal {path}); Ctrl-C stops")
    web.run_app(app, host=host, port=port, print=None, access_log=None)


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
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
@click.option("--callback-repeats", type=click.IntRange(1, 10), default=1, show_default=True)
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
    from .sandbox import FAULT_KINDS, Faults, SandboxGateway, SandboxServer, Settlement

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
        settlement=settlement,
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
    write_template(path, force=force)
    click.echo(f"wrote {path}")
