"""Answers held to their shape (issue 15, section 4): ``BATCHPAY_VERIFY_ANSWER_SIGN`` = off |
data | envelope says what the ``sign`` of a gateway answer covers. With it on, an answer that
does not verify, or whose fields are out of shape, is not believed: the first one of a run
stops the run (the setting is probably wrong) with its row unknown and the rest pending; a
later one makes its row unknown (queried before any re-send), never rejected or paid."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers import (
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
from hypothesis import given
from hypothesis import strategies as st

from batchpay.config import Protocol, protocol_from_env
from batchpay.gateway.client import UNTRUSTED_SIGN, parse_envelope, untrusted_reason
from batchpay.gateway.policy import (
    NO_DEFINITE_ANSWER,
    Action,
    Heard,
    Request,
    RowState,
    Rules,
    next_step,
)
from batchpay.gateway.shapes import answer_problem
from batchpay.outcomes import Answer, Failure, Outcome, Verdict, classify
from batchpay.sandbox.gateway import Faults
from batchpay.signing import AnswerSign, Salt, answer_fields, answer_sign_verifies, sign_answer

VERIFY = "BATCHPAY_VERIFY_ANSWER_SIGN"

# A payout answer as the contract shows it, numbers and booleans as parse_envelope keeps them.
ANSWER: dict[str, Any] = {
    "msg": "success", "code": "0000", "timestamp": "1719876543210", "success": True,
    "data": {"tradeNo": "T1", "platFormTradeNo": "vx4m8k2d", "status": "0015",
             "message": "Processing", "remark": ""},
}  # fmt: skip
DATA_STRING = "message=ProcessingplatFormTradeNo=vx4m8k2dstatus=0015tradeNo=T1"
ENVELOPE_STRING = (
    "code=0000message=Processingmsg=successplatFormTradeNo=vx4m8k2dstatus=0015success=true"
    "timestamp=1719876543210tradeNo=T1"
)


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def signed(document: dict[str, Any], mode: AnswerSign, salt: Salt = Salt.SUFFIX) -> dict[str, Any]:
    return {
        **document,
        "sign": sign_answer(document, SECRET, mode=mode, salt=salt, skip_empty=True),
    }


def verifies(document: dict[str, Any], mode: AnswerSign, salt: Salt = Salt.SUFFIX) -> bool:
    return answer_sign_verifies(document, SECRET, mode=mode, salt=salt, skip_empty=True)


# -- the pure function ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "string"), [(AnswerSign.DATA, DATA_STRING), (AnswerSign.ENVELOPE, ENVELOPE_STRING)]
)
@pytest.mark.parametrize("salt", [Salt.SUFFIX, Salt.PREFIX])
def test_the_vectors_sign_the_documented_string_under_either_salt(
    mode: AnswerSign, string: str, salt: Salt
) -> None:
    expected = md5_hex(SECRET + string if salt is Salt.PREFIX else string + SECRET)
    document = {**ANSWER, "sign": expected}
    assert verifies(document, mode, salt)
    assert not verifies(document, mode, Salt.PREFIX if salt is Salt.SUFFIX else Salt.SUFFIX)
    other = AnswerSign.ENVELOPE if mode is AnswerSign.DATA else AnswerSign.DATA
    assert not verifies(document, other, salt)
    assert not verifies(document, AnswerSign.OFF, salt)  # off verifies nothing


@pytest.mark.parametrize("mode", [AnswerSign.DATA, AnswerSign.ENVELOPE])
def test_a_tampered_value_does_not_verify(mode: AnswerSign) -> None:
    document = signed(ANSWER, mode)
    assert verifies(document, mode)
    tampered = {**document, "data": {**document["data"], "status": "0000"}}
    assert not verifies(tampered, mode)
    assert not verifies({**document, "sign": "0" * 32}, mode)
    assert not verifies({k: v for k, v in document.items() if k != "sign"}, mode)


def test_the_envelope_covers_the_outer_code_and_data_does_not() -> None:
    # Under data, the outer code is outside the signature: a reason to prefer envelope when
    # the gateway signs that way.
    refused = {**ANSWER, "code": "1004"}
    assert verifies({**signed(ANSWER, AnswerSign.DATA), "code": "1004"}, AnswerSign.DATA)
    assert not verifies({**signed(ANSWER, AnswerSign.ENVELOPE), **refused}, AnswerSign.ENVELOPE)


def test_answers_without_data_sign_the_empty_set_under_data() -> None:
    not_found = {"msg": "order not found", "code": "1005", "timestamp": "1", "data": None}
    assert answer_fields(not_found, AnswerSign.DATA) == {}
    assert verifies({**not_found, "sign": md5_hex(SECRET)}, AnswerSign.DATA)
    assert answer_fields(not_found, AnswerSign.ENVELOPE) == {
        "msg": "order not found",
        "code": "1005",
        "timestamp": "1",
    }


@pytest.mark.parametrize(
    "document",
    [
        {**ANSWER, "data": {**ANSWER["data"], "code": "0000"}},  # a name in both layers
        {**ANSWER, "data": {**ANSWER["data"], "extra": {"nested": "1"}}},  # nested: no text
        {**ANSWER, "data": "T1"},  # data that is not an object
    ],
    ids=["name in both layers", "nested value", "data not an object"],
)
def test_an_answer_with_no_defined_signed_string_never_verifies(document: dict[str, Any]) -> None:
    assert answer_fields(document, AnswerSign.ENVELOPE) is None
    assert not verifies({**document, "sign": md5_hex(SECRET)}, AnswerSign.ENVELOPE)
    with pytest.raises(ValueError):
        sign_answer(document, SECRET, mode=AnswerSign.ENVELOPE, salt=Salt.SUFFIX, skip_empty=True)


def test_numbers_are_verified_as_the_json_text_received() -> None:
    body = b'{"code": "0000", "msg": "ok", "timestamp": 1719876543210, "success": true,'
    body += b' "data": {"tradeNo": "T1", "status": "0015", "payAmount": 100.50}}'
    string = "code=0000msg=okpayAmount=100.50status=0015success=truetimestamp=1719876543210"
    string += "tradeNo=T1"
    body = body[:-1] + b', "sign": "' + md5_hex(string + SECRET).encode() + b'"}'
    answer = parse_envelope(200, body, None)
    assert answer.document is not None and answer.document["data"]["payAmount"] == "100.50"
    assert verifies(dict(answer.document), AnswerSign.ENVELOPE)
    assert answer == parse_envelope(200, body, None)  # the document is left out of equality
    assert "document" not in repr(answer)


def test_a_moved_field_boundary_verifies_and_is_refused_by_its_shape() -> None:
    # status (0005: failed) swallowed into the field before it in the signed string: the
    # string is the same, so the signature holds; read as it stands, the row would be
    # processing instead of failed.
    genuine = {**ANSWER, "data": {**ANSWER["data"], "status": "0005", "message": "Failed"}}
    shifted_data = {k: v for k, v in genuine["data"].items() if k != "status"}
    shifted_data["platFormTradeNo"] += "status=0005"
    shifted = {**signed(genuine, AnswerSign.ENVELOPE), "data": shifted_data}
    assert verifies(shifted, AnswerSign.ENVELOPE)
    protocol = Protocol(verify_answer_sign=AnswerSign.ENVELOPE)
    why = untrusted_reason(shifted, "T1", SECRET, protocol)
    assert why is not None and "data.platFormTradeNo holds 'status='" in why
    assert why.startswith("untrusted answer: ")
    assert untrusted_reason(signed(genuine, AnswerSign.ENVELOPE), "T1", SECRET, protocol) is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"code": "00 00"}, "code '00 00' is not a code of digits"),
        ({"data": {**ANSWER["data"], "status": "0015x"}}, "data.status '0015x' is not a code"),
        ({"data": {**ANSWER["data"], "tradeNo": "T2"}}, "data.tradeNo 'T2' is not the tradeNo"),
        ({"data": {**ANSWER["data"], "platFormTradeNo": "vx 1"}}, "data.platFormTradeNo 'vx 1'"),
        ({"msg": "okcode=0000"}, "msg holds 'code='"),
        ({"data": {**ANSWER["data"], "bad name": "1"}}, "field name 'data.bad name'"),
    ],
)
def test_each_field_batchpay_relies_on_is_held_to_its_format(
    change: dict[str, Any], words: str
) -> None:
    assert answer_problem(ANSWER, "T1") is None
    problem = answer_problem({**ANSWER, **change}, "T1")
    assert problem is not None and words in problem


def test_an_untrusted_answer_is_an_unknown_outcome_never_refused_or_placed() -> None:
    answer = Answer(http_status=400, failure=Failure.UNTRUSTED, error=UNTRUSTED_SIGN)
    assert classify(answer, Protocol()) is Verdict.UNKNOWN
    assert classify(Answer(http_status=200, failure=Failure.UNTRUSTED), Protocol()) is (
        Verdict.UNKNOWN
    )


@pytest.mark.parametrize("can_query", [True, False])
def test_the_send_rules_read_an_untrusted_payout_answer_as_an_order_that_may_exist(
    can_query: bool,
) -> None:
    rules = Rules(max_attempts=5, can_query=can_query)
    untrusted = Answer(http_status=200, failure=Failure.UNTRUSTED, error=UNTRUSTED_SIGN)
    heard = Heard.of(Request.PAY, untrusted, Protocol())
    assert heard.untrusted and heard.verdict is Verdict.UNKNOWN
    step = next_step(RowState(), heard, rules)
    assert step.outcome is Outcome.UNKNOWN and step.action is Action.WAIT
    assert step.state.may_exist and step.state.ask_first is can_query
    then = next_step(step.state, None, rules)
    assert then.action is (Action.QUERY if can_query else Action.PAY)  # the same tradeNo
    stopped = next_step(RowState(), heard, rules, stopping=True)
    assert stopped.action is Action.SETTLE and stopped.outcome is Outcome.UNKNOWN


def test_an_untrusted_query_answer_is_no_definite_answer_and_is_not_asked_again() -> None:
    rules = Rules(max_attempts=5, can_query=True)
    state = RowState.start(Outcome.UNKNOWN, ours=True, can_query=True)
    untrusted = Answer(http_status=200, failure=Failure.UNTRUSTED, error=UNTRUSTED_SIGN)
    step = next_step(state, Heard.of(Request.QUERY, untrusted, Protocol()), rules)
    assert (step.action, step.outcome, step.note) == (
        Action.SETTLE, Outcome.UNKNOWN, NO_DEFINITE_ANSWER
    )  # fmt: skip


def test_the_setting_reads_off_by_default_and_a_bad_value_is_a_one_line_error(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert protocol_from_env({}).verify_answer_sign is AnswerSign.OFF
    assert protocol_from_env({VERIFY: " Envelope "}).verify_answer_sign is AnswerSign.ENVELOPE
    shown = json.loads(invoke("config", "show", "--json").stdout)
    assert {row["variable"]: row["value"] for row in shown["settings"]}[VERIFY] == "off"
    monkeypatch.setenv(VERIFY, "both")
    result = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(2))), "--yes")
    assert result.exit_code == 2
    assert f"{VERIFY} must be 'off', 'data'" in result.output and "'both'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert sandbox.gateway.payout_requests == []


def test_the_configuration_file_key_sets_it(gateway_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('verify_answer_sign = "envelope"\n', encoding="utf-8")
    shown = json.loads(invoke("--config", str(config), "config", "show", "--json").stdout)
    row = {row["variable"]: row for row in shown["settings"]}[VERIFY]
    assert row["value"] == "envelope"


# -- runs against the sandbox -----------------------------------------------------------------


def run_json(path: Path, *options: str) -> tuple[int, dict[str, Any]]:
    result = invoke("run", str(path), "--yes", "--json", *options)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(
    ("mode", "salt"), [(AnswerSign.DATA, Salt.PREFIX), (AnswerSign.ENVELOPE, Salt.SUFFIX)]
)
def test_with_the_setting_matching_the_gateway_every_row_is_placed(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: AnswerSign,
    salt: Salt,
) -> None:
    sandbox.gateway.answer_sign, sandbox.gateway.salt = mode, salt
    monkeypatch.setenv(VERIFY, mode.value)
    monkeypatch.setenv("BATCHPAY_SIGN_SALT", salt.value)
    code, summary = run_json(write_csv(tmp_path / "p.csv", payroll_rows(8)), "--concurrency", "4")
    assert code == 0, summary
    assert summary["counts"] == {"processing": 8}
    assert len(sandbox.gateway.orders) == 8
    # The status query's answers verify too: reconcile believes them.
    assert invoke("reconcile").exit_code == 0
    assert len(sandbox.gateway.query_requests) == 8


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("gateway_signs", [AnswerSign.ENVELOPE, AnswerSign.OFF])
def test_a_setting_the_gateway_does_not_sign_by_stops_after_the_first_answer(
    sandbox: Sandbox,
    gateway_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: int,
    gateway_signs: AnswerSign,
) -> None:
    sandbox.gateway.answer_sign = gateway_signs
    monkeypatch.setenv(VERIFY, "data")
    path = write_csv(tmp_path / "p.csv", payroll_rows(10))
    code, summary = run_json(path, "--concurrency", str(concurrency))
    assert code == 4
    assert VERIFY in summary["stop_reason"] and "probably wrong" in summary["stop_reason"]
    assert "it said '0000 success'" in summary["stop_reason"]
    assert SECRET not in json.dumps(summary)
    unknown = summary["unknown_trade_nos"]
    # The rows whose requests were in flight when the first answer came (at most the
    # concurrency) are unknown: the gateway placed them. No row is rejected or processing.
    assert 1 <= len(unknown) <= concurrency
    assert summary["counts"] == {"unknown": len(unknown), "pending": 10 - len(unknown)}
    assert set(sandbox.gateway.orders) == set(unknown)
    assert concurrency > 1 or len(sandbox.gateway.payout_requests) == 1
    for row in read_result(path.with_name("p.result.csv")):
        assert row["outcome"] in ("unknown", "pending")
        if row["outcome"] == "unknown":
            assert row["msg"] == UNTRUSTED_SIGN and row["code"] == ""
    # With the setting fixed, the next run asks about the unknown rows before anything else
    # and never sends their payouts again.
    sandbox.gateway.answer_sign = AnswerSign.DATA
    code, summary = run_json(path, "--concurrency", str(concurrency))
    assert code == 0, summary
    assert summary["counts"] == {"processing": 10}
    assert set(sandbox.gateway.query_requests) == set(unknown)
    assert max(Counter(sandbox.gateway.payout_requests).values()) == 1


def first_draw_at_least(rate: float) -> int:
    """A seed whose first draw misses a fault of this rate: the run's first answer (concurrency
    1: the first row's payout) is a good one, so the run does not stop. The test below checks
    that it did not, so a change in how the sandbox draws cannot pass unnoticed."""
    return next(seed for seed in range(1000) if random.Random(seed).random() >= rate)


def test_later_bad_answers_leave_their_rows_unknown_and_the_next_run_resolves_them_by_query(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.gateway.answer_sign = AnswerSign.ENVELOPE
    # Half of first payout answers, and every first status query's answer, signed by nobody.
    sandbox.faults = Faults(
        rates={"bad_answer": 0.5}, query_rates={"bad_answer": 1.0}, seed=first_draw_at_least(0.5)
    )
    monkeypatch.setenv(VERIFY, "envelope")
    path = write_csv(tmp_path / "p.csv", payroll_rows(12))
    code, summary = run_json(path, "--concurrency", "1")
    assert summary["stop_reason"] == ""  # the first answer was believed: no stop
    unknown = set(summary["unknown_trade_nos"])
    assert unknown and code == 3
    assert summary["counts"] == {"processing": 12 - len(unknown), "unknown": len(unknown)}
    assert len(sandbox.gateway.orders) == 12  # every order placed, however it was answered
    # Each unknown row was asked about once (not believed: no definite answer), never re-sent.
    assert Counter(sandbox.gateway.query_requests) == dict.fromkeys(unknown, 1)
    assert max(Counter(sandbox.gateway.payout_requests).values()) == 1
    rows = {r["tradeNo"]: r for r in read_result(path.with_name("p.result.csv"))}
    for trade_no in unknown:
        assert rows[trade_no]["outcome"] == "unknown"
        assert rows[trade_no]["msg"] == UNTRUSTED_SIGN
    code, summary = run_json(path, "--concurrency", "1")
    assert code == 0, summary
    assert summary["counts"] == {"processing": 12}
    assert Counter(sandbox.gateway.query_requests) == dict.fromkeys(unknown, 2)
    assert max(Counter(sandbox.gateway.payout_requests).values()) == 1


def test_reconcile_stops_when_its_first_answer_is_not_believed(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(4))
    assert run_json(path, "--concurrency", "1")[0] == 0  # placed, setting off
    monkeypatch.setenv(VERIFY, "envelope")  # the sandbox signs nothing
    result = invoke("reconcile", "--json", "--concurrency", "1")
    assert result.exit_code == 4
    assert VERIFY in json.loads(result.stdout)["stop_reason"]
    assert len(sandbox.gateway.query_requests) == 1
    status = json.loads(invoke("status", "--json").stdout)
    assert status["batches"][0]["counts"] == {"processing": 4}  # nothing changed


def test_off_believes_answers_whatever_their_sign(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.gateway.answer_sign = AnswerSign.ENVELOPE
    sandbox.faults = Faults(rates={"bad_answer": 1.0})
    code, summary = run_json(write_csv(tmp_path / "p.csv", payroll_rows(3)))
    assert code == 0 and summary["counts"] == {"processing": 3}


def test_a_genuinely_signed_answer_with_a_moved_boundary_is_not_believed(
    tmp_path: Path, gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A gateway (or whatever stands in front of it) answering with data.status swallowed
    # into msg, the field before it in the envelope's signed string: the signature verifies,
    # the shape does not. The first answer of the run: a stop.
    async def payout(request: web.Request) -> web.Response:
        body = await request.json()
        data = {"tradeNo": body["tradeNo"], "status": "0005", "message": "F"}
        genuine = {"code": "0000", "msg": "success", "timestamp": "1719876543210", "data": data}
        document = signed(genuine, AnswerSign.ENVELOPE)
        document["msg"] = "successstatus=0005"
        document["data"] = {"tradeNo": body["tradeNo"], "message": "F"}
        assert verifies(document, AnswerSign.ENVELOPE)
        return web.json_response(document)

    app = web.Application()
    app.router.add_post("/pay", payout)
    with serve_app(app) as base:
        monkeypatch.setenv("BATCHPAY_URL", base + "/pay")
        monkeypatch.delenv("BATCHPAY_QUERY_URL")
        monkeypatch.setenv(VERIFY, "envelope")
        path = write_csv(tmp_path / "p.csv", payroll_rows(3))
        code, summary = run_json(path, "--concurrency", "1")
    assert code == 4
    assert summary["counts"] == {"unknown": 1, "pending": 2}
    assert "msg holds 'status='" in summary["stop_reason"]
    unknown = [r for r in read_result(path.with_name("p.result.csv")) if r["outcome"] == "unknown"]
    assert unknown[0]["msg"].startswith("untrusted answer: msg holds 'status='")


def test_batchpay_sandbox_in_its_own_process_signs_its_answers_as_asked(tmp_path: Path) -> None:
    env = new_user_env(tmp_path / "home")
    payroll = write_csv(tmp_path / "p.csv", payroll_rows(5))
    with sandbox_process(env, tmp_path, "--answer-sign", "envelope", "--salt", "prefix") as (
        exports,
        _,
    ):
        assert exports[VERIFY] == "envelope" and exports["BATCHPAY_SIGN_SALT"] == "prefix"
        # With the balance query configured, its answer is the first one read: not believed,
        # the run is refused before anything is sent.
        refused = batchpay({**env, **exports, VERIFY: "data"}, tmp_path, "run", str(payroll),
                           "--yes", "--json", "--concurrency", "1")  # fmt: skip
        assert refused.returncode == 1, refused.stderr
        assert "the balance query's answer is not believed" in refused.stderr
        # Without it, the first payout answer is: the run stops there.
        no_balance = {k: v for k, v in exports.items() if k != "BATCHPAY_BALANCE_URL"}
        wrong = batchpay({**env, **no_balance, VERIFY: "data"}, tmp_path, "run", str(payroll),
                         "--yes", "--json", "--concurrency", "1")  # fmt: skip
        assert wrong.returncode == 4, wrong.stderr
        stopped = json.loads(wrong.stdout)
        assert stopped["counts"] == {"unknown": 1, "pending": 4}
        assert f"{VERIFY}=data is probably wrong" in stopped["stop_reason"]
        secret = Path(exports["BATCHPAY_SECRET_FILE"]).read_text(encoding="utf-8").strip()
        assert secret not in wrong.stdout + wrong.stderr
        right = batchpay({**env, **exports}, tmp_path, "run", str(payroll), "--yes", "--json")
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["counts"] == {"processing": 5}


def test_the_in_process_sandbox_plays_the_gateway_the_settings_describe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERIFY, "envelope")
    monkeypatch.setenv("BATCHPAY_SIGN_SALT", "prefix")
    code, summary = run_json(write_csv(tmp_path / "p.csv", payroll_rows(4)), "--sandbox")
    assert code == 0, summary
    assert summary["counts"] == {"processing": 4}


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="="), max_size=12)
ANSWERS = st.fixed_dictionaries(
    {
        "code": st.from_regex(r"[0-9]{4}", fullmatch=True),
        "msg": TEXT,
        "timestamp": st.from_regex(r"[0-9]{13}", fullmatch=True),
        "data": st.fixed_dictionaries(
            {
                "tradeNo": st.just("T1"),
                "platFormTradeNo": st.from_regex(r"[a-z0-9]{4,12}", fullmatch=True),
                "status": st.from_regex(r"[0-9]{4}", fullmatch=True),
                "message": TEXT,
                "remark": TEXT,
            }
        ),
    }
)


@given(genuine=ANSWERS, mode=st.sampled_from([AnswerSign.DATA, AnswerSign.ENVELOPE]),
       pick=st.integers(min_value=0))  # fmt: skip
def test_no_moved_boundary_of_a_genuine_answer_is_believed(
    genuine: dict[str, Any], mode: AnswerSign, pick: int
) -> None:
    # Move the boundary between two neighbours of the signed string: the first swallows the
    # second (key, '=' and value), which goes. The signature still verifies; the shape not.
    protocol = Protocol(verify_answer_sign=mode)
    document = signed(genuine, mode)
    assert untrusted_reason(document, "T1", SECRET, protocol) is None
    fields = answer_fields(genuine, mode)
    assert fields is not None
    names = sorted(k for k, v in fields.items() if v not in (None, ""))
    first, second = names[pick % (len(names) - 1)], names[pick % (len(names) - 1) + 1]
    moved = json.loads(json.dumps(document))

    def layer(name: str) -> dict[str, Any]:
        return moved["data"] if name in moved["data"] else moved

    layer(first)[first] += f"{second}={layer(second).pop(second)}"
    assert verifies(moved, mode)
    why = untrusted_reason(moved, "T1", SECRET, protocol)
    assert why is not None and f"holds '{second}='" in why


@given(genuine=ANSWERS, mode=st.sampled_from([AnswerSign.DATA, AnswerSign.ENVELOPE]),
       pick=st.integers(min_value=0), extra=st.characters(codec="utf-8"))  # fmt: skip
def test_any_changed_signed_value_does_not_verify(
    genuine: dict[str, Any], mode: AnswerSign, pick: int, extra: str
) -> None:
    document = signed(genuine, mode)
    fields = answer_fields(genuine, mode)
    assert fields is not None
    name = sorted(fields)[pick % len(fields)]
    changed = json.loads(json.dumps(document))
    where = changed["data"] if name in changed["data"] else changed
    where[name] = str(where[name]) + extra
    assert not verifies(changed, mode)
