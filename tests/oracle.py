"""The events the bridge should have published, computed from what the simulator sent.

The simulator records every message it handed to a client. Replaying those, in order, through
the pure core gives the exact event ids the bridge must have published (ids are derived from
aggregate, key, sequence, type and state), so delivery tests can count loss and duplication
exactly instead of estimating.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bridge.app import contract_from
from bridge.core import events, messages
from bridge.core.state import new_states
from bridge.settings import Settings


def expected_events(sent: list[tuple[str, dict[str, Any]]], settings: Settings) -> list[str]:
    """Ids of the entity events the sent messages must produce, in publication order."""
    contract = contract_from(settings.events, settings.topics)
    states = new_states()
    ids: list[str] = []
    when = datetime.now(UTC)
    for _session, raw in sent:
        message = messages.parse(raw)
        if not isinstance(message, messages.Update):
            continue
        changes, _ = states[message.aggregate].apply(message)
        for change in changes:
            record, _state = events.change_records(contract, change, when)
            assert record.value is not None
            ids.append(json.loads(record.value)["id"])
    return ids


def published(events_: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[int]]]:
    """Event ids as read (duplicates kept), and the sequences seen per key."""
    per_key: dict[str, list[int]] = {}
    for event in events_:
        per_key.setdefault(event["type"].split(".")[-3] + "/" + event["subject"], []).append(
            event["sequence"]
        )
    return [e["id"] for e in events_], per_key
