"""``batchpay config show`` and ``batchpay config check``: what the settings are and where each
comes from (the secret masked), and whether they work."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

import click

from ..config import default_settings, gateway_from_env, read_secret, secret_file_warnings
from ..errors import BatchpayError
from ..settings_file import KEYS
from .options import root_options, settings, warn_about_secret_file


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
def check() -> None:
    """Check the settings: present, secret readable, gateway reachable. Exit 0 when all
    pass, 2 otherwise.

    \b
    Example:
        batchpay config check
    """
    env = settings()
    results: list[tuple[str, str | None]] = []
    urls: list[tuple[str, str]] = []  # reachable or not, once the settings are all there
    try:
        config = gateway_from_env(env)
    except BatchpayError as exc:
        results.append(("settings present", str(exc)))
    else:
        results.append(("settings present", None))
        urls.append(("payout URL reachable", config.payout_url))
        if config.query_url:
            urls.append(("query URL reachable", config.query_url))
    try:
        read_secret(env)
        results.append(("secret readable", None))
    except BatchpayError as exc:
        results.append(("secret readable", str(exc)))
    results += [(name, _reachable(url)) for name, url in urls]
    for name, problem in results:
        click.echo(
            f"  {'ok  ' if problem is None else 'FAIL'} {name}"
            + (f": {problem}" if problem else "")
        )
    # A warning, not a failure: the settings work, but the secret is exposed.
    for warning in secret_file_warnings(env):
        click.echo(f"  warn secret file permissions: {warning}")
    sys.exit(2 if any(problem for _, problem in results) else 0)
