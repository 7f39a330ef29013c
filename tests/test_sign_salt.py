"""Where the secret goes in the signed string (issue 15, part 2): ``BATCHPAY_SIGN_SALT``,
suffix (the contract's worked example) or prefix, for payouts, queries and callbacks alike,
against a sandbox that wants one or the other."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers import MERCHANT, SECRET, Sandbox, invoke, payroll_rows, write_csv

from batchpay.config import Protocol, protocol_from_env
from batchpay.gateway.callbacks import receive_callback
from batchpay.journal.store import Journal
from batchpay.sandbox.gateway import Codes
from batchpay.signing import Salt, sign, signing_string, verify

BODY = {"amount": "100", "tradeNo": "T1", "timestamp": "1719876543210"}


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def test_prefix_puts_the_secret_before_the_string_and_suffix_after_it() -> None:
    text = signing_string(BODY)
    assert sign(BODY, SECRET, salt=Salt.PREFIX) == md5_hex(SECRET + text)
    assert sign(BODY, SECRET, salt=Salt.SUFFIX) == md5_hex(text + SECRET) == sign(BODY, SECRET)
    assert sign(BODY, SECRET, salt=Salt.PREFIX) != sign(BODY, SECRET)


def test_a_signature_verifies_only_under_the_salt_it_was_made_with() -> None:
    signed = {**BODY, "sign": sign(BODY, SECRET, salt=Salt.PREFIX)}
    assert verify(signed, SECRET, salt=Salt.PREFIX)
    assert not verify(signed, SECRET)


@pytest.mark.parametrize(
    ("value", "salt"), [("", Salt.SUFFIX), ("suffix", Salt.SUFFIX), (" Prefix ", Salt.PREFIX)]
)
def test_the_setting_reads_suffix_by_default_and_prefix_when_asked(value: str, salt: Salt) -> None:
    assert protocol_from_env({"BATCHPAY_SIGN_SALT": value}).sign_salt is salt
    assert protocol_from_env({}).sign_salt is Salt.SUFFIX


def test_a_gateway_that_wants_the_secret_first_refuses_the_default_and_nothing_is_placed(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.gateway.salt = Salt.PREFIX
    path = write_csv(tmp_path / "p.csv", payroll_rows(6))
    result = invoke("run", str(path), "--yes", "--json", "--concurrency", "2")
    assert result.exit_code == 4
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"pending": 6}  # a signature error is systemic: not rejected
    assert summary["stop_reason"].startswith("the gateway refused with 1003")
    assert sandbox.gateway.orders == {}


def test_with_the_prefix_setting_every_row_is_placed(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox.gateway.salt = Salt.PREFIX
    monkeypatch.setenv("BATCHPAY_SIGN_SALT", "prefix")
    path = write_csv(tmp_path / "p.csv", payroll_rows(6))
    result = invoke("run", str(path), "--yes", "--json", "--concurrency", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"processing": 6}
    assert len(sandbox.gateway.orders) == 6
    shown = json.loads(invoke("config", "show", "--json").stdout)
    by_name = {row["variable"]: row for row in shown["settings"]}
    assert by_name["BATCHPAY_SIGN_SALT"]["value"] == "prefix"


def test_a_wrong_value_is_a_one_line_settings_error_and_nothing_is_sent(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BATCHPAY_SIGN_SALT", "middle")
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    result = invoke("run", str(path), "--yes")
    assert result.exit_code == 2
    assert "BATCHPAY_SIGN_SALT must be 'suffix' or 'prefix'" in result.output
    assert "Traceback" not in result.output
    assert sandbox.gateway.payout_requests == []


def test_callbacks_are_verified_under_the_same_salt(tmp_path: Path) -> None:
    fields = {"merchantNo": MERCHANT, "tradeNo": "T-none", "status": "0000", "amount": "100"}
    body = json.dumps({**fields, "sign": sign(fields, SECRET, salt=Salt.PREFIX)}).encode()
    with Journal(tmp_path / "j.sqlite3") as journal:
        suffix = receive_callback(journal, body, SECRET, Protocol())
        prefix = receive_callback(journal, body, SECRET, Protocol(sign_salt=Salt.PREFIX))
    assert suffix.http_status == 401
    assert prefix.http_status != 401  # past the signature (then held to its shape)


def test_a_gateway_with_its_own_codes_answers_with_them_and_the_settings_decide(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A gateway whose signature error is 1007: unknown to the default settings, its refusal
    # reads as a row's rejection; named as systemic, it stops the run with every row pending.
    sandbox.gateway.salt = Salt.PREFIX
    sandbox.gateway.codes = Codes(signature="1007")
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    first = json.loads(invoke("run", str(path), "--yes", "--json", "--concurrency", "1").stdout)
    assert first["counts"] == {"rejected": 2}
    assert sandbox.gateway.orders == {}
    monkeypatch.setenv("BATCHPAY_SYSTEMIC_CODES", "1001,1007")
    other = write_csv(tmp_path / "q.csv", payroll_rows(3, start=10))
    second = invoke("run", str(other), "--yes", "--json", "--concurrency", "1")
    assert second.exit_code == 4
    summary = json.loads(second.stdout)
    assert summary["counts"] == {"pending": 3}
    assert summary["stop_reason"].startswith("the gateway refused with 1007")


def test_sandbox_refuses_an_unknown_code_kind() -> None:
    result = invoke("sandbox", "--code", "nope=1")
    assert result.exit_code == 2
    assert "'nope=1' is not KIND=CODE with KIND one of merchant, duplicate" in result.output
