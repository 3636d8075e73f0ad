"""The API server's settings: one frozen object, read from FLOWFI_* environment variables (and a .env
file), which command-line flags override."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLOWFI_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True,
        env_ignore_empty=True,  # an empty variable (compose's ${X:-}) means unset
    )

    host: str = Field("127.0.0.1", description="address the API listens on")
    port: int = Field(8080, ge=0, le=65535, description="port the API listens on")
    heartbeat_interval: float = Field(15.0, gt=0, description="seconds between SSE heartbeat comments")
    retry_ms: int = Field(2000, ge=0, description="the reconnection delay SSE clients are told")
    client_buffer: int = Field(
        1000, ge=1, description="events queued for a slow SSE client before it is dropped (it resumes by id)"
    )
    ready_max_lag: int = Field(
        10, ge=0, description="ledgers the indexer may trail the chain before /ready says 503"
    )
    auth_jwt_secret: SecretStr | None = Field(None, description="HS256 secret; turns authentication on")
    auth_jwt_public_key: str | None = Field(
        None, description="RS256/ES256 public key (PEM); turns authentication on"
    )
    auth_audience: str | None = Field(None, description="the audience tokens must name, if any")
    auth_issuer: str | None = Field(None, description="the issuer tokens must name, if any")
    auth_address_claim: str = Field("sub", description="the claim holding the user's Stellar address")
    auth_admin_claim: str = Field("admin", description="the claim that, when true, grants every row")
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="origins allowed to call the API from a browser, comma-separated"
    )
    max_connections: int = Field(20_000, ge=1, description="SSE connections per process (then 503)")
    max_connections_per_ip: int = Field(50, ge=1, description="SSE connections per client IP (then 429)")
    max_connections_per_user: int = Field(20, ge=1, description="SSE connections per token address (then 429)")
    send_timeout: float = Field(30.0, gt=0, description="seconds a write to an SSE client may take")
    max_connection_lifetime: float = Field(
        3600.0, gt=0, description="seconds before an SSE connection is closed (±10%) for the client to resume"
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
