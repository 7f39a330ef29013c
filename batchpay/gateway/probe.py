"""``config check --live``: what the real gateway says to calls that cannot move money.

A status query never creates an order, so a handful of them, for a tradeNo that was never used,
tell what the seed leaves open (gateway contract, section 6): with the right signature the
gateway answers "order not found" (proving URL, merchant and signature, and naming its
not-found code); with a deliberately wrong one it names its signature-error code; with an
unknown merchant number, its unknown-merchant code. When the right signature is refused as a
signature error, the other salt position is tried once; the balance query is asked once when
configured. The payout URL is never called, and no more than five requests are made, so
repeated bad signatures cannot lock the merchant out.

The result is data (``ProbeReport``): the checks as a table, and the settings to change.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ..config import PROBE_TIMEOUT, GatewayConfig, Protocol, SendOptions
from ..errors import ConfigError
from ..journal.rows import new_trade_nos
from ..outcomes import Answer, Failure
from ..signing import AnswerSign, Salt, answer_sign_verifies
from .balance import query_balance
from .client import GatewayClient
from .dispatch import ssl_context

UNKNOWN_MERCHANT_PREFIX = "PROBE-UNKNOWN-"

NOT_LEARNABLE = (
    "whether empty values are signed (BATCHPAY_SIGN_SKIP_EMPTY: a status query has none)",
    "the duplicate-tradeNo code (BATCHPAY_DUPLICATE_CODES)",
    "the insufficient-balance code (BATCHPAY_INSUFFICIENT_BALANCE_CODES)",
    "the amount's form (BATCHPAY_AMOUNT_FORMAT)",
)
NEEDS_QUERY_URL = (
    "the live probe needs BATCHPAY_QUERY_URL (the status query, which never creates an order; "
    "family: <base>/v1/paypro/queryPayOutResult): set it and run again"
)
NO_CONNECTION = "failed: no connection: check BATCHPAY_QUERY_URL, the network and the firewall"
SLOW = "failed: no answer in time: the gateway is slow or drops requests (try --timeout)"
NOT_THE_GATEWAY = "failed: the query URL does not answer as the gateway: check BATCHPAY_QUERY_URL"
TLS_ADVICE = (
    "failed: the gateway's certificate is not trusted: if your organisation uses its own CA, "
    "pass it with --ca-bundle (BATCHPAY_CA_BUNDLE)"
)

# Verdicts, in the words the table prints.
FOUND = (
    "failed: the gateway says an order with this never-used tradeNo exists; ask the gateway's "
    "support"
)
AS_SIGNATURE_ERROR = "failed: answered as a signature error (the code of the wrong signature)"
AS_UNKNOWN_MERCHANT = (
    "failed: answered as an unknown merchant (the code of an unknown merchant number): check "
    "BATCHPAY_MERCHANT_NO"
)
UNPROVEN = "unproven: the wrong signature got no code to compare with"
PROVEN = "ok: URL, merchant and signature are right (order not found)"
NEITHER_SALT = (
    "failed: neither position of the secret verifies; check the secret and BATCHPAY_MERCHANT_NO"
)
NOT_CHECKED = (
    "failed: the gateway does not check {what} on status queries, so the probe cannot tell its code"
)
WHY_NOT_FOUND = "the gateway's code for an order that does not exist (file key not_found_codes)"
WHY_SYSTEMIC = (
    "the gateway's signature and unknown-merchant codes must stop a run, not reject its rows "
    "(file key systemic_codes)"
)
WHY_ANSWER_SIGN = {
    AnswerSign.OFF: "the gateway's answers carry no sign batchpay can check (file key "
    "verify_answer_sign)",
    AnswerSign.DATA: "the sign of the gateway's answers covers their data object: check it "
    "(file key verify_answer_sign)",
    AnswerSign.ENVELOPE: "the sign of the gateway's answers covers the whole envelope: check it "
    "(file key verify_answer_sign)",
}
WHY_CLASH = "the gateway uses these codes for a signature error or an unknown merchant"

TRANSPORT_VERDICTS: dict[Failure | None, str] = {
    Failure.TLS: TLS_ADVICE, Failure.CONNECT: NO_CONNECTION, Failure.TIMEOUT: SLOW,
}  # fmt: skip


@dataclass(frozen=True)
class Check:
    """One row of the probe's table."""

    name: str
    sent: str  # what was sent, in words (never the secret, never the signature)
    came_back: str
    verdict: str
    ok: bool


@dataclass(frozen=True)
class Advice:
    """A setting to change, to what, and why."""

    setting: str
    value: str
    why: str


@dataclass(frozen=True)
class ProbeReport:
    trade_no: str  # the never-used tradeNo every query asked about
    checks: list[Check]
    advice: list[Advice]
    # The gateway's own codes, as far as the probe found them: not_found, signature, merchant.
    learned: dict[str, str] = field(default_factory=dict)
    not_learnable: tuple[str, ...] = NOT_LEARNABLE

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks) and not self.advice


def said(answer: Answer) -> str:
    """What came back, in a few words."""
    if answer.failure is not None and answer.http_status is None:
        return answer.error
    if not answer.has_envelope:
        return f"HTTP {answer.http_status}: not the gateway's answer (no JSON with a code)"
    return f"{answer.code} {answer.msg}".strip()


def code_of(answer: Answer) -> str | None:
    return answer.code if answer.has_envelope and answer.failure is None else None


def listed(codes: Iterable[str]) -> str:
    return ",".join(sorted(codes))


class _Probe:
    """The calls, and what each one's answer means."""

    def __init__(
        self, config: GatewayConfig, session: aiohttp.ClientSession, timeout: float
    ) -> None:
        # The probe judges answer signatures itself (every mode on the same answers), so its
        # client believes every answer; the setting is what it compares with.
        self.configured_sign = config.protocol.verify_answer_sign
        plain = dataclasses.replace(config.protocol, verify_answer_sign=AnswerSign.OFF)
        self.config = dataclasses.replace(config, protocol=plain)
        self.timeout = timeout
        self.good_salt: Salt | None = None  # the salt an answer proved right
        self.answers: list[Answer] = []  # rightly signed answers, to judge their sign
        self.session = session
        self.trade_no = next(iter(new_trade_nos(1)))  # the contract's form, never planned
        self.checks: list[Check] = []
        self.advice: list[Advice] = []
        self.learned: dict[str, str] = {}
        self.salt = config.protocol.sign_salt

    async def query(self, config: GatewayConfig) -> Answer:
        client = GatewayClient(config, self.session, timeout=self.timeout)
        return await client.query(self.trade_no)

    def add(self, name: str, sent: str, answer: Answer, verdict: str, ok: bool) -> None:
        self.checks.append(Check(name, sent, said(answer), verdict, ok))

    def advise(self, setting: str, value: str, why: str) -> None:
        self.advice.append(Advice(setting, value, why))

    def sent(self, *, salt: Salt, merchant: str | None = None, wrong: bool = False) -> str:
        who = f"merchantNo {merchant or self.config.merchant_no}"
        return f"{who}, {'a wrong signature' if wrong else f'secret as {salt.value}'}"

    async def run(self) -> None:
        salt = self.salt
        right = await self.query(self.config)
        if right.failure is not None or not right.has_envelope:
            verdict = TRANSPORT_VERDICTS.get(right.failure, NOT_THE_GATEWAY)
            self.add("query, right signature", self.sent(salt=salt), right, verdict, False)
            return  # the same address would fail the same way: no more calls
        # A secret nobody has (the signature cannot verify), and a merchant nobody is.
        wrong = await self.query(dataclasses.replace(self.config, secret=secrets.token_hex(16)))
        stranger = UNKNOWN_MERCHANT_PREFIX + secrets.token_hex(4).upper()
        unknown = await self.query(dataclasses.replace(self.config, merchant_no=stranger))
        signature_code, merchant_code = code_of(wrong), code_of(unknown)
        not_found = self.judge_right(right, signature_code, merchant_code)
        if not_found is None and signature_code is not None and code_of(right) == signature_code:
            not_found = await self.try_other_salt(signature_code)
        sent = self.sent(salt=salt, wrong=True)
        self.judge_refusal("query, wrong signature", sent, wrong, "signature", not_found)
        sent = self.sent(salt=salt, merchant=stranger)
        self.judge_refusal("query, unknown merchant", sent, unknown, "merchant", not_found)
        self.advise_codes(self.config.protocol, not_found)
        if self.config.balance_url is not None:
            await self.balance()
        if self.good_salt is not None:
            self.judge_answer_sign(self.good_salt)

    async def balance(self) -> None:
        """The balance query, when configured: safe like a status query, and what the balance
        check before each run will ask."""
        salt = self.good_salt or self.salt
        protocol = dataclasses.replace(self.config.protocol, sign_salt=salt)
        config = dataclasses.replace(self.config, protocol=protocol)
        reading = await query_balance(GatewayClient(config, self.session, timeout=self.timeout))
        sent = self.sent(salt=salt)
        if reading.ok:
            self.answers.append(reading.answer)
            assert reading.available is not None
            frozen = f", {reading.frozen:,} frozen" if reading.frozen is not None else ""
            verdict = f"ok: {reading.available:,} available{frozen}"
            self.add("balance query", sent, reading.answer, verdict, True)
        else:
            self.add("balance query", sent, reading.answer, f"failed: {reading.problem}", False)

    def judge_right(
        self, answer: Answer, signature_code: str | None, merchant_code: str | None
    ) -> str | None:
        """The rightly signed query; the gateway's not-found code, when this answer shows it."""
        code = code_of(answer)
        assert code is not None  # run() stops before this without a code
        if code == "0000":
            verdict = FOUND
        elif code == signature_code:
            verdict = AS_SIGNATURE_ERROR
        elif code == merchant_code:
            verdict = AS_UNKNOWN_MERCHANT
        elif signature_code is None:
            verdict = UNPROVEN
        else:
            self.learned["not_found"] = code
            self.good_salt = self.salt
            self.answers.append(answer)
            self.add("query, right signature", self.sent(salt=self.salt), answer, PROVEN, True)
            return code
        self.add("query, right signature", self.sent(salt=self.salt), answer, verdict, False)
        return None

    async def try_other_salt(self, signature_code: str) -> str | None:
        """The right secret, the secret on the other side: when that verifies, the setting."""
        other = Salt.PREFIX if self.salt is Salt.SUFFIX else Salt.SUFFIX
        protocol = dataclasses.replace(self.config.protocol, sign_salt=other)
        answer = await self.query(dataclasses.replace(self.config, protocol=protocol))
        code = code_of(answer)
        name, sent = f"query, secret as {other.value}", self.sent(salt=other)
        if code is None or code in (signature_code, "0000"):
            self.add(name, sent, answer, NEITHER_SALT, False)
            return None
        self.learned["not_found"] = code
        self.good_salt = other
        self.answers.append(answer)
        self.add(name, sent, answer, f"ok: the gateway wants the secret as {other.value}", True)
        why = f"the gateway verifies the secret as {other.value} (file key sign_salt)"
        self.advise("BATCHPAY_SIGN_SALT", other.value, why)
        return code

    def judge_answer_sign(self, salt: Salt) -> None:
        """Which fields, if any, the sign of the gateway's (rightly signed) answers covers,
        against ``verify_answer_sign``. No extra call: the answers already read."""
        documents = [a.document for a in self.answers if a.document is not None]
        signed = [d for d in documents if "sign" in d]
        skip = self.config.protocol.sign_skip_empty
        verifying = [
            mode for mode in (AnswerSign.DATA, AnswerSign.ENVELOPE)
            if signed and all(answer_sign_verifies(d, self.config.secret, mode=mode, salt=salt,
                                                   skip_empty=skip) for d in signed)
        ]  # fmt: skip
        found = verifying[0] if verifying else AnswerSign.OFF
        if not signed:
            came = "no sign in the answers"
        elif verifying:
            came = f"the sign verifies over {' and '.join(m.value for m in verifying)}"
        else:
            came = "a sign that verifies over neither data nor the envelope"
        sent = f"{len(documents)} answer(s) above, no new call"
        configured = self.configured_sign
        ok = configured is found or (configured is not AnswerSign.OFF and configured in verifying)
        verdict = f"ok: BATCHPAY_VERIFY_ANSWER_SIGN={configured.value}" if ok else (
            f"differs: BATCHPAY_VERIFY_ANSWER_SIGN is {configured.value}"
        )  # fmt: skip
        self.checks.append(Check("answer signature", sent, came, verdict, ok))
        if not ok:
            self.advise("BATCHPAY_VERIFY_ANSWER_SIGN", found.value, WHY_ANSWER_SIGN[found])

    def judge_refusal(
        self, name: str, sent: str, answer: Answer, kind: str, not_found: str | None
    ) -> None:
        """A call the gateway must refuse, with a code that stops a run (systemic)."""
        code = code_of(answer)
        if code is None:
            self.add(name, sent, answer, "failed: no code came back", False)
        elif code in ("0000", not_found):
            what = "signatures" if kind == "signature" else "merchant numbers"
            self.add(name, sent, answer, NOT_CHECKED.format(what=what), False)
        elif code in self.config.protocol.systemic_codes:
            self.learned[kind] = code
            self.add(name, sent, answer, f"ok: {code} is a code that stops a run", True)
        else:
            self.learned[kind] = code
            self.add(
                name, sent, answer, f"differs: {code} is not in BATCHPAY_SYSTEMIC_CODES", False
            )

    def advise_codes(self, protocol: Protocol, not_found: str | None) -> None:
        refusals = {self.learned[k] for k in ("signature", "merchant") if k in self.learned}
        if not_found is not None and protocol.not_found_codes != {not_found}:
            # Only the gateway's own "no such order" may make a row safe to send again.
            self.advise("BATCHPAY_NOT_FOUND_CODES", not_found, WHY_NOT_FOUND)
        systemic = (protocol.systemic_codes | refusals) - {not_found}
        if systemic != protocol.systemic_codes:
            self.advise("BATCHPAY_SYSTEMIC_CODES", listed(systemic), WHY_SYSTEMIC)
        for setting, codes in (
            ("BATCHPAY_DUPLICATE_CODES", protocol.duplicate_codes),
            ("BATCHPAY_INSUFFICIENT_BALANCE_CODES", protocol.insufficient_balance_codes),
        ):
            if refusals & codes:
                self.advise(setting, listed(codes - refusals), WHY_CLASH)


async def probe(
    config: GatewayConfig, *, ca_bundle: Path | None = None, timeout: float = PROBE_TIMEOUT
) -> ProbeReport:
    """The live probe against ``config``'s gateway (its query URL only)."""
    if config.query_url is None:
        raise ConfigError(NEEDS_QUERY_URL)
    connector = aiohttp.TCPConnector(limit=1, ssl=ssl_context(SendOptions(ca_bundle=ca_bundle)))
    async with aiohttp.ClientSession(connector=connector) as session:
        run = _Probe(config, session, timeout)
        await run.run()
    return ProbeReport(run.trade_no, run.checks, run.advice, run.learned)
