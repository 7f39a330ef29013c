"""`batchpay serve` refuses bad settings before it serves anything: one line, the right exit
code, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import MERCHANT, SECRET, invoke


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    wanted = {"BATCHPAY_URL": "http://127.0.0.1:9/payout", "BATCHPAY_MERCHANT_NO": MERCHANT,
              "BATCHPAY_SECRET": SECRET}  # fmt: skip
    for name, value in wanted.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "journal.sqlite3"


def test_serve_needs_the_gateway_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BATCHPAY_URL", raising=False)
    done = invoke("serve", "--journal", str(tmp_path / "j.sqlite3"))
    assert done.exit_code == 2
    assert "missing setting" in done.output and "BATCHPAY_URL" in done.output
    assert "Traceback" not in done.output


def test_serve_needs_a_journal_with_the_team(settings: Path) -> None:
    done = invoke("serve", "--journal", str(settings))
    assert done.exit_code == 1
    assert f"no journal at {settings}" in done.output and "batchpay user add" in done.output
    assert not settings.exists()  # nothing made


def test_serve_refuses_a_public_url_that_is_not_http(settings: Path) -> None:
    settings.write_bytes(b"")
    done = invoke("serve", "--journal", str(settings), "--public-url", "ftp://payroll")
    assert done.exit_code == 2
    assert "--public-url must be an http:// or https:// address" in done.output
