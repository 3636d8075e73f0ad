from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer import copy_text


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain", "plain"),
        ("", ""),
        ("tab\there", "tab\\there"),
        ("new\nline", "new\\nline"),
        ("carriage\rreturn", "carriage\\rreturn"),
        ("back\\slash", "back\\\\slash"),
        ('"quoted", {braces}', '"quoted", {braces}'),
        ("\\N", "\\\\N"),
        ("é 😀 \u2028", "é 😀 \u2028"),
    ],
)
def test_text_escapes_backslash_tab_newline_and_carriage_return(value: str, encoded: str) -> None:
    assert copy_text.text(value) == encoded


@pytest.mark.parametrize(
    ("values", "encoded"),
    [
        ([], "{}"),
        (["AAAA", "BBBB"], '{"AAAA","BBBB"}'),
        (["NULL", ""], '{"NULL",""}'),
        (['a"b', "c,d", "{e}"], '{"a\\\\"b","c,d","{e}"}'),
        (["x\\y", "t\tn\n"], '{"x\\\\\\\\y","t\\tn\\n"}'),
    ],
)
def test_text_array_quotes_every_element(values: list[str], encoded: str) -> None:
    assert copy_text.text_array(values) == encoded


def test_timestamp_is_utc_with_its_offset_and_refuses_naive_datetimes() -> None:
    assert copy_text.timestamp(datetime(2026, 7, 21, 18, 1, 10, tzinfo=UTC)) == "2026-07-21T18:01:10+00:00"
    east = timezone(timedelta(hours=2))
    assert copy_text.timestamp(datetime(2026, 7, 21, 20, 1, 11, tzinfo=east)) == "2026-07-21T18:01:11+00:00"
    with pytest.raises(ValueError, match="aware"):
        copy_text.timestamp(datetime(2026, 7, 21))


TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=TEXT, array=st.lists(TEXT, max_size=4), nullable=st.none() | TEXT)
async def test_postgres_reads_back_exactly_what_was_encoded(
    db: asyncpg.Connection, value: str, array: list[str], nullable: str | None
) -> None:
    await db.execute("CREATE TEMP TABLE IF NOT EXISTS t (a text, b text[], c text, d timestamptz, e numeric)")
    await db.execute("TRUNCATE t")
    at = datetime(2026, 7, 21, 18, 1, 10, 123456, tzinfo=UTC)
    line = "\t".join([copy_text.text(value), copy_text.text_array(array), copy_text.optional_text(nullable),
                      copy_text.timestamp(at), str(-(2**127))]) + "\n"
    await db.copy_to_table("t", source=memoryview(line.encode()), format="text")
    assert tuple(await db.fetchrow("SELECT * FROM t")) == (value, array, nullable, at, -(2**127))
