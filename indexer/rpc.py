"""A client for the Stellar RPC methods the indexer needs: getNetwork, getHealth, getLatestLedger,
getLedgers, getEvents and getLedgerEntries.

The JSON-RPC envelope ends here: responses become frozen records (a getEvents page's events read by msgspec
straight from the JSON, as no code of ours builds 10,000 objects a page as fast), and every failure becomes
one of

    RpcError
    ├── RetryableRpcError      network error, timeout, HTTP 5xx/429, -32001 (request took too long),
    │   │                      -32603, a database read that failed, a body that is not JSON-RPC:
    │   │                      try again with backoff
    │   ├── Unreachable        no connection at all (nothing listens, no such host, none accepted in
    │   │                      time): the message names the setting that gives the URL
    │   └── NotYetAvailable    the ledger asked for is past the server's newest: a node behind its peers
    │                          (public endpoints are load-balanced) or a start ledger in the future
    └── FatalRpcError          retrying cannot help; the message says what to do
        └── OutOfRetention     the cursor, start ledger or ledger asked for is older than the server keeps

The same client talks to testnet, mainnet and the local network (`flowfi devnet`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import httpx
import msgspec
import orjson

from indexer import ids
from indexer.events import LAST_SECOND

MAX_PAGE_SIZE = 10_000  # Stellar RPC refuses a larger pagination.limit
MAX_LEDGER_KEYS = 200  # keys per getLedgerEntries request
MAX_CONTRACT_IDS_PER_FILTER = 5
# An answer is read whole within this many times the client's timeout, and up to this size: a page of
# 10,000 events is some 10 MB, getLedgers' metadata of a busy mainnet ledger tens.
ANSWER_DEADLINES = 4
MAX_ANSWER_BYTES = 512 * 2**20
# -32001: the request took too long; -32603: the server's own backend failed. Both may pass.
RETRYABLE_ERROR_CODES = frozenset({-32001, -32603})
_LEDGER_HASH = re.compile(r"[0-9a-f]{64}")


class RpcError(Exception):
    """Any failure talking to Stellar RPC."""


class RetryableRpcError(RpcError):
    """A failure that may pass: the worker retries it with backoff."""


class Unreachable(RetryableRpcError):
    """No connection to the server (none listens there, or the host is not found); the message says
    which setting names it."""


class NotYetAvailable(RetryableRpcError):
    """The server's newest ledger is older than the one asked for: wait for it."""

    def __init__(self, message: str, wanted: int, latest_ledger: int) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.latest_ledger = latest_ledger


class FatalRpcError(RpcError):
    """A failure that retrying cannot fix."""


class OutOfRetention(FatalRpcError):
    """The requested ledger is older than the oldest the RPC server keeps."""

    def __init__(self, message: str, oldest_ledger: int, latest_ledger: int) -> None:
        super().__init__(message)
        self.oldest_ledger = oldest_ledger
        self.latest_ledger = latest_ledger


class _LedgerRange(FatalRpcError):
    """-32600 "startLedger must be within the ledger range: A - B" (getEvents) or "start ledger (N) must be
    between the oldest ledger: A and the latest ledger: B" (getLedgers); what it means depends on the
    request."""

    def __init__(self, message: str, oldest_ledger: int, latest_ledger: int) -> None:
        super().__init__(message)
        self.oldest_ledger = oldest_ledger
        self.latest_ledger = latest_ledger


class RawEvent(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """One contract event as getEvents returns it, before its XDR is decoded: its fields are the answer's,
    camelCase there (ledgerClosedAt...), and others (type, transactionIndex...) are not kept. Of strings
    and numbers only, so never in a reference cycle: the collector need not track it (gc=False)."""

    id: str
    ledger: int
    ledger_closed_at: datetime
    contract_id: str = ""
    tx_hash: str = ""
    # Stellar RPC omits `topic` when an event has none; such an event is still delivered.
    topic: tuple[str, ...] = ()
    value: str = ""
    # False for the events of a transaction that failed; None where the server no longer says (it is
    # deprecated, and newer servers drop it).
    in_successful_contract_call: bool | None = None


class _EventsResult(msgspec.Struct, rename="camel"):
    """A getEvents result as read; its page-level fields are checked by get_events."""

    events: tuple[RawEvent, ...] | None = None
    cursor: str = ""  # where missing, not an event id: refused by _checked_page
    latest_ledger: Any = None
    oldest_ledger: Any = None
    latest_ledger_close_time: Any = None


class _EventsAnswer(msgspec.Struct):
    result: _EventsResult | None = None
    error: Any = None


_EVENTS_ANSWER = msgspec.json.Decoder(_EventsAnswer)
_RAW_EVENT = msgspec.json.Decoder(RawEvent)


@dataclass(frozen=True, slots=True)
class EventPage:
    events: tuple[RawEvent, ...]
    cursor: str
    latest_ledger: int
    oldest_ledger: int
    latest_ledger_close_time: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    key: str  # base64 LedgerKey
    xdr: str  # base64 LedgerEntryData
    last_modified_ledger: int
    live_until_ledger: int | None  # 0 for an archived entry; None for an entry without a TTL


@dataclass(frozen=True, slots=True)
class LedgerEntries:
    entries: tuple[LedgerEntry, ...]  # those found, in the order asked
    latest_ledger: int  # the ledger they were read at


@dataclass(frozen=True, slots=True)
class Network:
    passphrase: str
    protocol_version: int


@dataclass(frozen=True, slots=True)
class Health:
    latest_ledger: int
    oldest_ledger: int


@dataclass(frozen=True, slots=True)
class LedgerInfo:
    """A ledger as getLatestLedger and getLedgers name it."""

    sequence: int
    hash: str  # hex
    close_time: int  # unix seconds


_RANGE_ERROR = re.compile(r"(?:ledger range:\s*|oldest ledger:\s*)(\d+)(?:\s*-\s*|\s+and the latest ledger:\s*)(\d+)")


@cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings every HTTP client of the process shares: making them loads the CA bundle, some
    20 ms of CPU, which a client made for each worker or command would pay again."""
    return httpx.create_ssl_context()


class RpcClient:
    def __init__(self, url: str, *, timeout: float = 15.0, client: httpx.AsyncClient | None = None) -> None:
        """`timeout`: seconds for each step of a request (connecting, each read); a whole answer must come
        within `ANSWER_DEADLINES` times that (a server trickling bytes would otherwise hold it for ever)."""
        self.url = url
        self._http = client or httpx.AsyncClient(timeout=timeout, verify=tls_context())
        self._deadline = timeout * ANSWER_DEADLINES
        self._next_id = 0

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_network(self) -> Network:
        result = await self.call("getNetwork")
        return Network(passphrase=_field(result, "passphrase", str),
                       protocol_version=_field(result, "protocolVersion", int))

    async def get_health(self) -> Health:
        result = await self.call("getHealth")
        return Health(latest_ledger=_field(result, "latestLedger", int),
                      oldest_ledger=_field(result, "oldestLedger", int))

    async def get_latest_ledger(self) -> LedgerInfo:
        result = await self.call("getLatestLedger")
        return LedgerInfo(sequence=_field(result, "sequence", int), hash=_field(result, "id", str),
                          close_time=_field(result, "closeTime", int))

    async def get_ledger(self, sequence: int) -> LedgerInfo:
        """Ledger `sequence`'s hash and close time (getLedgers); OutOfRetention when the server no longer
        has it, NotYetAvailable when it does not have it yet."""
        try:
            result = await self.call("getLedgers", {"startLedger": sequence, "pagination": {"limit": 1}})
        except _LedgerRange as exc:
            if sequence > exc.latest_ledger:
                raise NotYetAvailable(f"getLedgers: {self.url} has ledgers up to {exc.latest_ledger}, not yet "
                                      f"{sequence}", sequence, exc.latest_ledger) from exc
            raise OutOfRetention(str(exc), exc.oldest_ledger, exc.latest_ledger) from exc
        try:
            found = result["ledgers"][0]
            ledger = LedgerInfo(sequence=int(found["sequence"]), hash=str(found["hash"]),
                                close_time=_unix_time(found["ledgerCloseTime"]))
            if _LEDGER_HASH.fullmatch(ledger.hash) is None:
                raise ValueError(f"the hash {ledger.hash!r:.80} is not 32 bytes in hex")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RetryableRpcError(f"getLedgers returned a malformed result ({exc!r})") from exc
        if ledger.sequence != sequence:
            raise RetryableRpcError(f"getLedgers returned ledger {ledger.sequence} for ledger {sequence}")
        return ledger

    async def get_events(
        self,
        contract_ids: tuple[str, ...],
        *,
        cursor: str | None = None,
        start_ledger: int | None = None,
        limit: int = 1000,
    ) -> EventPage:
        """One page of the contracts' events after `cursor` (or from `start_ledger`), in chain order."""
        if (cursor is None) == (start_ledger is None):
            raise ValueError("pass exactly one of cursor and start_ledger")
        # Stellar RPC allows five contract ids per filter and five filters.
        filters = [
            {"type": "contract", "contractIds": list(contract_ids[i : i + MAX_CONTRACT_IDS_PER_FILTER])}
            for i in range(0, len(contract_ids), MAX_CONTRACT_IDS_PER_FILTER)
        ]
        params: dict[str, Any] = {
            "filters": filters,
            "pagination": {"limit": min(limit, MAX_PAGE_SIZE)},
            "xdrFormat": "base64",
        }
        if cursor is not None:
            params["pagination"]["cursor"] = cursor
        else:
            params["startLedger"] = start_ledger
        try:
            # up to 10,000 events: read in a thread, so that the event loop moves on between the checks
            result = await asyncio.to_thread(_events_result, await self._answer("getEvents", params))
        except _LedgerRange as exc:
            if cursor is not None and ids.last_complete_ledger(cursor) + 1 == exc.oldest_ledger:
                # A cursor at the end of the ledger before the oldest kept: its events are the oldest
                # ledger's on, which the server gives from that ledger (it refuses the cursor's own).
                return await self.get_events(contract_ids, start_ledger=exc.oldest_ledger, limit=limit)
            wanted = start_ledger if cursor is None else ids.ledger_of(cursor)
            assert wanted is not None
            if wanted > exc.latest_ledger:
                raise NotYetAvailable(
                    f"getEvents: {self.url} has ledgers up to {exc.latest_ledger}, not yet {wanted}", wanted,
                    exc.latest_ledger,
                ) from exc
            raise OutOfRetention(str(exc), exc.oldest_ledger, exc.latest_ledger) from exc
        try:
            page = EventPage(
                events=result.events or (),
                cursor=result.cursor,
                latest_ledger=_ledger_number(result.latest_ledger),
                oldest_ledger=_ledger_number(result.oldest_ledger),
                latest_ledger_close_time=_unix_time(result.latest_ledger_close_time or 0),
            )
            return _checked_page(page, cursor, min(limit, MAX_PAGE_SIZE))
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryableRpcError(f"getEvents returned a malformed result ({exc!r:.300})") from exc

    async def get_ledger_entries(self, keys: list[str]) -> LedgerEntries:
        """The entries of these LedgerKeys (base64) that exist, at the server's newest ledger."""
        if not 0 < len(keys) <= MAX_LEDGER_KEYS:
            raise ValueError(f"getLedgerEntries takes 1 to {MAX_LEDGER_KEYS} keys, not {len(keys)}")
        result = await self.call("getLedgerEntries", {"keys": keys, "xdrFormat": "base64"})
        try:
            return LedgerEntries(
                entries=tuple(
                    LedgerEntry(key=str(e["key"]), xdr=str(e["xdr"]),
                                last_modified_ledger=int(e["lastModifiedLedgerSeq"]),
                                live_until_ledger=None if e.get("liveUntilLedgerSeq") is None
                                else int(e["liveUntilLedgerSeq"]))
                    for e in result.get("entries") or ()
                ),
                latest_ledger=int(result["latestLedger"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryableRpcError(f"getLedgerEntries returned a malformed result ({exc!r})") from exc

    async def _post(self, body: dict[str, Any]) -> tuple[int, bytes]:
        """POST `body` as JSON: the answer's status and body. The body is read in chunks, not with
        `Response.read`: an httpx response is in a reference cycle with its stream, and one that kept its
        body (a page of events is megabytes) would keep it until the cyclic collector runs, which in the
        worker's process is seldom (see indexer/worker.py)."""
        async with asyncio.timeout(self._deadline), self._http.stream("POST", self.url, json=body) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise RetryableRpcError(f"{body['method']}: the answer from {self.url} passes "
                                            f"{MAX_ANSWER_BYTES // 2**20} MB; is it a Stellar RPC server?")
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON-RPC request; its result object, or an RpcError."""
        content = await self._answer(method, params)
        try:
            envelope = orjson.loads(content)
        except ValueError as exc:
            raise _not_json(method, content, exc) from exc
        if not isinstance(envelope, dict):
            raise RetryableRpcError(f"{method}: the answer is not a JSON-RPC object: {envelope!r:.120}")
        if "error" in envelope:
            raise _translate_error(method, envelope["error"])
        result = envelope.get("result")
        if not isinstance(result, dict):
            raise RetryableRpcError(f"{method}: the answer has no result object: {envelope!r:.120}")
        return result

    async def _answer(self, method: str, params: dict[str, Any] | None) -> bytes:
        """One JSON-RPC request; the body of its HTTP 200 answer, or an RpcError."""
        self._next_id += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            body["params"] = params
        try:
            status, content = await self._post(body)
        except httpx.ConnectTimeout as exc:
            raise self._unreachable(method, f"no connection within {self._http.timeout.connect:g} s") from exc
        except httpx.TimeoutException as exc:
            raise RetryableRpcError(f"{method}: no answer from {self.url} in time ({exc!r})") from exc
        except TimeoutError as exc:
            raise RetryableRpcError(f"{method}: the answer from {self.url} did not arrive whole within "
                                    f"{self._deadline:g} s") from exc
        except httpx.ConnectError as exc:
            raise self._unreachable(method, repr(exc)) from exc
        except httpx.TransportError as exc:
            raise RetryableRpcError(f"{method}: the connection to {self.url} failed ({exc!r})") from exc
        except httpx.DecodingError as exc:  # a body its Content-Encoding does not decode: spoilt on the way?
            raise RetryableRpcError(f"{method}: the answer from {self.url} does not decode ({exc!r})") from exc
        if status == 429 or status >= 500:
            raise RetryableRpcError(f"{method}: {self.url} answered HTTP {status}")
        if status != 200:
            raise FatalRpcError(
                f"{method}: {self.url} answered HTTP {status}: {_excerpt(content, 200)!r}; "
                "check that the RPC URL points at a Stellar RPC server"
            )
        return content

    def _unreachable(self, method: str, why: str) -> Unreachable:
        return Unreachable(f"{method}: cannot reach {self.url} ({why}); is the RPC server running, and is that its "
                           "URL (--rpc-url, FLOWFI_RPC_URL)?")


def _not_json(method: str, content: bytes, exc: Exception) -> RetryableRpcError:
    # the parser's reason says where it broke off: in an answer cut short, past a start that reads well
    return RetryableRpcError(f"{method}: the answer is not JSON ({exc}): {_excerpt(content, 120)!r}")


def _events_result(content: bytes) -> _EventsResult:
    """A getEvents answer's result, its events checked (see checked_event); an RpcError otherwise."""
    try:
        answer = _EVENTS_ANSWER.decode(content)
    except msgspec.ValidationError as exc:
        raise RetryableRpcError(f"getEvents returned a malformed result ({exc})") from exc
    except (msgspec.DecodeError, RecursionError) as exc:  # the latter: nested deeper than msgspec goes
        raise _not_json("getEvents", content, exc) from exc
    if answer.error is not None:
        raise _translate_error("getEvents", answer.error)
    if answer.result is None:
        raise RetryableRpcError(f"getEvents: the answer has no result object: {_excerpt(content, 120)!r}")
    try:
        for raw in answer.result.events or ():
            checked_event(raw)
    except ValueError as exc:
        raise RetryableRpcError(f"getEvents returned a malformed result ({exc!r:.300})") from exc
    return answer.result


def _translate_error(method: str, error: Any) -> RpcError:
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
    if code in RETRYABLE_ERROR_CODES:
        return RetryableRpcError(f"{method}: server error {code}: {message}")
    if code == -32600 and (match := _RANGE_ERROR.search(message)):
        return _LedgerRange(message, oldest_ledger=int(match[1]), latest_ledger=int(match[2]))
    if code == -32600 and "db read failed" in message:
        return RetryableRpcError(f"{method}: the server's database read failed: {message}")
    return FatalRpcError(f"{method}: the RPC server refused the request ({code}): {message}")


def _field(result: dict[str, Any], name: str, kind: type) -> Any:
    value = result.get(name)
    try:
        if value is None or isinstance(value, dict | list):  # str() would take them
            raise TypeError(name)
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise RetryableRpcError(f"the RPC answer has no valid {name!r}: {result!r:.200}") from exc


def raw_event(event_json: bytes | str) -> RawEvent:
    """One event of a getEvents answer (its JSON object) as the client reads it; ValueError where it is not
    one Stellar RPC sends."""
    try:
        return checked_event(_RAW_EVENT.decode(event_json))
    except (msgspec.ValidationError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc


def checked_event(raw: RawEvent) -> RawEvent:
    """`raw`, where it is an event Stellar RPC sends (its fields' types are msgspec's to check); ValueError
    otherwise: an id that is not an event id or names another ledger than `ledger`, a NUL character (which
    no base64, strkey or id holds, and PostgreSQL's text cannot), a close time without its offset."""
    if ids.PATTERN.fullmatch(raw.id) is None or ids.ledger_of(raw.id) != raw.ledger:
        raise ValueError(f"event id {raw.id!r:.60} is not an event of ledger {raw.ledger}")
    if raw.ledger_closed_at.tzinfo is None:
        raise ValueError(f"event {raw.id}'s ledgerClosedAt {raw.ledger_closed_at.isoformat()} has no time zone")
    if "\0" in raw.value or "\0" in raw.tx_hash or "\0" in raw.contract_id or any("\0" in t for t in raw.topic):
        raise ValueError(f"event {raw.id} holds a NUL character")
    return raw


def _checked_page(page: EventPage, after: str | None, limit: int) -> EventPage:
    """`page`, where it is a page Stellar RPC would send after the cursor `after` (ValueError otherwise): its
    events in id order, all after `after` and none past its newest ledger, and a cursor that is an event id,
    not behind `after`, its last event or its newest ledger. A page filled to `limit` continues right after
    its last event, whatever cursor it names: a later one would skip the events between."""
    events = page.events
    previous = after or ""
    for raw in events:
        if raw.id <= previous:
            raise ValueError(f"event {raw.id} comes after {previous or 'the start'}: the events are out of order")
        previous = raw.id
    if events and events[-1].ledger > page.latest_ledger:
        raise ValueError(f"event {events[-1].id} lies past the newest ledger, {page.latest_ledger}")
    ids.parse(page.cursor)
    if page.cursor < previous:
        raise ValueError(f"the cursor {page.cursor} goes back, behind {previous}")
    if ids.ledger_of(page.cursor) > page.latest_ledger:
        raise ValueError(f"the cursor {page.cursor} lies past the newest ledger, {page.latest_ledger}")
    if len(events) >= limit and page.cursor != events[-1].id:
        return dataclasses.replace(page, cursor=events[-1].id)
    return page


def _ledger_number(value: Any) -> int:
    """A ledger sequence (a u32); ValueError where it is not one."""
    number = int(value)
    if not 0 <= number < 2**32 or number != value and str(number) != value:
        raise ValueError(f"{value!r:.40} is not a ledger number")
    return number


def _unix_time(value: Any) -> int:
    """Seconds since 1970 that a datetime can hold; ValueError otherwise."""
    seconds = int(value)
    if not 0 <= seconds <= LAST_SECOND:
        raise ValueError(f"{value!r:.40} is not a time")
    return seconds


def _excerpt(content: bytes, length: int) -> str:
    return content[:length].decode("utf-8", "replace")
