"""The README stays true: every setting, every command, the first-screen commands."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer
from typer.core import TyperGroup

from formafriend_scheduler.cli.app import app
from formafriend_scheduler.config import Settings, env_name_of

REPO = Path(__file__).parents[1]
README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def test_the_first_screen_has_the_two_set_up_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:20])
    for script in ("./scripts/demo", "./scripts/test"):
        assert script in first_screen
        assert os.access(REPO / script, os.X_OK)
    ci = (REPO / ".ci" / "run").read_text()
    assert re.findall(r"^(?:exec )?(\./scripts/test\S*)$", ci, re.MULTILINE) == [
        "./scripts/test",
        "./scripts/test-faked-clock",
    ]
    assert os.access(REPO / "scripts/test-faked-clock", os.X_OK)


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    rows = set(re.findall(r"^\| `([A-Z_]+)`", section("Configuration"), re.MULTILINE))
    assert {env_name_of(name) for name in Settings.model_fields} <= rows


def test_every_command_is_in_the_commands_table() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    table = section("Commands")
    for name, command in root.commands.items():
        if isinstance(command, TyperGroup):
            for sub in command.commands:
                assert f"| `{name} {sub}" in table
        else:
            assert f"| `{name}" in table


def test_the_readme_has_the_sections_a_newcomer_needs() -> None:
    for title in (
        "What it does, and for whom",
        "Quick start",
        "Commands",
        "Exit codes",
        "Configuration",
        "Deployment",
        "Monitoring",
        "Tests",
        "Benchmarks",
        "Troubleshooting",
    ):
        assert f"\n## {title}\n" in README
