"""JSON Schemas (2020-12) for every event type and the AsyncAPI 3 document, as plain values.

Entity schemas are generated from the parser's own tables (``messages.Shape``): each property's
converter says what the property becomes, so the schema cannot drift from what is emitted.
``bridge schemas`` writes these to ``bridge/schemas/``; a test fails when the committed files
differ from what the code generates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from bridge.core import commands, messages
from bridge.core.events import EVENT_NAMES, MAJOR, Contract
from bridge.core.messages import AGGREGATES, ENUMS, Aggregate, EnumField, Shape

DIALECT = "https://json-schema.org/draft/2020-12/schema"
DATE_TIME = {"type": "string", "format": "date-time"}
TEXT = {"type": "string"}
URI = {"type": "string", "format": "uri"}


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


def schema_file(name: str) -> str:
    """A schema's file name and relative ``$id``: one file fits every ``schema_base_url``."""
    return f"{name}.v{MAJOR}.json"


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
        # <schema_base_url>/<file>: the base is a setting, so only the file name is fixed.
        "dataschema": {**URI, "pattern": f"/{re.escape(schema_file(name))}$"},
        "recordedtime": DATE_TIME,
        "data": data,
    }
    if sequenced:
        required.insert(-1, "sequence")
        properties["sequence"] = {"type": "integer", "minimum": 1}
    return {
        "$schema": DIALECT,
        "$id": schema_file(name),
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


# --- commands ------------------------------------------------------------------------------

PROBLEM = {
    "type": "object",
    "properties": {
        "status": {"type": ["integer", "null"], "description": "ICWS HTTP status, if any."},
        "errorId": {"type": ["string", "null"], "description": "ICWS errorId, if any."},
        "message": TEXT,
    },
    "required": ["status", "errorId", "message"],
}

RESULT_DATA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "commandId": {"type": "string", "minLength": 1},
        "commandType": TEXT,
        "commandSource": TEXT,
        "assistanceId": {"type": ["string", "null"]},
        "userId": {
            "type": ["string", "null"],
            "description": "The ICWS user (the owner of the request) the command ran as; null "
            "when it never ran as anyone (rejected before an owner was found, expired, invalid).",
        },
        "outcome": {"enum": list(commands.OUTCOMES)},
        "observed": {
            "type": "boolean",
            "description": "True when the outcome was seen in ICWS state (after a restart or a "
            "lost answer) rather than read from ICWS's answer.",
        },
        "attempts": {
            "type": ["integer", "null"],
            "minimum": 0,
            "description": "ICWS calls made; null when a bridge that stopped made them.",
        },
        "deadline": {"anyOf": [DATE_TIME, {"type": "null"}]},
        "error": {"anyOf": [PROBLEM, {"type": "null"}]},
    },
    "required": [
        "commandId",
        "commandType",
        "commandSource",
        "assistanceId",
        "userId",
        "outcome",
        "observed",
        "attempts",
        "deadline",
        "error",
    ],
}


def command_schema(contract: Contract, command_type: commands.CommandType) -> dict[str, Any]:
    """A command as senders write it: a structured CloudEvent; ``id`` is the idempotency key."""
    data = {
        "type": "object",
        "properties": {name: dict(f.schema) for name, f in command_type.fields.items()},
        "required": list(command_type.fields),
        "additionalProperties": False,
    }
    return {
        "$schema": DIALECT,
        "$id": schema_file(command_type.name),
        "title": contract.type_of(command_type.name),
        "description": command_type.description,
        "type": "object",
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": commands.MAX_ID_LENGTH,
                "description": "Idempotency key: one id runs at most once and has one result.",
            },
            "source": {"type": "string", "minLength": 1},
            "type": {"const": contract.type_of(command_type.name)},
            "time": DATE_TIME,
            "subject": TEXT,
            "datacontenttype": {"type": "string", "pattern": "^application/(.+\\+)?json"},
            "dataschema": TEXT,
            "deadline": {
                **DATE_TIME,
                "description": "Not run after this time (RFC 3339 with offset). Default: the "
                "record's timestamp plus commands.default_deadline_seconds.",
            },
            "data": data,
        },
        "required": ["specversion", "id", "source", "type", "data"],
    }


def command_schemas(contract: Contract) -> dict[str, dict[str, Any]]:
    """The command types' schemas and the result's, by file name ``<name>.v<major>.json``."""
    schemas = {
        f"{t.name}.v{MAJOR}.json": command_schema(contract, t) for t in commands.COMMAND_TYPES
    }
    schemas[f"{commands.RESULT_NAME}.v{MAJOR}.json"] = envelope_schema(
        contract, commands.RESULT_NAME, RESULT_DATA, sequenced=False
    )
    return schemas


DEAD_LETTER_HEADERS = {
    "type": "object",
    "properties": {
        "dlq.reason": {"enum": list(commands.REASONS)},
        "dlq.detail": TEXT,
        "dlq.topic": TEXT,
        "dlq.partition": TEXT,
        "dlq.offset": TEXT,
    },
    "required": ["dlq.reason", "dlq.detail", "dlq.topic", "dlq.partition", "dlq.offset"],
}


def _message(contract: Contract, name: str) -> dict[str, Any]:
    return {
        "name": contract.type_of(name),
        "contentType": "application/cloudevents+json",
        "payload": {"$ref": f"./{name}.v{MAJOR}.json"},
        "bindings": {"kafka": {"key": {"type": "string"}}},
    }


def command_channels(
    contract: Contract, topics: commands.CommandTopics
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Channels, operations and messages of the command side of the AsyncAPI document."""
    names = [t.name for t in commands.COMMAND_TYPES]
    messages_ = {f"{n}.v{MAJOR}": _message(contract, n) for n in [*names, commands.RESULT_NAME]}
    result_key = f"{commands.RESULT_NAME}.v{MAJOR}"
    channels: dict[str, Any] = {
        "commands": {
            "address": topics.commands,
            "description": "Commands for ICWS; key them by the ICWS user id that owns the request.",
            "messages": {
                f"{n}.v{MAJOR}": {"$ref": f"#/components/messages/{n}.v{MAJOR}"} for n in names
            },
        },
        "command_results": {
            "address": topics.results,
            "description": "One result per command id (key and subject: the command id).",
            "messages": {result_key: {"$ref": f"#/components/messages/{result_key}"}},
        },
        "dead_letter": {
            "address": topics.dead_letter,
            "description": "Command records that are not valid commands, bytes unchanged.",
            "messages": {
                "deadLetter": {
                    "name": "dead letter",
                    "summary": "The original record (key, value, headers) plus dlq.* headers.",
                    "headers": DEAD_LETTER_HEADERS,
                    "payload": {},
                }
            },
        },
        "command_journal": {
            "address": topics.journal,
            "description": "The bridge's own compacted journal (started/finished per command "
            "id); not for consumers.",
        },
    }
    operations = {
        "receive_commands": {
            "action": "receive",
            "channel": {"$ref": "#/channels/commands"},
            "messages": [{"$ref": f"#/channels/commands/messages/{n}.v{MAJOR}"} for n in names],
        },
        "publish_command_results": {
            "action": "send",
            "channel": {"$ref": "#/channels/command_results"},
            "messages": [{"$ref": f"#/channels/command_results/messages/{result_key}"}],
        },
        "publish_dead_letters": {
            "action": "send",
            "channel": {"$ref": "#/channels/dead_letter"},
            "messages": [{"$ref": "#/channels/dead_letter/messages/deadLetter"}],
        },
    }
    return channels, operations, messages_


def asyncapi(
    contract: Contract, version: str, command_topics: commands.CommandTopics | None = None
) -> dict[str, Any]:
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
    if command_topics is not None:
        more_channels, more_operations, more_messages = command_channels(contract, command_topics)
        channels |= more_channels
        operations |= more_operations
        messages_ |= more_messages
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
