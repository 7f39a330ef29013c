"""Settings, read once into frozen objects. Options override the environment.

Every value the gateway contract marks as *decided* is a setting here, because a real merchant
account may differ: the duplicate-tradeNo codes, the statuses that mean "still processing",
the amount's text form, the mobile rule and whether empty values are left out of the signature.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import typing
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from .errors import ConfigError
from .signing import AnswerSign, Salt

APP_NAME = "batchpay"
DEFAULT_MOBILE_PATTERN = "0[0-9]{9}"
SANDBOX_MERCHANT_NO = "SANDBOX-MERCHANT"
SANDBOX_NOTIFY_URL = "http://127.0.0.1:9/notify"  # nothing listens there: callbacks go nowhere
# Every answer of `batchpay sandbox` carries this header, so a run against it is marked as
# practice (summary, --json, result workbook) wherever it runs.
SANDBOX_HEADER = "X-Batchpay-Sandbox"
# The accounts of in-process sandboxes (``run --sandbox``): gateways that end with their run,
# whose orders no later run can find anywhere. Never evidence of a payment elsewhere.
IN_PROCESS = "@in-process-sandbox:"
# Before the tradeNos batchpay assigns for an in-process sandbox: a result file that holds
# only such tradeNos is practice, whoever reads it (a CSV has no Summary sheet to say so).
SANDBOX_TRADE_NO_PREFIX = "SBX"
PROBE_TIMEOUT = 10.0  # seconds per call of `config check --live`: a slower gateway is "slow"


@dataclass(frozen=True)
class Protocol:
    """The gateway contract's decided values."""

    duplicate_codes: frozenset[str] = frozenset({"1002"})
    # Refusals that stop the run: unknown merchant, signature error (the family's codes).
    systemic_codes: frozenset[str] = frozenset({"1001", "1003"})
    processing_statuses: frozenset[str] = frozenset({"0015"})
    # Status-query codes that mean "the gateway has no such order" (the family's 1005): only
    # these make a row that may have been placed safe to send again.
    not_found_codes: frozenset[str] = frozenset({"1005"})
    # Payout refusals that mean "the account's balance is too low" (unknown for the family: a
    # setting): the run stops at once and the row stays pending, to be sent after a top-up.
    insufficient_balance_codes: frozenset[str] = frozenset()
    # data.status values that mean "paid in part" (the family's 0001): final, flagged for a
    # person, never sent again; read as "failed" they would invite paying the whole again.
    partial_statuses: frozenset[str] = frozenset({"0001"})
    paid_status: str = "0000"
    amount_decimals: bool = False  # True sends "100.00" instead of "100"
    sign_skip_empty: bool = True
    sign_salt: Salt = Salt.SUFFIX  # where the secret goes in the signed string
    # What an answer's sign covers (signing.py); off: answers are not verified.
    verify_answer_sign: AnswerSign = AnswerSign.OFF

    def amount_text(self, amount: int) -> str:
        return f"{amount}.00" if self.amount_decimals else str(amount)


@dataclass(frozen=True)
class GatewayConfig:
    """Where and as whom to send. The secret never appears in repr() or str()."""

    payout_url: str
    merchant_no: str
    secret: str = field(repr=False)
    query_url: str | None = None
    notify_url: str | None = None
    # The balance query (optional): when set, a run refuses a batch the account cannot cover.
    balance_url: str | None = None
    protocol: Protocol = field(default_factory=Protocol)
    # Where the secret came from, to name in advice (never the secret itself).
    secret_source: str = "the secret"

    @property
    def account(self) -> str:
        """The gateway account a journal's batches belong to (see ``gateway_account``)."""
        return gateway_account(self.merchant_no, self.payout_url)

    @property
    def in_process(self) -> bool:
        return False  # a gateway that outlives the run: its orders are real somewhere

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[GatewayConfig]:
        yield self  # nothing to start: it is already there


class Gateway(typing.Protocol):
    """Where a run's payouts go: a configured gateway (a ``GatewayConfig``), or one that lives
    for the run only (``sandbox.InProcessSandbox``, for ``run --sandbox``). The run and the
    sending path know only this, so they never import the sandbox."""

    @property
    def account(self) -> str: ...  # the gateway account the run's batch belongs to
    @property
    def secret(self) -> str: ...  # what a dry run signs with
    @property
    def notify_url(self) -> str | None: ...
    @property
    def protocol(self) -> Protocol: ...
    @property
    def in_process(self) -> bool:
        """Practice by construction: its orders end with the run, so they are evidence of
        nothing later (no earlier-run checks, the result marked as practice)."""
        ...

    def connect(self) -> contextlib.AbstractAsyncContextManager[GatewayConfig]:
        """The gateway's settings while it can be sent to (started first, if need be)."""
        ...


def in_process_account() -> str:
    """An in-process sandbox's account: a gateway that lives for one run, so each run's is
    another account, and no later run can mistake its orders for any gateway's."""
    return f"{SANDBOX_MERCHANT_NO}{IN_PROCESS}{secrets.token_hex(4)}"


def gateway_account(merchant_no: str, payout_url: str) -> str:
    """``merchant@scheme://host:port``: the merchant number and where its payouts go. Two runs
    with the same account talk to the same gateway's ledger; any other pair is another one
    (a sandbox, a test gateway, production), whose orders say nothing about this one's."""
    parts = urlsplit(payout_url)
    scheme = (parts.scheme or "").lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return f"{merchant_no}@{scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass(frozen=True)
class SendOptions:
    concurrency: int = 8
    rate: float | None = None
    timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    stop_after_refusals: int = 10  # consecutive refusals that stop the run; 0: never
    grace: float = 10.0  # seconds requests in flight get to finish after an interrupt
    ca_bundle: Path | None = None  # extra CA certificates; verification is never off
    repeat_window_hours: float = 72.0
    allow_repeat: bool = False


def default_journal_path(*, sandbox: bool = False) -> Path:
    name = "sandbox-journal.sqlite3" if sandbox else "journal.sqlite3"
    return Path(platformdirs.user_data_dir(APP_NAME)) / name


def practice_journal_path() -> Path:
    """The journal ``batchpay sandbox`` tells its users to practise with: never the real one."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "practice-journal.sqlite3"


def journal_path(option: str | None, env: Mapping[str, str], *, sandbox: bool) -> Path:
    """--journal, else $BATCHPAY_JOURNAL, else the user data directory.

    A sandbox run never uses the real journal unless --journal names one explicitly.
    """
    if option:
        return Path(option).expanduser()
    if not sandbox and env.get("BATCHPAY_JOURNAL"):
        return Path(env["BATCHPAY_JOURNAL"]).expanduser()
    return default_journal_path(sandbox=sandbox)


def default_settings() -> dict[str, str]:
    """What each BATCHPAY_* setting is when nothing sets it (for ``config show``); settings
    without a default are required (or optional and off) and are left out."""
    protocol = Protocol()

    def listed(codes: frozenset[str]) -> str:
        return ",".join(sorted(codes))

    return {
        "BATCHPAY_JOURNAL": str(default_journal_path()),
        "BATCHPAY_CA_BUNDLE": "(the system's CA certificates)",
        "BATCHPAY_MOBILE_PATTERN": DEFAULT_MOBILE_PATTERN,
        "BATCHPAY_DUPLICATE_CODES": listed(protocol.duplicate_codes),
        "BATCHPAY_PROCESSING_STATUSES": listed(protocol.processing_statuses),
        "BATCHPAY_SYSTEMIC_CODES": listed(protocol.systemic_codes),
        "BATCHPAY_NOT_FOUND_CODES": listed(protocol.not_found_codes),
        "BATCHPAY_INSUFFICIENT_BALANCE_CODES": listed(protocol.insufficient_balance_codes),
        "BATCHPAY_PARTIAL_STATUSES": listed(protocol.partial_statuses),
        "BATCHPAY_AMOUNT_FORMAT": "decimal" if protocol.amount_decimals else "integer",
        "BATCHPAY_SIGN_SKIP_EMPTY": "true" if protocol.sign_skip_empty else "false",
        "BATCHPAY_SIGN_SALT": protocol.sign_salt.value,
        "BATCHPAY_VERIFY_ANSWER_SIGN": protocol.verify_answer_sign.value,
        # The journal's policy may ask for more (`batchpay policy show`); this never less.
        "BATCHPAY_APPROVALS": "0",
    }


def _codes(value: str | None, default: frozenset[str]) -> frozenset[str]:
    if value is None or not value.strip():
        return default
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def protocol_from_env(env: Mapping[str, str]) -> Protocol:
    amount_format = env.get("BATCHPAY_AMOUNT_FORMAT", "integer").strip().lower()
    if amount_format not in {"integer", "decimal"}:
        raise ConfigError(
            f"BATCHPAY_AMOUNT_FORMAT must be 'integer' or 'decimal', not {amount_format!r}"
        )
    protocol = Protocol(
        duplicate_codes=_codes(env.get("BATCHPAY_DUPLICATE_CODES"), Protocol.duplicate_codes),
        systemic_codes=_codes(env.get("BATCHPAY_SYSTEMIC_CODES"), Protocol.systemic_codes),
        processing_statuses=_codes(
            env.get("BATCHPAY_PROCESSING_STATUSES"), Protocol.processing_statuses
        ),
        not_found_codes=_codes(env.get("BATCHPAY_NOT_FOUND_CODES"), Protocol.not_found_codes),
        insufficient_balance_codes=_codes(
            env.get("BATCHPAY_INSUFFICIENT_BALANCE_CODES"), Protocol.insufficient_balance_codes
        ),
        partial_statuses=_codes(env.get("BATCHPAY_PARTIAL_STATUSES"), Protocol.partial_statuses),
        amount_decimals=amount_format == "decimal",
        sign_skip_empty=_flag(env, "BATCHPAY_SIGN_SKIP_EMPTY", True),
        sign_salt=_salt(env),
        verify_answer_sign=_answer_sign(env),
    )
    both = protocol.partial_statuses & (protocol.processing_statuses | {protocol.paid_status})
    if both:
        raise ConfigError(PARTIAL_OVERLAP.format(statuses=", ".join(sorted(both))))
    return protocol


PARTIAL_OVERLAP = (
    "BATCHPAY_PARTIAL_STATUSES names {statuses}, which also means paid or processing "
    "(BATCHPAY_PROCESSING_STATUSES): a status can mean only one of them"
)


def _salt(env: Mapping[str, str]) -> Salt:
    value = env.get("BATCHPAY_SIGN_SALT", "").strip().lower() or Salt.SUFFIX.value
    try:
        return Salt(value)
    except ValueError:
        raise ConfigError(
            f"BATCHPAY_SIGN_SALT must be 'suffix' or 'prefix' (where the secret goes in the "
            f"signed string), not {value!r}"
        ) from None


BAD_ANSWER_SIGN = (
    "BATCHPAY_VERIFY_ANSWER_SIGN must be 'off', 'data' (the sign of an answer covers its data "
    "object) or 'envelope' (it covers every member), not {value!r}"
)


def _answer_sign(env: Mapping[str, str]) -> AnswerSign:
    value = env.get("BATCHPAY_VERIFY_ANSWER_SIGN", "").strip().lower() or AnswerSign.OFF.value
    try:
        return AnswerSign(value)
    except ValueError:
        raise ConfigError(BAD_ANSWER_SIGN.format(value=value)) from None


def mobile_pattern(env: Mapping[str, str]) -> str:
    pattern = env.get("BATCHPAY_MOBILE_PATTERN") or DEFAULT_MOBILE_PATTERN
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"BATCHPAY_MOBILE_PATTERN is not a valid pattern: {exc}") from None
    return pattern


SECRET_FILE_NOT_TEXT = (
    "BATCHPAY_SECRET_FILE {path} is not UTF-8 text (byte {position} cannot be read): it must "
    "hold the secret as one line of text"
)
SECRET_FILE_OPEN = (
    "BATCHPAY_SECRET_FILE {path} can be {what} by {who} (mode {mode}); anyone who reads it can "
    "sign payouts and callbacks: run `chmod 600 {path}`"
)


def secret_file_warnings(env: Mapping[str, str]) -> list[str]:
    """Warnings about the secret file's permissions: readable (or writable) by the file's group
    or by others. Data, not output: the CLI prints them. A file that cannot be read at all is
    read_secret's error, not a warning."""
    secret_file = env.get("BATCHPAY_SECRET_FILE")
    if not secret_file or os.name == "nt":  # Windows has no such mode bits
        return []
    try:
        mode = Path(secret_file).expanduser().stat().st_mode
    except OSError:
        return []
    read = [who for who, bit in (("its group", 0o040), ("others", 0o004)) if mode & bit]
    written = [who for who, bit in (("its group", 0o020), ("others", 0o002)) if mode & bit]
    if not read and not written:
        return []
    what = "read" if read and not written else "changed" if not read else "read or changed"
    return [
        SECRET_FILE_OPEN.format(
            path=secret_file, what=what, who=" and ".join(dict.fromkeys(read + written)),
            mode=f"{mode & 0o777:o}",
        )
    ]  # fmt: skip


def secret_source(env: Mapping[str, str]) -> str:
    """Which setting the secret is read from, as advice names it."""
    if env.get("BATCHPAY_SECRET"):
        return "the secret in BATCHPAY_SECRET (the environment)"
    if env.get("BATCHPAY_SECRET_FILE"):
        return f"the secret in BATCHPAY_SECRET_FILE ({env['BATCHPAY_SECRET_FILE']})"
    return "the secret"


def read_secret(env: Mapping[str, str]) -> str:
    if env.get("BATCHPAY_SECRET"):
        return env["BATCHPAY_SECRET"]
    secret_file = env.get("BATCHPAY_SECRET_FILE")
    if secret_file:
        try:
            # A byte-order mark (Notepad's UTF-8) is not part of the secret.
            text = Path(secret_file).expanduser().read_text(encoding="utf-8")
            secret = text.removeprefix("\ufeff").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read BATCHPAY_SECRET_FILE {secret_file}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                SECRET_FILE_NOT_TEXT.format(path=secret_file, position=exc.start + 1)
            ) from None
        if not secret:
            raise ConfigError(f"BATCHPAY_SECRET_FILE {secret_file} is empty")
        return secret
    raise ConfigError("no signing secret: set BATCHPAY_SECRET_FILE (or BATCHPAY_SECRET)")


def _url(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if value and not re.fullmatch(r"https?://[^\s/]+\S*", value):
        raise ConfigError(f"{name} must be an http:// or https:// address, not {value!r}")
    return value or None


def gateway_from_env(
    env: Mapping[str, str], *, need: tuple[str, ...] = ("BATCHPAY_URL",)
) -> GatewayConfig:
    """The real gateway's settings; a missing one is a ConfigError (exit 2)."""
    missing = [n for n in (*need, "BATCHPAY_MERCHANT_NO") if not env.get(n)]
    if missing:
        raise ConfigError(
            f"missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
            "(or use --sandbox to try the built-in simulated gateway)"
        )
    return GatewayConfig(
        payout_url=_url(env, "BATCHPAY_URL") or "",
        merchant_no=env["BATCHPAY_MERCHANT_NO"].strip(),
        secret=read_secret(env),
        secret_source=secret_source(env),
        query_url=_url(env, "BATCHPAY_QUERY_URL"),
        notify_url=_url(env, "BATCHPAY_NOTIFY_URL"),
        balance_url=_url(env, "BATCHPAY_BALANCE_URL"),
        protocol=protocol_from_env(env),
    )
