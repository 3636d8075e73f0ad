"""Run the benchmarks and print one table: figure | baseline | ratio | target | met?

    python -m bench                      all eight (ingest, fanout, latency, replay, queries, lake, hostile, backfill)
    python -m bench ingest replay        some of them
    python -m bench --quick              smaller sizes, for a quick look
    python -m bench ingest --repeat 3    each benchmark three times, its median run reported

The results (and the machine they ran on) are also written as JSON to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

from bench import RESULTS, Postgres, machine, raise_open_files

NAMES = ("ingest", "fanout", "latency", "replay", "queries", "lake", "hostile", "backfill")

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "ingest": {"events": 150_000},
        "fanout": {"clients": 5_000, "burst": 200, "big": 10_000},
        "latency": {"sizes": (1_000, 10_000)},
        "replay": {"behind": 100_000, "history": 1_000_000},
        "queries": {"history": 1_000_000, "requests": 1_000},
        "lake": {"repeat": 3, "baseline_ledgers": 15},
        "hostile": {"open_files": 1024},
        "backfill": {"repeat": 3},
    },
    "quick": {
        "ingest": {"events": 30_000},
        "fanout": {"clients": 500, "burst": 100, "big": 1_000},
        "latency": {"sizes": (100, 1_000)},
        "replay": {"behind": 20_000, "history": 100_000},
        "queries": {"history": 100_000, "requests": 300},
        "lake": {"repeat": 2, "baseline_ledgers": 5},
        "hostile": {"open_files": 512},
        "backfill": {"repeat": 2},
    },
}

Row = tuple[str, str, str, str, str, str]  # benchmark, figure, baseline, ratio, target, met

# With --repeat, a benchmark's runs are ordered by its headline figure and the median run is reported
# whole (its figures and baselines come from the same run, so their ratios hold).
HEADLINE: dict[str, Callable[[dict[str, Any]], float]] = {
    "ingest": lambda r: r["events_per_s"],
    "fanout": lambda r: r["messages_per_s"],
    "latency": lambda r: max(v["p99_ms"] for v in r.values() if isinstance(v, dict) and v["processes"] == 1),
    "replay": lambda r: r["events_per_s"],
    "queries": lambda r: r["stream_p99_ms"],
    "lake": lambda r: r["ratio"],
    "hostile": lambda r: r["served"]["held"],
    "backfill": lambda r: r["events_per_s"],
}


def _n(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if abs(value) >= 100 else f"{value:,.1f}{unit}"


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def rows_for(name: str, r: dict[str, Any]) -> list[Row]:
    if name == "ingest":
        return [
            ("ingest: events/s end to end", _n(r["events_per_s"]), f"{_n(r['sdk_decode_events_per_s'])} (sdk decode)",
             f"{r['ratio_to_sdk_decode']}x", ">= 30,000", _met(r["met"])),
            ("  with the local network computing its answers on the same cores",
             _n(r["events_per_s_rpc_computing_alongside"]), "", "", "", ""),
            ("  ceiling: the same rows committed, nothing else", _n(r["copy_only_events_per_s"]), "", "", "", ""),
            ("  parts alone: fetch / decode", f"{_n(r['fetch_only_events_per_s'])} / "
             f"{_n(r['decode_only_events_per_s'])}", "", "", "", ""),
            ("  worker stages, µs/event (overlapping): " + " / ".join(r["stage_us_per_event"]),
             " / ".join(f"{us:.1f}" for us in r["stage_us_per_event"].values()), "", "", "", ""),
        ]
    if name == "fanout":
        return [
            (f"fan-out: msg/s, {r['clients']:,} clients", _n(r["messages_per_s"]),
             f"{_n(r['baseline_messages_per_s'])} (sse-starlette)", f"{r['ratio']}x", ">= 4x", _met(r["met_ratio"])),
            (f"  memory/connection, {r['big_clients']:,} clients", _n(r["big_bytes_per_connection"] / 1024, " KB"),
             f"{_n(r['baseline_bytes_per_connection'] / 1024, ' KB')} ({r['clients']:,})",
             f"{r['baseline_bytes_per_connection'] / max(r['big_bytes_per_connection'], 1):.1f}x less",
             "<= 10 KB", _met(r["met_memory"])),
            (f"  msg/s, {r['big_clients']:,} clients", _n(r["big_messages_per_s"]), "", "", "",
             f"{r['big_delivered']:,}/{r['big_expected']:,}"),
        ]
    if name == "latency":
        return [(f"latency: commit->all clients, {value['clients']:,} clients, {r['events_per_s']} events/s"
                 + (f", {value['processes']} API processes" if value["processes"] > 1 else ""),
                 f"p50 {value['p50_ms']} / p99 {value['p99_ms']} ms", "", "",
                 f"p99 < {value['target_p99_ms']:.0f} ms", _met(value["met"]))
                for value in r.values() if isinstance(value, dict)]
    if name == "replay":
        return [
            (f"replay: {r['behind']:,} events behind, events/s", _n(r["events_per_s"]), "", "", ">= 50,000",
             _met(r["met"])),
            ("  then live: next event follows, no gap/dup", str(r["follows_last_replayed"] and
                                                               r["in_order_no_gap_no_duplicate"]),
             "", "", "gapless", _met(r["in_order_no_gap_no_duplicate"])),
        ]
    if name == "queries":
        return [
            (f"queries: GET /streams/{{id}}, {r['history_events']:,} events",
             f"p50 {r['stream_p50_ms']} / p99 {r['stream_p99_ms']} ms", "", "", "p99 < 100 ms",
             _met(r["stream_p99_ms"] < 100)),
            (f"  GET /events page {r['deep_page_depth']:,} deep vs page 1",
             f"{r['events_deep_page_p50_ms']} vs {r['events_first_page_p50_ms']} ms (p50)", "",
             f"{r['deep_vs_first_page']}x", "flat", _met(r["deep_vs_first_page"] < 2)),
            ("  deep page in SQL: keyset vs OFFSET", f"{r['sql_keyset_deep_p50_ms']} ms",
             f"{r['sql_offset_deep_p50_ms']} ms (OFFSET)", f"{r['offset_vs_keyset']}x faster", "", ""),
            ("  deep page plan", " > ".join(r["deep_page_plan"]), "", "", "index scan", _met(r["met"])),
        ]
    if name == "lake":
        return [
            (f"lake: v28 file ({r['ledgers']} ledgers), ledgers/s | events/s",
             f"{_n(r['ledgers_per_s'])} | {_n(r['events_per_s'])}",
             f"{_n(r['sdk_ledgers_per_s'])} | {_n(r['sdk_events_per_s'])} (sdk decode)", f"{r['ratio']}x",
             ">= 20x",
             _met(r["met"])),
            ("  with --contract of an absent contract", f"{_n(r['filtered_ledgers_per_s'])} ledgers/s", "", "", "",
             ""),
            ("  parts alone: decompress / walk", f"{r['decompress_s']} s / {_n(r['walk_ledgers_per_s'])} ledgers/s",
             "", "", "", ""),
        ]
    if name == "hostile":
        served, baseline = r["served"], r["baseline"]

        def held(run: dict[str, Any]) -> str:
            return f"{run['held']:,} ({'others refused' if run['others_refused'] else 'others answered'})"

        def log(run: dict[str, Any]) -> str:
            return f"{_n(run['log_bytes'] / 1024, ' KB')} in {run['seconds']} s"

        return [
            (f"hostile: connections one client holds, {r['open_files']:,} fds", held(served),
             f"{held(baseline)}, no gate", f"{baseline['held'] / max(served['held'], 1):.1f}x fewer",
             f"<= {r['per_address_cap']} (cap)", _met(r["met"])),
            ("  server log written during the attack", log(served), log(baseline), "", "", ""),
        ]
    if name == "backfill":
        return [
            (f"backfill: v28 file ({r['ledgers']} ledgers) into PostgreSQL, events/s", _n(r["events_per_s"]),
             f"{_n(r['scan_events_per_s'])} (lake scan alone)", f"{r['share_of_scan']}x", "", ""),
            ("  ledgers/s: backfill | lake scan", f"{_n(r['ledgers_per_s'])} | {_n(r['scan_ledgers_per_s'])}", "", "",
             "", ""),
        ]
    return []


def table(rows: list[Row]) -> str:
    header: Row = ("benchmark", "figure", "baseline", "ratio", "target", "met?")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(6)]
    line = lambda row: " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *(line(row) for row in rows)])


def median_run(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of `runs` by the benchmark's headline figure, with every run's headline beside it."""
    ordered = sorted(runs, key=HEADLINE[name])
    chosen = ordered[(len(ordered) - 1) // 2]
    return {**chosen, "runs": len(runs), "headline_of_each_run": [HEADLINE[name](r) for r in runs]}


async def run(names: list[str], quick: bool, repeat: int = 1) -> dict[str, Any]:
    from bench import backfill, fanout, hostile, ingest, lake, latency, queries, replay

    modules: dict[str, Callable[..., Any]] = {
        "ingest": ingest.measure, "fanout": fanout.measure, "latency": latency.measure,
        "replay": replay.measure, "queries": queries.measure, "lake": lake.measure, "hostile": hostile.measure,
        "backfill": backfill.measure,
    }
    sizes = SIZES["quick" if quick else "full"]
    postgres = Postgres()
    try:
        results: dict[str, Any] = {"machine": machine(await postgres.version()), "quick": quick, "results": {}}
        print("machine: {cores} cores, {cpu}, Python {python}, PostgreSQL {postgres}, load {load_average}"
              .format(**results["machine"]), flush=True)
        for name in names:
            started = time.perf_counter()
            print(f"running {name} ...", flush=True)
            runs = [await modules[name](postgres, **sizes[name]) for _ in range(repeat)]
            result = median_run(name, runs) if repeat > 1 else runs[0]
            result["wall_seconds"] = round(time.perf_counter() - started, 1)
            results["results"][name] = result
            each = f" (runs: {', '.join(f'{x:,}' for x in result['headline_of_each_run'])})" if repeat > 1 else ""
            print(f"  {name} done in {result['wall_seconds']} s{each}", flush=True)
        return results
    finally:
        postgres.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"benchmarks to run: {', '.join(NAMES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each benchmark N times and report its median run (this machine's noise)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat takes a number of runs, 1 or more")
    names = args.names or list(NAMES)
    if unknown := [n for n in names if n not in NAMES]:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(NAMES)}")
    warnings.simplefilter("ignore")  # platformdirs' note about XDG_RUNTIME_DIR in containers
    logging.basicConfig(level=logging.WARNING)
    raise_open_files()
    started = time.perf_counter()
    results = asyncio.run(run(names, args.quick, args.repeat))
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    m = results["machine"]
    print()
    print(f"FlowFi benchmarks on {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
          f"PostgreSQL {m['postgres']}; load average at start {m['load_average']}"
          + (" (quick sizes)" if args.quick else "") + (f"; median of {args.repeat} runs" if args.repeat > 1 else ""))
    print(table([row for name in names for row in rows_for(name, results["results"][name])]))
    print(f"total {results['wall_seconds']} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {(RESULTS / 'latest.json').relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
