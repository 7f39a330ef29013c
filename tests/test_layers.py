"""The house's layers, checked by importing them in a fresh interpreter: the library never
loads click or the command line's modules (options, the environment and console output are
the command line's job), and the sending path never loads the sandbox (a test double must not
be one import away from the code that moves money)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import batchpay

# The command line (the cli package): the only modules that may import click. __main__ runs it
# on import.
COMMAND_LINE = {"cli", "__main__"}
LIBRARY = sorted(
    info.name.removeprefix("batchpay.")
    for info in pkgutil.walk_packages(batchpay.__path__, "batchpay.")
    if info.name.removeprefix("batchpay.").split(".")[0] not in COMMAND_LINE
)
# Every module a run, a reconcile or a recover sends through.
SENDING_PATH = [
    "payrun", "gateway.sending", "gateway.dispatch", "gateway.client", "gateway.policy",
    "outcomes", "signing", "config", "accounts", "aftersend", "gateway.reconcile", "recover",
    "folder", "balance_check", "gateway.balance",
]  # fmt: skip

# Imports the modules, then says which of the watched modules got loaded and, for each, the
# batchpay modules on the stack when it was first imported (whoever pulled it in).
PROBE = """
import importlib, json, sys, traceback

modules, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
blamed = {}

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in watched and name not in blamed:
            blamed[name] = [
                frame.filename for frame in traceback.extract_stack()
                if "batchpay" in frame.filename and "<frozen" not in frame.filename
            ]
        return None  # only watching: the ordinary finders import it

sys.meta_path.insert(0, Watch())
for module in modules:
    importlib.import_module("batchpay." + module)
print(json.dumps({name: blamed.get(name, []) for name in watched if name in sys.modules}))
"""


def loaded(modules: list[str], watched: list[str], tmp_path: Path) -> dict[str, list[str]]:
    """Of ``watched``, those loaded by importing ``modules``, with who imported each."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(modules), json.dumps(watched)],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_library_never_imports_click_or_the_command_line(tmp_path: Path) -> None:
    assert {"payrun", "folder", "journal.store", "sandbox.server"} <= set(LIBRARY)
    command_line = ["batchpay.cli"]
    assert loaded(LIBRARY, ["click", *command_line], tmp_path) == {}


def test_the_sending_path_never_imports_the_sandbox(tmp_path: Path) -> None:
    assert loaded(SENDING_PATH, ["batchpay.sandbox"], tmp_path) == {}


def test_the_probe_sees_an_import_and_names_who_made_it(tmp_path: Path) -> None:
    # The checks above pass trivially if the probe cannot see anything: it can.
    found = loaded(["cli.main"], ["click", "batchpay.sandbox"], tmp_path)
    assert list(found) == ["click"]
    assert any(path.endswith("cli/main.py") for path in found["click"])
    sandbox = loaded(["sandbox.server"], ["batchpay.sandbox", "aiohttp"], tmp_path)
    assert set(sandbox) == {"batchpay.sandbox", "aiohttp"}
