"""Per-topic record schemas, for a broker that validates every record produced (Tansu).

Tansu's schema registry (``tansu broker --schema-registry file://DIR``) checks each record
produced to topic ``T`` against ``DIR/T.json``: the JSON Schema at ``properties.key`` checks the
key and the one at ``properties.value`` the value, each parsed as JSON; headers are not checked;
a record that fails is refused (aiokafka sees error -1, ``UnknownError``). What Tansu 0.6 does,
tried by hand, and what it forces here:

* a key is parsed as JSON, but the bridge's keys are raw UTF-8 ids (``abc``, not ``"abc"``), so
  no file has a key schema: a key schema would refuse every record;
* a record without a value (a tombstone) fails *any* value schema, so a topic that carries
  tombstones (the compacted state topics) cannot have one;
* a topic without a file, or a file without ``properties.value``, is not checked at all.

So every topic the bridge writes or reads gets a file that says what its records are. Where the
broker can enforce that, the value schema sits at ``properties.value``; where it cannot or must
not, the same description sits at ``$defs.value`` (for readers and tests) and ``$comment`` says
why. Event and command schemas are the per-type ones of :mod:`bridge.core.schemas`, embedded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bridge.core import commands, schemas
from bridge.core.events import EVENT_NAMES, MAJOR, Contract
from bridge.core.messages import AGGREGATES, Aggregate

ENTITY_KEY = "the entity id, raw UTF-8 (not JSON, so not checked by the broker)"


def _embedded(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A per-type schema inside a topic's schema: not a resource of its own."""
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def _one_of(files: Mapping[str, dict[str, Any]], names: Iterable[str]) -> dict[str, Any]:
    """A value that is one of the named per-type schemas (they differ by their ``type``)."""
    return {"anyOf": [_embedded(files[f"{name}.v{MAJOR}.json"]) for name in names]}


def _topic(
    topic: str, description: str, value: dict[str, Any] | None, unenforced: str | None = None
) -> dict[str, Any]:
    """The schema file of one topic: ``value`` enforced, or described only (``unenforced``)."""
    schema: dict[str, Any] = {
        "$schema": schemas.DIALECT,
        "title": topic,
        "description": description,
        "type": "object",
    }
    if unenforced is None:
        schema["properties"] = {"value": value}
        return schema
    schema["$comment"] = f"Not checked by the broker: {unenforced}"
    if value is not None:
        schema["$defs"] = {"value": value}
    return schema


def state_value(contract: Contract, aggregate: Aggregate) -> dict[str, Any]:
    """A state-topic value: the latest ``{sequence, type, state}``, or null (a tombstone)."""
    types = [
        contract.type_of(name)
        for (agg, kind), name in EVENT_NAMES.items()
        if agg == aggregate and kind != "removed"
    ]
    latest = {
        "type": "object",
        "properties": {
            "sequence": {"type": "integer", "minimum": 1},
            "type": {"enum": types},
            "state": schemas.state_schemas()[aggregate],
        },
        "required": ["sequence", "type", "state"],
        "additionalProperties": False,
    }
    return {"anyOf": [latest, {"type": "null"}]}


def journal_value(result: dict[str, Any]) -> dict[str, Any]:
    """A journal entry: ``started`` (with the baseline) or ``finished`` (with the result)."""
    common = {
        "v": {"const": 1},
        "commandId": {"type": "string", "minLength": 1},
        "position": {
            "type": "array",
            "prefixItems": [{"type": "string"}, {"type": "integer"}, {"type": "integer"}],
            "minItems": 3,
            "maxItems": 3,
        },
    }
    started = {
        **common,
        "phase": {"const": "started"},
        "at": {"type": "number"},
        "baseline": {
            "type": "object",
            "properties": {"open": {"type": "boolean"}, "matching": {"type": "integer"}},
            "required": ["open", "matching"],
        },
        "instance": schemas.TEXT,
    }
    finished = {
        **common,
        "phase": {"const": "finished"},
        "outcome": {"enum": list(commands.OUTCOMES)},
        "result": result,
    }
    return {
        "anyOf": [
            {"type": "object", "properties": shape, "required": list(shape)}
            for shape in (started, finished)
        ]
    }


def topic_schemas(contract: Contract, topics: commands.CommandTopics) -> dict[str, dict[str, Any]]:
    """The schema file of every topic, by file name ``<topic>.json``."""
    files = schemas.event_schemas(contract) | schemas.command_schemas(contract)
    out: dict[str, dict[str, Any]] = {}
    for aggregate in AGGREGATES:
        names = [name for (agg, _kind), name in EVENT_NAMES.items() if agg == aggregate]
        out[contract.event_topics[aggregate]] = _topic(
            contract.event_topics[aggregate],
            f"Events of {aggregate} (structured CloudEvents); key: {ENTITY_KEY}.",
            _one_of(files, names),
        )
        out[contract.state_topics[aggregate]] = _topic(
            contract.state_topics[aggregate],
            f"Latest state of each {aggregate} entity (compacted); key: {ENTITY_KEY}.",
            state_value(contract, aggregate),
            "a tombstone (no value) fails any value schema in Tansu 0.6.",
        )
    out[contract.lifecycle_topic] = _topic(
        contract.lifecycle_topic,
        "Bridge lifecycle events; key: 'session' or the aggregate.",
        _one_of(files, schemas.LIFECYCLE_DATA),
    )
    result = _embedded(files[f"{commands.RESULT_NAME}.v{MAJOR}.json"])
    out[topics.results] = _topic(
        topics.results, "One result event per command; key: the command id.", result
    )
    out[topics.journal] = _topic(
        topics.journal,
        "The bridge's own journal of command executions (compacted); key: the command id.",
        journal_value(result),
    )
    out[topics.dead_letter] = _topic(
        topics.dead_letter,
        "Command records that are not valid commands: key, value and headers unchanged.",
        None,
        "a dead letter is whatever a sender wrote, bytes unchanged.",
    )
    # Senders write the command topic, not the bridge. The bridge must see every record there,
    # however broken, to dead-letter it with its reason (the e2e tests write invalid commands on
    # purpose to prove that); a broker refusing them would hide a sender's mistake instead.
    out[topics.commands] = _topic(
        topics.commands,
        "Commands for ICWS, written by other services; key: the assistance id (by the sender).",
        _one_of(files, [t.name for t in commands.COMMAND_TYPES]),
        "invalid commands must reach the bridge, which dead-letters them with the reason.",
    )
    return {f"{topic}.json": schema for topic, schema in out.items()}
