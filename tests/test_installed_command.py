"""The installed command works from any directory, package data included."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def batchpay_command() -> str:
    found = shutil.which("batchpay", path=str(Path(sys.executable).parent))
    assert found, "the batchpay console script is not installed beside this Python"
    return found


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHPAY_")}
    env["HOME"] = str(tmp_path / "home")  # the sandbox journal goes to the user data dir
    env.pop("XDG_DATA_HOME", None)
    return env


def test_installed_command_runs_the_sample_from_another_directory(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "payroll.xlsx", tmp_path / "payroll.xlsx")
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run(
        [batchpay_command(), "run", "../payroll.xlsx", "--sandbox", "--yes"],
        cwd=work, env=clean_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "processing" in done.stdout
    workbook = openpyxl.load_workbook(tmp_path / "payroll.result.xlsx", read_only=True)
    rows = list(workbook.active.iter_rows(values_only=True))
    workbook.close()
    header = list(rows[0])
    outcomes = {row[header.index("outcome")] for row in rows[1:]}
    assert outcomes == {"processing"}
    assert len(rows) == 31
    journals = list((tmp_path / "home").rglob("sandbox-journal.sqlite3"))
    assert len(journals) == 1
    assert oct(journals[0].stat().st_mode & 0o777) == "0o600"


def test_python_dash_m_prints_the_version_and_validates(tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "batchpay", "--version"], cwd=tmp_path, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    assert version.stdout.startswith("batchpay, version ")
    bad = subprocess.run(
        [sys.executable, "-m", "batchpay", "validate", str(SAMPLES / "payroll-with-errors.csv")],
        cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert "row 7, column 'Account No': '12-3456-789'" in bad.stdout
