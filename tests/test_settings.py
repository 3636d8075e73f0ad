"""Settings as the environment gives them: lists written with commas, and values checked where they are read."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flowfi.settings import Settings
from indexer.builds import BUILDS
from indexer.networks import LOCAL_CONTRACT_ID
from tests.commands import run


def test_lists_are_comma_separated_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWFI_CORS_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("FLOWFI_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")
    monkeypatch.setenv("FLOWFI_CONTRACT_IDS", f" {LOCAL_CONTRACT_ID} ,{LOCAL_CONTRACT_ID}")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    assert settings.contract_ids == (LOCAL_CONTRACT_ID,)


def test_an_unknown_contract_build_is_refused_with_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWFI_CONTRACT_BUILD", "v2")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert all(name in str(refused.value) for name in BUILDS)
    for name in BUILDS:
        monkeypatch.setenv("FLOWFI_CONTRACT_BUILD", name)
        assert Settings(_env_file=None).contract_build == name


def test_flowfi_database_url_wins_over_database_url_as_the_docs_say(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a/one")
    monkeypatch.setenv("FLOWFI_DATABASE_URL", "postgresql://b/two")
    database_url = Settings().database_url
    assert database_url is not None and database_url.get_secret_value() == "postgresql://b/two"
    assert "FLOWFI_DATABASE_URL wins" in (Settings.model_fields["database_url"].description or "")


def test_an_empty_cors_origins_lets_no_origin_in_where_an_unset_one_is_the_default(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The docs' and compose's "set it empty": other empty variables mean unset (compose's ${X:-})."""
    default = Settings.model_fields["cors_origins"].default
    monkeypatch.delenv("FLOWFI_CORS_ORIGINS", raising=False)
    assert Settings(_env_file=None).cors_origins == default != ()
    monkeypatch.setenv("FLOWFI_CORS_ORIGINS", "")
    monkeypatch.setenv("FLOWFI_PORT", "")
    settings = Settings(_env_file=None)
    assert (settings.cors_origins, settings.port) == ((), Settings.model_fields["port"].default)
    env_file = tmp_path / ".env"
    env_file.write_text("FLOWFI_CORS_ORIGINS=\n")
    monkeypatch.delenv("FLOWFI_CORS_ORIGINS")
    assert Settings(_env_file=env_file).cors_origins == ()
    monkeypatch.setenv("FLOWFI_CORS_ORIGINS", "https://app.example")  # the environment over the file
    assert Settings(_env_file=env_file).cors_origins == ("https://app.example",)
    env_file.write_text("FLOWFI_CORS_ORIGINS=https://file.example\n")
    monkeypatch.setenv("FLOWFI_CORS_ORIGINS", "")  # set, though empty: over the file too
    assert Settings(_env_file=env_file).cors_origins == ()
    monkeypatch.delenv("FLOWFI_CORS_ORIGINS")
    monkeypatch.setenv("flowfi_cors_origins", "")  # any case, as pydantic reads the others
    assert Settings(_env_file=None).cors_origins == ()
    assert Settings(_env_file=env_file, cors_origins="https://flag.example").cors_origins == ("https://flag.example",)


def test_an_rpc_url_without_its_scheme_is_refused_at_start(tmp_path: Path) -> None:
    """Not retried for ever as a request that cannot be sent; the value is not repeated (it may hold a key)."""
    for given in ("localhost:8000", "ftp://rpc.example", "rpc.example/?key=secret", "http://", "https:///x"):
        with pytest.raises(ValidationError, match="not an http:// or https:// URL with a host: write it") as refused:
            Settings(_env_file=None, rpc_url=given)
        assert "secret" not in str(refused.value)
    assert Settings(_env_file=None, rpc_url="HTTPS://rpc.example").rpc_url == "HTTPS://rpc.example"
    done = run("index", "--rpc-url", "localhost:8310", data_dir=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (
        2, "invalid --rpc-url: not an http:// or https:// URL with a host: write it whole, e.g. http://127.0.0.1:8000")
