"""ScVal decoding throughput: the hand-written parser against stellar-sdk, on a batch of FlowFi events.

The batch repeats the shapes of the FlowFi test vectors (every event kind) with random values: stream ids,
amounts and times at random, parties drawn from a pool of accounts and contracts so that addresses recur
as they do on chain. Each event is parsed as the indexer parses it: every topic, then the value.

    python bench/bench_decode.py [events]
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stellar_sdk import Address, scval, xdr

from indexer import scval as fast

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "data" / "flowfi_events.json"

Event = tuple[list[str], str]  # base64 topics, base64 value


def build_events(count: int = 20_000, *, parties: int = 2_000, seed: int = 0) -> list[Event]:
    """`count` FlowFi events shaped like the test vectors, with random values."""
    rng = random.Random(seed)
    accounts = [Address.from_raw_account(rng.randbytes(32)) for _ in range(parties)]
    contracts = [Address.from_raw_contract(rng.randbytes(32)) for _ in range(max(1, parties // 100))]
    makers: dict[str, Callable[[], xdr.SCVal]] = {
        "u32": lambda: scval.to_uint32(rng.randrange(1001)),
        "u64": lambda: scval.to_uint64(rng.randrange(2**40)),
        "i128": lambda: scval.to_int128(rng.randrange(2**70)),
        "address": lambda: rng.choice(contracts if rng.random() < 0.2 else accounts).to_xdr_sc_val(),
    }
    shapes = []
    for vector in json.loads(VECTORS.read_text())["vectors"]:
        topic = [fast.parse_scval_sdk(t) for t in vector["topic"]]
        _, fields = fast.parse_scval_sdk(vector["value"])
        shapes.append((topic, [(key[1], tag) for key, (tag, _) in fields]))
    events = []
    for _ in range(count):
        topic, fields = rng.choice(shapes)
        topic_xdr = [scval.to_symbol(topic[0][1]).to_xdr(), *(makers[t[0]]().to_xdr() for t in topic[1:])]
        entries = [xdr.SCMapEntry(scval.to_symbol(name), makers[tag]()) for name, tag in fields]
        value = xdr.SCVal(xdr.SCValType.SCV_MAP, map=xdr.SCMap(entries))
        events.append((topic_xdr, value.to_xdr()))
    return events


def _time_per_event(events: list[Event], parse_event: Callable[[Event], object], repeat: int) -> float:
    """The best of `repeat` passes over the batch, in seconds per event."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        for event in events:
            parse_event(event)
        best = min(best, time.perf_counter() - start)
    return best / len(events)


def _fast(event: Event) -> object:
    topic, value = event
    return [fast.parse_scval(t) for t in topic], fast.parse_scval(value)


def _fast_with_json(event: Event) -> object:
    topic, value = event
    return [fast.to_json(fast.parse_scval(t)) for t in topic], fast.to_json(fast.parse_scval(value))


def _sdk(event: Event) -> object:
    topic, value = event
    return [scval.to_native(xdr.SCVal.from_xdr(t)) for t in topic], scval.to_native(xdr.SCVal.from_xdr(value))


def _clear_caches() -> None:
    fast._symbol_cache.clear()
    fast._address_cache.clear()


def measure(events: int = 20_000, repeat: int = 3) -> dict[str, Any]:
    """Events per second for the fast parser (cold caches, warm, and with to_json) and for stellar-sdk."""
    batch = build_events(events)
    _clear_caches()
    cold = _time_per_event(batch, _fast, 1)
    warm = _time_per_event(batch, _fast, repeat)
    with_json = _time_per_event(batch, _fast_with_json, repeat)
    sdk = _time_per_event(batch, _sdk, repeat)
    return {
        "benchmark": "decode",
        "events": len(batch),
        "fast_events_per_s": round(1 / warm),
        "fast_us_per_event": round(warm * 1e6, 2),
        "fast_cold_events_per_s": round(1 / cold),
        "fast_with_json_events_per_s": round(1 / with_json),
        "fast_with_json_us_per_event": round(with_json * 1e6, 2),
        "sdk_events_per_s": round(1 / sdk),
        "sdk_us_per_event": round(sdk * 1e6, 2),
        "speedup": round(sdk / warm, 1),
    }


def main() -> None:
    result = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
    print(f"ScVal decoding, {result['events']:,} FlowFi events (all topics + value), best of passes:")
    rows = [
        ("parse_scval", result["fast_events_per_s"], result["fast_us_per_event"]),
        (
            "parse_scval, cold caches",
            result["fast_cold_events_per_s"],
            1e6 / result["fast_cold_events_per_s"],
        ),
        (
            "parse_scval + to_json",
            result["fast_with_json_events_per_s"],
            result["fast_with_json_us_per_event"],
        ),
        ("stellar-sdk to_native", result["sdk_events_per_s"], result["sdk_us_per_event"]),
    ]
    for name, per_s, us in rows:
        print(f"  {name:<26} {per_s:>10,} events/s  {us:8.2f} us/event")
    print(f"  speedup over stellar-sdk: {result['speedup']}x")


if __name__ == "__main__":
    main()
