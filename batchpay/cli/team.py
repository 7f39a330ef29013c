"""``batchpay user`` and ``batchpay policy``: the people in a journal and its policy. The
library (``batchpay.team``) decides who may do what and audits it; this module asks for the
passwords and prints. Nothing printed ever holds a password, a hash or a TOTP secret, except
the otpauth URI that ``user add --totp`` shows once, when the secret is made."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from ..config import journal_path
from .options import journal_option, open_journal, root_options, settings
from .signin import Secrets, as_option, sign_in

if TYPE_CHECKING:
    from ..journal.store import Journal

ROLES = ["preparer", "approver", "admin", "viewer"]  # batchpay.team.users.Role, not imported
# here so that --help and completion do not load argon2 and pyotp
TOTP_ONCE = (
    "TOTP for {name}: add this to the authenticator app now (scan it as a QR code or paste "
    "it); it is shown this once and never again:"
)

NO_ADMIN = (
    "this journal has no admin to set its policy: add one first (batchpay user add NAME "
    "--role admin); until then the settings BATCHPAY_APPROVALS, ... apply alone"
)


def journal_for_writing(option: str | None) -> Journal:
    """The journal, made when it does not exist yet: a team may be set up before any run."""
    from ..journal.store import Journal

    return Journal(journal_path(option, settings(), sandbox=False))


def _head(journal: Journal) -> str:
    from ..team.audit import audit_head, head_text

    return head_text(audit_head(journal))


@click.group("user")
def user_group() -> None:
    """Manage the journal's users: preparer, approver, admin, viewer.

    Until an admin exists, whoever can write the journal may add users; after that, `user
    add`, `disable` and `passwd` need --as ADMIN (`passwd` also --as the user themselves).

    \b
    Example:
        batchpay user add alice --role admin --totp
        batchpay user list
    """


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option("--totp", is_flag=True, help="Also a one-time code at sign-in (shown once).")
@as_option("An admin's name (needed once the journal has an admin).")
@journal_option
def user_add(
    name: str, role: str, totp: bool, as_user: str | None, password_stdin: bool,
    journal_option: str | None,
) -> None:  # fmt: skip
    """Add user NAME with a ROLE; the password is asked for twice (or read with
    --password-stdin: after the --as user's lines, the new password on the next line).

    \b
    Example:
        batchpay user add alice --role admin
        batchpay user add bob --role preparer --as alice --password-stdin
    """
    from ..team.users import Role, acting_for, add_user, check_name

    check_name(name)
    secrets = Secrets(password_stdin)
    with journal_for_writing(journal_option) as journal:
        by = sign_in(journal, as_user, secrets) if as_user else None
        acting_for(journal, by, "add")  # refused before a new password is asked for
        password = secrets.read(f"new password for {name}", new=True)
        added = add_user(journal, name, Role(role), password, by=by, totp=totp)
        click.echo(f"added user {name} ({role}{', with TOTP' if totp else ''})")
        if added.otpauth_uri:
            click.echo(TOTP_ONCE.format(name=name))
            click.echo(f"  {added.otpauth_uri}")
        click.echo(_head(journal))


@user_group.command("list")
@journal_option
@click.option("--json", "as_json", is_flag=True, help="Print the users as one JSON object.")
def user_list(journal_option: str | None, as_json: bool) -> None:
    """List the users: name, role, TOTP or not, disabled or locked, failed sign-ins.

    \b
    Example:
        batchpay user list --json
    """
    from ..team.audit import stamp, utc
    from ..team.users import list_users

    with open_journal(journal_option) as journal:
        users = list_users(journal)
    if as_json:
        click.echo(json.dumps({"users": [asdict(u) for u in users]}))
        return
    if not users:
        click.echo("no users: the journal is used by one trusted operator")
    now = stamp(utc())
    for user in users:
        state = "disabled" if user.disabled else "active"
        if user.locked_until and user.locked_until > now:
            state = f"locked until {user.locked_until}"
        click.echo(
            f"{user.name:<20} {user.role.value:<9} {'totp' if user.has_totp else '-':<5} "
            f"{state}  failed sign-ins {user.failed_sign_ins}  added {user.created_at}"
        )


@user_group.command("disable")
@click.argument("name")
@as_option("An admin's name (needed once the journal has an admin).")
@journal_option
def user_disable(
    name: str, as_user: str | None, password_stdin: bool, journal_option: str | None
) -> None:
    """Disable user NAME for good: no sign-in, no action. The last enabled admin cannot be.

    \b
    Example:
        batchpay user disable bob --as alice
    """
    from ..team.users import disable_user

    with open_journal(journal_option) as journal:
        by = sign_in(journal, as_user, Secrets(password_stdin)) if as_user else None
        changed = disable_user(journal, name, by=by)
        click.echo(f"disabled user {name}" if changed else f"user {name} was disabled already")
        click.echo(_head(journal))


@user_group.command("passwd")
@click.argument("name")
@as_option("An admin's name, or NAME's own (needed once the journal has an admin).")
@journal_option
def user_passwd(
    name: str, as_user: str | None, password_stdin: bool, journal_option: str | None
) -> None:
    """Set a new password for NAME (asked for twice, or read with --password-stdin after the
    --as user's lines); it also clears NAME's failed sign-ins and lock.

    \b
    Example:
        batchpay user passwd bob --as alice
    """
    from ..team.users import acting_for, change_password

    secrets = Secrets(password_stdin)
    with open_journal(journal_option) as journal:
        by = sign_in(journal, as_user, secrets) if as_user else None
        acting_for(journal, by, "passwd", self_name=name)
        password = secrets.read(f"new password for {name}", new=True)
        change_password(journal, name, password, by=by)
        click.echo(f"changed the password of {name}")
        click.echo(_head(journal))


@click.group("policy")
def policy_group() -> None:
    """Show or set the journal's policy: approvals, approval_above, max_row_amount,
    max_batch_total, daily_total. The environment and the configuration file may only
    tighten it (more approvals, lower limits).

    \b
    Example:
        batchpay policy show
        batchpay policy set approvals=2 max_row_amount=50000 --as alice
    """


def _source_labels() -> dict[str, str]:
    root = root_options()
    file_label = f"file {root.config_file}" + (f" [profile.{root.profile}]" if root.profile else "")
    labels = {name: file_label for name in root.from_file}
    labels.update({name: "environment" for name in root.environ if name.startswith("BATCHPAY_")})
    return labels


@policy_group.command("show")
@journal_option
@click.option("--json", "as_json", is_flag=True, help="Print the policy as one JSON object.")
def policy_show(journal_option: str | None, as_json: bool) -> None:
    """Show each policy key: the journal's value, the environment's (or configuration
    file's), the value in force and where it comes from.

    \b
    Example:
        batchpay policy show --json
    """
    from ..team.policy import describe_policy

    with open_journal(journal_option) as journal:
        entries = describe_policy(journal, settings(), _source_labels())
    if as_json:
        click.echo(json.dumps({"policy": [asdict(e) for e in entries]}))
        return

    def shown(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    click.echo(f"{'key':<16} {'journal':>12} {'environment':>12} {'in force':>12}  from")
    for e in entries:
        click.echo(
            f"{e.key:<16} {shown(e.journal):>12} {shown(e.environment):>12} "
            f"{shown(e.effective):>12}  {e.source}"
        )


@policy_group.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@as_option("An admin's name (required).", required=True)
@journal_option
def policy_set(
    assignments: tuple[str, ...], as_user: str, password_stdin: bool,
    journal_option: str | None,
) -> None:  # fmt: skip
    """Set policy keys (KEY= unsets one), as an admin; each change is audited with its old
    and new value.

    \b
    Example:
        batchpay policy set approvals=2 approval_above=100000 --as alice
        batchpay policy set daily_total= --as alice
    """
    from ..errors import AccessError
    from ..team.policy import parse_assignments, set_policy
    from ..team.users import admin_exists

    changes = parse_assignments(assignments)  # a typo is refused before any password
    with open_journal(journal_option) as journal:
        if not admin_exists(journal):
            raise AccessError(NO_ADMIN)
        by = sign_in(journal, as_user, Secrets(password_stdin))
        changed = set_policy(journal, changes, by=by)
        if not changed:
            click.echo("no change: the policy already says so")
        for key, (old, new) in changed.items():
            click.echo(f"policy {key}: {old or '-'} -> {new or '-'}")
        click.echo(_head(journal))
