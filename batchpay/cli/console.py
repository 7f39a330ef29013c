"""What an operator sees besides results: logs (stderr and a file, text or JSON lines) and a
progress display while sending. Results and summaries go to stdout; everything here to stderr
or the log file."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # the command line starts without the sending and sheet libraries
    from ..gateway.dispatch import Progress
    from ..gateway.sending import StopNotice
    from ..summary import Summary

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the event's own fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "event", {}))
        return json.dumps(entry, ensure_ascii=False)


class _Ours(logging.Handler):
    """Marks batchpay's own handlers, so that configuring again replaces them."""


class _StderrHandler(logging.StreamHandler, _Ours):  # type: ignore[type-arg]
    pass


class _FileHandler(logging.FileHandler, _Ours):
    pass


def configure_logging(
    verbose: int = 0, quiet: bool = False, log_file: Path | None = None, log_format: str = "text"
) -> None:
    """-v: each request on stderr (-vv more); -q: errors only; --log-file: every event, kept.
    Account numbers are masked in every log line."""
    logger = logging.getLogger("batchpay")
    for handler in [h for h in logger.handlers if isinstance(h, _Ours)]:
        logger.removeHandler(handler)
        handler.close()
    formatter: logging.Formatter = (
        JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    stderr_level = (
        logging.ERROR
        if quiet
        else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    )
    levels = [stderr_level]
    stderr = _StderrHandler(sys.stderr)
    stderr.setLevel(stderr_level)
    stderr.setFormatter(formatter)
    logger.addHandler(stderr)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        if not log_file.exists():
            os.close(os.open(log_file, os.O_CREAT | os.O_WRONLY, 0o600))  # owner-only
        to_file = _FileHandler(log_file, encoding="utf-8")
        file_level = logging.DEBUG if verbose > 1 else logging.INFO
        to_file.setLevel(file_level)
        to_file.setFormatter(formatter)
        logger.addHandler(to_file)
        levels.append(file_level)
    logger.setLevel(min(levels))
    logger.propagate = False


def show_progress(quiet: bool) -> bool:
    """Progress only for a person at a terminal."""
    return not quiet and sys.stderr.isatty()


@dataclass
class Display:
    """What the CLI shows while sending: ``update`` feeds the progress bar (None without one);
    ``say`` prints a line on stderr, above the bar while it is shown, never inside its line."""

    update: Callable[[Progress], None] | None
    say: Callable[[str], None]


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


@contextmanager
def progress_display(enabled: bool, total_hint: str = "sending") -> Iterator[Display]:
    """A progress bar on stderr (counts, rate, time left) fed by the dispatcher; NO_COLOR and
    a dumb terminal are respected by rich itself."""
    if not enabled:
        yield Display(None, _echo_err)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TaskProgressColumn(), TextColumn("{task.fields[rate]} rows/s"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )  # fmt: skip
    task = None

    def update(progress: Progress) -> None:
        nonlocal task
        if task is None:  # started by the first row, after any confirmation prompt
            bar.start()
            task = bar.add_task(total_hint, total=progress.total, rate="-")
        speed = bar.tasks[0].speed
        bar.update(task, completed=progress.done, rate=f"{speed:,.0f}" if speed else "-")

    def say(line: str) -> None:
        if task is None:
            _echo_err(line)
        else:
            # The bar's console prints above the live line and redraws the bar below it.
            bar.console.print(line, markup=False, highlight=False, soft_wrap=True)

    try:
        yield Display(update, say)
    finally:
        if task is not None:
            bar.stop()


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _in_flight(notice: StopNotice) -> str:
    parts = []
    if notice.payouts or not notice.queries:
        parts.append(_plural(notice.payouts, "payout", "payouts"))
    if notice.queries:
        parts.append(_plural(notice.queries, "status query", "status queries"))
    return " and ".join(parts)


STOPPING = (
    "stopping: {in_flight} in flight, waiting up to {grace:g} s for their answers; Ctrl-C "
    "again to abandon them. Nothing more is sent; rows not sent stay pending"
)
STOPPING_IDLE = "stopping: nothing in flight; nothing more is sent, rows not sent stay pending"
ABANDONING = (
    "abandoning {in_flight} in flight: their rows stay unknown (they may have been placed); "
    "run the same command again, it asks the gateway first"
)
GRACE_OVER = "no answer within {grace:g} s: " + ABANDONING


def stop_message(notice: StopNotice) -> str:
    """The line an operator sees when a stop begins or abandons the requests in flight."""
    fields = {"in_flight": _in_flight(notice), "grace": notice.grace}
    if notice.abandoning:
        return (GRACE_OVER if notice.grace_ran_out else ABANDONING).format(**fields)
    if not notice.payouts and not notice.queries:
        return STOPPING_IDLE
    return STOPPING.format(**fields)


UNKNOWN_SHOWN = 10  # the summary names this many unknown rows, then counts the rest


def unknown_line(trade_nos: list[str]) -> str:
    """The unknown rows a run left, by tradeNo: the ones to check before anything else."""
    shown = ", ".join(trade_nos[:UNKNOWN_SHOWN])
    more = len(trade_nos) - UNKNOWN_SHOWN
    rest = f" and {more} more (batchpay status, or the result file)" if more > 0 else ""
    return f"unknown (do not pay by hand): {shown}{rest}"


@contextmanager
def working(enabled: bool, text: str) -> Iterator[None]:
    """A spinner with what is being done (reading, validating, planning) for a person at a
    terminal; nothing otherwise."""
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield


def show_summary(summary: Summary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.as_json(), ensure_ascii=False))
        show_error(summary)
        return
    mode = "dry run, nothing sent" if summary.dry_run else f"{summary.requests} request(s)"
    if summary.sandbox:
        mode += ", SANDBOX: no real payment"
    click.echo(f"batch {summary.batch_id} ({mode}, {summary.seconds:.1f} s)")
    for outcome, count in summary.counts.items():
        click.echo(f"  {outcome:<11} {count:>7}  {summary.amounts[outcome]:>15,}")
    if summary.unknown_trade_nos:
        click.echo(unknown_line(summary.unknown_trade_nos))
    click.echo(f"result file: {summary.result_file or 'not written'}")
    if summary.nothing_sent and summary.earlier is not None:
        earlier = summary.earlier
        click.echo(f"nothing sent: every row was placed in batch {earlier.batch_id} on "
                   f"{earlier.date}; --pay-again pays them again")  # fmt: skip
    if summary.stopped:
        reason = summary.stop_reason or "stopped"
        # After a refusal of the set-up, the next step says what to fix before running again.
        again = "; run the same command again to resume" if reason == "interrupted" else ""
        click.echo(f"stopped early ({reason}){again}")
    show_error(summary)
    for step in summary.next_steps:
        click.echo(f"next: {step}")


def show_error(summary: Summary) -> None:
    """A failure after sending started: one line on stderr, as every error, between the
    journal's counts and the next step."""
    if summary.error:
        click.echo(f"batchpay: error: {summary.error}", err=True)
