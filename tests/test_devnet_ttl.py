import pytest

from devnet.ttl import Lifetimes


def test_a_new_entry_lives_the_minimum_ttl_counting_the_ledger_that_writes_it() -> None:
    lifetimes = Lifetimes(min_persistent_ttl=10)
    lifetimes.write("entry", 100)
    assert lifetimes.live_until("entry", 100) == 109
    lifetimes.write("entry", 105)
    assert (lifetimes.get("entry").last_modified, lifetimes.live_until("entry", 105)) == (105, 109)  # type: ignore[union-attr]
    assert lifetimes.live_until("entry", 109) == 109 and lifetimes.live_until("entry", 110) == 0


def test_extend_moves_the_end_only_when_the_threshold_or_less_is_left() -> None:
    lifetimes = Lifetimes(min_persistent_ttl=10)
    lifetimes.write("entry", 100)  # lives until 109
    lifetimes.extend("entry", 100, threshold=8, extend_to=50)
    assert lifetimes.live_until("entry", 100) == 109, "9 ledgers left, more than the threshold"
    lifetimes.extend("entry", 101, threshold=8, extend_to=50)
    assert lifetimes.live_until("entry", 101) == 151
    lifetimes.extend("entry", 150, threshold=100, extend_to=1)
    assert lifetimes.live_until("entry", 150) == 151, "an extension never shortens"


def test_touching_an_archived_entry_restores_it_for_the_minimum_ttl() -> None:
    lifetimes = Lifetimes(min_persistent_ttl=10)
    lifetimes.write("entry", 100)
    lifetimes.touch(["entry", "unknown"], 200)
    assert lifetimes.live_until("entry", 200) == 209
    assert lifetimes.get("entry").last_modified == 100  # type: ignore[union-attr]
    lifetimes.remove("entry")
    assert lifetimes.get("entry") is None
    with pytest.raises(ValueError):
        Lifetimes(min_persistent_ttl=0)
