"""``batchpay serve``: the web console (batchpay.web) on one port, with the gateway's callbacks
received at /notify on the same server."""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from ..config import gateway_from_env, journal_path, mobile_pattern, protocol_from_env, read_secret
from .options import journal_option, settings, warn_about_secret_file

NO_JOURNAL = (
    "no journal at {path}: add the team's users first (batchpay user add NAME --role admin "
    "--journal {path})"
)
BAD_PUBLIC_URL = "--public-url must be an http:// or https:// address, not {url!r}"


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; keep loopback behind your TLS reverse proxy.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8300,
    show_default=True,
    help="Port to listen on.",
)
@journal_option
@click.option("--public-url", metavar="URL",
              help="The console's address as people open it (https:// makes the session "
              "cookie Secure).")  # fmt: skip
def serve_command(host: str, port: int, journal_option: str | None, public_url: str | None) -> None:
    """Serve the web console: sign in, upload a payroll file and see its problems, submit,
    approve, send with live progress, download the result. The gateway's callbacks are
    received at /notify with `batchpay listen`'s rules. Until Ctrl-C.

    \b
    Example:
        batchpay serve --port 8300 --public-url https://payroll.example.com
    """
    from aiohttp import web

    from ..gateway.callbacks import server_options
    from ..web.app import Console, make_app

    env = settings()
    gateway = gateway_from_env(env)  # every setting checked before anything is served
    secret = read_secret(env)
    warn_about_secret_file(env)
    protocol = protocol_from_env(env)
    pattern = mobile_pattern(env)
    path = journal_path(journal_option, env, sandbox=False)
    if not path.is_file():
        raise click.ClickException(NO_JOURNAL.format(path=path))
    secure = False
    if public_url is not None:
        scheme = urlsplit(public_url).scheme.lower()
        if scheme not in ("http", "https"):
            raise click.BadParameter(BAD_PUBLIC_URL.format(url=public_url))
        secure = scheme == "https"
    console = Console(path, env, gateway, secret, protocol, pattern, secure_cookie=secure)
    shown = public_url or f"http://{host}:{port}"
    click.echo(f"serving the console at {shown} (journal {path}); callbacks at {shown}/notify; "
               "Ctrl-C stops")  # fmt: skip
    # Ctrl-C or SIGTERM: a send in progress stops before its next row (the batch stopped,
    # the rows not sent pending) once its requests in flight are answered.
    web.run_app(make_app(console), host=host, port=port, print=None, **server_options())
