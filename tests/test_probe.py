"""``batchpay config check --live``: the zero-money probe of a real gateway (issue 15).

Against sandboxes playing gateways of the family that differ from the defaults (the secret
first, other codes), in-process where the test counts what the gateway received, and in a
process of its own for the issue's whole story: the probe names the settings, and with them a
run places every row.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from batchpay.sandbox.gateway import Codes, SandboxGateway
from batchpay.sandbox.server import serve_in_thread
from batchpay.signing import Salt

from .helpers import (
    MERCHANT,
    SECRET,
    Sandbox,
    batchpay,
    invoke,
    new_user_env,
    payroll_rows,
    sandbox_process,
    serve_app,
    write_csv,
)

OTHER_CODES = Codes(signature="1001", merchant="1004", not_found="1007", duplicate="1002")


def probe_json(*options: str) -> tuple[int, dict[str, object]]:
    result = invoke("config", "check", "--live", "--json", *options)
    return result.exit_code, json.loads(result.stdout)


def checks(report: dict[str, object]) -> dict[str, tuple[str, str]]:
    live = report["live"]
    assert isinstance(live, dict)
    return {c["check"]: (c["came_back"], c["verdict"]) for c in live["checks"]}


def advice(report: dict[str, object]) -> dict[str, str]:
    live = report["live"]
    assert isinstance(live, dict)
    return {a["setting"]: a["value"] for a in live["settings_to_change"]}


def test_a_gateway_like_the_defaults_passes_with_three_queries_and_no_payout(
    sandbox: Sandbox, gateway_env: dict[str, str]
) -> None:
    code, report = probe_json()
    assert code == 0, report
    assert report["ok"] is True
    found = checks(report)
    assert found["query, right signature"][0] == "1005 order not found"
    assert found["query, right signature"][1].startswith("ok:")
    assert found["query, wrong signature"] == ("1003 signature error",
                                               "ok: 1003 is a code that stops a run")  # fmt: skip
    assert found["query, unknown merchant"][1] == "ok: 1001 is a code that stops a run"
    live = report["live"]
    assert isinstance(live, dict)
    assert live["learned_codes"] == {"not_found": "1005", "signature": "1003", "merchant": "1001"}
    assert advice(report) == {}
    # Three status queries (the sandbox reads the tradeNo of the rightly signed one only), for a
    # never-used tradeNo; the payout URL is never called.
    assert sandbox.gateway.payout_requests == []
    assert sandbox.gateway.query_requests == [live["trade_no"], "", ""]
    assert sandbox.gateway.orders == {}


def test_a_gateway_that_wants_the_secret_first_and_other_codes_is_named_setting_by_setting(
    sandbox: Sandbox, gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.gateway.salt = Salt.PREFIX
    sandbox.gateway.codes = OTHER_CODES
    code, report = probe_json()
    assert code == 2
    found = checks(report)
    assert found["query, right signature"] == (
        "1001 signature error",
        "failed: answered as a signature error (the code of the wrong signature)",
    )
    assert found["query, secret as prefix"] == (
        "1007 order not found", "ok: the gateway wants the secret as prefix",
    )  # fmt: skip
    assert found["query, unknown merchant"][1] == (
        "differs: 1004 is not in BATCHPAY_SYSTEMIC_CODES"
    )
    assert advice(report) == {
        "BATCHPAY_SIGN_SALT": "prefix",
        "BATCHPAY_NOT_FOUND_CODES": "1007",
        "BATCHPAY_SYSTEMIC_CODES": "1001,1003,1004",
    }
    # Four queries at most (the other salt once), never a payout.
    assert len(sandbox.gateway.query_requests) == 4
    assert sandbox.gateway.payout_requests == []
    for name, value in advice(report).items():
        monkeypatch.setenv(name, value)
    code, report = probe_json()
    assert code == 0, report
    assert advice(report) == {}


def test_the_table_names_what_was_sent_and_never_the_secret(
    sandbox: Sandbox, gateway_env: dict[str, str]
) -> None:
    sandbox.gateway.salt = Salt.PREFIX
    result = invoke("config", "check", "--live")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert any(line.split()[:2] == ["check", "sent"] for line in lines)
    assert "  BATCHPAY_SIGN_SALT=prefix: the gateway verifies the secret as prefix" in result.output
    assert "not learnable without moving money: whether empty values are signed" in result.output
    assert "the duplicate-tradeNo code" in result.output
    assert "the insufficient-balance code" in result.output
    assert SECRET not in result.output
    assert "Traceback" not in result.output


def test_a_gateway_whose_own_not_found_code_differs_is_told_to_the_setting(
    sandbox: Sandbox, gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.gateway.codes = Codes(not_found="1099")
    monkeypatch.setenv("BATCHPAY_NOT_FOUND_CODES", "1005,1003")
    code, report = probe_json()
    assert code == 2
    # Only the gateway's own "no such order" may make a row safe to send again: 1003 (its
    # signature error) must leave the setting, and systemic_codes is already right.
    assert advice(report) == {"BATCHPAY_NOT_FOUND_CODES": "1099"}


def test_the_balance_query_is_asked_once_when_configured_and_shown(
    sandbox: Sandbox, gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from decimal import Decimal

    from batchpay.sandbox.balance import Ledger

    sandbox.gateway.ledger = Ledger(Decimal("2500"))
    monkeypatch.setenv("BATCHPAY_BALANCE_URL", sandbox.server.balance_url)
    code, report = probe_json()
    assert code == 0, report
    assert checks(report)["balance query"][1] == "ok: 2,500.00 available, 0.00 frozen"
    assert sandbox.gateway.balance_requests == 1
    assert sandbox.gateway.payout_requests == []
    # A balance URL that is not the gateway's: the probe says so, and exits 2.
    monkeypatch.setenv("BATCHPAY_BALANCE_URL", sandbox.server.query_url)
    code, report = probe_json()
    assert code == 2
    assert checks(report)["balance query"][1] == (
        "failed: the gateway answered the balance query with 1005 'order not found' (HTTP 200)"
    )


@pytest.mark.parametrize("signs", ["data", "envelope"])
def test_the_probe_finds_which_fields_the_answers_sign_covers(
    sandbox: Sandbox, gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, signs: str
) -> None:
    from batchpay.signing import AnswerSign

    sandbox.gateway.answer_sign = AnswerSign(signs)
    sandbox.gateway.salt = Salt.PREFIX  # found on the other salt's answer too
    code, report = probe_json()
    assert code == 2
    assert checks(report)["answer signature"] == (
        f"the sign verifies over {signs}",
        "differs: BATCHPAY_VERIFY_ANSWER_SIGN is off",
    )
    assert advice(report)["BATCHPAY_VERIFY_ANSWER_SIGN"] == signs
    calls = len(sandbox.gateway.query_requests)
    other = "envelope" if signs == "data" else "data"
    monkeypatch.setenv("BATCHPAY_VERIFY_ANSWER_SIGN", other)  # the wrong one: still named
    monkeypatch.setenv("BATCHPAY_SIGN_SALT", "prefix")
    code, report = probe_json()
    assert code == 2 and advice(report) == {"BATCHPAY_VERIFY_ANSWER_SIGN": signs}
    monkeypatch.setenv("BATCHPAY_VERIFY_ANSWER_SIGN", signs)
    code, report = probe_json()
    assert code == 0, report
    assert checks(report)["answer signature"][1] == f"ok: BATCHPAY_VERIFY_ANSWER_SIGN={signs}"
    assert len(sandbox.gateway.query_requests) == calls + 6  # three queries a probe
    assert sandbox.gateway.payout_requests == []


def test_a_verifying_setting_against_a_gateway_that_signs_nothing_is_named(
    sandbox: Sandbox, gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHPAY_VERIFY_ANSWER_SIGN", "data")
    code, report = probe_json()
    assert code == 2
    assert checks(report)["query, right signature"][0] == "1005 order not found"
    assert checks(report)["answer signature"][0] == "no sign in the answers"
    assert advice(report) == {"BATCHPAY_VERIFY_ANSWER_SIGN": "off"}


def test_without_a_query_url_the_probe_says_so(
    sandbox: Sandbox, gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BATCHPAY_QUERY_URL")
    result = invoke("config", "check", "--live")
    assert result.exit_code == 2
    assert "FAIL live probe: the live probe needs BATCHPAY_QUERY_URL" in result.output
    assert sandbox.gateway.query_requests == [] and sandbox.gateway.payout_requests == []


async def html_page(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>Sign in to the proxy</body></html>",
                        content_type="text/html")  # fmt: skip


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({"code": "1005"})


@pytest.mark.parametrize(
    ("handler", "came_back", "verdict"),
    [
        (html_page, "HTTP 200: not the gateway's answer", "does not answer as the gateway"),
        (slow, "timeout", "no answer in time"),
    ],
)
def test_a_gateway_that_answers_html_or_too_slowly_is_one_line_and_one_call(
    gateway_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    handler: object,
    came_back: str,
    verdict: str,
) -> None:
    app = web.Application()
    calls: list[str] = []

    async def counted(request: web.Request) -> web.StreamResponse:
        calls.append(request.path)
        return await handler(request)  # type: ignore[operator,no-any-return]

    app.router.add_post("/q", counted)
    with serve_app(app) as base:
        monkeypatch.setenv("BATCHPAY_QUERY_URL", f"{base}/q")
        result = invoke("config", "check", "--live", "--timeout", "0.5")
    assert result.exit_code == 2
    line = next(x for x in result.output.splitlines() if "query, right signature" in x)
    assert came_back in line and verdict in line
    assert calls == ["/q"]  # no more calls to an address that does not answer as the gateway
    assert "Traceback" not in result.output


def test_a_gateway_that_is_down_or_untrusted_is_one_line_with_what_to_do(
    gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHPAY_QUERY_URL", "http://127.0.0.1:9/v1/paypro/queryPayOutResult")
    down = invoke("config", "check", "--live")
    assert down.exit_code == 2
    assert "failed: no connection: check BATCHPAY_QUERY_URL" in down.output
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    gateway = SandboxGateway(MERCHANT, SECRET)
    with serve_in_thread(gateway, ssl_context=server_context) as server:
        monkeypatch.setenv("BATCHPAY_QUERY_URL", server.query_url)
        untrusted = invoke("config", "check", "--live")
        assert untrusted.exit_code == 2
        assert "certificate is not trusted" in untrusted.output
        assert "--ca-bundle" in untrusted.output
        assert gateway.query_requests == []  # the TLS handshake failed: nothing was asked
        trusted = invoke("config", "check", "--live", "--ca-bundle", str(bundle))
        assert trusted.exit_code == 0, trusted.output
    assert "Traceback" not in down.output + untrusted.output


def test_against_a_sandbox_process_the_probe_names_the_settings_and_then_a_run_places_every_row(
    tmp_path: Path,
) -> None:
    """The issue's story: `batchpay sandbox` playing a gateway that wants the secret first and
    uses other codes; a merchant who configured the defaults runs the probe, sets what it
    names, and the run places every row."""
    env = new_user_env(tmp_path / "home")
    options = ["--salt", "prefix", "--code", "signature=1001", "--code", "merchant=1004",
               "--code", "not_found=1005", "--code", "duplicate=1002"]  # fmt: skip
    with sandbox_process(env, tmp_path, *options) as (exports, _server):
        # The merchant's own settings: the gateway's addresses and account, not the salt.
        configured = {k: v for k, v in exports.items() if k != "BATCHPAY_SIGN_SALT"}
        configured["BATCHPAY_JOURNAL"] = str(tmp_path / "journal.sqlite3")
        run_env = {**env, **configured}
        first = batchpay(run_env, tmp_path, "config", "check", "--live", "--json")
        assert first.returncode == 2, first.stderr
        named = {a["setting"]: a["value"]
                 for a in json.loads(first.stdout)["live"]["settings_to_change"]}  # fmt: skip
        assert named == {"BATCHPAY_SIGN_SALT": "prefix",
                         "BATCHPAY_SYSTEMIC_CODES": "1001,1003,1004"}  # fmt: skip
        run_env.update(named)
        again = batchpay(run_env, tmp_path, "config", "check", "--live")
        assert again.returncode == 0, again.stdout + again.stderr
        path = write_csv(tmp_path / "payroll.csv", payroll_rows(6))
        ran = batchpay(run_env, tmp_path, "run", str(path), "--yes", "--json")
        assert ran.returncode == 0, ran.stderr
        summary = json.loads(ran.stdout)
        # Every row placed, and the probe's queries left no order and no row behind.
        assert summary["counts"] == {"processing": 6}
        assert summary["requests"] == 6
