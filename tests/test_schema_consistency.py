"""The browser code carries the event schema as literals (it has no build step to import it): check
that they say what indexer/events.py says."""

from __future__ import annotations

import re
from pathlib import Path

from indexer.events import BY_SSE_NAME, ScType, all_fields, payload_key

ROOT = Path(__file__).parent.parent


def js_array(path: Path, name: str) -> list[str]:
    match = re.search(rf"export const {name} = \[(.*?)\]", path.read_text(), re.DOTALL)
    assert match, f"{name} not found in {path}"
    return re.findall(r'"([^"]+)"', match.group(1))


def test_the_page_and_the_hook_know_every_event_type() -> None:
    for path in (ROOT / "api/static/format.js", ROOT / "examples/react/src/useStreamEvents.ts"):
        assert js_array(path, "EVENT_TYPES") == list(BY_SSE_NAME), path


def test_the_page_formats_every_amount_field() -> None:
    amounts = {payload_key(name) for name, sc_type in all_fields().items() if sc_type is ScType.I128}
    assert set(js_array(ROOT / "api/static/format.js", "AMOUNT_KEYS")) == amounts


def test_the_readme_lists_every_event_with_its_name_and_fields() -> None:
    from indexer.events import EVENT_KINDS, field_types

    readme = (ROOT / "README.md").read_text()
    for kind in EVENT_KINDS:
        row = next((line for line in readme.splitlines() if f"| `{kind.sse_name}` |" in line), None)
        assert row is not None, f"README: no row for {kind.sse_name}"
        assert all(symbol in row for symbol in kind.symbols), kind.sse_name
        assert all(name in row for name in field_types(kind) if name != "stream_id"), kind.sse_name
