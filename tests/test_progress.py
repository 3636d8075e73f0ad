"""The worker's progress lines: one when it reaches the tip, then one summary per interval."""

from __future__ import annotations

import logging

import pytest

from indexer import ids
from indexer.progress import Progress


def end(ledger: int) -> str:
    """The cursor of a page that read every event up to the end of `ledger`."""
    return ids.end_of_ledger(ledger)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_at_the_tip_a_page_per_ledger_gives_one_summary_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress(interval=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="indexer.worker"):
        progress.page(end(100), lag=40, new_events=1000, dead_letters=0)  # catching up
        progress.page(end(140), lag=0, new_events=500, dead_letters=0)
        for ledger in range(141, 171):  # a ledger every 2 s for a minute
            clock.now += 2
            progress.page(end(ledger), lag=0, new_events=3, dead_letters=1 if ledger == 150 else 0)
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "caught up with the chain at ledger 140; a summary follows every 30 s",
        "ledgers 141-155: 45 new events (1 dead letters) in 30 s, 2 events/s; lag 0 ledgers",
        "ledgers 156-170: 45 new events in 30 s, 2 events/s; lag 0 ledgers",
    ]


def test_falling_behind_and_catching_up_again_is_said_again(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress(interval=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="indexer.worker"):
        progress.page(end(10), lag=0, new_events=1, dead_letters=0)
        clock.now += 5
        progress.page(end(11), lag=20, new_events=1, dead_letters=0)
        clock.now += 5
        progress.page(end(31), lag=0, new_events=1, dead_letters=0)
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "caught up with the chain at ledger 10", "caught up with the chain at ledger 31",
    ]


def test_a_backfill_reaching_the_chains_tip_does_not_promise_summaries(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress(interval=30, clock=clock, live=False)
    with caplog.at_level(logging.INFO, logger="indexer.worker"):
        progress.page(end(10), lag=3, new_events=1, dead_letters=0)
        progress.page(end(13), lag=0, new_events=1, dead_letters=0)
    assert caplog.records == []


def test_full_pages_on_a_busy_chain_neither_repeat_the_catch_up_nor_hold_up_the_summaries(
    caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    progress = Progress(interval=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="indexer.worker"):
        progress.page(end(100), lag=0, new_events=3, dead_letters=0)
        for ledger in range(101, 131):  # a full page a second, a ledger or two behind, then at the tip
            clock.now += 2
            progress.page(end(ledger), lag=ledger % 3, new_events=3, dead_letters=0)
    assert [r.getMessage() for r in caplog.records] == [
        "caught up with the chain at ledger 100; a summary follows every 30 s",
        "ledgers 101-115: 45 new events in 30 s, 2 events/s; lag 1 ledgers",
        "ledgers 116-130: 45 new events in 30 s, 2 events/s; lag 1 ledgers",
    ]


def test_a_summary_names_the_first_ledger_of_its_first_page(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress(interval=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="indexer.worker"):
        progress.page(end(60), lag=0, new_events=1, dead_letters=0)
        clock.now += 86  # the database was away; then one page covers ledgers 61-103
        progress.page(end(103), lag=0, new_events=234, dead_letters=0)
    assert caplog.records[-1].getMessage().startswith("ledgers 61-103: 234 new events in 86 s")


def test_pages_ending_within_one_busy_ledger_are_summed_as_that_ledger(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress(interval=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="indexer.worker"):
        progress.page(end(99), lag=51, new_events=10, dead_letters=0)
        for tx in (10, 20, 30):  # ledger 100 holds more events than three pages: each ends inside it
            clock.now += 31
            progress.page(ids.event_id(100, tx, 0, 0), lag=51, new_events=10, dead_letters=0)
        clock.now += 31
        progress.page(end(101), lag=49, new_events=10, dead_letters=0)  # the rest of ledger 100, and 101
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "ledgers 99-100", "ledger 100", "ledger 100", "ledgers 100-101",
    ]


def test_a_worker_that_stood_by_counts_its_summary_from_when_it_began_to_write(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress(interval=30, clock=clock)
    progress.page(end(100), lag=0, new_events=5, dead_letters=0)  # it wrote, and reached the tip...
    progress.stand_by()  # ...then lost the writer lock
    assert progress.next_ledger is None
    clock.now += 500  # standing by while another worker writes ledgers 101-899
    progress.begin()
    with caplog.at_level(logging.INFO, logger="indexer.worker"):
        progress.page(end(900), lag=20, new_events=10, dead_letters=0)
        clock.now += 30
        progress.page(end(920), lag=0, new_events=20, dead_letters=0)
    assert [record.getMessage() for record in caplog.records] == [
        "ledgers 900-920: 30 new events in 30 s, 1 events/s; lag 0 ledgers",
        "caught up with the chain at ledger 920; a summary follows every 30 s"]
