"""How the worker's and the API's settings are read: from FLOWFI_* environment variables (and a .env
file), which command-line flags override, into one frozen object; a list is written comma-separated."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
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
        return init_settings, _EmptyLists(settings_cls, dotenv_settings.env_file), env_settings, dotenv_settings, \
            file_secret_settings


class _EmptyLists(PydanticBaseSettingsSource):
    """An empty tuple for each of `empty_means_none` whose variable is set empty: in the environment, else
    in the .env file, both read as pydantic reads them (names in any case, ~ expanded) but keeping empty
    values. A variable set in the environment, empty or not, wins over the file's (for the other settings
    an empty one counts as unset, and the file's applies)."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: Any) -> None:
        super().__init__(settings_cls)
        self.env_file = env_file

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        names: frozenset[str] = getattr(self.settings_cls, "empty_means_none", frozenset())
        if not names:
            return {}
        sources = (EnvSettingsSource(self.settings_cls, env_ignore_empty=False),
                   DotEnvSettingsSource(self.settings_cls, env_file=self.env_file, env_ignore_empty=False))
        found: dict[str, Any] = {}
        for name in names:
            for source in sources:
                variable = f"{source.env_prefix}{name}"
                value = source.env_vars.get(variable if source.case_sensitive else variable.lower())
                if value is not None:
                    if not value.strip():
                        found[name] = ()
                    break
        return found


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]
