import pytest

from indexer import ids


def test_event_ids_are_stellar_rpc_ids() -> None:
    # ledger 3727845, tx 5, op 0, event 8: the id in stellar-rpc's documented example
    assert ids.event_id(3727845, 5, 0, 8) == "0016010972359577600-0000000008"
    assert ids.parse("0016010972359577600-0000000008") == (3727845, 5, 0, 8)
    assert ids.ledger_of("0016010972359577600-0000000008") == 3727845
    assert ids.end_of_ledger(7) == f"{7 << 32 | (2**20 - 1) << 12 | 2**12 - 1:019d}-4294967295"
    with pytest.raises(ValueError, match="invalid event id x-1"):
        ids.parse("x-1")


def test_a_ledgers_bounds_sort_around_all_its_ids() -> None:
    inside = [ids.event_id(9, 0, 0, 0), ids.event_id(9, 3, 1, 7), ids.end_of_ledger(9)]
    assert ids.end_of_ledger(8) < ids.before_ledger(9) < min(inside)
    assert max(inside) < ids.before_ledger(10)
    assert all(ids.ledger_of(i) == 9 for i in inside)


def test_a_ledger_no_id_can_name_sorts_after_every_id() -> None:
    last_id = ids.end_of_ledger(ids.LEDGER_LIMIT - 1)
    assert ids.parse(last_id)[0] == ids.LEDGER_LIMIT - 1
    assert all(last_id < ids.before_ledger(ledger) for ledger in (ids.LEDGER_LIMIT, 2**32 - 1, 2**32))


@pytest.mark.parametrize(("ledger", "tx", "op", "count"), [(2, 1, 0, 3), (53312000, 1048575, 0, 1), (85, 4, 4095, 12)])
def test_event_ids_in_bulk_are_event_id_for_each_index(ledger: int, tx: int, op: int, count: int) -> None:
    assert ids.event_ids(ledger, tx, op, count) == [ids.event_id(ledger, tx, op, i) for i in range(count)]
