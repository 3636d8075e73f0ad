"""The /v1 API's OpenAPI document (GET /api-docs.json) and its Swagger UI page (GET /api-docs).

OpenAPI 3.0, as FlowFi's backend published it (so that the Swagger UI this server ships renders it);
`servers` is /v1, so the paths read as the backend's did. The UI's files come from the swagger-ui-bundle
package and are served by this server: the page works offline and loads nothing from a CDN.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from api.v1 import shapes
from api.v1.routes import EVENT_PAGE, STREAM_PAGE, STREAM_SORTS
from indexer.tables import STREAM_STATUSES

JSON = "application/json"
STATIC = "/api-docs/static"
U64 = {"oneOf": [{"type": "integer", "minimum": 0, "maximum": shapes.SAFE_INTEGER - 1},
                 {"type": "string", "pattern": "^[0-9]+$"}],
       "description": "a number below 2^53, else a decimal string"}
EVENT_ID = {"type": "string", "pattern": "^[0-9]{19}-[0-9]{10}$", "description": "an event id"}
RESUME_POINT = {"anyOf": [EVENT_ID, {"const": "0"}, {"const": "now"}]}
DECIMAL = {"type": "string", "pattern": "^-?[0-9]+$", "description": "an i128 amount in the token's smallest unit"}
ADDRESS = {"type": "string", "pattern": "^[GC][A-Z2-7]{55}$", "description": "a Stellar address, checksum included"}
CONTRACT = {"type": "string", "pattern": "^C[A-Z2-7]{55}$"}
ISO = {"type": "string", "format": "date-time"}
SECONDS = {"type": "integer", "minimum": 0, "description": "Unix seconds (a ledger close time)"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True} if "$ref" not in schema and "oneOf" not in schema else {
        "allOf": [schema], "nullable": True}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties,
            "required": [name for name in properties if name not in optional], "additionalProperties": False}


def _list(item: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(item)}


STREAM = {
    "id": {"type": "string", "description": "contractId:streamId"},
    "streamId": U64, "contractId": CONTRACT, "sender": ADDRESS, "recipient": ADDRESS, "tokenAddress": CONTRACT,
    "tokenSymbol": {"type": "string", "nullable": True, "description": "the token's symbol; null while unknown"},
    "tokenDecimals": {"type": "integer", "nullable": True, "minimum": 0, "description": "null while unknown"},
    "ratePerSecond": DECIMAL, "depositedAmount": {**DECIMAL, "description": "net of fees"},
    "withdrawnAmount": DECIMAL, "startTime": U64, "lastUpdateTime": U64,
    "endTime": {**_nullable(U64), "description": "when the deposit runs out, as the contract projects it"},
    "pausedAt": _nullable(U64), "isActive": {"type": "boolean", "description": "not cancelled or completed"},
    "isPaused": {"type": "boolean"},
    "totalPausedDuration": {"type": "integer", "minimum": 0, "description": "seconds, from pause/resume events"},
    "status": {"type": "string", "enum": list(shapes.STATUS_NAMES.values())},
    "createdAt": ISO, "updatedAt": ISO,
}
EVENT = {
    "id": {"type": "string", "description": "the chain event id"},
    "streamId": {**U64, "description": "0 for the protocol's own events"},
    "eventType": {"type": "string", "enum": list(shapes.EVENT_TYPES)},
    "amount": _nullable(DECIMAL), "transactionHash": {"type": "string"}, "ledgerSequence": {"type": "integer"},
    "timestamp": SECONDS, "metadata": {"type": "string", "nullable": True, "description": "JSON text"},
    "createdAt": ISO, "contractId": CONTRACT,
}


def _schemas() -> dict[str, Any]:
    return {
        "Error": {"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "description": "the backend's short error"},
            "message": {"type": "string", "description": "what is wrong and what to do"},
            "parameter": {"type": "string"}, "contractIds": {"type": "array", "items": CONTRACT}}},
        "Stream": _object(STREAM),
        "StreamEvent": _object(EVENT),
        "ListedStream": _object({**STREAM, "events": {**_list("StreamEvent"),
                                                      "description": "its cancel or completion event, if any"}}),
        "StreamDetail": _object({**STREAM, "events": {**_list("StreamEvent"), "description": "its newest events"}}),
        "StreamList": _object({"data": _list("ListedStream"), "total": {"type": "integer"},
                               "hasMore": {"type": "boolean"}, "limit": {"type": "integer"},
                               "offset": {"type": "integer"}}),
        "StreamEventPage": _object({"data": _list("StreamEvent"), "events": {**_list("StreamEvent"),
                                    "description": "the same page (the web app's key)"},
                                    "total": {"type": "integer"}, "hasMore": {"type": "boolean"}}),
        "AddressEventPage": _object({"events": _list("StreamEvent"), "total": {"type": "integer"},
                                     "limit": {"type": "integer"}, "offset": {"type": "integer"},
                                     "hasMore": {"type": "boolean"}}),
        "UserEvent": _object({**EVENT, "stream": _nullable(_ref("Stream"))}),
        "UserEventPage": _object({"data": _list("UserEvent"), "total": {"type": "integer"},
                                  "hasMore": {"type": "boolean"}, "limit": {"type": "integer"},
                                  "offset": {"type": "integer"}}),
        "Claimable": _object({"streamId": U64, "claimableAmount": DECIMAL, "actionable": {"type": "boolean"},
                              "calculatedAt": SECONDS, "cached": {"type": "boolean", "enum": [False]}}),
        "Summary": _object({"address": ADDRESS, "totalStreamsCreated": {"type": "integer"},
                            "totalStreamedOut": DECIMAL, "totalStreamedIn": DECIMAL, "currentClaimable": DECIMAL,
                            "activeOutgoingCount": {"type": "integer"}, "activeIncomingCount": {"type": "integer"}}),
        "User": _object({"publicKey": ADDRESS, "sentStreams": _list("Stream"), "receivedStreams": _list("Stream")}),
        "Health": {"type": "object", "required": ["status", "db", "ledger", "checks"], "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "db": {"type": "string", "enum": ["connected", "disconnected"]},
            "indexerEnabled": {"type": "boolean"},
            "indexerLag": {"type": "number", "nullable": True, "description": "seconds since the worker polled"},
            "indexerLagLedgers": {"type": "integer", "nullable": True},
            "eventsProcessed": {"type": "integer"}, "eventsFailed": {"type": "integer"},
            "lastErrorAt": {**ISO, "nullable": True}, "indexerDegraded": {"type": "boolean"},
            "uptime": {"type": "number"},
            "ledger": {"type": "integer", "nullable": True, "description": "the last indexed ledger"},
            "checks": {"type": "object"}}},
        "Stats": _object({"activeConnections": {"type": "integer"}, "activeIps": {"type": "integer"},
                          "perIpPeakConnections": {"type": "integer"}, "maxConnections": {"type": "integer"},
                          "timestamp": ISO}),
        "ChallengeRequest": {"type": "object", "required": ["publicKey"],
                             "properties": {"publicKey": {**ADDRESS, "pattern": "^G[A-Z2-7]{55}$"}}},
        "Challenge": _object({"nonce": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                              "expiresAt": {"type": "integer", "description": "Unix milliseconds"}}),
        "VerifyRequest": {"type": "object", "required": ["publicKey", "signedTransaction"], "properties": {
            "publicKey": {**ADDRESS, "pattern": "^G[A-Z2-7]{55}$"},
            "signedTransaction": {"type": "string", "description": "base64 transaction envelope XDR: source the "
                                  "account, first operation manageData whose value is the nonce's 32 bytes"}}},
        "Token": _object({"token": {"type": "string"}, "expiresIn": {"type": "integer", "enum": [3600]}}),
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


ERROR = {"400": _json("Error", "a malformed parameter (the body names it)")}
# A path parameter with characters no path segment of these routes holds (a newline, say) matches no route.
NO_SUCH_PATH = {"404": _json("Error", "no such path: a path parameter that is not one")}
UNAUTHORIZED = {"401": _json("Error", "no valid token"), "403": _json("Error", "not this token's to see")}
NOT_FOUND = {"404": _json("Error", "no such stream has been indexed"),
             "409": _json("Error", "several indexed contracts have this stream id: add contractId")}


def _q(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


TYPES = "|".join(shapes.EVENT_TYPES)
STREAM_ID = _path("streamId", {"type": "integer", "minimum": 0})
CONTRACT_ID = _q("contractId", CONTRACT, "the FlowFi contract, when several indexed contracts share the stream id")


def _paging(sizes: tuple[int, int]) -> list[dict[str, Any]]:
    return [_q("limit", {"type": "integer", "minimum": 0},
               f"page size (0 or absent: {sizes[0]}; at most {sizes[1]})"),
            _q("offset", {"type": "integer", "minimum": 0}, "items to skip"),
            _q("page", {"type": "integer", "minimum": 1}, "page number from 1, when offset is absent")]


def _get(summary: str, parameters: list[dict[str, Any]], responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "parameters": parameters, "responses": responses, **extra}


NOT_SERVED = (
    "**Not served: the backend's writes.** Writes are the chain's. Instead of POST /streams, /streams/{id}/pause, "
    "/resume, /withdraw, /top-up or /cancel, sign and submit the contract's create_stream, pause_stream, "
    "resume_stream, withdraw, top_up_stream or cancel_stream from the wallet (as FlowFi's web app does); the "
    "indexer shows the result within a ledger, and its event arrives on /events/subscribe. These paths answer 405 "
    "saying so. POST /users is not served either: there is no registration, an address is a user once a stream "
    "names it. The admin routes are not served: see /metrics, /ready and /events/stats of this server."
)

SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"token": []}]


@functools.cache
def document() -> dict[str, Any]:
    summary = _get("An address's totals: streams created, streamed out and in (withdrawn), claimable now, running "
                   "streams each way", [_path("address", ADDRESS)],
                   {"200": _json("Summary", "the totals"), **ERROR, **NO_SUCH_PATH})
    return {
        "openapi": "3.0.3",
        "info": {"title": "FlowFi API (served by the FlowFi indexer)", "version": "1.0.0",
                 "description": "FlowFi's backend's API, as its web app uses it, served from the index. Chain data "
                                "is public; /users/me and /events need a token (POST /auth/challenge, then "
                                "/auth/verify).\n\n" + NOT_SERVED},
        "servers": [{"url": "/v1"}],
        "paths": {
            "/streams": {
                "get": _get("Streams", [
                    _q("sender", ADDRESS, "only streams from this address"),
                    _q("recipient", ADDRESS, "only streams to this address"),
                    _q("status", {"type": "string", "enum": list(STREAM_STATUSES)}, "only streams in this state"),
                    _q("token", CONTRACT, "only streams of this token contract"), CONTRACT_ID,
                    _q("sort", {"type": "string", "enum": list(STREAM_SORTS)}, "the order's key (createdAt)"),
                    _q("order", {"type": "string", "enum": ["asc", "desc"]}, "desc by default"),
                    *_paging(STREAM_PAGE)], {"200": _json("StreamList", "a page of streams"), **ERROR}),
            },
            "/streams/summary/{address}": {"get": summary},
            "/streams/{streamId}": {"get": _get("A stream, with its newest events", [STREAM_ID, CONTRACT_ID],
                                                {"200": _json("StreamDetail", "the stream"), **ERROR, **NOT_FOUND})},
            "/streams/{streamId}/events": {"get": _get("A stream's events (stream 0: the protocol's)", [
                STREAM_ID, CONTRACT_ID,
                _q("eventType", {"type": "string", "pattern": f"^({TYPES})(,({TYPES}))*$"},
                   "only events of this type (or these, comma-separated)"),
                _q("order", {"type": "string", "enum": ["asc", "desc"]}, "desc (newest first) by default"),
                _q("cursor", EVENT_ID, "an event id: the page after it"),
                *_paging(EVENT_PAGE)], {"200": _json("StreamEventPage", "a page of events"), **ERROR,
                                        "409": NOT_FOUND["409"]})},
            "/streams/{streamId}/claimable": {"get": _get(
                "What the recipient could withdraw at a time, by the contract's formula",
                [STREAM_ID, CONTRACT_ID, _q("at", {"type": "integer", "minimum": 0, "maximum": shapes.SAFE_INTEGER - 1},
                                            "Unix seconds (default: the ledger time the index is at)")],
                {"200": _json("Claimable", "the amount"), **ERROR, **NOT_FOUND})},
            "/users/me": {"get": _get("The token's address and its newest streams", [],
                                      {"200": _json("User", "the user"), **UNAUTHORIZED}, security=SECURED)},
            "/users/{address}/summary": {"get": summary},
            "/users/{publicKey}": {"get": _get("An address and its newest streams", [
                _path("publicKey", {"type": "string", "pattern": "^G[A-Z2-7]{55}$"})],
                {"200": _json("User", "the user"), **ERROR, "404": _json("Error", "no indexed stream names it")})},
            "/users/{publicKey}/events": {"get": _get("The events concerning an address, newest first", [
                _path("publicKey", {"type": "string", "pattern": "^G[A-Z2-7]{55}$"}), *_paging(EVENT_PAGE)],
                {"200": _json("UserEventPage", "a page of events"), **ERROR, **NO_SUCH_PATH})},
            "/events": {"get": _get("The events concerning the token's address, newest first", [
                _q("address", ADDRESS, "the token's own address (admins: any)", required=True),
                _q("type", {"type": "string"}, "eventTypes, comma-separated"), *_paging(EVENT_PAGE)],
                {"200": _json("AddressEventPage", "a page of events"), **ERROR, **UNAUTHORIZED}, security=SECURED)},
            "/events/subscribe": {"get": _get("Live events over Server-Sent Events", [
                _q("streams", {"type": "array", "items": {"type": "integer", "minimum": 1}},
                   "these streams' events (public); one value or several"),
                _q("users", {"type": "array", "items": ADDRESS}, "the token's own address (admins: any)"),
                _q("all", {"type": "boolean"}, "the token's own streams (also without any filter)"),
                _q("types", {"type": "array", "items": {"type": "string"}}, "only these event names"),
                _q("token", {"type": "string"}, "the JWT, for EventSource"),
                _q("access_token", {"type": "string"}, "the same as token"),
                _q("lastEventId", RESUME_POINT, "replay the events after this id first (0: every event; now: "
                   "live only)"),
                _q("cursor", RESUME_POINT, "the same as lastEventId"),
                {"name": "Last-Event-ID", "in": "header", "required": False,
                 "schema": {"anyOf": [EVENT_ID, {"const": "0"}]},
                 "description": "sent by EventSource on reconnect; give one resume point (this, lastEventId or "
                                "cursor)"}],
                {"200": {"description": "a `connected` message, then `event: stream.<type>` frames with JSON "
                                        "data (streamId, amounts, transactionHash, ledger, timestamp ...)",
                         "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                 **ERROR, **UNAUTHORIZED})},
            "/events/stats": {"get": _get("Open event streams", [], {"200": _json("Stats", "the figures")})},
            "/health": {"get": _get("Health, with the last indexed ledger", [],
                                    {"200": _json("Health", "healthy"), "503": _json("Health", "degraded")})},
            "/auth/challenge": {"post": {
                "summary": "A nonce for a wallet to sign", "requestBody": {
                    "required": True, "content": {JSON: {"schema": _ref("ChallengeRequest")}}},
                "responses": {"200": _json("Challenge", "the nonce"), **ERROR}}},
            "/auth/verify": {"post": {
                "summary": "A token for a signed challenge", "requestBody": {
                    "required": True, "content": {JSON: {"schema": _ref("VerifyRequest")}}},
                "responses": {"200": _json("Token", "the token (HS256, one hour)"), **ERROR,
                              "401": _json("Error", "the transaction does not prove the address")}}},
        },
        "components": {"schemas": _schemas(), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "token": {"type": "apiKey", "in": "query", "name": "token"}}},
    }


async def api_docs_json(request: Request) -> Response:
    return JSONResponse(document())


PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FlowFi API (v1)</title>
<link rel="stylesheet" href="{STATIC}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{STATIC}/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({{url: "/api-docs.json", dom_id: "#swagger-ui"}});</script>
</body>
</html>
"""


async def api_docs(request: Request) -> Response:
    return HTMLResponse(PAGE)
