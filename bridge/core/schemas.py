"""JSON Schemas (2020-12) for every event type and the AsyncAPI 3 document, as plain values.

Entity schemas are generated from the parser's own tables (``messages.Shape``): each property's
converter says what the property becomes, so the schema cannot drift from what is emitted.
``bridge schemas`` writes these to ``bridge/schemas/``; a test fails when the committed files
differ from what the code generates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bridge.core import messages
from bridge.core.events import EVENT_NAMES, MAJOR, Contract
from bridge.core.messages import AGGREGATES, ENUMS, Aggregate, EnumField, Shape

DIALECT = "https://json-schema.org/draft/2020-12/schema"
DATE_TIME = {"type": "string", "format": "date-time"}
TEXT = {"type": "string"}


def enum_schema(enum: str) -> dict[str, Any]:
    """An ICWS enum as its names; a number the bridge does not know yet shows as UnknownN."""
    return {
        "type": "string",
        "anyOf": [{"enum": list(ENUMS[enum])}, {"pattern": "^Unknown-?[0-9]+$"}],
    }


QUEUE_ID = {
    "type": "object",
    "properties": {"queueType": enum_schema("queueType"), "queueName": TEXT},
    "required": ["queueType", "queueName"],
}

CONVERTERS: Mapping[Callable[[Any], Any], dict[str, Any]] = {
    messages.text: TEXT,
    messages.flag: {"type": "boolean"},
    messages.rfc3339: DATE_TIME,
    messages.strings: {"type": "object", "additionalProperties": {"type": "string"}},
    messages.queue_id: QUEUE_ID,
}


def shape_schema(shape: Shape, required: list[str]) -> dict[str, Any]:
    """The object an entry of ``shape`` becomes after normalization."""
    properties = {}
    for name, convert in shape.fields.items():
        properties[name] = (
            enum_schema(convert.enum) if isinstance(convert, EnumField) else CONVERTERS[convert]
        )
    return {"type": "object", "properties": properties, "required": required}


def state_schemas() -> dict[Aggregate, dict[str, Any]]:
    """The full-state schema of each aggregate's entities."""
    assistance = {
        "type": "object",
        "properties": {
            "assistanceId": TEXT,
            "interactionId": TEXT,
            "state": enum_schema("assistanceState"),
            "messages": {
                "type": "array",
                "items": shape_schema(
                    messages.ASSISTANCE_MESSAGE, ["text", "participantId", "timeAdded"]
                ),
            },
            "participants": {
                "type": "array",
                "items": shape_schema(messages.PARTICIPANT, ["userId"]),
            },
        },
        "required": ["assistanceId", "messages", "participants"],
    }
    return {
        "alerting": shape_schema(messages.ALERT, sorted(messages.ALERT.required)),
        "history": shape_schema(messages.HISTORY, ["interactionId"]),
        "status_messages": shape_schema(messages.STATUS, ["statusId"]),
        "assistance": assistance,
    }


LIFECYCLE_DATA: Mapping[str, dict[str, Any]] = {
    "bridge.session.up": {
        "type": "object",
        "properties": {
            "host": TEXT,
            "server": TEXT,
            "version": TEXT,
            "transport": {"enum": ["sse", "poll"]},
            "subscriptions": {"type": "array", "items": {"enum": list(AGGREGATES)}},
        },
        "required": ["host", "server", "version", "transport", "subscriptions"],
    },
    "bridge.session.down": {
        "type": "object",
        "properties": {"reason": TEXT},
        "required": ["reason"],
    },
    "bridge.gap.possible": {
        "type": "object",
        "properties": {"reason": TEXT, "since": {"anyOf": [DATE_TIME, {"type": "null"}]}},
        "required": ["reason", "since"],
    },
    "bridge.resync.completed": {
        "type": "object",
        "properties": {
            "aggregate": {"enum": list(AGGREGATES)},
            **{k: {"type": "integer", "minimum": 0} for k in ("added", "changed", "removed")},
            "unchanged": {"type": "integer", "minimum": 0},
        },
        "required": ["aggregate", "added", "changed", "removed", "unchanged"],
    },
}


def envelope_schema(
    contract: Contract, name: str, data: dict[str, Any], *, sequenced: bool
) -> dict[str, Any]:
    """A structured CloudEvent of type ``name`` whose ``data`` follows ``data``."""
    required = [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "dataschema",
        "recordedtime",
        "data",
    ]
    properties: dict[str, Any] = {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"const": contract.type_of(name)},
        "subject": {"type": "string", "minLength": 1},
        "time": DATE_TIME,
        "datacontenttype": {"const": "application/json"},
        "dataschema": {"const": contract.schema_of(name)},
        "recordedtime": DATE_TIME,
        "data": data,
    }
    if sequenced:
        required.insert(-1, "sequence")
        properties["sequence"] = {"type": "integer", "minimum": 1}
    return {
        "$schema": DIALECT,
        "$id": contract.schema_of(name),
        "title": contract.type_of(name),
        "type": "object",
        "properties": properties,
        "required": required,
    }


def entity_data(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "state": state,
            "changedFields": {"type": "array", "items": {"type": "string"}},
            "cause": {"enum": ["delta", "snapshot", "absent"]},
        },
        "required": ["state", "changedFields", "cause"],
    }


def event_schemas(contract: Contract) -> dict[str, dict[str, Any]]:
    """Every event type's schema, by file name ``<name>.v<major>.json``."""
    states = state_schemas()
    schemas = {
        f"{name}.v{MAJOR}.json": envelope_schema(
            contract, name, entity_data(states[aggregate]), sequenced=True
        )
        for (aggregate, _kind), name in EVENT_NAMES.items()
    }
    for name, data in LIFECYCLE_DATA.items():
        schemas[f"{name}.v{MAJOR}.json"] = envelope_schema(contract, name, data, sequenced=False)
    return schemas


def asyncapi(contract: Contract, version: str) -> dict[str, Any]:
    """The AsyncAPI 3 document: every topic, the messages on it, and what the bridge does."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages_: dict[str, Any] = {}
    topics: dict[str, tuple[str, list[str]]] = {
        aggregate: (contract.event_topics[aggregate], []) for aggregate in AGGREGATES
    }
    for (aggregate, _kind), name in EVENT_NAMES.items():
        topics[aggregate][1].append(name)
    topics["lifecycle"] = (contract.lifecycle_topic, list(LIFECYCLE_DATA))
    for channel, (address, names) in topics.items():
        refs = {}
        for name in names:
            key = f"{name}.v{MAJOR}"
            messages_[key] = {
                "name": contract.type_of(name),
                "contentType": "application/cloudevents+json",
                "payload": {"$ref": f"./{key}.json"},
                "bindings": {"kafka": {"key": {"type": "string"}}},
            }
            refs[key] = {"$ref": f"#/components/messages/{key}"}
        channels[channel] = {"address": address, "messages": refs}
        operations[f"publish_{channel}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{k}"} for k in refs],
        }
    for aggregate in AGGREGATES:
        address = contract.state_topics[aggregate]
        channels[f"{aggregate}_state"] = {
            "address": address,
            "description": "Compacted: the latest {sequence, type, state} per key; a tombstone "
            "when the entity ends.",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "icws-bridge",
            "version": version,
            "description": "Events from a Genesys PureConnect ICWS session, as CloudEvents.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages_},
    }
