"""A chain saved in a folder is continued as if it had never stopped: the same ledgers, events, storage
and traffic; a save cut short leaves the last one whole; a state that cannot be continued is refused
with what differs."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from devnet import Devnet, StateMismatch, running_devnet
from devnet.chain import Chain
from devnet.saved import LEDGERS, STATE, SavedChain
from devnet.traffic import Traffic
from tests.devnet_model import ADMIN, RECIPIENT, SENDER, TOKEN, TREASURY, Recording

T0 = 1_800_000_000
MINE = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "amount": 10**9, "duration": 10**6}


def storage(chain: Chain) -> dict[str, Any]:
    """What the contract and the tokens keep, as comparable values."""
    contract = chain.contract
    return {
        "streams": {i: dataclasses.asdict(stream) for i, stream in contract.streams.items()},
        "config": None if contract.config is None else dataclasses.asdict(contract.config),
        "counter": contract.stream_counter, "build": contract.build, "milestones": dict(contract.milestones),
        "attested": dict(contract.attested), "lifetimes": dict(contract.lifetimes.items()),
        "tokens": list(chain.tokens), "token lifetimes": dict(chain.tokens.lifetimes.items()),
    }


def events(chain: Chain) -> list[bytes]:
    return [event.json for event in chain.scan(after="", end_ledger=10**9, limit=10**9)]


def load(folder: Path, *, clock: float = T0, build: str = "c9f5d2e") -> tuple[Chain, Traffic]:
    loaded = SavedChain(folder).load(passphrase=Chain().passphrase, contract_id=Chain().contract_id, build=build,
                                     clock=lambda: clock)
    assert loaded is not None
    return loaded


def busy_chain(ledgers: int = 60) -> tuple[Chain, Traffic]:
    """A chain whose protocol and first stream are a user's, with random traffic for `ledgers` ledgers."""
    chain = Chain(genesis_time=T0, clock=lambda: T0)
    chain.execute("initialize", {"admin": ADMIN, "treasury": TREASURY, "fee_rate_bps": 10})
    assert chain.execute("create_stream", MINE).result == 1
    traffic = Traffic(seed=9)
    chain.traffic, chain.traffic_per_ledger = traffic, 6
    for _ in range(ledgers):
        chain.close_ledger()
    return chain, traffic


def test_a_saved_chain_continues_identically_with_its_traffic(tmp_path: Path) -> None:
    chain, traffic = busy_chain()
    SavedChain(tmp_path).save(chain, traffic)
    loaded, loaded_traffic = load(tmp_path)
    assert loaded.ledger_range() == chain.ledger_range()
    assert events(loaded) == events(chain) and loaded.event_count == chain.event_count
    assert storage(loaded) == storage(chain)
    # both go on with the same traffic, closing the same ledgers
    loaded.traffic, loaded.traffic_per_ledger = loaded_traffic, 6
    for _ in range(40):
        assert loaded.close_ledger(chain.latest.close_time + 7) == chain.close_ledger(chain.latest.close_time + 7)
    assert events(loaded) == events(chain)
    assert storage(loaded) == storage(chain)


def test_the_restored_traffic_acts_on_its_own_streams_only(tmp_path: Path) -> None:
    chain, traffic = busy_chain()
    before_save = set(chain.contract.streams) - {1}
    SavedChain(tmp_path).save(chain, traffic)
    loaded, loaded_traffic = load(tmp_path)
    mine = dataclasses.asdict(loaded.contract.streams[1])
    recording = Recording(loaded_traffic)
    loaded.traffic, loaded.traffic_per_ledger = recording, 6
    for _ in range(150):
        loaded.close_ledger()
    assert loaded.failed_transactions == 0
    assert dataclasses.asdict(loaded.contract.streams[1]) == mine, "the user's stream is left alone"
    named = {args.get("stream_id") for _, args in recording.calls} | {
        i for _, args in recording.calls for i in args.get("stream_ids", ())}
    assert 1 not in named
    assert named & before_save, "it goes on with the streams it created before the save"


def test_a_loaded_chain_closes_its_next_ledgers_at_the_current_time(tmp_path: Path) -> None:
    chain, traffic = busy_chain(5)
    SavedChain(tmp_path).save(chain, traffic)
    hours_later = chain.latest.close_time + 3 * 3600
    loaded, _ = load(tmp_path, clock=hours_later + 0.4)
    assert loaded.close_ledger().close_time == hours_later
    assert loaded.close_ledger().close_time == hours_later + 1, "close times still increase"


def test_saves_append_the_new_ledgers_and_a_save_cut_short_leaves_the_last_one(tmp_path: Path) -> None:
    chain, traffic = busy_chain(20)
    saved = SavedChain(tmp_path)
    saved.save(chain, traffic)
    first_state, first_ledgers = (tmp_path / STATE).read_bytes(), (tmp_path / LEDGERS).read_bytes()
    size = len(first_ledgers)
    for _ in range(10):
        chain.close_ledger()
    saved.save(chain, traffic)
    ledgers = (tmp_path / LEDGERS).read_bytes()
    assert len(ledgers) > size and ledgers[:size] == first_ledgers, "the new ledgers are appended"
    # the ledgers of a save whose state was never written, and the half of a record, are cut off
    (tmp_path / STATE).write_bytes(first_state)
    with open(tmp_path / LEDGERS, "ab") as file:
        file.write(b'{"sequence": 99')
    loaded, loaded_traffic = load(tmp_path)
    assert loaded.latest.sequence == chain.latest.sequence - 10
    assert (tmp_path / LEDGERS).stat().st_size == size
    # and the next save goes on from there
    loaded.close_ledger()
    SavedChain(tmp_path).save(loaded, loaded_traffic)
    again, _ = load(tmp_path)
    assert again.latest == loaded.latest and events(again) == events(loaded)


def test_the_ledgers_file_keeps_what_the_chain_keeps(tmp_path: Path) -> None:
    chain = Chain(genesis_time=T0, retention=5)
    saved = SavedChain(tmp_path)
    for _ in range(3):
        chain.execute("create_stream", MINE)
    saved.save(chain, Traffic(seed=1))
    for _ in range(30):
        chain.execute("create_stream", MINE)
        saved.save(chain, Traffic(seed=1))
    records = [json.loads(line) for line in (tmp_path / LEDGERS).read_bytes().splitlines() if b'"sequence"' in line]
    assert len(records) <= 2 * chain.retention + 1
    loaded, _ = load(tmp_path)
    assert loaded.ledger_range() == chain.ledger_range()
    assert events(loaded) == events(chain) and loaded.event_count == chain.event_count == 5


def test_a_devnet_saves_its_chain_while_it_runs_and_when_it_stops(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("devnet.SAVE_INTERVAL", 0.05)
    with running_devnet(state=tmp_path, ledger_interval=0.02, traffic_per_ledger=2, seed=4) as devnet:
        assert not devnet.continued
        deadline = time.monotonic() + 10
        while not (tmp_path / STATE).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (tmp_path / STATE).exists(), "saved while it runs"
    last = devnet.chain.latest
    with running_devnet(state=tmp_path) as again:
        assert again.continued
        assert again.chain.ledger(last.sequence) == last, "saved once more when it stopped"
        assert storage(again.chain) == storage(devnet.chain)


def test_a_running_devnet_saves_each_ledger_it_closes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a `kill -9` would leave: the folder read while the chain runs holds its latest ledger, or the
    one before while that is being saved, not the chain of the last periodic save."""
    monkeypatch.setattr("devnet.SAVE_INTERVAL", 3600)
    with running_devnet(state=tmp_path, ledger_interval=0.05, traffic_per_ledger=2, seed=4) as devnet:
        time.sleep(0.6)
        before = devnet.chain.latest.sequence
        saved = json.loads((tmp_path / STATE).read_bytes().partition(b"\n")[0])["latest"]
        after = devnet.chain.latest.sequence
    assert before >= 4
    assert before - 1 <= saved <= after


def test_a_devnet_in_manual_mode_saves_the_ledgers_closed_by_hand_periodically(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("devnet.SAVE_INTERVAL", 0.05)
    with running_devnet(state=tmp_path) as devnet:
        for _ in range(3):
            devnet.chain.close_ledger()
        latest = devnet.chain.latest.sequence
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (tmp_path / STATE).exists():
                saved = json.loads((tmp_path / STATE).read_bytes().partition(b"\n")[0])["latest"]
                if saved == latest:
                    break
            time.sleep(0.02)
        else:
            raise AssertionError("the ledgers closed by hand were not saved while the devnet ran")


def test_a_state_of_another_format_network_contract_or_build_is_refused(tmp_path: Path) -> None:
    chain, traffic = busy_chain(2)
    SavedChain(tmp_path).save(chain, traffic)
    for options, words, setting in [
        ({"build": "8723543"}, "was started with build 'c9f5d2e', not '8723543'", "build"),
        ({"passphrase": "Test SDF Network ; September 2015"},
         "runs the network 'Standalone Network ; February 2017', not 'Test SDF Network ; September 2015'",
         "network_passphrase"),
        ({"contract_id": "CAAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQC526"}, "runs the contract",
         "contract_ids"),
    ]:
        with pytest.raises(StateMismatch, match=words) as refused:
            Devnet(state=tmp_path, **options)  # type: ignore[arg-type]
        assert refused.value.setting == setting
    header, _, body = (tmp_path / STATE).read_bytes().partition(b"\n")
    (tmp_path / STATE).write_bytes(header.replace(b'"format": 1', b'"format": 0') + b"\n" + body)
    with pytest.raises(StateMismatch, match="saved in format 0, and this version reads format 1") as refused:
        Devnet(state=tmp_path)
    assert refused.value.setting is None


def test_a_damaged_state_is_refused_and_a_missing_one_is_a_new_chain(tmp_path: Path) -> None:
    chain, traffic = busy_chain(2)
    SavedChain(tmp_path).save(chain, traffic)
    state = (tmp_path / STATE).read_bytes()
    (tmp_path / STATE).write_bytes(state[:-20])
    with pytest.raises(StateMismatch, match=f"saved in {tmp_path} is damaged"):
        Devnet(state=tmp_path)
    (tmp_path / STATE).write_bytes(state)
    (tmp_path / LEDGERS).unlink()
    with pytest.raises(StateMismatch, match="is damaged \\(ledgers is missing\\)"):
        Devnet(state=tmp_path)
    shutil.rmtree(tmp_path)
    fresh = Devnet(state=tmp_path)
    assert not fresh.continued and fresh.chain.latest.sequence == 1
