"""Settings: one frozen object, read from FLOWFI_* environment variables (and a .env file), which
command-line flags override. The defaults run everything locally: the local network on port 8000 and
an embedded PostgreSQL in the user's data folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from indexer.rpc import MAX_PAGE_SIZE

LOCAL_PASSPHRASE = "Standalone Network ; February 2017"
TESTNET_PASSPHRASE = "Test SDF Network ; September 2015"
MAINNET_PASSPHRASE = "Public Global Stellar Network ; September 2015"

# Where the local network deploys FlowFi, so that a worker with default settings finds it.
LOCAL_CONTRACT_ID = "CCR2RRS64MGIDMQUAWN3JOPTLWOJVDNN7WGCHNGZCVNGYBUXRV5QHFIG"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLOWFI_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True,
    )

    rpc_url: str = Field("http://127.0.0.1:8000", description="Stellar RPC endpoint")
    network_passphrase: str = Field(LOCAL_PASSPHRASE, description="must match the RPC's getNetwork")
    contract_ids: Annotated[tuple[str, ...], NoDecode] = Field(
        (LOCAL_CONTRACT_ID,), description="FlowFi contract id(s), comma-separated"
    )
    start_ledger: int | None = Field(
        None, ge=1, description="first ledger to index when there is no cursor; default: recent history"
    )
    page_size: int = Field(1000, ge=1, le=MAX_PAGE_SIZE, description="events per getEvents page")
    poll_interval: float = Field(2.0, gt=0, description="seconds between polls once caught up")
    rpc_timeout: float = Field(15.0, gt=0, description="seconds before an RPC request is abandoned")
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("FLOWFI_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="PostgreSQL URL; without one an embedded server runs in data_dir",
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="serve the worker's Prometheus metrics on this port"
    )
    log_format: Literal["text", "json"] = Field("text", description="text for people, json for log collectors")
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
    data_dir: Path = Field(
        platformdirs.user_data_path("flowfi"), description="where the embedded database keeps its files"
    )

    @field_validator("contract_ids", "cors_origins", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("contract_ids")
    @classmethod
    def _check_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from stellar_sdk import StrKey

        if not value:
            raise ValueError("name at least one FlowFi contract id (C...)")
        for contract_id in value:
            if not StrKey.is_valid_contract(contract_id):
                raise ValueError(f"{contract_id!r} is not a valid contract id (a C... strkey)")
        return tuple(sorted(set(value)))
