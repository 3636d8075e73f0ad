"""How the worker's and the API's settings are read: from FLOWFI_* environment variables (and a .env
file), which command-line flags override, into one frozen object; a list is written comma-separated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar

from dotenv import dotenv_values
from pydantic import BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class FromEnvironment(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLOWFI_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True,
        env_ignore_empty=True,  # an empty variable (compose's ${X:-}) means unset...
    )
    # ...but for these lists it means none, as their docs say
    empty_means_none: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        return init_settings, _EmptyLists(settings_cls, dotenv_settings), env_settings, dotenv_settings, \
            file_secret_settings


class _EmptyLists(PydanticBaseSettingsSource):
    """An empty tuple for each of `empty_means_none` whose variable is set empty: in the environment, else
    in the .env file. A variable set in the environment, empty or not, wins over the file's (for the other
    settings an empty one counts as unset, and the file's applies). Names match in any case, as pydantic
    reads them."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: DotEnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        names: frozenset[str] = getattr(self.settings_cls, "empty_means_none", frozenset())
        if not names:
            return {}
        files = self.dotenv.env_file
        in_files: dict[str, str | None] = {}
        for path in [files] if isinstance(files, str | Path) else files or []:
            if Path(path).expanduser().is_file():
                in_files.update(dotenv_values(Path(path).expanduser(), encoding=self.dotenv.env_file_encoding))
        exact = self.config.get("case_sensitive", False)
        environment = {key if exact else key.upper(): value for key, value in os.environ.items()}
        in_files = {key if exact else key.upper(): value for key, value in in_files.items()}
        prefix = self.config.get("env_prefix", "")
        found: dict[str, Any] = {}
        for name in names:
            variable = f"{prefix}{name}" if exact else f"{prefix}{name}".upper()
            value = environment[variable] if variable in environment else in_files.get(variable)
            if value is not None and not value.strip():
                found[name] = ()
        return found


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]
