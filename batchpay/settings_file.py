"""The configuration file (TOML): defaults for the BATCHPAY_* settings, with profiles.

    # ~/.config/batchpay/config.toml (or --config PATH, or $BATCHPAY_CONFIG)
    merchant_no = "M-1001"
    secret_file = "~/.config/batchpay/secret"
    notify_url = "https://pay.example.com/vexora/notify"

    [profile.sandbox]
    url = "http://127.0.0.1:8099/v1/paypro/payOut"

    [profile.production]
    url = "https://gateway.example.com/v1/paypro/payOut"
    query_url = "https://gateway.example.com/v1/paypro/queryPayOutResult"

Precedence: a command-line option, then the environment, then the chosen profile, then the
file's top level. The secret itself is never a key: only ``secret_file``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from .config import APP_NAME
from .errors import ConfigError

# file key -> environment variable
KEYS = {
    "url": "BATCHPAY_URL",
    "query_url": "BATCHPAY_QUERY_URL",
    "balance_url": "BATCHPAY_BALANCE_URL",
    "merchant_no": "BATCHPAY_MERCHANT_NO",
    "secret_file": "BATCHPAY_SECRET_FILE",
    "notify_url": "BATCHPAY_NOTIFY_URL",
    "journal": "BATCHPAY_JOURNAL",
    "ca_bundle": "BATCHPAY_CA_BUNDLE",
    "mobile_pattern": "BATCHPAY_MOBILE_PATTERN",
    "duplicate_codes": "BATCHPAY_DUPLICATE_CODES",
    "processing_statuses": "BATCHPAY_PROCESSING_STATUSES",
    "systemic_codes": "BATCHPAY_SYSTEMIC_CODES",
    "not_found_codes": "BATCHPAY_NOT_FOUND_CODES",
    "amount_format": "BATCHPAY_AMOUNT_FORMAT",
    "sign_skip_empty": "BATCHPAY_SIGN_SKIP_EMPTY",
    "sign_salt": "BATCHPAY_SIGN_SALT",
    "insufficient_balance_codes": "BATCHPAY_INSUFFICIENT_BALANCE_CODES",
    "verify_answer_sign": "BATCHPAY_VERIFY_ANSWER_SIGN",
    # Team controls: these may only tighten the journal's policy (batchpay.team.policy).
    "approvals": "BATCHPAY_APPROVALS",
    "approval_above": "BATCHPAY_APPROVAL_ABOVE",
    "max_row_amount": "BATCHPAY_MAX_ROW_AMOUNT",
    "max_batch_total": "BATCHPAY_MAX_BATCH_TOTAL",
    "daily_total": "BATCHPAY_DAILY_TOTAL",
    "partial_statuses": "BATCHPAY_PARTIAL_STATUSES",
}
PATH_KEYS = {"secret_file", "journal", "ca_bundle"}
NO_SECRET = (
    "{path}: a configuration file holds no secret; put it in a file readable by you only and "
    "give its path as secret_file"
)


def default_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def config_path(option: str | None) -> tuple[Path | None, bool]:
    """The file to read (--config, or $BATCHPAY_CONFIG through the option) and whether it was
    asked for (a missing asked-for file is an error)."""
    if option:
        return Path(option).expanduser(), True
    path = default_path()
    return (path, False) if path.exists() else (None, False)


def _values(table: Mapping[str, object], path: Path, where: str) -> dict[str, str]:
    found = {}
    for key, value in table.items():
        if key == "profile":
            continue
        if key == "secret":
            raise ConfigError(NO_SECRET.format(path=path))
        if key not in KEYS:
            raise ConfigError(
                f"{path}: unknown setting {key!r}{where}; known: {', '.join(sorted(KEYS))}"
            )
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif key in PATH_KEYS:
            # Relative paths are relative to the file that names them.
            value = str((path.parent / Path(str(value)).expanduser()).resolve())
        found[KEYS[key]] = str(value)
    return found


def load(path: Path | None, asked: bool, profile: str | None) -> dict[str, str]:
    """The file's settings as BATCHPAY_* variables: the top level, then the profile's."""
    if path is None:
        if profile:
            raise ConfigError(f"--profile {profile}: no configuration file to take it from")
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if asked:
            raise ConfigError(f"{path}: no such configuration file") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file ({exc})") from None
    settings = _values(document, path, "")
    if profile:
        profiles = document.get("profile", {})
        if not isinstance(profiles, dict) or profile not in profiles:
            known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
            raise ConfigError(
                f"{path}: no profile {profile!r}" + (f"; it has {known}" if known else "")
            )
        settings |= _values(profiles[profile], path, f" in profile {profile!r}")
    return settings


def effective(file_settings: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The environment over the file: options are applied later, over both."""
    return {**file_settings, **env}
