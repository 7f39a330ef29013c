"""Signing in at the command line: ``--as NAME`` and where passwords and one-time codes come
from. A password is never an argument (command lines leak into ``ps`` and shell history): it
is asked for at the terminal, or read from standard input with ``--password-stdin``, one a
line, in the order the command reads them:

    1. the --as user's password
    2. the --as user's one-time code, when that user has TOTP
    3. the new password, for `user add` and `user passwd`

(without --as, `user add` and `user passwd` read only the new password, on line 1).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import BadValueError

if TYPE_CHECKING:  # each command imports what it needs: --version and completion start fast
    from ..journal.store import Journal
    from ..team.users import User

LINE_ORDER = (
    "in this order: the --as user's password; their one-time code if they have TOTP; then "
    "the new password (user add, user passwd)"
)
NO_TERMINAL = (
    "no terminal to ask for the {what} on: pass --password-stdin and give it on standard input"
)
MISSING_LINE = "--password-stdin: line {line} ({what}) is missing from standard input"


class Secrets:
    """Passwords and codes, from standard input (one a line, in the order asked) or the
    terminal (asked for with the input hidden; a new password twice)."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin
        self.lines_read = 0

    def read(self, what: str, *, new: bool = False, hidden: bool = True) -> str:
        if self.from_stdin:
            self.lines_read += 1
            line = sys.stdin.readline()
            if not line:
                raise BadValueError(MISSING_LINE.format(line=self.lines_read, what=what))
            return line.removesuffix("\n").removesuffix("\r")
        if not sys.stdin.isatty():
            raise BadValueError(NO_TERMINAL.format(what=what))
        answer = click.prompt(
            what[0].upper() + what[1:], hide_input=hidden, confirmation_prompt=new, err=True
        )
        return str(answer)


Command = TypeVar("Command", bound=Callable[..., Any])


def as_option(help_text: str, *, required: bool = False) -> Callable[[Command], Command]:
    def decorate(func: Command) -> Command:
        func = click.option(
            "--password-stdin", is_flag=True,
            help=f"Read passwords (and a one-time code) from standard input, one a line, "
            f"{LINE_ORDER}.",
        )(func)  # fmt: skip
        return click.option("--as", "as_user", metavar="NAME", required=required, help=help_text)(
            func
        )

    return decorate


def sign_in(journal: Journal, name: str, secrets: Secrets) -> User:
    """``name`` signed in with a password (and a one-time code when they have TOTP), or a
    one-line refusal; failures are counted and audited by the library."""
    from ..team.audit import os_user_name
    from ..team.auth import authenticate
    from ..team.users import find_user

    found = find_user(journal, name)
    password = secrets.read(f"password for {name}")
    code = None
    if found is not None and found.has_totp:
        code = secrets.read(f"one-time code for {name}", hidden=False)
    origin = f"command line, os-user {os_user_name()}"
    return authenticate(journal, name, password, code, origin=origin)
