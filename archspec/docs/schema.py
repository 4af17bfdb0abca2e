"""The JSON Schema of the spec language as the text that ships and that ``archspec schema`` prints."""

from __future__ import annotations

import json

from archspec.spec.schema import SPEC_VERSION, json_schema

SCHEMA_FILE = f"docs/schema/archspec-spec-v{SPEC_VERSION}.json"
"""Where the copy lives in the repository; every shipped spec's first line points at it."""


def schema_text() -> str:
    """The schema as stable, human-readable JSON.

    ``ensure_ascii=False`` keeps descriptions such as "6×6" readable in
    editors' hovers; the key order is pydantic's, which is deterministic, so
    the shipped copy only changes when the models do.
    """
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
