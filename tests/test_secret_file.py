"""The secret file (issue 13, Settings): readable by group or others is a warning that says how
to fix it, in run, config show and config check; a file that is not UTF-8 text is a
configuration error (exit 2), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import SECRET, Sandbox, invoke, payroll_rows, write_csv


@pytest.fixture
def secret_file(
    gateway_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The sandbox's secret in a file, owner-only, named by BATCHPAY_SECRET_FILE."""
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    monkeypatch.delenv("BATCHPAY_SECRET")
    monkeypatch.setenv("BATCHPAY_SECRET_FILE", str(path))
    return path


def test_a_secret_file_others_can_read_is_a_warning_with_the_fix_everywhere(
    sandbox: Sandbox, secret_file: Path, tmp_path: Path
) -> None:
    secret_file.chmod(0o644)
    fix = f"run `chmod 600 {secret_file}`"
    run = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(2))), "--yes", "--json")
    assert run.exit_code == 0, run.output
    assert fix in run.stderr and "its group and others (mode 644)" in run.stderr
    assert json.loads(run.stdout)["counts"] == {"processing": 2}  # a warning stops nothing

    shown = invoke("config", "show", "--json")
    assert shown.exit_code == 0
    [warning] = json.loads(shown.stdout)["warnings"]
    assert fix in warning and fix in shown.stderr
    assert fix in invoke("config", "show").stderr

    checked = invoke("config", "check")
    assert checked.exit_code == 0, checked.output
    assert f"warn secret file permissions: BATCHPAY_SECRET_FILE {secret_file}" in checked.stdout
    assert fix in checked.stdout
    assert SECRET not in run.output + shown.output + checked.output

    secret_file.chmod(0o640)
    assert "can be read by its group (mode 640)" in invoke("config", "show").stderr
    secret_file.chmod(0o602)
    assert "can be changed by others (mode 602)" in invoke("config", "show").stderr


def test_an_owner_only_secret_file_gives_no_warning(
    sandbox: Sandbox, secret_file: Path, tmp_path: Path
) -> None:
    run = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(2))), "--yes", "--json")
    assert run.exit_code == 0, run.output
    assert "chmod" not in run.output
    assert json.loads(invoke("config", "show", "--json").stdout)["warnings"] == []
    assert "warn" not in invoke("config", "check").stdout


def test_a_secret_file_that_is_not_utf8_text_is_a_configuration_error(
    sandbox: Sandbox, secret_file: Path, tmp_path: Path
) -> None:
    secret_file.write_bytes(b"\xff\xfes\x00e\x00c\x00")  # UTF-16, as Notepad's "Unicode"
    message = f"BATCHPAY_SECRET_FILE {secret_file} is not UTF-8 text (byte 1 cannot be read)"
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    for args in (("run", str(path), "--yes"), ("listen", "--port", "0"),
                 ("reconcile",)):  # fmt: skip
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sandbox.gateway.payout_requests == []  # nothing sent
    checked = invoke("config", "check")
    assert checked.exit_code == 2
    assert f"FAIL secret readable: {message}" in checked.stdout


def test_a_secret_file_saved_with_a_byte_order_mark_signs_correctly(
    sandbox: Sandbox, secret_file: Path, tmp_path: Path
) -> None:
    secret_file.write_text("\ufeff" + SECRET + "\r\n", encoding="utf-8")
    run = invoke("run", str(write_csv(tmp_path / "p.csv", payroll_rows(2))), "--yes", "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["counts"] == {"processing": 2}
