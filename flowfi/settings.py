"""All of the settings, as the `flowfi` command reads them: the worker's and the API's, and where the
database is. One frozen object from FLOWFI_* environment variables (and a .env file); flags override."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, model_validator

from api.settings import ApiSettings
from indexer.settings import IndexerSettings


class Settings(IndexerSettings, ApiSettings):
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("FLOWFI_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="PostgreSQL URL (FLOWFI_DATABASE_URL wins where both are set); without one an embedded server "
                    "runs in data_dir",
    )
    data_dir: Path = Field(
        platformdirs.user_data_path("flowfi"), description="where the embedded database keeps its files"
    )
    log_format: Literal["text", "json"] = Field("text", description="text for people, json for log collectors")

    @model_validator(mode="before")
    @classmethod
    def _derive_cursor_age(cls, values: Any) -> Any:
        """The API calls the worker stuck when its cursor is older than two polls that each took the
        RPC timeout, plus ten seconds, unless told otherwise."""
        if isinstance(values, dict) and values.get("ready_max_cursor_age") is None:
            poll = float(values.get("poll_interval") or IndexerSettings.model_fields["poll_interval"].default)
            timeout = float(values.get("rpc_timeout") or IndexerSettings.model_fields["rpc_timeout"].default)
            values = {**values, "ready_max_cursor_age": 2 * (poll + timeout) + 10}
        return values
