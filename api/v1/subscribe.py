"""GET /v1/events/subscribe: this API's live stream (replay by id, hub, limits: api.sse) asked for and
framed as FlowFi's backend did, for its web app's EventSource.

- `streams=<id>` (one value or several): those streams' events, public as the streams are.
- No filter, or `all=true`, with a token (`Authorization: Bearer`, `token=<jwt>` as the app's hook sends
  it, `access_token`, or the cookie): the token's own streams, as `users=<sub>`; an admin's `all=true`
  (or an admin token without an address): every event. Without a token: a 400 saying what to send.
- `users=<address>`: needs a token of that address (or an admin's).
- `types=` narrows (names of either vocabulary); `lastEventId`/`Last-Event-ID` resume, as on this API.
- Unknown parameters (the backend's `sandbox`, ...) are ignored; a token that is sent must be valid.

Frames: first an unnamed `connected` message ({type, clientId, requestId}), then each event as
`event: <the backend's name>` with its payload (api.v1.shapes.sse_payload), `id:` lines and heartbeats
as on this API. A stream opened with a token ends when the token expires (an `error` frame says so).
"""

from __future__ import annotations

import random
import re
import string
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request

from api import filters
from api.auth import Authenticator, AuthError, Principal, token_of
from api.filters import BadRequest, EventFilter
from api.hub import LiveEvent
from api.sse import Dialect, Refusal, Selection, resume_point
from api.v1 import errors, shapes

SUBSCRIBE_PATH = "/v1/events/subscribe"
REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,128}")  # a client's X-Request-ID that is echoed
_BACKEND_NAMES = {name: kind for kind, name in shapes.SSE_NAME.items() if name != kind and name != "stream.created"}
NO_FILTER = ("say which events to send: streams=<id> (public), or send a token (Authorization: Bearer <jwt>, or "
             "token=<jwt>) for the events of your own streams; get one with POST /v1/auth/challenge and "
             "POST /v1/auth/verify")


def _kinds(text: str) -> frozenset[str]:
    """The kinds a `types` value names: this API's name, or the backend's (stream.created: every creation)."""
    if text == "stream.created":
        return frozenset(shapes.KINDS_OF_TYPE["CREATED"])
    return frozenset({_BACKEND_NAMES.get(text) or filters.event_type(text)})


def _connected(request: Request) -> tuple[bytes, bytes]:
    """The backend's first message and the request id it names (the client's X-Request-ID, if valid)."""
    given = request.headers.get("x-request-id", "")
    request_id = given if REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
    client_id = f"{int(time.time() * 1000)}-{''.join(random.choices(string.ascii_lowercase + string.digits, k=9))}"
    data = orjson.dumps({"type": "connected", "clientId": client_id, "requestId": request_id})
    return b"data: %s\n\n" % data, request_id.encode()


class BackendDialect(Dialect):
    def refusal(self, status: int, message: str, parameter: str | None) -> tuple[dict[str, Any], dict[str, str]]:
        return errors.refusal(status, message, parameter)

    def select(self, request: Request) -> Selection:
        params = request.query_params
        principal: Principal | None = None
        if token_of(request) is not None:
            authenticator: Authenticator = request.app.state.authenticator
            try:
                principal = authenticator.principal(request)
            except AuthError as exc:
                raise Refusal(exc.status, exc.message) from None
        streams = frozenset(filters.stream_id(value) for value in filters.values(params, "streams"))
        users = frozenset(filters.address(value) for value in filters.values(params, "users"))
        types = frozenset().union(*(_kinds(value) for value in filters.values(params, "types")))
        everything = False
        if users:
            if principal is None:
                raise Refusal(401, "users= needs a token of that address: send Authorization: Bearer <jwt> or "
                                   "token=<jwt>", "users")
            if not principal.admin and users != {principal.address}:
                raise Refusal(403, "a token follows only its own address: users=<the token's address>", "users")
        every = any(filters.boolean(value, "all") for value in params.getlist("all"))
        if every or not (streams or users):
            if principal is None:
                raise BadRequest(None, NO_FILTER)
            if principal.admin and (every or principal.address is None):
                everything = True
            else:
                assert principal.address is not None
                users |= {principal.address}
        opening, request_id = _connected(request)
        return Selection(EventFilter(streams=streams, users=users, types=types, everything=everything),
                         resume_point(request), None if principal is None else principal.address,
                         None if principal is None else principal.expires_at, opening,
                         ((b"x-request-id", request_id),))

    def encode_row(self, row: Mapping[str, Any]) -> bytes:
        return shapes.sse_frame(row)

    @staticmethod
    def render(event: LiveEvent) -> bytes:  # type: ignore[override]
        return shapes.render_live(event)
