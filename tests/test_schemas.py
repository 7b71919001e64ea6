"""The committed schemas are exactly what the code generates, and are valid documents."""

from __future__ import annotations

import json

import jsonschema

from bridge import schema_files


def test_committed_schemas_match_the_code() -> None:
    """bridge/schemas/ has every generated file, none stale and none extra."""
    assert schema_files.differences(schema_files.SCHEMA_DIR) == []


def test_every_event_schema_is_valid_json_schema_2020_12() -> None:
    """Each event schema passes the 2020-12 meta-schema."""
    for name, text in schema_files.generated().items():
        if name != schema_files.ASYNCAPI:
            jsonschema.Draft202012Validator.check_schema(json.loads(text))


def test_asyncapi_references_every_event_schema() -> None:
    """The AsyncAPI document names each event schema file exactly once."""
    files = schema_files.generated()
    document = json.loads(files[schema_files.ASYNCAPI])
    assert document["asyncapi"] == "3.0.0"
    refs = sorted(m["payload"]["$ref"] for m in document["components"]["messages"].values())
    assert refs == sorted(f"./{n}" for n in files if n != schema_files.ASYNCAPI)
