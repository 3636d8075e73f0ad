"""The API server's settings (read as indexer/environment.py says)."""

from __future__ import annotations

import ipaddress

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from indexer.addresses import is_account
from indexer.environment import CommaSeparated, FromEnvironment
from indexer.networks import LOCAL_PASSPHRASE

MIN_SECRET_BYTES = 32  # HS256's own output size: a shorter secret is weaker than the signature (RFC 7518 3.2)


class ApiSettings(FromEnvironment):
    model_config = SettingsConfigDict(hide_input_in_errors=True)  # a refused value may be a secret
    empty_means_none = frozenset({"cors_origins"})

    host: str = Field("127.0.0.1", description="address the API listens on")
    port: int = Field(8080, ge=0, le=65535, description="port the API listens on")
    api_processes: int = Field(
        1, ge=1, le=64, description="processes serving the API on its one port (Linux), each with its own clients, "
                                    "LISTEN connection and limits"
    )
    heartbeat_interval: float = Field(15.0, gt=0, description="seconds between SSE heartbeat comments")
    retry_ms: int = Field(2000, ge=0, description="the reconnection delay SSE clients are told")
    client_buffer: int = Field(
        1000, ge=1, description="events queued for a slow SSE client before it is dropped (it resumes by id)"
    )
    ready_max_lag: int = Field(
        10, ge=0, description="ledgers the indexer may trail the chain before /ready says 503"
    )
    ready_max_cursor_age: float = Field(
        60.0, gt=0, description="seconds since the worker's last poll before /ready says 503 (a stopped or "
        "stuck worker); `flowfi` derives it from the poll interval and the RPC timeout unless it is set",
    )
    auth_jwt_secret: SecretStr | None = Field(
        None, description=f"HS256 secret of at least {MIN_SECRET_BYTES} bytes; turns authentication on"
    )
    auth_jwt_public_key: str | None = Field(
        None, description="RS256 or ES256 public key (PEM); turns authentication on"
    )
    auth_audience: str | None = Field(None, description="the audience tokens must name, if any")
    auth_issuer: str | None = Field(None, description="the issuer tokens must name, if any")
    auth_address_claim: str = Field("sub", description="the claim holding the user's Stellar address")
    auth_admin_claim: str = Field("admin", description="the claim that, when true, grants every row")
    admin_address: str | None = Field(
        None, description="a Stellar address (G...) whose tokens are admin tokens, as FlowFi's backend's "
                          "ADMIN_PUBLIC_KEY (besides the admin claim)",
    )
    v1_jwt_secret: SecretStr | None = Field(
        None, description="HS256 secret of the tokens /v1/auth/verify issues (FlowFi's backend's JWT_SECRET keeps "
                          "its tokens valid); default: the auth secret, else one made per process",
    )
    v1_jwt_issuer: str = Field("flowfi-api", description="the issuer of the tokens /v1/auth/verify issues")
    v1_jwt_audience: str = Field("flowfi-api", description="the audience of the tokens /v1/auth/verify issues")
    auth_challenge_lifetime: float = Field(
        60.0, gt=0, description="seconds a /v1/auth/challenge nonce may be signed and sent to /v1/auth/verify"
    )
    network_passphrase: str = Field(
        LOCAL_PASSPHRASE, description="the network whose transactions sign /v1 login challenges"
    )
    cors_origins: CommaSeparated = Field(
        ("http://localhost:3000", "http://127.0.0.1:3000"),
        description="origins allowed to call the API from a browser, comma-separated (empty: none); the default "
                    "is a Next.js dev server's, by either name",
    )
    max_connections: int = Field(20_000, ge=1, description="SSE connections per process (then 503)")
    max_connections_per_ip: int = Field(50, ge=1, description="SSE connections per client IP (then 429)")
    max_connections_per_user: int = Field(20, ge=1, description="SSE connections per token address (then 429)")
    send_timeout: float = Field(30.0, gt=0, description="seconds a write to an SSE client may take")
    max_connection_lifetime: float = Field(
        3600.0, gt=0, description="seconds before an SSE connection is closed (±10%) for the client to resume"
    )
    header_timeout: float = Field(
        10.0, gt=0, description="seconds a client has to send a request's line and headers (then 408, closed)"
    )
    max_sockets_per_ip: int = Field(
        100, ge=1, description="open TCP connections of any kind from one address (more are closed at once)"
    )
    trusted_proxies: CommaSeparated = Field(
        (), description="addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is believed, "
                        "comma-separated",
    )

    @property
    def authenticating(self) -> bool:
        return self.auth_jwt_secret is not None or self.auth_jwt_public_key is not None

    @property
    def token_signing_secret(self) -> SecretStr | None:
        """The secret /v1/auth/verify signs its tokens with; None: one made by each process."""
        return self.v1_jwt_secret or self.auth_jwt_secret

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry[:60]!r} is not an IP address or network (like 10.0.0.0/8)") from None
        return value

    @field_validator("admin_address")
    @classmethod
    def _an_account(cls, value: str | None) -> str | None:
        if value is not None and not is_account(value):
            raise ValueError("not a Stellar account address (G... with its checksum)")
        return value

    @field_validator("auth_jwt_secret", "v1_jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the HS256 secret is {len(value.get_secret_value().encode())} bytes; it needs at least "
                f"{MIN_SECRET_BYTES} random bytes (e.g. the output of `openssl rand -hex 32`)"
            )
        return value

    @field_validator("auth_jwt_public_key")
    @classmethod
    def _a_public_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            key = load_pem_public_key(value.encode())
        except (ValueError, TypeError):
            raise ValueError("not a PEM public key (-----BEGIN PUBLIC KEY----- ...)") from None
        if not (isinstance(key, rsa.RSAPublicKey)
                or (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1))):
            raise ValueError("the public key must be an RSA key (RS256) or an EC P-256 key (ES256)")
        return value
