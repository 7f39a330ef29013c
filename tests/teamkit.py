"""Helpers for the team-controls tests: the command line driven against a real journal file,
every command's stdout and stderr kept, and the check that none of them ever shows a
password, a password hash or a TOTP secret."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
from click.testing import CliRunner, Result

from batchpay.cli.main import cli

ADMIN = "alice"
ADMIN_PW = "correct horse battery staple"
PREPARER = "pat"
PREPARER_PW = "payroll on fridays 7"
APPROVER = "abe"
APPROVER_PW = "second pair of eyes"
URI = re.compile(r"otpauth://totp/\S+")


@dataclass
class Shown:
    args: tuple[str, ...]
    stdout: str
    stderr: str
    totp_uri_allowed: bool


@dataclass
class Team:
    """A journal and the command line run against it (``BATCHPAY_JOURNAL`` points at it)."""

    journal: Path
    env: dict[str, str] = field(default_factory=dict)
    shown: list[Shown] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def cli(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
        shows_totp: bool = False,
    ) -> Result:  # fmt: skip
        """Run ``batchpay ARGS``; with ``input``, the lines for --password-stdin."""
        result = CliRunner().invoke(
            cli, list(args), input=input, env={**self.env, **(env or {})}, catch_exceptions=False
        )
        self.shown.append(Shown(args, result.stdout, result.stderr, shows_totp))
        self.secrets |= {line for line in (input or "").splitlines() if len(line) >= 12}
        self.secrets |= self.stored_secrets()
        return result

    def stored_secrets(self) -> set[str]:
        """Every hash and TOTP secret the journal holds now (and the hash's digest part)."""
        if not self.journal.exists():
            return set()
        with sqlite3.connect(self.journal) as db:
            tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master")}
            if "users" not in tables:
                return set()
            found = db.execute("SELECT password_hash, totp_secret FROM users").fetchall()
        values = set()
        for password_hash, totp_secret in found:
            values |= {password_hash, password_hash.rsplit("$", 1)[-1]}
            if totp_secret:
                values.add(totp_secret)
        return values

    def add(self, name: str, role: str, password: str, *, totp: bool = False) -> Result:
        """Add a user as the admin (or, for the first admin, without --as)."""
        first = name == ADMIN
        lines = [password] if first else [ADMIN_PW, password]
        args = ["user", "add", name, "--role", role, "--password-stdin"]
        args += [] if first else ["--as", ADMIN]
        args += ["--totp"] if totp else []
        result = self.cli(*args, input="\n".join(lines) + "\n", shows_totp=totp)
        assert result.exit_code == 0, result.output
        return result

    def assert_nothing_secret_shown(self) -> None:
        for shown in self.shown:
            for secret in self.secrets:
                for name, text in (("stdout", shown.stdout), ("stderr", shown.stderr)):
                    if shown.totp_uri_allowed:
                        text = URI.sub("", text)  # the one place the secret is shown
                    assert secret not in text, f"{' '.join(shown.args)} showed a secret on {name}"


def totp_secret(result: Result) -> str:
    """The secret in the otpauth URI that ``user add --totp`` printed."""
    found = URI.search(result.stdout)
    assert found, result.output
    totp = pyotp.parse_uri(found[0])
    assert isinstance(totp, pyotp.TOTP)
    return totp.secret


def head_of(output: str) -> str:
    found = re.search(r"audit head: #\d+ sha256:[0-9a-f]{64}", output)
    assert found, output
    return found[0]
