"""The committed schemas are exactly what the code generates, and are valid documents.

Also the per-topic record schemas a validating broker enforces (``bridge schemas --topics``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bridge import schema_files
from bridge.__main__ import main
from bridge.app import contract_from
from bridge.core import events
from bridge.core.messages import Aggregate
from bridge.core.state import ChangeKind
from bridge.settings import Settings
from tests.unit.test_events import EVENT_TYPES, change


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


# --- per-topic record schemas, for a broker that validates what is produced ---------------

# The topics of README "Topics and events", by their default names.
DEFAULT_TOPICS = {
    "icws.interaction.alerting.v1",
    "icws.interaction.history.v1",
    "icws.status.messages.v1",
    "icws.assistance.requests.v1",
    "icws.interaction.alerting.state.v1",
    "icws.interaction.history.state.v1",
    "icws.status.messages.state.v1",
    "icws.assistance.requests.state.v1",
    "icws.bridge.lifecycle.v1",
    "icws.commands.v1",
    "icws.command.results.v1",
    "icws.commands.dlq.v1",
    "icws.commands.journal.v1",
}
# Tansu refuses a tombstone under any value schema, and senders' broken commands must reach the
# bridge to be dead-lettered: these topics are described but not enforced.
UNENFORCED = {
    *(t for t in DEFAULT_TOPICS if ".state." in t),
    "icws.commands.v1",
    "icws.commands.dlq.v1",
}
RECORDED = datetime(2024, 1, 5, 14, 30, 0, 123456, tzinfo=UTC)
# An alert with every property the parser requires of ICWS (the shared samples have fewer).
ALERT = {
    "interactionId": "100123456780170101",
    "interactionType": "Call",
    "name": "John Smith",
    "address": "+15551234567",
    "alertType": "AcdUser",
    "alertAction": "StartAlerting",
    "autoAnswer": False,
}


def topic_schemas(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """The generated topic schema files, parsed, by topic name."""
    files = schema_files.topic_files(settings or Settings())
    return {name.removesuffix(".json"): json.loads(text) for name, text in files.items()}


def value_validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """What the broker checks a value with (or, where it checks nothing, what is described)."""
    value = schema["properties"]["value"] if "properties" in schema else schema["$defs"]["value"]
    return jsonschema.Draft202012Validator(value)


class TestTopicSchemas:
    """``bridge schemas --topics``: one record schema per topic, enforced where Tansu can."""

    def test_one_file_for_every_topic_by_its_default_name(self) -> None:
        """Every topic of the README table has a file named after it, and no other file exists."""
        assert set(topic_schemas()) == DEFAULT_TOPICS

    def test_the_command_line_writes_them(self, tmp_path: Path) -> None:
        """``bridge schemas --topics DIR`` writes exactly the generated files into DIR."""
        assert main(["schemas", "--topics", str(tmp_path)]) == 0
        written = {p.name: p.read_text() for p in tmp_path.iterdir()}
        assert written == schema_files.topic_files(Settings())
        assert len(written) == len(DEFAULT_TOPICS)

    def test_the_configured_topic_names_are_used(self) -> None:
        """A renamed topic gets its file under the new name, not the default one."""
        settings = Settings(topics={"alerting": "acme.alerting", "commands": "acme.commands"})
        names = set(topic_schemas(settings))
        assert {"acme.alerting", "acme.commands"} <= names
        assert not {"icws.interaction.alerting.v1", "icws.commands.v1"} & names

    def test_each_is_valid_and_no_key_is_checked(self) -> None:
        """Files pass the 2020-12 meta-schema; none checks keys (Tansu parses keys as JSON)."""
        for schema in topic_schemas().values():
            jsonschema.Draft202012Validator.check_schema(schema)
            assert "key" not in schema.get("properties", {})

    def test_enforced_exactly_where_the_broker_can_and_should(self) -> None:
        """Value schemas are enforced except on state, command and dead-letter topics."""
        schemas_ = topic_schemas()
        enforced = {t for t, s in schemas_.items() if "value" in s.get("properties", {})}
        assert enforced == DEFAULT_TOPICS - UNENFORCED
        for topic in UNENFORCED:
            assert schemas_[topic]["$comment"].startswith("Not checked by the broker: ")

    @pytest.mark.parametrize(("aggregate", "kind", "name"), EVENT_TYPES)
    def test_the_records_of_every_entity_event_fit_their_topics(
        self, aggregate: Aggregate, kind: ChangeKind, name: str
    ) -> None:
        """An event and its state record (or tombstone) fit their topics; elsewhere it does not."""
        settings = Settings()
        contract = contract_from(settings.events, settings.topics)
        entity = change(aggregate, kind, 2, ALERT if aggregate == "alerting" else None)
        event, state = events.change_records(contract, entity, RECORDED)
        schemas_ = topic_schemas(settings)
        assert event.value is not None
        body = json.loads(event.value)
        value_validator(schemas_[event.topic]).validate(body)
        assert (kind == "removed") == (state.value is None)
        state_body = None if state.value is None else json.loads(state.value)
        value_validator(schemas_[state.topic]).validate(state_body)
        other = settings.topics.history if aggregate != "history" else settings.topics.alerting
        assert not value_validator(schemas_[other]).is_valid(body)
        broken = {k: v for k, v in body.items() if k != "sequence"}
        assert not value_validator(schemas_[event.topic]).is_valid(broken)

    def test_lifecycle_events_fit_their_topic_and_a_broken_one_does_not(self) -> None:
        """``session up`` with its data fits the lifecycle topic; without ``data.host`` not."""
        settings = Settings()
        contract = contract_from(settings.events, settings.topics)
        data = {
            "host": "https://icserver:8019",
            "server": "icserver",
            "version": "2018 R4",
            "transport": "sse",
            "subscriptions": ["alerting", "assistance"],
        }
        record = events.lifecycle_record(contract, "bridge.session.up", "session", data, RECORDED)
        validator = value_validator(topic_schemas(settings)[settings.topics.lifecycle])
        assert record.value is not None
        body = json.loads(record.value)
        validator.validate(body)
        del body["data"]["host"]
        assert not validator.is_valid(body)
