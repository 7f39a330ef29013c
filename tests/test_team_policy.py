"""The team's policy (batchpay.team.policy; tests/test_policy.py is the send rules'): kept in
the journal, set only by an admin with every change audited, and tightened but never loosened
by the environment or the configuration file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from teamkit import ADMIN, ADMIN_PW, PREPARER, PREPARER_PW, Team

from batchpay.errors import ConfigError
from batchpay.journal.store import Journal
from batchpay.team.policy import Policy, effective_policy


def policy_set(
    team: Team, *assignments: str, name: str = ADMIN, password: str = ADMIN_PW
) -> Result:
    return team.cli("policy", "set", *assignments, "--as", name, "--password-stdin",
                    input=f"{password}\n")  # fmt: skip


def shown(
    team: Team, env: dict[str, str] | None = None, *options: str
) -> dict[str, dict[str, object]]:
    result = team.cli(*options, "policy", "show", "--json", env=env)
    assert result.exit_code == 0, result.output
    return {e["key"]: e for e in json.loads(result.stdout)["policy"]}


@pytest.fixture
def admin(team: Team) -> Team:
    team.add(ADMIN, "admin", ADMIN_PW)
    return team


def test_an_admin_sets_and_unsets_the_policy_and_each_change_is_audited(admin: Team) -> None:
    result = policy_set(admin, "approvals=2", "max_row_amount=50,000", "approval_above=100000.00")
    assert result.exit_code == 0, result.output
    assert "policy approvals: - -> 2" in result.stdout
    assert "policy max_row_amount: - -> 50000" in result.stdout
    policy = shown(admin)
    assert {k: (e["journal"], e["effective"], e["source"]) for k, e in policy.items()} == {
        "approvals": (2, 2, "journal"),
        "approval_above": (100000, 100000, "journal"),
        "max_row_amount": (50000, 50000, "journal"),
        "max_batch_total": (None, None, "default"),
        "daily_total": (None, None, "default"),
    }
    again = policy_set(admin, "approvals=2")
    assert again.exit_code == 0 and "no change" in again.stdout
    unset = policy_set(admin, "max_row_amount=", "approvals=3")
    assert unset.exit_code == 0, unset.output
    assert shown(admin)["max_row_amount"]["effective"] is None
    rows = json.loads(admin.cli("audit", "--json").stdout)["rows"]
    changes = [(r["actor"], r["details"]) for r in rows if r["action"] == "policy_changed"]
    assert changes == [
        (ADMIN, {"key": "approvals", "old": None, "new": "2"}),
        (ADMIN, {"key": "max_row_amount", "old": None, "new": "50000"}),
        (ADMIN, {"key": "approval_above", "old": None, "new": "100000"}),
        (ADMIN, {"key": "max_row_amount", "old": "50000", "new": None}),
        (ADMIN, {"key": "approvals", "old": "2", "new": "3"}),
    ]
    with Journal(admin.journal) as journal:
        assert effective_policy(journal, {}) == Policy(approvals=3, approval_above=100000)


def test_the_environment_tightens_the_policy_and_never_loosens_it(admin: Team) -> None:
    assert policy_set(admin, "approvals=2", "max_row_amount=50000", "approval_above=100000",
                      "daily_total=1000000").exit_code == 0  # fmt: skip
    looser = {"BATCHPAY_APPROVALS": "0", "BATCHPAY_MAX_ROW_AMOUNT": "90000",
              "BATCHPAY_APPROVAL_ABOVE": "500000", "BATCHPAY_DAILY_TOTAL": ""}  # fmt: skip
    policy = shown(admin, looser)
    assert {k: (e["environment"], e["effective"], e["source"]) for k, e in policy.items()} == {
        "approvals": (0, 2, "journal"),
        "approval_above": (500000, 100000, "journal"),
        "max_row_amount": (90000, 50000, "journal"),
        "max_batch_total": (None, None, "default"),
        "daily_total": (None, 1000000, "journal"),
    }
    tighter = {"BATCHPAY_APPROVALS": "3", "BATCHPAY_MAX_ROW_AMOUNT": "1,000",
               "BATCHPAY_APPROVAL_ABOVE": "0", "BATCHPAY_MAX_BATCH_TOTAL": "200000"}  # fmt: skip
    policy = shown(admin, tighter)
    assert {k: (e["effective"], e["source"]) for k, e in policy.items()} == {
        "approvals": (3, "environment"),
        "approval_above": (0, "environment"),
        "max_row_amount": (1000, "environment"),
        "max_batch_total": (200000, "environment"),
        "daily_total": (1000000, "journal"),
    }
    with Journal(admin.journal) as journal:
        assert effective_policy(journal, looser) == Policy(
            approvals=2, approval_above=100000, max_row_amount=50000, daily_total=1000000
        )
        strict = effective_policy(journal, tighter)
    assert strict == Policy(approvals=3, approval_above=0, max_row_amount=1000,
                            max_batch_total=200000, daily_total=1000000)  # fmt: skip
    assert strict.approvals_needed(0) == 0 and strict.approvals_needed(1) == 3


def test_the_configuration_file_may_tighten_too_and_is_named(admin: Team, tmp_path: Path) -> None:
    assert policy_set(admin, "approvals=1").exit_code == 0
    config = tmp_path / "config.toml"
    config.write_text("approvals = 2\nmax_batch_total = 300000\n", encoding="utf-8")
    policy = shown(admin, None, "--config", str(config))
    assert policy["approvals"]["effective"] == 2
    assert policy["approvals"]["source"] == f"file {config}"
    assert policy["max_batch_total"]["effective"] == 300000
    listed = admin.cli("--config", str(config), "config", "show", "--json")
    names = {s["variable"]: s for s in json.loads(listed.stdout)["settings"]}
    assert names["BATCHPAY_APPROVALS"]["value"] == "2"
    assert {"BATCHPAY_APPROVAL_ABOVE", "BATCHPAY_MAX_ROW_AMOUNT", "BATCHPAY_DAILY_TOTAL"} <= set(
        names
    )


def test_a_bad_setting_is_one_line_naming_it_exit_2(admin: Team) -> None:
    for name, value in (("BATCHPAY_APPROVALS", "two"), ("BATCHPAY_MAX_ROW_AMOUNT", "100.5"),
                        ("BATCHPAY_DAILY_TOTAL", "-5"), ("BATCHPAY_APPROVALS", "100")):  # fmt: skip
        result = admin.cli("policy", "show", env={name: value})
        assert result.exit_code == 2, (name, value)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(
            f"batchpay: error: {name} must be"
        )
        assert "Traceback" not in result.output
    with Journal(admin.journal) as journal, pytest.raises(ConfigError, match="BATCHPAY_APPROVALS"):
        effective_policy(journal, {"BATCHPAY_APPROVALS": "-1"})


def test_policy_set_refuses_bad_keys_and_values_before_any_sign_in(admin: Team) -> None:
    for assignment, why in (("approvals", "is not KEY=VALUE"), ("limit=5", "unknown policy key"),
                            ("approvals=x", "policy approvals must be"),
                            ("max_row_amount=1e6", "policy max_row_amount must be")):  # fmt: skip
        result = admin.cli("policy", "set", assignment, "--as", ADMIN, "--password-stdin",
                           input="")  # fmt: skip
        assert result.exit_code == 2 and why in result.stderr, result.stderr
    twice = admin.cli("policy", "set", "approvals=1", "approvals=2", "--as", ADMIN)
    assert twice.exit_code == 2 and "given twice" in twice.stderr
    assert admin.cli("policy", "set", "approvals=1").exit_code == 2  # --as is required
    assert shown(admin)["approvals"]["journal"] is None


def test_only_an_admin_sets_the_policy_and_a_refusal_is_audited(admin: Team) -> None:
    admin.add(PREPARER, "preparer", PREPARER_PW)
    result = policy_set(admin, "approvals=0", name=PREPARER, password=PREPARER_PW)
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == "batchpay: refused: pat is a preparer; this needs the role admin"
    )
    wrong = policy_set(admin, "approvals=0", password="not alice's password")
    assert wrong.exit_code == 1 and "wrong name or password" in wrong.stderr
    assert shown(admin)["approvals"]["journal"] is None
    rows = json.loads(admin.cli("audit", "--json").stdout)["rows"]
    refused = [r for r in rows if r["action"] == "refused"]
    assert [(r["actor"], r["details"]["attempted"]) for r in refused] == [(PREPARER, "policy set")]


def test_policy_set_without_an_admin_says_to_add_one(team: Team) -> None:
    Journal(team.journal).close()
    result = team.cli("policy", "set", "approvals=2", "--as", ADMIN, "--password-stdin",
                      input=f"{ADMIN_PW}\n")  # fmt: skip
    assert result.exit_code == 1
    assert "this journal has no admin to set its policy: add one first" in result.stderr


def test_a_journal_without_policy_has_the_defaults(team: Team) -> None:
    with Journal(team.journal) as journal:
        policy = effective_policy(journal, {})
    assert policy == Policy() and policy.approvals_needed(10**9) == 0
    assert Policy(approvals=2, approval_above=1000).approvals_needed(1000) == 0
    assert Policy(approvals=2, approval_above=1000).approvals_needed(1001) == 2
