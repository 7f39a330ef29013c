"""The README stays true: every command and option it shows exists, and every command's
--help ends with an example."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from batchpay.cli.main import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def shown_commands() -> list[list[str]]:
    """Every `batchpay ...` invocation in the README's code blocks and inline code."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            for part in re.split(r"&&|\|\|", line.split("#")[0]):
                words = shlex.split(part.replace("(", " ").replace(")", " "))
                for i, word in enumerate(words):
                    if word.endswith("batchpay") and i + 1 < len(words):
                        found.append(words[i + 1 :])
    for inline in re.findall(r"`(batchpay [^`]+)`", README):
        # Usage lines: [optional] parts and "..." placeholders.
        words = shlex.split(inline.replace("[", " ").replace("]", " "))[1:]
        found.append([w for w in words if w != "..."])
    return found


def option_names(command: click.Command) -> set[str]:
    return {name for param in command.params for name in param.opts + param.secondary_opts}


@pytest.mark.parametrize("words", shown_commands(), ids=" ".join)
def test_every_command_and_option_in_the_readme_exists(words: list[str]) -> None:
    group_options = option_names(cli) | {"--help", "--version"}
    with_value = {
        name
        for param in cli.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for name in param.opts
    }
    while words and words[0].startswith("-"):
        assert words[0].split("=")[0] in group_options, words[0]
        words = words[2:] if words[0] in with_value else words[1:]
    if not words:
        return
    command = cli.commands.get(words[0])
    assert command is not None, f"README shows `batchpay {words[0]}`, which does not exist"
    # A group's subcommand (`user add`, `config show`): its own options are the ones to check.
    while isinstance(command, click.Group) and len(words) > 1 and words[1] in command.commands:
        command, words = command.commands[words[1]], words[1:]
    known = option_names(command) | {"--help"}
    for word in words[1:]:
        if word.startswith("--") or re.fullmatch(r"-[a-zA-Z]", word):
            assert word.split("=")[0] in known, f"`batchpay {words[0]}` has no option {word}"


def test_the_readme_shows_commands_to_check() -> None:
    assert len(shown_commands()) >= 15


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_help_ends_with_an_example(name: str) -> None:
    help_text = cli.commands[name].help or ""
    assert "Example:" in help_text
    assert f"batchpay {name}" in help_text.split("Example:")[1]


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_help_shows_the_example_on_lines_of_its_own(name: str) -> None:
    from helpers import invoke

    shown = invoke(name, "--help").output
    assert "\\b" not in shown
    assert "\n  Example:\n      batchpay " in shown
