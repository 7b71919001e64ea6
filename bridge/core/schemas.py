"""JSON Schemas (2020-12) for every event type and the AsyncAPI 3 document, as plain values.

Entity schemas are generated from the parser's own tables (``entries.Shape``): each property's
converter says what the property becomes, so the schema cannot drift from what is emitted.
``bridge schemas`` writes these to ``bridge/schemas/``; a test fails when the committed files
differ from what the code generates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from bridge.core import commands, entries
from bridge.core.entries import ENUMS, EnumField, Shape
from bridge.core.events import EVENT_NAMES, MAJOR, Contract
from bridge.core.messages import AGGREGATES, Aggregate
from bridge.core.state import RULES

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
    entries.text: TEXT,
    entries.flag: {"type": "boolean"},
    entries.rfc3339: DATE_TIME,
    entries.strings: {"type": "object", "additionalProperties": {"type": "string"}},
    entries.queue_id: QUEUE_ID,
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
                    entries.ASSISTANCE_MESSAGE, ["text", "participantId", "timeAdded"]
                ),
            },
            "participants": {
                "type": "array",
                "items": shape_schema(entries.PARTICIPANT, ["userId"]),
            },
        },
        "required": ["assistanceId", "messages", "participants"],
    }
    return {
        "alerting": shape_schema(entries.ALERT, sorted(entries.ALERT.required)),
        "history": shape_schema(entries.HISTORY, ["interactionId"]),
        "status_messages": shape_schema(entries.STATUS, ["statusId"]),
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


Named = Literal["always", "sometimes", "never"]
"""Whether events of a type name their ICWS user (``data.userId`` and ``icwsuser``)."""

LIFECYCLE_USER: Mapping[str, Named] = {
    "bridge.session.up": "always",
    "bridge.session.down": "always",
    # About the session or a per-user aggregate: named; about the status catalogue: not.
    "bridge.gap.possible": "sometimes",
    "bridge.resync.completed": "sometimes",
}
USER_ID = {
    "type": "string",
    "minLength": 1,
    "description": "The ICWS user whose session this is (the user id it logged in with).",
}


USER_KEY = (
    "`<user>/<entity>`: the ICWS user id percent-encoded (urllib.parse.quote(user, safe='')), "
    "a slash, the entity id (raw UTF-8, not JSON)"
)
LIFECYCLE_KEY = (
    "`<user>/session` or `<user>/<aggregate>` (the user percent-encoded); `status_messages` "
    "for the status catalogue's own gap and resync"
)


def key_of(aggregate: Aggregate) -> str:
    """What keys an aggregate's records: one user's view of an entity, or the catalogue's entry."""
    if RULES[aggregate].per_user:
        return USER_KEY
    return "the status id, case-folded (raw UTF-8, not JSON); the catalogue names no user"


def _naming(schema: dict[str, Any], field: str, named: Named) -> dict[str, Any]:
    """An object schema with ``field`` (the user id) first, required when always named."""
    if named == "never":
        return schema
    required = list(schema.get("required", ()))
    return {
        **schema,
        "properties": {field: USER_ID, **schema["properties"]},
        "required": [field, *required] if named == "always" else required,
    }


def schema_file(name: str) -> str:
    """A schema's file name and relative ``$id``: one file fits every ``schema_base_url``."""
    return f"{name}.v{MAJOR}.json"


def envelope_schema(
    contract: Contract,
    name: str,
    data: dict[str, Any],
    *,
    sequenced: bool,
    user: Named = "never",
) -> dict[str, Any]:
    """A structured CloudEvent of type ``name``: ``data`` as given, its user as ``user`` says."""
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
        "data": _naming(data, "userId", user),
    }
    if sequenced:
        required.insert(-1, "sequence")
        properties["sequence"] = {"type": "integer", "minimum": 1}
    if user != "never":
        properties["icwsuser"] = USER_ID
        if user == "always":
            required.insert(-1, "icwsuser")
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
            contract,
            name,
            entity_data(states[aggregate]),
            sequenced=True,
            user="always" if RULES[aggregate].per_user else "never",
        )
        for (aggregate, _kind), name in EVENT_NAMES.items()
    }
    for name, data in LIFECYCLE_DATA.items():
        schemas[f"{name}.v{MAJOR}.json"] = envelope_schema(
            contract, name, data, sequenced=False, user=LIFECYCLE_USER[name]
        )
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
