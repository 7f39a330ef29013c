"""Habits of a terminal: options where people type them, short batch ids, every setting shown
with its source, help for every option."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import Sandbox, invoke, payroll_rows, write_csv

from batchpay.cli.main import cli


def test_verbose_after_the_command_logs_each_request(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "p.csv", payroll_rows(2))
    result = invoke("run", str(path), "--yes", "-v")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("tradeNo=") == 2


def test_a_batch_is_named_by_an_unambiguous_prefix_of_its_id(
    sandbox: Sandbox, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    batches = []
    for name, start in (("a.csv", 0), ("b.csv", 50)):
        path = write_csv(tmp_path / name, payroll_rows(2, start=start))
        batches.append(json.loads(invoke("run", str(path), "--yes", "--json").stdout)["batch"])
    first = batches[0]
    shared = len(__import__("os").path.commonprefix(batches))
    shown = json.loads(invoke("status", first[: shared + 1], "--json").stdout)
    assert [b["batch"] for b in shown["batches"]] == [first]
    report = tmp_path / "r.csv"
    assert invoke("report", first[: shared + 1], "-o", str(report)).exit_code == 0
    assert report.exists()
    if shared:
        ambiguous = invoke("status", first[:shared])
        assert ambiguous.exit_code == 1 and "names 2 batches" in ambiguous.stderr
    missing = invoke("status", "zzzz")
    assert missing.exit_code == 1 and "no batch 'zzzz'" in missing.stderr


def test_config_show_gives_every_effective_value_and_its_source(
    gateway_env: dict[str, str],
) -> None:
    result = invoke("config", "show", "--json")
    settings = {row["variable"]: row for row in json.loads(result.stdout)["settings"]}
    assert settings["BATCHPAY_DUPLICATE_CODES"] == {
        "key": "duplicate_codes", "variable": "BATCHPAY_DUPLICATE_CODES", "value": "1002",
        "source": "default",
    }  # fmt: skip
    assert settings["BATCHPAY_NOT_FOUND_CODES"]["value"] == "1005"
    assert settings["BATCHPAY_URL"]["source"] == "environment"
    assert settings["BATCHPAY_SECRET"]["value"] == "(set; never shown)"


def test_every_option_of_every_command_has_help() -> None:
    def commands(group: object) -> list[object]:
        found = []
        for command in getattr(group, "commands", {}).values():
            found += [command, *commands(command)]
        return found

    for command in commands(cli):
        for param in command.params:  # type: ignore[attr-defined]
            if param.param_type_name == "option":
                assert param.help, f"{command.name} {param.opts} has no help text"  # type: ignore[attr-defined]


def test_the_version_imports_no_heavy_library(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from batchpay.cli.main import cli\n"
        "try:\n"
        "    cli(['--version'], prog_name='batchpay')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'pandas', 'pyarrow', 'aiohttp', 'numpy', 'openpyxl', 'pandera', 'rich'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip().splitlines()[-1] == "[]", found.stdout
