"""The commands that serve or make things: listen, sandbox, template."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config import (
    SANDBOX_MERCHANT_NO,
    SANDBOX_NOTIFY_URL,
    default_journal_path,
    journal_path,
    mobile_pattern,
    practice_journal_path,
    protocol_from_env,
    read_secret,
)

if TYPE_CHECKING:  # each command imports what it needs: --version and completion start fast
    from ..sandbox.gateway import Codes


from .options import (
    journal_option,
    root_options,
    settings,
    warn_about_secret_file,
)


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


RATES_OVER_ONE = "--fail-rate and --partial-rate are shares of the same orders: at most 1 together"


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
    "error), refuse (1004, not placed), bad_answer (placed, then an answer whose sign "
    "verifies under no setting), e.g. --fault 503=0.1.",
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
    "--partial-rate", type=click.FloatRange(0, 1), default=0.0,
    help="Share paid in part (status 0001, payAmount about half the amount).",
)  # fmt: skip
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
@click.option(
    "--salt",
    type=click.Choice(["suffix", "prefix"]),
    default="suffix",
    show_default=True,
    help="Where this gateway wants the secret in the signed string (BATCHPAY_SIGN_SALT).",
)
@click.option(
    "--code",
    "codes",
    multiple=True,
    metavar="KIND=CODE",
    help="Answer KIND (signature, merchant, duplicate, param, not_found, balance) with CODE, as "
    "another gateway of the family may.",
)
@click.option(
    "--balance",
    metavar="AMOUNT",
    help="The merchant's available balance: each placed payout takes its amount, and one past "
    "it is refused with the balance code (default: no limit).",
)
@click.option(
    "--answer-sign",
    type=click.Choice(["off", "data", "envelope"]),
    default="off",
    show_default=True,
    help="Sign every answer over its data object's fields or over the whole envelope "
    "(BATCHPAY_VERIFY_ANSWER_SIGN).",
)
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
    partial_rate: float,
    callback_repeats: int,
    out_of_order: bool,
    no_callbacks: bool,
    seed: int | None,
    salt: str,
    codes: tuple[str, ...],
    answer_sign: str,
    balance: str | None,
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
        batchpay sandbox --answer-sign envelope --fault bad_answer=0.1
        batchpay sandbox --balance 50000 --code balance=1006
    """
    import asyncio

    from ..sandbox.balance import parse_amount
    from ..sandbox.gateway import FAULT_KINDS, Faults, SandboxGateway, Settlement
    from ..sandbox.server import SandboxServer
    from ..signing import AnswerSign, Salt

    if fail_rate + partial_rate > 1:
        raise click.BadParameter(RATES_OVER_ONE, param_hint="--partial-rate")
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
    try:
        funds = None if balance is None else parse_amount(balance)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--balance") from None
    env = settings()
    merchant = env.get("BATCHPAY_MERCHANT_NO") or SANDBOX_MERCHANT_NO
    secret_file = _sandbox_secret_file(env)
    secret = env.get("BATCHPAY_SECRET") or secret_file.read_text(encoding="utf-8").strip()
    settlement = None
    if settle_after is not None:
        settlement = Settlement(
            delay=settle_after, fail_rate=fail_rate, partial_rate=partial_rate,
            notify=not no_callbacks,
            repeats=callback_repeats, out_of_order=out_of_order, seed=seed,
        )  # fmt: skip
    gateway = SandboxGateway(
        merchant, secret, faults=fault_plan, mobile_pattern=mobile_pattern(env),
        settlement=settlement, announce=True, salt=Salt(salt), codes=_codes(codes), balance=funds,
        answer_sign=AnswerSign(answer_sign),
    )  # fmt: skip
    server = SandboxServer(gateway, host=host, port=port)

    async def serve() -> None:
        await server.start()
        limit = "no balance limit" if funds is None else f"a balance of {funds:,.2f}"
        click.echo(f"sandbox gateway on {server.base_url} with {limit} (Ctrl-C stops it). "
                   "Use it with:")  # fmt: skip
        click.echo(f"  export BATCHPAY_URL={server.payout_url}")
        click.echo(f"  export BATCHPAY_QUERY_URL={server.query_url}")
        click.echo(f"  export BATCHPAY_MERCHANT_NO={merchant}")
        if not env.get("BATCHPAY_SECRET"):
            click.echo(f"  export BATCHPAY_SECRET_FILE={secret_file}")
        click.echo(f"  export BATCHPAY_NOTIFY_URL={SANDBOX_NOTIFY_URL}")
        # After the lines scripts written before it read by position (the first five).
        click.echo(f"  export BATCHPAY_BALANCE_URL={server.balance_url}")
        if gateway.salt is not Salt.SUFFIX:
            click.echo(f"  export BATCHPAY_SIGN_SALT={gateway.salt.value}")
        if gateway.answer_sign is not AnswerSign.OFF:
            click.echo(f"  export BATCHPAY_VERIFY_ANSWER_SIGN={gateway.answer_sign.value}")
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


def _codes(items: tuple[str, ...]) -> Codes:
    """``KIND=CODE`` options as the sandbox's code table (the family's codes elsewhere)."""
    from ..sandbox.gateway import Codes

    kinds = [f.name for f in dataclasses.fields(Codes)]
    table = {}
    for item in items:
        kind, _, code = item.partition("=")
        if kind not in kinds or not code.strip():
            raise click.BadParameter(
                f"{item!r} is not KIND=CODE with KIND one of {', '.join(kinds)}",
                param_hint="--code",
            )
        table[kind] = code.strip()
    return Codes(**table)


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
