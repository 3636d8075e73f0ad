"""docker-compose.yml cannot run here (no Docker engine): check it against the CLI and the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from flowfi.cli import app
from flowfi.settings import Settings
from indexer.networks import LOCAL_CONTRACT_ID, LOCAL_PASSPHRASE

COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]
FLOWFI_SERVICES = [name for name, service in SERVICES.items() if service.get("image") == "flowfi-indexer"]


def test_the_production_shape_is_there() -> None:
    assert {"postgres", "migrate", "worker", "api", "devnet"} <= set(SERVICES)
    assert SERVICES["devnet"]["profiles"] == ["local"]
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("worker", "api"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "api", "devnet"):
        assert "healthcheck" in SERVICES[name], name


@pytest.mark.parametrize("name", FLOWFI_SERVICES)
def test_each_service_runs_a_real_command_with_real_flags(name: str) -> None:
    command, *args = SERVICES[name]["command"]
    assert command in COMMANDS, f"{name}: flowfi has no command {command!r}"
    flags = {opt for param in COMMANDS[command].params for opt in param.opts}
    for arg in args:
        if arg.startswith("--"):
            assert arg in flags, f"{name}: flowfi {command} has no flag {arg}"


@pytest.mark.parametrize("name", FLOWFI_SERVICES)
def test_every_environment_variable_is_a_setting(name: str, no_env: None) -> None:
    environment = SERVICES[name]["environment"]
    fields = {f"FLOWFI_{field.upper()}" for field in Settings.model_fields} | {"DATABASE_URL"}
    for key in environment:
        assert key in fields, f"{name}: {key} is not a setting"
    values = {key: value for key, value in environment.items() if "${" not in str(value)}
    defaults = {key: str(value).split(":-", 1)[1].rstrip("}") for key, value in environment.items()
                if ":-" in str(value)}
    settings = Settings(**{k.removeprefix("FLOWFI_").lower(): v for k, v in {**defaults, **values}.items()
                           if k.startswith("FLOWFI_") and v != ""})
    assert settings.network_passphrase == LOCAL_PASSPHRASE
    assert settings.contract_ids == (LOCAL_CONTRACT_ID,)


def test_the_api_healthcheck_probes_a_route_that_exists() -> None:
    from api.app import create_app

    paths = {getattr(route, "path", None) for route in create_app(Settings(), "postgresql://x/y").routes}
    assert "/ready" in paths and "/health" in paths
    probe = " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert "/ready" in probe
    assert str(SERVICES["api"]["environment"]["FLOWFI_PORT"]) in probe
