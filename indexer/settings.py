"""The worker's settings (read as indexer/environment.py says). The defaults read the local network
(indexer/networks.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from indexer.addresses import is_contract
from indexer.builds import NEWEST, build_name
from indexer.environment import CommaSeparated, FromEnvironment
from indexer.networks import LOCAL_CONTRACT_ID, LOCAL_PASSPHRASE, LOCAL_RPC_PORT
from indexer.rpc import MAX_PAGE_SIZE


class IndexerSettings(FromEnvironment):
    rpc_url: str = Field(f"http://127.0.0.1:{LOCAL_RPC_PORT}", description="Stellar RPC endpoint")
    network_passphrase: str = Field(LOCAL_PASSPHRASE, description="must match the RPC's getNetwork")
    contract_ids: CommaSeparated = Field(
        (LOCAL_CONTRACT_ID,), description="FlowFi contract id(s), comma-separated"
    )
    start_ledger: int | None = Field(
        None, ge=1, description="first ledger to index when there is no cursor; default: recent history"
    )
    page_size: int = Field(1000, ge=1, le=MAX_PAGE_SIZE, description="events per getEvents page")
    poll_interval: float = Field(2.0, gt=0, description="seconds between polls once caught up")
    rpc_timeout: float = Field(15.0, gt=0, description="seconds an RPC request may wait at each step (connecting, "
                                                       "each read); a whole answer has four times that")
    contract_build: str = Field(
        NEWEST.name, description="the contract build deployed before any upgrade the index sees (see indexer/builds.py)"
    )
    lake_url: str | None = Field(
        None, description="a data lake of the network (SEP-54): ledgers older than the RPC keeps are read from it"
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="serve the worker's Prometheus metrics on this port"
    )

    @field_validator("contract_ids")
    @classmethod
    def _check_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one FlowFi contract id (C...)")
        for contract_id in value:
            if not is_contract(contract_id):
                raise ValueError(f"{contract_id!r} is not a valid contract id (a C... strkey)")
        return tuple(sorted(set(value)))

    @field_validator("contract_build")
    @classmethod
    def _known_build(cls, value: str) -> str:
        return build_name(value)

    @field_validator("rpc_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # without a scheme or a host, every request would fail the same way, retried for ever
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http:// or https:// URL with a host: write it whole, e.g. "
                             f"http://127.0.0.1:{LOCAL_RPC_PORT}")
        return value
