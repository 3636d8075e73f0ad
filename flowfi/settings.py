"""All of the settings, as the `flowfi` command reads them: the worker's and the API's, and where the
database is. One frozen object from FLOWFI_* environment variables (and a .env file); flags override."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr

from api.settings import ApiSettings
from indexer.settings import IndexerSettings


class Settings(IndexerSettings, ApiSettings):
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("FLOWFI_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="PostgreSQL URL; without one an embedded server runs in data_dir",
    )
    data_dir: Path = Field(
        platformdirs.user_data_path("flowfi"), description="where the embedded database keeps its files"
    )
    log_format: Literal["text", "json"] = Field("text", description="text for people, json for log collectors")
