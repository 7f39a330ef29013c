"""The configuration file, profiles and precedence; config show and config check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import MERCHANT, SECRET, Sandbox, invoke, payroll_rows, write_csv


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("BATCHPAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    return secret


def write_config(path: Path, sandbox: Sandbox, journal: Path) -> Path:
    path.write_text(
        f"""
merchant_no = "{MERCHANT}"
secret_file = "secret"
notify_url = "https://merchant.example.com/notify"
journal = "{journal}"
url = "http://127.0.0.1:9/wrong"

[profile.sandbox]
url = "{sandbox.server.payout_url}"
query_url = "{sandbox.server.query_url}"
""",
        encoding="utf-8",
    )
    return path


def test_a_profile_of_the_config_file_runs_a_batch(
    sandbox: Sandbox, clean_env: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "batchpay.toml", sandbox, tmp_path / "j.sqlite3")
    path = write_csv(tmp_path / "p.csv", payroll_rows(3))
    result = invoke("--config", str(config), "--profile", "sandbox", "run", str(path), "--yes",
                    "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"processing": 3}
    assert json.loads(result.stdout)["journal"] == str(tmp_path / "j.sqlite3")
    # Without the profile, the top level's URL applies (nothing listens there): the run stops.
    other = write_csv(tmp_path / "q.csv", payroll_rows(2, start=50))
    stopped = invoke("--config", str(config), "run", str(other), "--yes", "--json",
                     "--max-attempts", "1")  # fmt: skip
    assert stopped.exit_code == 4
    assert len(sandbox.gateway.orders) == 3


def test_environment_beats_the_file_and_options_beat_the_environment(
    sandbox: Sandbox, clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "batchpay.toml", sandbox, tmp_path / "file.sqlite3")
    monkeypatch.setenv("BATCHPAY_CONFIG", str(config))
    monkeypatch.setenv("BATCHPAY_PROFILE", "sandbox")
    monkeypatch.setenv("BATCHPAY_JOURNAL", str(tmp_path / "env.sqlite3"))
    shown = json.loads(invoke("config", "show", "--json").stdout)
    by_name = {row["variable"]: row for row in shown["settings"]}
    assert by_name["BATCHPAY_JOURNAL"]["value"] == str(tmp_path / "env.sqlite3")
    assert by_name["BATCHPAY_JOURNAL"]["source"] == "environment"
    assert by_name["BATCHPAY_URL"]["value"] == sandbox.server.payout_url
    assert "[profile.sandbox]" in by_name["BATCHPAY_URL"]["source"]
    assert by_name["BATCHPAY_SECRET_FILE"]["value"] == str(clean_env)  # relative to the file
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    option = tmp_path / "option.sqlite3"
    result = invoke("run", str(path), "--yes", "--json", "--journal", str(option))
    assert json.loads(result.stdout)["journal"] == str(option)


def test_config_show_never_shows_the_secret(
    sandbox: Sandbox, clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHPAY_SECRET", SECRET)
    result = invoke("config", "show")
    assert result.exit_code == 0
    assert SECRET not in result.output
    assert "(set; never shown)" in result.output


def test_config_check_passes_with_good_settings_and_names_what_fails(
    sandbox: Sandbox, clean_env: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "batchpay.toml", sandbox, tmp_path / "j.sqlite3")
    good = invoke("--config", str(config), "--profile", "sandbox", "config", "check")
    assert good.exit_code == 0, good.output
    assert good.stdout.count("ok  ") == 4
    for passed in ("settings present", "secret readable", "payout URL reachable",
                   "query URL reachable"):  # fmt: skip
        assert f"ok   {passed}\n" in good.stdout
    bad = invoke("--config", str(config), "config", "check")  # the top level's URL is wrong
    assert bad.exit_code == 2
    assert "FAIL payout URL reachable: 127.0.0.1:9 is not reachable" in bad.stdout


def test_a_secret_key_or_a_missing_profile_in_the_file_is_a_clear_error(
    clean_env: Path, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('secret = "hunter2"\n')
    result = invoke("--config", str(config), "config", "show")
    assert result.exit_code == 2
    assert "holds no secret" in result.stderr and "hunter2" not in result.output
    config.write_text('merchant_no = "M"\n[profile.a]\nurl = "http://x.example/p"\n')
    missing = invoke("--config", str(config), "--profile", "b", "config", "show")
    assert missing.exit_code == 2 and "no profile 'b'; it has a" in missing.stderr
