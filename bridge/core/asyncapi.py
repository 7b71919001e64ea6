"""The AsyncAPI 3 document: every topic the bridge reads or writes, and the messages on it.

Built from the same tables as the per-type schemas (:mod:`bridge.core.schemas`), which it
references by file name; ``bridge schemas`` writes it as ``bridge/schemas/asyncapi.json``.
"""

from __future__ import annotations

from typing import Any

from bridge.core import commands
from bridge.core.events import EVENT_NAMES, MAJOR, Contract
from bridge.core.messages import AGGREGATES
from bridge.core.schemas import LIFECYCLE_DATA, LIFECYCLE_KEY, TEXT, key_of

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


def _event_channels(
    contract: Contract,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Channels, operations and messages of the event side: entity, lifecycle and state topics."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages_: dict[str, Any] = {}
    topics: dict[str, tuple[str, list[str], str]] = {
        aggregate: (contract.event_topics[aggregate], [], key_of(aggregate))
        for aggregate in AGGREGATES
    }
    for (aggregate, _kind), name in EVENT_NAMES.items():
        topics[aggregate][1].append(name)
    topics["lifecycle"] = (contract.lifecycle_topic, list(LIFECYCLE_DATA), LIFECYCLE_KEY)
    for channel, (address, names, key_text) in topics.items():
        refs = {}
        for name in names:
            key = f"{name}.v{MAJOR}"
            messages_[key] = {
                "name": contract.type_of(name),
                "contentType": "application/cloudevents+json",
                "payload": {"$ref": f"./{key}.json"},
                "bindings": {"kafka": {"key": {"type": "string", "description": key_text}}},
            }
            refs[key] = {"$ref": f"#/components/messages/{key}"}
        channels[channel] = {
            "address": address,
            "description": f"Key: {key_text}.",
            "messages": refs,
        }
        operations[f"publish_{channel}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{k}"} for k in refs],
        }
    for aggregate in AGGREGATES:
        channels[f"{aggregate}_state"] = {
            "address": contract.state_topics[aggregate],
            "description": "Compacted: the latest {sequence, type, state} per key; a tombstone "
            f"when the entity ends. Key: {key_of(aggregate)}.",
        }
    return channels, operations, messages_


def asyncapi(
    contract: Contract, version: str, command_topics: commands.CommandTopics | None = None
) -> dict[str, Any]:
    """The AsyncAPI 3 document: every topic, the messages on it, and what the bridge does."""
    channels, operations, messages_ = _event_channels(contract)
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
            "description": "Events from Genesys PureConnect ICWS sessions (one per ICWS user), "
            "as CloudEvents; per-user events name their user in data.userId and icwsuser.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages_},
    }
