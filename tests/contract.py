"""Checks that a Kafka record honours the event contract: its JSON Schema and the SDK."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from cloudevents.core.bindings import kafka as ce_kafka

from tests.shapes import user_key

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "bridge" / "schemas"


@cache
def validator(file_name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / file_name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def check_record(record: Any) -> dict[str, Any]:
    """Validate one event record; return its decoded event. Raises on any breach."""
    event: dict[str, Any] = json.loads(record.value)
    name = event["dataschema"].rsplit("/", 1)[-1]
    validator(name).validate(event)
    headers = dict(record.headers)
    assert headers["content-type"] == b"application/cloudevents+json"
    for attr in ("id", "type", "source", "subject", "specversion"):
        assert headers[f"ce_{attr}"] == str(event[attr]).encode()
    # Structured mode is what content-type says (Kafka binding §3.1); the SDK's from_kafka
    # guesses binary mode from any ce_ header, so decode explicitly as structured.
    decoded = ce_kafka.from_structured_event(
        ce_kafka.KafkaMessage(headers=headers, key=record.key, value=record.value)
    )
    assert decoded.get_id() == event["id"]
    assert decoded.get_type() == event["type"]
    assert decoded.get_data() == event["data"]
    # README: an event naming its user (in both places) is keyed `<user>/<subject>`; one that
    # names none by its subject. The per-type schema requires the user where it must be.
    user = event.get("icwsuser")
    if user is None:
        assert record.key == event["subject"].encode()
    else:
        assert event["data"]["userId"] == user
        assert headers["ce_icwsuser"] == user.encode()
        assert record.key == user_key(user, event["subject"]).encode()
    return event
