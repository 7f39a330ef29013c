"""The balance check before sending (issue 15, part 3) and the sandbox's balance: with
``BATCHPAY_BALANCE_URL`` set, a batch the account cannot cover is refused before anything is
sent, a balance that cannot be read stops the run, and one that covers the batch is shown
beside its total at the confirmation."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import socket
import ssl
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from helpers import (
    MERCHANT,
    SECRET,
    Sandbox,
    batchpay,
    invoke,
    new_user_env,
    payroll_rows,
    read_result,
    sandbox_process,
    serve_app,
    write_csv,
)

from batchpay.config import GatewayConfig, SendOptions
from batchpay.gateway.balance import BalanceReading, parse_balance, read_balance
from batchpay.gateway.client import parse_envelope
from batchpay.outcomes import Answer, Failure
from batchpay.sandbox.balance import UNLIMITED, Ledger
from batchpay.sandbox.gateway import Codes, Faults, SandboxGateway
from batchpay.sandbox.server import serve_in_thread
from batchpay.signing import Salt

# payroll_rows(3): 1000 + 1001 + 1002
THREE_ROWS_TOTAL = 3003


def reading_of(document: object, status: int = 200) -> BalanceReading:
    body = json.dumps(document).encode() if not isinstance(document, bytes) else document
    return parse_balance(parse_envelope(status, body, None), body)


def envelope(data: object, code: str = "0000", msg: str = "success") -> dict[str, object]:
    return {"code": code, "msg": msg, "timestamp": 1719876543210, "success": True, "data": data}


@pytest.mark.parametrize(
    ("data", "available", "frozen"),
    [
        ({"availableAmount": "1500.00", "freezeAmount": "20.00"}, "1500.00", "20.00"),
        ({"availableAmount": "1000"}, "1000", None),
        ({"availableAmount": 1500}, "1500", None),  # a JSON number
        ({"availableAmount": 1500.5, "freezeAmount": 0}, "1500.5", "0"),
        ({"availablAmount": "9000.00"}, "9000.00", None),  # one country's spelling
        ({"availableAmount": "7.10", "availablAmount": "7.1"}, "7.10", None),  # same amount
        ({"availableAmount": "0.00", "unsettledAmount": "5.00"}, "0.00", None),
    ],
    ids=["strings", "whole", "number", "decimal-number", "availablAmount", "both-agree", "zero"],
)
def test_a_balance_answer_is_read_from_strings_or_numbers(
    data: dict[str, object], available: str, frozen: str | None
) -> None:
    reading = reading_of(envelope(data))
    assert reading.problem == ""
    assert reading.ok
    assert reading.available == Decimal(available)
    assert str(reading.available) == available  # exactly as sent: no float on the way
    assert reading.frozen == (None if frozen is None else Decimal(frozen))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (envelope({"availableAmount": "-5.00"}), 'data.availableAmount = "-5.00", not an amount'),
        (envelope({"availableAmount": "1e9"}), 'data.availableAmount = "1e9", not an amount'),
        (b'{"code":"0000","msg":"ok","data":{"availableAmount":1e9}}', "= 1e9, not an amount"),
        (b'{"code":"0000","msg":"ok","data":{"availableAmount":-1}}', "= -1, not an amount"),
        (envelope({"availableAmount": True}), "= true, not an amount"),
        (envelope({"availableAmount": "1,000.00"}), "not an amount"),
        (envelope({"availableAmount": " 100"}), "not an amount"),
        (envelope({"availableAmount": "100.001"}), "not an amount"),
        (envelope({"availableAmount": ""}), "not an amount"),
        (envelope({"availableAmount": {"value": "100"}}), "not an amount"),
        (b'{"code":"0000","msg":"ok","data":{"availableAmount":NaN}}', "holds NaN"),
        (envelope({"availableAmount": "100", "freezeAmount": "x"}), "data.freezeAmount"),
        (envelope({"availableAmount": "100", "availablAmount": "900"}), "both data.available"),
        (envelope({"freezeAmount": "100.00"}), "has no data.availableAmount"),
        (envelope({"availableAmount": None}), "has no data.availableAmount"),
        (envelope(None), "has no data.availableAmount"),
        (b'{"code":"0000","msg":"ok","data":{"availableAmount":"1","availableAmount":"9"}}',
         "names a field twice (availableAmount)"),
        (envelope(None, code="1003", msg="signature error"),
         "answered the balance query with 1003 'signature error' (HTTP 200)"),
        (b"<html><body>Not Found</body></html>", "(HTTP 200) is not the gateway's JSON envelope"),
    ],
    ids=[
        "negative", "exponent-text", "exponent-number", "negative-number", "bool", "grouped",
        "space", "three-decimals", "empty", "object", "nan", "garbled-freeze", "spellings-differ",
        "missing", "null", "no-data", "twice", "refused", "html",
    ],
)  # fmt: skip
def test_a_balance_answer_not_in_its_shape_gives_no_amount_and_says_why(
    body: object, problem: str
) -> None:
    reading = reading_of(body)
    assert reading.available is None and not reading.ok
    assert problem in reading.problem
    assert "\n" not in reading.problem


def test_no_answer_at_all_is_a_problem_naming_the_failure() -> None:
    answer = Answer(failure=Failure.CONNECT, error="connect: Connection refused")
    reading = parse_balance(answer, b"")
    assert reading.problem == "the balance query got no answer (connect: Connection refused)"
    assert reading.as_json()["available"] is None


def test_the_sandbox_answers_the_balance_query_signed_and_checked_like_any_request(
    sandbox: Sandbox,
) -> None:
    config = GatewayConfig(sandbox.server.payout_url, MERCHANT, SECRET,
                           balance_url=sandbox.server.balance_url)  # fmt: skip
    unlimited = asyncio.run(read_balance(config, SendOptions()))
    assert unlimited.available == UNLIMITED and unlimited.frozen == 0
    sandbox.gateway.ledger = Ledger(Decimal("1500"))
    limited = asyncio.run(read_balance(config, SendOptions()))
    assert limited.ok and limited.as_json()["available"] == "1500.00"
    stranger = GatewayConfig(sandbox.server.payout_url, "M-OTHER", SECRET,
                             balance_url=sandbox.server.balance_url)  # fmt: skip
    assert (
        "with 1001 'unknown merchant'" in asyncio.run(read_balance(stranger, SendOptions())).problem
    )
    wrong = GatewayConfig(sandbox.server.payout_url, MERCHANT, "not-the-secret",
                          balance_url=sandbox.server.balance_url)  # fmt: skip
    assert "with 1003 'signature error'" in asyncio.run(read_balance(wrong, SendOptions())).problem
    assert sandbox.gateway.balance_requests == 4
    assert sandbox.gateway.payout_requests == []


@pytest.fixture
def balance_env(
    sandbox: Sandbox, gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.setenv("BATCHPAY_BALANCE_URL", sandbox.server.balance_url)
    return {**gateway_env, "BATCHPAY_BALANCE_URL": sandbox.server.balance_url}


def test_a_batch_above_the_balance_is_refused_naming_both_amounts_and_nothing_is_sent(
    sandbox: Sandbox, balance_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.gateway.ledger = Ledger(Decimal("2500.00"))
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    result = invoke("run", str(path), "--yes", "--json")
    assert result.exit_code == 1
    assert sandbox.gateway.payout_requests == []
    assert sandbox.gateway.balance_requests == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"total {THREE_ROWS_TOTAL:,}" in lines[0]
    assert "available balance is 2,500.00" in lines[0]
    assert "nothing was sent" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "p.result.xlsx").exists()


def test_a_batch_within_the_balance_is_placed_and_the_balance_shown_beside_its_total(
    sandbox: Sandbox, balance_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.gateway.ledger = Ledger(Decimal("3003"))  # exactly enough
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    result = invoke("run", str(path), "--yes", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"processing": 3}
    assert summary["balance"]["available"] == "3003.00"
    assert summary["balance"]["frozen"] == "0.00"
    assert "sending 3 payout(s) totalling 3,003 (available balance 3,003.00, 0.00 frozen)" in (
        result.stderr
    )
    assert len(sandbox.gateway.orders) == 3
    assert sandbox.gateway.ledger.available == 0
    assert sandbox.gateway.ledger.frozen == THREE_ROWS_TOTAL
    # -q: only errors on stderr
    quiet = invoke("-q", "run", str(write_csv(tmp_path / "q.csv", payroll_rows(1, start=50))),
                   "--yes")  # fmt: skip
    assert quiet.exit_code == 1 and "available balance is 0.00" in quiet.stderr


def test_the_remaining_total_counts_only_the_rows_still_to_send(
    sandbox: Sandbox, balance_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the balance check, the sandbox refuses the third row for the balance (1006, set
    # as the insufficient-balance code: the run stops with that row pending).
    monkeypatch.delenv("BATCHPAY_BALANCE_URL")
    monkeypatch.setenv("BATCHPAY_INSUFFICIENT_BALANCE_CODES", "1006")
    sandbox.gateway.ledger = Ledger(Decimal("2500"))
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    first = invoke("run", str(path), "--yes", "--json", "--concurrency", "1")
    assert first.exit_code == 4
    assert json.loads(first.stdout)["counts"] == {"processing": 2, "pending": 1}
    assert sandbox.gateway.ledger.available == Decimal("499")
    # Topped up by 600: 1,099 covers the one row left (1,002), not the batch (3,003).
    sandbox.gateway.ledger.available += 600
    monkeypatch.setenv("BATCHPAY_BALANCE_URL", balance_env["BATCHPAY_BALANCE_URL"])
    again = invoke("run", str(path), "--yes", "--json", "--concurrency", "1")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["counts"] == {"processing": 3}
    assert "sending 1 payout(s) totalling 1,002 (available balance 1,099.00" in again.stderr


def test_unknown_rows_count_against_the_balance_and_the_refusal_says_to_reconcile_them(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Placed, then no proper answer, and the status query proves nothing: unknown.
    sandbox.faults = Faults(rates={"500": 1.0}, query_rates={"refuse": 1.0}, every_request=True)
    sandbox.gateway.ledger = Ledger(Decimal("5000"))
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    first = invoke("run", str(path), "--yes", "--json")
    assert json.loads(first.stdout)["counts"] == {"unknown": 3}
    assert sandbox.gateway.ledger.available == 5000 - THREE_ROWS_TOTAL
    sandbox.faults = Faults()
    monkeypatch.setenv("BATCHPAY_BALANCE_URL", sandbox.server.balance_url)
    refused = invoke("run", str(path), "--yes")
    assert refused.exit_code == 1
    assert "total 3,003 (including 3 unknown row(s) that may already be placed" in refused.stderr
    assert "available balance is 1,997.00" in refused.stderr
    assert len(sandbox.gateway.payout_requests) == 3  # none sent again
    assert invoke("reconcile").exit_code == 0
    done = invoke("run", str(path), "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["counts"] == {"processing": 3}
    assert len(sandbox.gateway.orders) == 3


def test_a_payout_past_the_sandbox_balance_is_refused_with_the_balance_code(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.gateway.ledger = Ledger(Decimal("2500"))
    sandbox.gateway.codes = Codes(balance="2001")
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    # The code unconfigured: the gateway's refusal reads as that row's own, rejected.
    plain = invoke("run", str(path), "--yes", "--json", "--concurrency", "1")
    assert plain.exit_code == 3
    assert json.loads(plain.stdout)["counts"] == {"processing": 2, "rejected": 1}
    rows = read_result(tmp_path / "p.result.csv")
    refused = [row for row in rows if row["outcome"] == "rejected"]
    assert [row["code"] for row in refused] == ["2001"]
    assert refused[0]["tradeNo"] not in sandbox.gateway.orders
    assert sandbox.gateway.ledger.available == Decimal("499")
    # Configured as the insufficient-balance code: the run stops with the row pending.
    monkeypatch.setenv("BATCHPAY_INSUFFICIENT_BALANCE_CODES", "2001")
    other = write_csv(tmp_path / "q.csv", payroll_rows(2, start=20))
    stopped = invoke("run", str(other), "--yes", "--json", "--concurrency", "1")
    assert stopped.exit_code == 4
    summary = json.loads(stopped.stdout)
    assert summary["counts"] == {"pending": 2}
    assert "balance is too low" in summary["stop_reason"]
    assert len(sandbox.gateway.orders) == 2


def test_settled_payouts_leave_frozen_and_failed_ones_return_to_available() -> None:
    ledger = Ledger(Decimal("1000"))
    assert ledger.take("600") and not ledger.take("401.00")
    assert ledger.data() == {"availableAmount": "400.00", "freezeAmount": "600.00"}
    assert ledger.take("100")
    ledger.settle("600", paid=True)
    ledger.settle("100", paid=False)
    assert ledger.data() == {"availableAmount": "400.00", "freezeAmount": "0.00"}


def html_gateway(body: str, content_type: str = "text/html") -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/v1/paypro/queryBalance", answer)
    return app


def refused_stop(result_stderr: str, advice: str) -> str:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert "Traceback" not in result_stderr
    assert lines[0].startswith("batchpay: error: refused: the balance could not be read: ")
    assert f"; nothing was sent. {advice}" in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        ("<html><body>502 Bad Gateway</body></html>", "text/html", "not the gateway's JSON"),
        (json.dumps(envelope({"availableAmount": "1.5e4"})), "application/json",
         'data.availableAmount = "1.5e4", not an amount'),
    ],
    ids=["html", "garbled-amount"],
)  # fmt: skip
def test_a_balance_answer_that_cannot_be_read_stops_before_sending(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, body: str, content_type: str, said: str,
) -> None:  # fmt: skip
    with serve_app(html_gateway(body, content_type)) as base:
        monkeypatch.setenv("BATCHPAY_BALANCE_URL", base + "/v1/paypro/queryBalance")
        result = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(3))), "--yes")
    assert result.exit_code == 1
    assert said in refused_stop(result.stderr, "Check BATCHPAY_BALANCE_URL, BATCHPAY_MERCHANT_NO")
    assert sandbox.gateway.payout_requests == []


def test_a_refused_connection_or_a_wrong_signature_stops_before_sending(
    sandbox: Sandbox, balance_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    sandbox.gateway.salt = Salt.PREFIX  # it wants the secret first; batchpay signs suffix
    wrong = invoke("run", str(path), "--yes", "--json")
    assert wrong.exit_code == 1 and wrong.stdout == ""
    assert "with 1003 'signature error'" in refused_stop(wrong.stderr, "Check BATCHPAY_BALANCE_URL")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("BATCHPAY_BALANCE_URL", f"http://127.0.0.1:{port}/v1/paypro/queryBalance")
    down = invoke("run", str(path), "--yes")
    assert down.exit_code == 1
    assert "got no answer (connect: " in refused_stop(down.stderr, "Run again when the gateway")
    assert sandbox.gateway.payout_requests == []
    assert SECRET not in wrong.output + down.output


def test_the_balance_query_uses_the_tls_settings_of_sending(
    gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    gateway = SandboxGateway(MERCHANT, SECRET, balance=Decimal("10000"))
    with serve_in_thread(gateway, ssl_context=server_context) as server:
        monkeypatch.setenv("BATCHPAY_URL", server.payout_url)
        monkeypatch.setenv("BATCHPAY_QUERY_URL", server.query_url)
        monkeypatch.setenv("BATCHPAY_BALANCE_URL", server.balance_url)
        path = write_csv(tmp_path / "p.csv", payroll_rows(3))
        untrusted = invoke("run", str(path), "--yes")
        assert untrusted.exit_code == 1
        line = refused_stop(untrusted.stderr, "Trust the gateway's certificate authority")
        assert "got no answer (tls: " in line
        assert gateway.payout_requests == []
        trusted = invoke("run", str(path), "--yes", "--json", "--ca-bundle", str(bundle))
        assert trusted.exit_code == 0, trusted.output
        assert json.loads(trusted.stdout)["balance"]["available"] == "10000.00"
        assert len(gateway.orders) == 3


def test_a_dry_run_and_the_in_process_sandbox_never_ask_the_balance(
    sandbox: Sandbox, balance_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.gateway.ledger = Ledger(Decimal("1"))  # far too little: only asking would refuse
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    dry = invoke("run", str(path), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["balance"] is None
    assert sandbox.gateway.balance_requests == 0
    practice = invoke("run", str(path), "--sandbox", "--yes", "--json", "-o",
                      str(tmp_path / "practice.csv"))  # fmt: skip
    assert practice.exit_code == 0, practice.output
    assert json.loads(practice.stdout)["counts"] == {"processing": 3}
    assert sandbox.gateway.balance_requests == 0


def test_folder_mode_leaves_a_file_the_balance_cannot_cover_waiting_with_the_reason(
    sandbox: Sandbox, balance_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.gateway.ledger = Ledger(Decimal("2500"))
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    big = write_csv(inbox / "a-big.csv", payroll_rows(3))  # 3,003
    small = write_csv(inbox / "b-small.csv", payroll_rows(2, start=40))  # 1,040 + 1,041
    result = invoke("run", str(inbox), "--archive", str(done), "--yes", "--json")
    assert result.exit_code == 1
    files = json.loads(result.stdout)["files"]
    assert files[0]["source"] == str(big) and files[0]["exit_code"] == 1
    assert "available balance is 2,500.00" in files[0]["error"]
    assert files[1]["counts"] == {"processing": 2}
    assert big.exists() and not small.exists()
    assert (done / "b-small.csv").exists()
    assert len(sandbox.gateway.orders) == 2
    assert "Traceback" not in result.output


def test_the_setting_comes_from_the_file_and_config_show_lists_it(
    gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('balance_url = "https://gateway.example.com/v1/paypro/queryBalance"\n')
    shown = json.loads(invoke("--config", str(config), "config", "show", "--json").stdout)
    by_name = {row["variable"]: row for row in shown["settings"]}
    assert by_name["BATCHPAY_BALANCE_URL"]["key"] == "balance_url"
    assert by_name["BATCHPAY_BALANCE_URL"]["value"].endswith("/v1/paypro/queryBalance")
    assert by_name["BATCHPAY_BALANCE_URL"]["source"].startswith("file ")
    monkeypatch.setenv("BATCHPAY_BALANCE_URL", "ftp://nowhere")
    bad = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(1))), "--yes")
    assert bad.exit_code == 2
    assert "BATCHPAY_BALANCE_URL must be an http:// or https:// address" in bad.stderr


def run_at_terminal(args: list[str], env: dict[str, str], cwd: Path, answer: str) -> str:
    """batchpay with a pseudo-terminal for its streams, answering its confirmation question;
    the screen and the exit code."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "batchpay", *args], stdin=follower, stdout=follower,
        stderr=follower, env={**env, "COLUMNS": "200", "TERM": "xterm"}, cwd=cwd,
    )  # fmt: skip
    os.close(follower)
    screen, asked = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if not asked and b"[y/N]" in screen:
                os.write(leader, answer.encode() + b"\n")
                asked = True
        elif process.poll() is not None:
            break
    process.wait(10)
    os.close(leader)
    return screen.decode("utf-8", errors="replace") + f"\nexit {process.returncode}"


def test_batchpay_sandbox_with_a_balance_shows_it_at_the_confirmation_and_refuses_more(
    tmp_path: Path,
) -> None:
    env = new_user_env(tmp_path / "home")
    with sandbox_process(env, tmp_path, "--balance", "2500") as (printed, _):
        assert printed["BATCHPAY_BALANCE_URL"].endswith("/v1/paypro/queryBalance")
        settings = {**env, **printed}
        big = write_csv(tmp_path / "big.csv", payroll_rows(3))
        refused = batchpay(settings, tmp_path, "run", str(big), "--yes", "--json")
        assert refused.returncode == 1
        assert refused.stdout == ""
        line = refused.stderr.strip()
        assert "\n" not in line and "Traceback" not in line
        assert "total 3,003" in line and "available balance is 2,500.00" in line
        config = GatewayConfig(printed["BATCHPAY_URL"], printed["BATCHPAY_MERCHANT_NO"],
                               Path(printed["BATCHPAY_SECRET_FILE"]).read_text().strip(),
                               balance_url=printed["BATCHPAY_BALANCE_URL"])  # fmt: skip
        untouched = asyncio.run(read_balance(config, SendOptions()))
        assert untouched.as_json()["available"] == "2500.00"  # no payout was placed
        assert untouched.as_json()["frozen"] == "0.00"
        small = write_csv(tmp_path / "small.csv", payroll_rows(2, start=30))  # 1,030 + 1,031
        screen = run_at_terminal(["run", str(small)], settings, tmp_path, "y")
        assert "Send 2 payout(s) totalling 2,061 (available balance 2,500.00, 0.00 frozen)" in (
            screen
        )
        assert screen.endswith("exit 0"), screen
        after = asyncio.run(read_balance(config, SendOptions()))
        assert after.as_json()["available"] == "439.00"
        assert after.as_json()["frozen"] == "2061.00"


def test_batchpay_sandbox_refuses_past_its_balance_with_its_balance_code(tmp_path: Path) -> None:
    env = new_user_env(tmp_path / "home")
    with sandbox_process(env, tmp_path, "--balance", "1500.50", "--code", "balance=2001") as (
        printed,
        _,
    ):
        settings = {k: v for k, v in printed.items() if k != "BATCHPAY_BALANCE_URL"}
        settings = {**env, **settings, "BATCHPAY_INSUFFICIENT_BALANCE_CODES": "2001"}
        path = write_csv(tmp_path / "p.csv", payroll_rows(2))  # 1,000 fits, 1,001 does not
        stopped = batchpay(settings, tmp_path, "run", str(path), "--yes", "--json",
                           "--concurrency", "1")  # fmt: skip
    assert stopped.returncode == 4, stopped.stderr
    summary = json.loads(stopped.stdout)
    assert summary["counts"] == {"processing": 1, "pending": 1}
    assert "balance is too low" in summary["stop_reason"]


def test_sandbox_balance_must_be_an_amount() -> None:
    result = invoke("sandbox", "--balance", "-5")
    assert result.exit_code == 2
    assert "'-5' is not an amount" in result.output
