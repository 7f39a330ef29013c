"""Shared fixtures: a real sandbox gateway over loopback HTTP, real files, a real journal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import MERCHANT, SECRET, Sandbox, payroll_rows, write_csv
from teamkit import Team

from batchpay.sandbox.gateway import SandboxGateway
from batchpay.sandbox.server import serve_in_thread


@pytest.fixture(autouse=True)
def own_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test has user data and configuration directories of its own (platformdirs reads
    XDG_*): the in-process sandbox's journal, the practice journal and config.toml are never the
    developer's, nor shared by tests running at the same time (pytest -n 2)."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))


@pytest.fixture
def payroll_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "payroll.csv", payroll_rows(12))


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    gateway = SandboxGateway(MERCHANT, SECRET)
    with serve_in_thread(gateway) as server:
        yield Sandbox(gateway, server)


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def gateway_env(
    sandbox: Sandbox, journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The environment a real run against the sandbox gets (query URL included)."""
    for name in list(os.environ):
        if name.startswith("BATCHPAY_"):
            monkeypatch.delenv(name)
    env = {
        "BATCHPAY_URL": sandbox.server.payout_url,
        "BATCHPAY_QUERY_URL": sandbox.server.query_url,
        "BATCHPAY_MERCHANT_NO": MERCHANT,
        "BATCHPAY_SECRET": SECRET,
        "BATCHPAY_NOTIFY_URL": "https://merchant.example.com/vexora/notify",
        "BATCHPAY_JOURNAL": str(journal_path),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    """The command line against a journal of its own, no other BATCHPAY_* settings; at the
    end, no command it ran showed a password, a hash or a TOTP secret."""
    for name in list(os.environ):
        if name.startswith("BATCHPAY_"):
            monkeypatch.delenv(name)
    journal = tmp_path / "team-journal.sqlite3"
    monkeypatch.setenv("BATCHPAY_JOURNAL", str(journal))
    found = Team(journal)
    yield found
    found.assert_nothing_secret_shown()
