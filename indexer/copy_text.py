"""PostgreSQL's COPY text format, written with string joins.

The store sends its rows as COPY text rather than through asyncpg's binary COPY, which encodes every
value with a call of its own (a NUMERIC by way of a Decimal): for a row of ~35 mostly NULL columns the
text is several times cheaper to build, and it is what the server parses fastest.

The format (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format"):

    a row       its fields joined by tabs, ended by a newline
    NULL        \\N
    text        as is, but backslash, tab, newline and carriage return escaped with a backslash
    integers    their decimal digits (NUMERIC and BIGINT alike); nothing to escape
    boolean     t or f
    numeric[]   the array literal {1,2,3}: digits and commas, nothing to escape
    timestamp   ISO 8601 in UTC, with its offset; nothing to escape
    text[]      the array literal {"a","b"}: each element double-quoted, its quotes and backslashes
                escaped with a backslash; then the literal is escaped as a text field

PostgreSQL text cannot hold a NUL character in any format: such a value is refused by the server,
in COPY text as in binary.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache

NULL = "\\N"

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def text(value: str) -> str:
    """A text field."""
    # Most values hold none of the four characters: four scans in C cost less than a translate.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def optional_text(value: str | None) -> str:
    return NULL if value is None else text(value)


def text_array(values: Iterable[str]) -> str:
    """A text[] field: every element quoted, so that no element can read as NULL or split at a comma."""
    values = tuple(values)
    if any('"' in v or "\\" in v for v in values):
        values = tuple(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return text('{"' + '","'.join(values) + '"}' if values else "{}")


@lru_cache(maxsize=1024)
def timestamp(value: datetime) -> str:
    """A timestamptz field, in UTC, from an aware datetime. Cached: the events of one ledger share
    theirs (and equal instants in other offsets are equal keys, hence the one UTC form)."""
    if value.tzinfo is None:
        raise ValueError(f"a timestamptz needs an aware datetime, got {value!r}")
    return value.astimezone(UTC).isoformat()


def boolean(value: bool) -> str:
    return "t" if value else "f"


def integer_array(values: tuple[int, ...]) -> str:
    """A NUMERIC[] or BIGINT[] field."""
    return "{" + ",".join(map(str, values)) + "}"
