"""``batchpay config show`` and ``batchpay config check``: what the settings are and where each
comes from (the secret masked), and whether they work."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from ..config import (
    PROBE_TIMEOUT,
    default_settings,
    gateway_from_env,
    read_secret,
    secret_file_warnings,
)
from ..errors import BatchpayError
from ..settings_file import KEYS
from .options import ca_bundle_option, root_options, settings, warn_about_secret_file

if TYPE_CHECKING:
    from ..gateway.probe import ProbeReport


def described(env: Mapping[str, str]) -> list[dict[str, str]]:
    """Each setting, its value (the secret masked) and where it comes from."""
    root = root_options()
    from_file = root.from_file
    file_label = f"file {root.config_file}" + (f" [profile.{root.profile}]" if root.profile else "")
    defaults = default_settings()
    rows = []
    for key, name in [*KEYS.items(), ("secret", "BATCHPAY_SECRET")]:
        value = env.get(name, "")
        if name in root.environ:
            source = "environment"
        elif name in from_file:
            source = file_label
        elif name in defaults:
            value, source = defaults[name], "default"
        else:
            source = "unset"
        if name == "BATCHPAY_SECRET" and value:
            value = "(set; never shown)"
        rows.append({"key": key, "variable": name, "value": value, "source": source})
    return rows


@click.group("config")
def config_group() -> None:
    """Show or check the settings (options > environment > configuration file).

    \b
    Example:
        batchpay config show
        batchpay --profile production config check
    """


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as one JSON object.")
def show(as_json: bool) -> None:
    """Show every setting's effective value (defaults too), where it comes from, and the
    secret masked.

    \b
    Example:
        batchpay config show
    """
    env = settings()
    rows = described(env)
    warnings = warn_about_secret_file(env)
    if as_json:
        click.echo(json.dumps({"config_file": str(root_options().config_file or ""),
                               "settings": rows, "warnings": warnings}))  # fmt: skip
        return
    click.echo(f"configuration file: {root_options().config_file or '(none)'}")
    for row in rows:
        shown = row["value"] or "-"
        click.echo(f"  {row['variable']:<30} {shown}  ({row['source']})")


def _reachable(url: str) -> str | None:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=5).close()
    except OSError as exc:
        return f"{parts.hostname}:{port} is not reachable ({exc.strerror or exc})"
    return None


@config_group.command("check")
@click.option(
    "--live",
    is_flag=True,
    help="Also ask the gateway itself, with calls that cannot move money (status "
    "queries for a tradeNo never used; never the payout URL).",
)
@ca_bundle_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=PROBE_TIMEOUT,
    show_default=True,
    help="Seconds per call of the live probe.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
def check(live: bool, ca_bundle: Path | None, timeout: float, as_json: bool) -> None:
    """Check the settings: present, secret readable, gateway reachable. With --live, ask the
    gateway: the right signature must be answered "order not found", a wrong signature and an
    unknown merchant with codes that stop a run; the setting to change is named. Exit 0 when
    all pass, 2 otherwise.

    \b
    Example:
        batchpay config check
        batchpay --profile production config check --live
    """
    env = settings()
    results: list[tuple[str, str | None]] = []
    urls: list[tuple[str, str]] = []  # reachable or not, once the settings are all there
    config = None
    try:
        config = gateway_from_env(env)
    except BatchpayError as exc:
        results.append(("settings present", str(exc)))
    else:
        results.append(("settings present", None))
        if not live:  # the probe calls the query URL itself, and never the payout URL
            urls.append(("payout URL reachable", config.payout_url))
            if config.query_url:
                urls.append(("query URL reachable", config.query_url))
    try:
        read_secret(env)
        results.append(("secret readable", None))
    except BatchpayError as exc:
        results.append(("secret readable", str(exc)))
    results += [(name, _reachable(url)) for name, url in urls]
    from ..gateway.probe import NEEDS_QUERY_URL, probe  # aiohttp: not for --help or --version

    report = None
    if live and config is not None:
        if config.query_url is None:
            results.append(("live probe", NEEDS_QUERY_URL))
        else:
            report = asyncio.run(probe(config, ca_bundle=ca_bundle, timeout=timeout))
    warnings = secret_file_warnings(env)
    failed = any(problem for _, problem in results) or (report is not None and not report.ok)
    if as_json:
        click.echo(json.dumps({
            "ok": not failed,
            "checks": [{"check": name, "ok": problem is None, "problem": problem or ""}
                       for name, problem in results],
            "live": None if report is None else report_json(report),
            "warnings": warnings,
        }))  # fmt: skip
        sys.exit(2 if failed else 0)
    for name, problem in results:
        click.echo(
            f"  {'ok  ' if problem is None else 'FAIL'} {name}"
            + (f": {problem}" if problem else "")
        )
    if report is not None:
        assert config is not None and config.query_url is not None
        click.echo(f"live probe of {config.query_url}: status queries for tradeNo "
                   f"{report.trade_no}, never used (no payout is sent)")  # fmt: skip
        for line in report_lines(report):
            click.echo(line)
    # A warning, not a failure: the settings work, but the secret is exposed.
    for warning in warnings:
        click.echo(f"  warn secret file permissions: {warning}")
    sys.exit(2 if failed else 0)


def report_json(report: ProbeReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "trade_no": report.trade_no,
        "checks": [
            {
                "check": c.name,
                "sent": c.sent,
                "came_back": c.came_back,
                "verdict": c.verdict,
                "ok": c.ok,
            }
            for c in report.checks
        ],
        "settings_to_change": [dataclasses.asdict(advice) for advice in report.advice],
        "learned_codes": report.learned,
        "not_learnable": list(report.not_learnable),
    }


def report_lines(report: ProbeReport) -> list[str]:
    """The probe's table, then the settings to change and what it cannot learn."""
    table = [("check", "sent", "came back", "verdict")] + [
        (c.name, c.sent, c.came_back[:70], c.verdict) for c in report.checks
    ]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    lines = [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  " + row[3]
        for row in table
    ]  # fmt: skip
    if report.advice:
        lines.append("settings to change (then run `config check --live` again):")
        lines += [f"  {a.setting}={a.value}: {a.why}" for a in report.advice]
    lines.append("not learnable without moving money: " + "; ".join(report.not_learnable))
    return lines
