"""How the worker's and the API's settings are read: from FLOWFI_* environment variables (and a .env
file), which command-line flags override, into one frozen object; a list is written comma-separated."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class FromEnvironment(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLOWFI_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True,
        env_ignore_empty=True,  # an empty variable (compose's ${X:-}) means unset
    )


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]
