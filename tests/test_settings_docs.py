"""The settings' documentation is generated from the Settings class, and says the truth about flags."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from flowfi import cli
from flowfi.settings import Settings
from flowfi.settings_docs import (
    ENV_EXAMPLE,
    README,
    SHOWN_DEFAULTS,
    default_text,
    env_example,
    env_name,
    flags,
    settings_table,
    with_table,
)


def test_the_readme_table_is_generated_from_every_setting() -> None:
    readme = README.read_text()
    assert with_table(readme) == readme, "README.md's settings table is out of date: run `make docs`"
    table = settings_table()
    for field in Settings.model_fields:
        assert f"`{env_name(field)}`" in table, f"{env_name(field)} is missing from the table"


def test_the_env_example_is_generated_from_every_setting() -> None:
    assert ENV_EXAMPLE.read_text() == env_example(), ".env.example is out of date: run `make docs`"
    names = {line.lstrip("#").split("=", 1)[0] for line in env_example().splitlines() if "=" in line}
    assert names == {"DATABASE_URL"} | {f"FLOWFI_{f.upper()}" for f in Settings.model_fields if f != "database_url"}


class Captured(Exception):
    pass


def required_arguments(command: str) -> list[str]:
    """Placeholders for what `flowfi <command>` cannot run without, so that it gets as far as its settings."""
    placeholders: list[str] = []
    for param in typer.main.get_command(cli.app).commands[command].params:  # type: ignore[attr-defined]
        if param.required:
            placeholders += ["x"] if param.param_type_name == "argument" else [param.opts[0], "x"]
    return placeholders


@pytest.mark.parametrize(("field", "usage"), [(field, usage) for field, usages in flags().items() for usage in usages])
def test_each_flag_the_docs_name_sets_its_setting(field: str, usage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def capture(**given: Any) -> Settings:
        seen.update(given)
        raise Captured

    monkeypatch.setattr(cli, "load_settings", capture)
    command, flag = usage.split(" ")
    result = CliRunner().invoke(cli.app, [command, *required_arguments(command), flag, "7"])
    assert isinstance(result.exception, Captured), result.output
    assert float(str(seen.get(field))) == 7, f"flowfi {usage} does not set {field}: {seen}"


def test_each_flag_of_a_setting_says_its_default_as_the_table_does() -> None:
    commands = typer.main.get_command(cli.app).commands  # type: ignore[attr-defined]
    for field, usages in flags().items():
        default = default_text(field)
        for usage in usages:
            command, flag = usage.split(" ")
            help_text = next(p.help for p in commands[command].params if p.opts[0] == flag)
            names = "DATABASE_URL or FLOWFI_DATABASE_URL" if field == "database_url" else env_name(field)
            expected = f"[{names}]" if default == "unset" else f"[{names}; default: {default}]"
            assert help_text.endswith(expected), f"flowfi {usage}: {help_text!r}"


def test_each_default_the_table_shows_reads_back_as_that_default(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for field, info in Settings.model_fields.items():
        shown = default_text(field)
        if field in SHOWN_DEFAULTS or shown == "unset":
            continue
        assert shown.startswith("`") and shown.endswith("`"), (field, shown)
        with monkeypatch.context() as patched:
            patched.setenv(env_name(field), shown[1:-1])
            assert getattr(Settings(), field) == info.default, f"{env_name(field)}={shown[1:-1]} is not the default"


def test_the_derived_cursor_age_shown_is_the_one_flowfi_derives(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLOWFI_READY_MAX_CURSOR_AGE", "FLOWFI_POLL_INTERVAL", "FLOWFI_RPC_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    shown = re.search(r"`(\d+)`", default_text("ready_max_cursor_age"))
    assert shown is not None and float(shown[1]) == Settings(_env_file=None).ready_max_cursor_age
    assert "\n#FLOWFI_READY_MAX_CURSOR_AGE=\n" in env_example(), ".env.example shows no figure it does not derive"
