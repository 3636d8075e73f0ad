"""The OpenAPI 3.1 description of every endpoint, served at GET /openapi.json.

The schemas are derived from the definitions they describe: event payloads from `indexer.events` (the
keys `api.payloads` produces), stream state from the `streams` table, event types and statuses from
their one list each, bounds from `api.filters`.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ARRAY, Boolean, DateTime, Numeric
from stellar_sdk import StrKey

from api import filters, payloads
from indexer import ids
from indexer.accrual import SCHEDULES
from indexer.events import BY_SSE_NAME, LEDGER_MAX, U64_MAX, ScType, payload_key, required_fields
from indexer.tables import STREAM_STATUSES, TERMS_SOURCES, streams

JSON = "application/json"
DECIMAL = {"type": "string", "pattern": "^-?[0-9]+$", "description": "a decimal integer, as a string"}
UNSIGNED = {**DECIMAL, "pattern": "^[0-9]+$"}
EVENT_ID = {"type": "string", "pattern": f"^{ids.PATTERN.pattern}$",
            "description": "an event id, the RPC's (TOID-event index); sorts in chain order",
            "examples": ["0000000012884905984-0000000000"]}
# A pattern cannot check a strkey's CRC16 checksum: the custom formats name it, so that a client (or a
# fuzzer given a strategy for them) can produce valid ones; the server answers 400 to a bad checksum.
ADDRESS = {"type": "string", "pattern": "^[GC][A-Z2-7]{55}$", "format": "stellar-address",
           "description": "a Stellar account (G...) or contract (C...) strkey, checksum included",
           "examples": ["GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"]}
EXAMPLE_CONTRACT = StrKey.encode_contract(bytes(32))
CONTRACT = {"type": "string", "pattern": "^C[A-Z2-7]{55}$", "format": "stellar-contract",
            "description": "a contract strkey (C...), checksum included", "examples": [EXAMPLE_CONTRACT]}
TIME = {"type": "string", "format": "date-time", "description": "a ledger close time, UTC"}
STREAM_ID = {"type": "integer", "minimum": 1, "maximum": U64_MAX}
LEDGER = {"type": "integer", "minimum": 1, "maximum": LEDGER_MAX}
STREAM_CURSOR = {"type": "string", "pattern": "^[1-9][0-9]{0,19}:C[A-Z2-7]{55}$",
                 "description": "the nextCursor of the previous page (streamId:contractId)"}

_SC_SCHEMAS: dict[ScType, dict[str, Any]] = {
    ScType.U32: {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    ScType.U64: UNSIGNED,
    ScType.I128: DECIMAL,
    ScType.ADDRESS: ADDRESS,
    ScType.OPTION_ADDRESS: {"anyOf": [ADDRESS, {"type": "null"}], "description": "an address, or null for none"},
    ScType.BOOL: {"type": "boolean"},
    ScType.BYTES: {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes, lowercase hex"},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _envelope(sse_name: str) -> dict[str, Any]:
    schemas = {
        "id": EVENT_ID,
        "type": {"const": sse_name},
        "contractId": CONTRACT,
        "ledger": LEDGER,
        "ledgerClosedAt": TIME,
        "transactionHash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    }
    return {key: schemas[key] for key in payloads.ENVELOPE}


TOKEN_METADATA = {
    "tokenSymbol": {"type": ["string", "null"], "description": "the token's symbol; null while unknown"},
    "tokenDecimals": {"type": ["integer", "null"], "minimum": 0, "description": (
        "the token's decimals: an amount of N is N / 10^tokenDecimals tokens; null while unknown")},
}


def _event_schema(sse_name: str) -> dict[str, Any]:
    kind = BY_SSE_NAME[sse_name]
    required = required_fields(kind)
    properties = _envelope(sse_name)
    for column, key, sc_type in payloads.payload_layout(kind):
        # optional fields are null when the event lacks them; the stream's parties that the event does not
        # name come from its stream, and are null while it is unknown
        properties[key] = _SC_SCHEMAS[sc_type] if column in required else _nullable(_SC_SCHEMAS[sc_type])
    if payloads.carries_token(kind):
        properties.update(TOKEN_METADATA)
    return {"type": "object", "title": sse_name, "properties": properties,
            "required": list(properties), "additionalProperties": False}


def _stream_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for column in streams.columns:
        if column.name == "status":
            schema: dict[str, Any] = {"type": "string", "enum": list(STREAM_STATUSES)}
        elif column.name in ("contract_id", "token"):
            schema = CONTRACT
        elif column.name in ("sender", "recipient"):
            schema = ADDRESS
        elif column.name in ("first_event_id", "last_event_id"):
            schema = EVENT_ID
        elif column.name == "schedule":
            schema = {"type": "string", "enum": list(SCHEDULES)}
        elif column.name == "terms_source":
            schema = {"type": "string", "enum": list(TERMS_SOURCES)}
        elif column.name == "dispute":
            schema = {"type": "string", "enum": ["requested", "approved", "rejected"]}
        elif isinstance(column.type, ARRAY):
            schema = {"type": "array", "items": UNSIGNED}
        elif isinstance(column.type, Boolean):
            schema = {"type": "boolean"}
        elif isinstance(column.type, Numeric):
            schema = UNSIGNED
        elif isinstance(column.type, DateTime):
            schema = TIME
        else:
            schema = {"type": "string"}
        properties[payload_key(column.name)] = _nullable(schema) if column.nullable else schema
        if column.name == "token":
            properties["token"] = {**schema, "deprecated": True, "description": "the old name of tokenAddress"}
            properties["tokenAddress"] = {**schema, "description": "the token contract the stream pays in"}
    properties.update(TOKEN_METADATA)
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": _ref(item)},
                       "nextCursor": {"type": ["string", "null"],
                                      "description": "pass as cursor for the next page; null on the last"}},
        "required": ["items", "nextCursor"],
        "additionalProperties": False,
    }


def _schemas() -> dict[str, Any]:
    stream = _stream_schema()
    state = {
        **stream,
        "properties": {
            **stream["properties"],
            "claimableNow": {**UNSIGNED,
                             "description": "what the recipient could withdraw at asOf"},
            "lockedNow": {**UNSIGNED, "description": (
                "still in the contract and not claimable at asOf: what a cancellation then would refund; 0 once "
                "finished")},
            "remainingNow": {**UNSIGNED, "description": (
                "still in the contract at asOf: claimableNow + lockedNow; 0 once finished")},
            "asOf": {**TIME, "description": (
                "the ledger time claimableNow, lockedNow and remainingNow are computed at: the chain's newest "
                "close time once the index has caught up; while it catches up, that of the newest event indexed "
                "(never that of a ledger not indexed at all)")},
            "asOfLedger": {"type": ["integer", "null"], "minimum": 1, "description": (
                "the last ledger indexed whole: the state is the chain's at its end, with the events of the "
                "ledger after it up to asOfEventId where a page ended within that ledger; null before the "
                "worker has a cursor")},
            "asOfEventId": {**_nullable(EVENT_ID), "description": (
                "the newest stored event when this state was read: subscribe with lastEventId=asOfEventId "
                "to continue from this state with no gap and no repeat")},
        },
        "required": [*stream["required"], "claimableNow", "lockedNow", "remainingNow", "asOf", "asOfLedger",
                     "asOfEventId"],
    }
    return {
        "Error": {
            "type": "object",
            "properties": {
                "error": {"type": "string", "description": "what is wrong, and what to do"},
                "parameter": {"type": ["string", "null"], "description": "the parameter at fault"},
                "contractIds": {"type": "array", "items": CONTRACT,
                                "description": "409: the contracts that have this stream id"},
            },
            "required": ["error"],
        },
        "Event": {"oneOf": [_ref(_event_name(name)) for name in BY_SSE_NAME],
                  "discriminator": {"propertyName": "type",
                                    "mapping": {name: f"#/components/schemas/{_event_name(name)}"
                                                for name in BY_SSE_NAME}}},
        **{_event_name(name): _event_schema(name) for name in BY_SSE_NAME},
        "Stream": stream,
        "StreamState": state,
        "DeadLetter": {
            "type": "object",
            "properties": {
                "eventId": EVENT_ID,
                "event": {"type": ["string", "null"],
                          "description": "the event's name (its first topic, when a Symbol or string)"},
                "reason": {"type": "string"},
                "recordedAt": {"type": "string", "format": "date-time",
                               "description": "when the indexer set it aside (server clock)"},
                "contractId": CONTRACT, "ledger": LEDGER, "ledgerClosedAt": TIME,
                "transactionHash": {"type": "string"},
                "topicXdr": {"type": "array", "items": {"type": "string"}}, "valueXdr": {"type": "string"},
            },
            "required": ["eventId", "event", "reason", "recordedAt", "contractId", "ledger", "ledgerClosedAt",
                         "transactionHash", "topicXdr", "valueXdr"],
            "additionalProperties": False,
        },
        "StreamPage": _page("Stream"),
        "EventPage": _page("Event"),
        "DeadLetterPage": _page("DeadLetter"),
        "Health": {"type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"]},
        "Ready": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "checks": {"type": "object",
                           "properties": {name: {"type": "string", "description": '"ok" or what failed'}
                                          for name in ("database", "listener", "indexer")},
                           "required": ["database", "listener", "indexer"]},
                "lag": {"type": ["integer", "null"], "description": "ledgers the indexer trails the chain"},
                "maxLag": {"type": "integer", "minimum": 0},
                "cursorAge": {"type": ["number", "null"], "description": "seconds since the worker last polled"},
                "maxCursorAge": {"type": "number", "exclusiveMinimum": 0},
                "error": {"type": "string", "description": "503: the failed checks"},
            },
            "required": ["status", "checks", "lag", "maxLag", "cursorAge", "maxCursorAge"],
        },
        "Stats": {
            "type": "object",
            "properties": {
                "activeConnections": {"type": "integer", "minimum": 0},
                "connectionsByFilter": {"type": "object", "additionalProperties": {"type": "integer"}},
                "eventsDelivered": {"type": "integer", "minimum": 0,
                                    "description": "frames of the live feed queued to clients"},
                "eventsReplayed": {"type": "integer", "minimum": 0,
                                   "description": "frames sent from the table to clients resuming from an id"},
                "clientsDropped": {"type": "integer", "minimum": 0},
                "lastPublishedEventId": _nullable(EVENT_ID),
                "lastIndexedLedger": {"type": ["integer", "null"]},
                "lastIndexedEventId": _nullable(EVENT_ID),
                "latestLedger": {"type": ["integer", "null"]},
                "indexerLagLedgers": {"type": ["integer", "null"], "minimum": 0},
                "indexerCursorAgeSeconds": {"type": ["number", "null"],
                                            "description": "seconds since the worker last polled"},
                "listenerConnected": {"type": "boolean"},
                "listenerReconnects": {"type": "integer", "minimum": 0},
            },
        },
    }


def _event_name(sse_name: str) -> str:
    return "Event_" + sse_name.replace(".", "_")


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description,
            **extra}


def _list_query(name: str, items: dict[str, Any], description: str) -> dict[str, Any]:
    return _query(name, {"type": "array", "items": items, "maxItems": filters.MAX_LIST_VALUES},
                  description + "; one value, repeated keys, or comma-separated", style="form", explode=True)


LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": filters.MAX_PAGE_SIZE,
                         "default": filters.DEFAULT_PAGE_SIZE}, "page size")
FROM_START = {"const": "0", "description": "before the first event"}
EVENT_CURSOR = _query("cursor", {"anyOf": [EVENT_ID, FROM_START]},
                      "the nextCursor of the previous page (the last event id seen), or 0 for the first page")
TYPES = _list_query("types", {"type": "string", "enum": list(BY_SSE_NAME)}, "only events of these types")
STREAMS = _list_query("streams", STREAM_ID, "events of these stream ids")
USERS = _list_query("users", ADDRESS, "events concerning these addresses")
ALL = _query("all", {"type": "boolean"}, "every event (the default here without streams or users)")
CONTRACT_ID = _query("contractId", CONTRACT, "the contract, when several indexed contracts have this stream id")
PATH_STREAM_ID = {"name": "id", "in": "path", "required": True, "schema": STREAM_ID, "description": "stream id"}
STATUS = _query("status", {"type": "string", "enum": list(STREAM_STATUSES)}, "only streams with this status")


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "accessToken": {"type": "apiKey", "in": "query", "name": "access_token",
                    "description": "the JWT as a query parameter, for EventSource (which cannot send headers); "
                                   "`token` is accepted too, except on /streams while authentication is off"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "flowfi_token"},
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


BAD_REQUEST = _json("Error", "a parameter is malformed or unknown; the body says which and how to fix it")
NOT_FOUND = _json("Error", "no such stream has been indexed")
CONFLICT = _json("Error", "several contracts have this stream id: pass contractId (the body lists them)")


def _get(summary: str, parameters: list[dict[str, Any]], responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses, **extra}}


@functools.cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "FlowFi indexer",
            "version": "0.1.0",
            "description": "FlowFi payment streams indexed from Stellar: REST over the indexed tables and live "
                           "events over SSE. Lists are keyset pages: pass nextCursor as cursor until it is null.",
        },
        "paths": {
            "/streams": _get(
                "Streams, by stream id then contract id",
                [_query("sender", ADDRESS, "only streams from this address"),
                 _query("recipient", ADDRESS, "only streams to this address"),
                 STATUS, _query("tokenAddress", CONTRACT, "only streams of this token contract"),
                 _query("token", CONTRACT, "the old name of tokenAddress, while the server has no "
                        "authentication; with authentication on, `token` is the access token", deprecated=True),
                 _query("contractId", CONTRACT, "only streams of this FlowFi contract"),
                 _query("cursor", STREAM_CURSOR, "the nextCursor of the previous page"), LIMIT],
                {"200": _json("StreamPage", "a page of streams"), "400": BAD_REQUEST},
            ),
            "/streams/{id}": _get(
                "A stream's state, with what is claimable at the ledger time the index is at",
                [PATH_STREAM_ID, CONTRACT_ID],
                {"200": _json("StreamState", "the stream"), "400": BAD_REQUEST, "404": NOT_FOUND,
                 "409": CONFLICT},
            ),
            "/streams/{id}/events": _get(
                "A stream's events, in chain order",
                [PATH_STREAM_ID, CONTRACT_ID, TYPES, EVENT_CURSOR, LIMIT],
                {"200": _json("EventPage", "a page of events"), "400": BAD_REQUEST, "404": NOT_FOUND,
                 "409": CONFLICT},
            ),
            "/users/{address}/streams": _get(
                "Streams where an address is the sender or the recipient",
                [{"name": "address", "in": "path", "required": True, "schema": ADDRESS},
                 _query("role", {"type": "string", "enum": ["sender", "recipient"]},
                        "only streams where the address has this role"),
                 STATUS, _query("cursor", STREAM_CURSOR, "the nextCursor of the previous page"), LIMIT],
                {"200": _json("StreamPage", "a page of streams"), "400": BAD_REQUEST},
            ),
            "/events": _get(
                "Event history: the same ids and payloads as the live stream",
                [STREAMS, USERS, TYPES, ALL,
                 _query("fromLedger", LEDGER, "only events of this ledger or later"),
                 _query("toLedger", LEDGER, "only events of this ledger or earlier (not before fromLedger)"),
                 EVENT_CURSOR, LIMIT],
                {"200": _json("EventPage", "a page of events"), "400": BAD_REQUEST},
            ),
            "/dead-letters": _get(
                "Events the indexer could not decode or apply, with the reason",
                [EVENT_CURSOR, LIMIT],
                {"200": _json("DeadLetterPage", "a page of dead letters"), "400": BAD_REQUEST},
            ),
            "/events/subscribe": _get(
                "Live events over Server-Sent Events, after a replay from a resume point",
                [STREAMS, USERS, TYPES,
                 _query("all", {"type": "boolean"}, "every event"),
                 _query("lastEventId", {"anyOf": [EVENT_ID, FROM_START, {"const": "now"}]},
                        "replay the events after this id first (0: every event; now: live only)"),
                 _query("cursor", {"anyOf": [EVENT_ID, FROM_START, {"const": "now"}]}, "the same as lastEventId"),
                 {"name": "Last-Event-ID", "in": "header", "required": False,
                  "schema": {"anyOf": [EVENT_ID, FROM_START]},
                  "description": "sent by EventSource on reconnect; wins over the query parameters"}],
                {"200": {"description": "an endless event stream; each frame's id is the event id, its data "
                                        "the JSON payload (see the Event schema)",
                         "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                 "400": BAD_REQUEST,
                 "429": _json("Error", "this address or user holds as many streams as it may "
                                       "(FLOWFI_MAX_CONNECTIONS_PER_IP, FLOWFI_MAX_CONNECTIONS_PER_USER)"),
                 "503": _json("Error", "the live feed is starting, the database does not answer a replay, or "
                                       "this process holds as many streams as it may; retry after Retry-After "
                                       "seconds")},
                description="Choose events with at least one of streams, users, types or all=true.",
            ),
            "/events/stats": _get(
                "Live-feed and indexer statistics", [],
                {"200": _json("Stats", "statistics"), "400": BAD_REQUEST},
            ),
            "/metrics": _get(
                "Prometheus metrics (admins only when authentication is on)", [],
                {"200": {"description": "Prometheus text exposition format",
                         "content": {"text/plain": {"schema": {"type": "string"}}}},
                 "400": BAD_REQUEST, "403": _json("Error", "the token carries no admin claim")},
            ),
            "/health": _get("Liveness: the process answers", [], {"200": _json("Health", "alive"), "400": BAD_REQUEST}),
            "/ready": _get(
                "Readiness: database reachable, live listener connected, indexer within the allowed lag", [],
                {"200": _json("Ready", "ready"), "400": BAD_REQUEST,
                 "503": _json("Ready", "not ready; the checks say why")},
            ),
            "/openapi.json": _get(
                "This document", [],
                {"200": {"description": "the OpenAPI document", "content": {JSON: {"schema": {"type": "object"}}}},
                 "400": BAD_REQUEST},
            ),
            "/": _get(
                "The live page: a browser view of the live events", [],
                {"200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}},
            ),
        },
        "components": {"schemas": _schemas(), "securitySchemes": SECURITY_SCHEMES},
        # Only when the server has authentication configured (FLOWFI_AUTH_JWT_*); else open.
        "security": [{}, *({name: []} for name in SECURITY_SCHEMES)],
    }
