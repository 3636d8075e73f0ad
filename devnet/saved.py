"""The local network on disk: a chain saved in a folder, to be continued by the next run.

The folder holds two files:

    ledgers   the kept ledgers in order: for each, one JSON line (sequence, closeTime, hash, previousHash
              and the number of its events) and then its events, one line each, exactly as getEvents
              serves them
    state     one JSON line (the format, the network passphrase, the contract id, the build the chain
              started with, its latest ledger), then a pickle of the rest: the contract's and the tokens'
              storage, the chain's counters, and the traffic source (its random state and the streams it
              created, the only ones it acts on)

`save` appends the ledgers closed since the last save to `ledgers` (it rewrites the file, through a
temporary file and a rename, when the chain has dropped more of its ledgers than it keeps), then replaces
`state` through a temporary file and a rename. A save cut short at any point leaves the last one whole:
`load` reads the ledgers up to the state's latest and cuts off what lies beyond it.

The pickle is the local network's private state, written and read by the same version of it: `FORMAT`
changes whenever a class saved in it changes its fields. A state of another format is refused, as is one
of another network, contract or build, with what differs.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from devnet.chain import Chain, Ledger, StoredEvent
from devnet.traffic import Traffic

FORMAT = 1
STATE = "state"
LEDGERS = "ledgers"


class StateMismatch(Exception):
    """A saved chain that this run cannot continue. `setting` names what differs ("build",
    "network_passphrase" or "contract_ids", None for a state of another format or a damaged one) and
    `saved` what the saved chain has, so that the caller can say how to continue it."""

    def __init__(self, message: str, setting: str | None = None, saved: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting
        self.saved = saved


class SavedChain:
    """The folder a chain is saved in: `load` what it holds, `save` a chain into it. Saves are serialized
    (the periodic one may run in a thread while the last one is made)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._first = 0  # the first and last ledgers the `ledgers` file holds; 0: none written by this process
        self._last = 0

    def load(self, *, passphrase: str, contract_id: str, build: str,
             clock: Callable[[], float]) -> tuple[Chain, Traffic] | None:
        """The chain saved here, closing its next ledgers by `clock`, with its traffic source; None when
        nothing is saved. StateMismatch when it is of another format, network, contract or build (the one
        it started with), or damaged."""
        try:
            data = (self.folder / STATE).read_bytes()
        except FileNotFoundError:
            return None
        line, _, body = data.partition(b"\n")
        try:
            header = json.loads(line)
            found = int(header["format"])
        except (ValueError, KeyError, TypeError):
            raise self._damaged(f"{STATE} does not begin with its header") from None
        if found != FORMAT:
            raise StateMismatch(f"{self.folder} holds a local chain saved in format {found}, and this version reads "
                                f"format {FORMAT}")
        for setting, what, wanted in (("network_passphrase", "runs the network", passphrase),
                                      ("contract_ids", "runs the contract", contract_id),
                                      ("build", "was started with build", build)):
            saved = header.get(setting)
            if saved != wanted:
                raise StateMismatch(f"the local chain saved in {self.folder} {what} {saved!r}, not {wanted!r}",
                                    setting, saved)
        try:
            saved_state = pickle.loads(body)
            chain_state, traffic = saved_state["chain"], saved_state["traffic"]
        except Exception as exc:  # a pickle may fail in many ways; all of them mean the same here
            raise self._damaged(f"{STATE} cannot be read: {exc}") from exc
        history = self._read_ledgers(int(header["latest"]))
        chain = Chain.restore(chain_state, history, clock=clock)
        return chain, traffic

    def save(self, chain: Chain, traffic: Traffic) -> None:
        """Save `chain` and its traffic source (taken at one moment, under the chain's lock)."""
        with self._lock:
            with chain.lock:
                latest, oldest = chain.latest.sequence, chain.oldest.sequence
                rewrite = not self._last or self._last + 1 < oldest or oldest - self._first > chain.retention
                history = chain.history(after=0 if rewrite else self._last)
                header = {"format": FORMAT, "network_passphrase": chain.passphrase,
                          "contract_ids": chain.contract_id, "build": chain.genesis_build, "latest": latest}
                state = pickle.dumps({"chain": chain.saved_state(), "traffic": traffic},
                                     protocol=pickle.HIGHEST_PROTOCOL)
            self.folder.mkdir(parents=True, exist_ok=True)
            lines = _ledger_lines(history)
            if rewrite:
                _replace(self.folder / LEDGERS, lines)
                self._first = oldest
            elif history:
                with open(self.folder / LEDGERS, "ab") as file:
                    _write(file, lines)
            _replace(self.folder / STATE, [json.dumps(header).encode() + b"\n", state])
            self._last = latest

    def _read_ledgers(self, latest: int) -> list[tuple[Ledger, list[StoredEvent]]]:
        """The ledgers up to `latest` (the state's), checked to follow each other; what was written
        after them (a save cut short before its state) is cut off the file."""
        path = self.folder / LEDGERS
        history: list[tuple[Ledger, list[StoredEvent]]] = []
        end = 0
        try:
            with open(path, "rb") as file:
                for ledger, events, offset in _records(file):
                    if ledger.sequence > latest:
                        break
                    if history and (ledger.sequence != history[-1][0].sequence + 1
                                    or ledger.previous_hash != history[-1][0].hash):
                        raise self._damaged(f"ledger {ledger.sequence} of {LEDGERS} does not follow the one before")
                    history.append((ledger, events))
                    end = offset
        except FileNotFoundError:
            raise self._damaged(f"{LEDGERS} is missing") from None
        if not history or history[-1][0].sequence != latest:
            raise self._damaged(f"{LEDGERS} ends before ledger {latest}")
        if path.stat().st_size > end:
            with open(path, "r+b") as file:
                file.truncate(end)
        self._first, self._last = history[0][0].sequence, latest
        return history

    def _damaged(self, detail: str) -> StateMismatch:
        return StateMismatch(f"the local chain saved in {self.folder} is damaged ({detail})")


def _ledger_lines(history: list[tuple[Ledger, list[StoredEvent]]]) -> list[bytes]:
    lines = []
    for ledger, events in history:
        lines.append(json.dumps({"sequence": ledger.sequence, "closeTime": ledger.close_time, "hash": ledger.hash,
                                 "previousHash": ledger.previous_hash, "events": len(events)}).encode() + b"\n")
        lines.extend(event.json + b"\n" for event in events)
    return lines


def _records(file: BinaryIO) -> Iterator[tuple[Ledger, list[StoredEvent], int]]:
    """Each whole ledger of a `ledgers` file, with its events and the offset just after them; a record
    cut short (the end of a save that did not finish) ends the file."""
    while True:
        line = file.readline()
        if not line.endswith(b"\n"):
            return
        try:
            record: dict[str, Any] = json.loads(line)
            ledger = Ledger(record["sequence"], record["closeTime"], record["hash"], record["previousHash"])
            events = []
            for _ in range(record["events"]):
                line = file.readline()
                if not line.endswith(b"\n"):
                    return
                events.append(StoredEvent.from_json(line[:-1]))
        except (ValueError, KeyError, TypeError):
            return
        yield ledger, events, file.tell()


def _write(file: BinaryIO, chunks: list[bytes]) -> None:
    file.writelines(chunks)
    file.flush()
    os.fsync(file.fileno())


def _replace(path: Path, chunks: list[bytes]) -> None:
    """Write `path` whole or not at all: a temporary file, synced, renamed over it."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        _write(file, chunks)
    partial.replace(path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
