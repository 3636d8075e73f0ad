"""Query parameters to typed filters, with a 400 that says what is wrong.

Every list parameter is accepted as one value, repeated keys, or comma-separated values:
`?streams=1`, `?streams=1&streams=2` and `?streams=1,2` mean the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.datastructures import QueryParams

from api.auth import QUERY_CREDENTIALS
from indexer import ids
from indexer.addresses import is_account, is_contract
from indexer.events import BY_SSE_NAME, LEDGER_MAX, U64_MAX

# ASCII digits only, and few enough for int(): str.isdigit() accepts "²", which int() refuses.
NUMBER = re.compile(r"[0-9]{1,20}")
MAX_LIST_VALUES = 100
SHOWN = 40  # characters of a refused value repeated in its error message


JWT_SHAPE = re.compile(r"eyJ[\w-]*\.")  # a base64url JSON object, then a dot: a JWT's header


def shown(text: str, parameter: str | None = None) -> str:
    """A refused value as an error message repeats it: quoted and cut short. Never a credential: a
    value given under a name that carries tokens, or shaped like a JWT, is not repeated at all."""
    if parameter in QUERY_CREDENTIALS or JWT_SHAPE.search(text):
        return "the value given"
    return repr(text[:SHOWN]) + ("..." if len(text) > SHOWN else "")


class BadRequest(ValueError):
    """A request the API refuses; `parameter` names the culprit."""

    def __init__(self, parameter: str | None, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a reader wants: those of `streams`, those concerning `users`, or `everything`;
    narrowed to `types` when given. Only `types` means every event of those types."""

    streams: frozenset[int] = frozenset()
    users: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    everything: bool = False
    visible_to: str | None = None  # an authenticated user's address: only events concerning it

    @property
    def selects_all(self) -> bool:
        return self.everything or not (self.streams or self.users)

    def kind(self) -> str:
        """How the filter selects, for statistics: all, streams, users, types or mixed."""
        if self.everything:
            return "all"
        chosen = [name for name, value in (("streams", self.streams), ("users", self.users)) if value]
        if not chosen:
            return "types"
        return chosen[0] if len(chosen) == 1 else "mixed"


T = TypeVar("T")
_EMPTY: frozenset[Any] = frozenset()


def _frozen(items: Iterable[T]) -> frozenset[T]:
    """A frozenset, sharing one empty set (a live connection keeps its filter: this saves memory)."""
    return frozenset(items) or _EMPTY


def values(params: QueryParams, name: str) -> list[str]:
    """Every value of a list parameter, from repeated keys and comma-separated values."""
    found = [part.strip() for raw in params.getlist(name) for part in raw.split(",")]
    if "" in found:
        raise BadRequest(name, f"{name}: an empty value; give one or more values, separated by commas")
    if len(found) > MAX_LIST_VALUES:
        raise BadRequest(name, f"{name}: at most {MAX_LIST_VALUES} values, got {len(found)}")
    return found


def stream_id(text: str, parameter: str = "streams") -> int:
    if not NUMBER.fullmatch(text) or not 0 < int(text) <= U64_MAX:
        raise BadRequest(
            parameter, f"{parameter}: {shown(text, parameter)} is not a stream id (a whole number from 1 to 2^64-1)"
        )
    return int(text)


def address(text: str, parameter: str = "users") -> str:
    if not (is_account(text) or is_contract(text)):
        raise BadRequest(
            parameter, f"{parameter}: {shown(text, parameter)}"
            " is not a valid Stellar address (G... or C... with its checksum)"
        )
    return text


def event_type(text: str, parameter: str = "types") -> str:
    if text not in BY_SSE_NAME:
        raise BadRequest(
            parameter, f"{parameter}: unknown event type {shown(text, parameter)}; known: {', '.join(BY_SSE_NAME)}"
        )
    return text


# Resume points that mean "before the first event": 0, and the all-zero id.
FROM_THE_START = frozenset({"0", ids.event_id(0, 0, 0, 0)})


def event_id(text: str, parameter: str) -> str:
    if not ids.PATTERN.fullmatch(text):
        raise BadRequest(
            parameter, f"{parameter}: {shown(text, parameter)} is not an event id (like 0000000012884905984-0000000000)"
        )
    return text


def position(text: str, parameter: str) -> str:
    """A point to read on from: an event id, or "" for the very start (given as 0 or the all-zero id);
    every id sorts after ""."""
    return "" if text in FROM_THE_START else event_id(text, parameter)


def boolean(text: str, parameter: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(parameter, f"{parameter}: expected true or false, got {shown(text, parameter)}")


def reject_unknown(params: QueryParams, known: Iterable[str]) -> None:
    allowed = set(known) | set(QUERY_CREDENTIALS)  # the credential of api.auth is accepted everywhere
    unknown = sorted({key for key in params if key not in allowed})
    if unknown:
        named = ", ".join(shown(key) for key in unknown[:3])
        if len(unknown) > 3:
            named += f" and {len(unknown) - 3} more"
        raise BadRequest(
            unknown[0][:SHOWN], f"unknown parameter(s) {named}; accepted: {', '.join(sorted(allowed))}"
        )


def event_filter(params: QueryParams, *, require_selection: bool) -> EventFilter:
    everything = any(boolean(v, "all") for v in params.getlist("all"))
    selected = EventFilter(
        streams=_frozen(stream_id(v) for v in values(params, "streams")),
        users=_frozen(address(v) for v in values(params, "users")),
        types=_frozen(event_type(v) for v in values(params, "types")),
        everything=everything,
    )
    if everything and (selected.streams or selected.users):
        raise BadRequest("all", "all=true selects every event: give it alone, or streams= and users= without it")
    if require_selection and not (selected.everything or selected.streams or selected.users or selected.types):
        raise BadRequest(
            None,
            "say which events to send: streams=<ids>, users=<addresses>, types=<event types> or all=true "
            "(each as one value, repeated keys, or comma-separated)",
        )
    return selected


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def single(params: QueryParams, name: str) -> str | None:
    """The one value of a scalar parameter, or None when absent; given twice is a 400."""
    found = params.getlist(name)
    if not found:
        return None
    if len(found) > 1:
        raise BadRequest(name, f"{name}: give it once, got {len(found)} values")
    return found[0]


def page_size(params: QueryParams, name: str = "limit") -> int:
    text = single(params, name)
    if text is None:
        return DEFAULT_PAGE_SIZE
    if not NUMBER.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise BadRequest(
            name, f"{name}: {shown(text, name)} is not a page size (a whole number from 1 to {MAX_PAGE_SIZE})"
        )
    return int(text)


def ledger(text: str, parameter: str) -> int:
    if not NUMBER.fullmatch(text) or not 1 <= int(text) <= LEDGER_MAX:
        raise BadRequest(
            parameter, f"{parameter}: {shown(text, parameter)} is not a ledger sequence (1 to {LEDGER_MAX})"
        )
    return int(text)


def choice(text: str, parameter: str, allowed: Iterable[str]) -> str:
    options = tuple(allowed)
    if text not in options:
        raise BadRequest(parameter, f"{parameter}: {shown(text, parameter)} is not one of {', '.join(options)}")
    return text


def contract_id(text: str, parameter: str) -> str:
    if not is_contract(text):
        raise BadRequest(
            parameter, f"{parameter}: {shown(text, parameter)} is not a valid contract id (C... with its checksum)"
        )
    return text
