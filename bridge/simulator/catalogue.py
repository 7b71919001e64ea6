"""Realistic default data: status catalogue, per-entity defaults and display names.

Kept apart from `world` so the truth's rules are not buried under sample values.
"""

from __future__ import annotations

from typing import Any

from .wire import AlertAction, AlertType, Direction, HistoryStatus, JsonObject, QueueType

# Every `statusMessage` property is required (§4.3); these are the values a new one starts from.
STATUS_DEFAULTS: JsonObject = {
    "messageText": "",
    "iconUri": "/icws/resources/status-icons/default.png",
    "groupTag": "Available",
    "canHaveDate": False,
    "canHaveTime": False,
    "isDoNotDisturbStatus": False,
    "isSelectableStatus": True,
    "isPersistentStatus": False,
    "isForwardStatus": False,
    "isAfterCallWorkStatus": False,
    "isAcdStatus": False,
    "isAllowFollowUpStatus": False,
    "systemId": "",
}

# (statusId, properties that differ from STATUS_DEFAULTS), as a CIC install ships them.
DEFAULT_CATALOGUE: tuple[tuple[str, JsonObject], ...] = (
    ("Available", {"groupTag": "Available", "isAcdStatus": True, "isAllowFollowUpStatus": True}),
    ("Available, No ACD", {"groupTag": "Available"}),
    ("Away from desk", {"groupTag": "Away", "canHaveTime": True, "isPersistentStatus": True}),
    ("At Lunch", {"groupTag": "Break", "canHaveTime": True, "isPersistentStatus": True}),
    ("Do Not Disturb", {"groupTag": "Unavailable", "isDoNotDisturbStatus": True}),
    ("Follow Up", {"groupTag": "Available", "isAfterCallWorkStatus": True}),
)


def status_message(status_id: str, system_number: int, props: dict[str, Any]) -> JsonObject:
    """A full `statusMessage` for `status_id`: defaults, then a slug icon, then `props`."""
    slug = status_id.lower().replace(",", "").replace(" ", "-")
    message: JsonObject = {"statusId": status_id, **STATUS_DEFAULTS}
    message.update(
        messageText=status_id,
        iconUri=f"/icws/resources/status-icons/{slug}.png",
        systemId=str(system_number),
    )
    message.update(props)
    return message


def alert_defaults(user: str) -> JsonObject:
    """Sane values for every `interactionAlertDetails` property a caller did not give."""
    return {
        "interactionType": "Call",
        "name": "John Smith",
        "address": "+13175550100",
        "alertType": int(AlertType.ACD_USER),
        "alertAction": int(AlertAction.START_ALERTING),
        "autoAnswer": False,
        "monitoredQueue": {"queueType": int(QueueType.USER), "queueName": user},
    }


def alert_attributes(interaction: JsonObject) -> dict[str, str]:
    """The interaction attributes a real IC server would hold for an alerting interaction."""
    return {
        "Eic_ObjectType": str(interaction["interactionType"]),
        "Eic_RemoteName": str(interaction["name"]),
        "Eic_RemoteAddress": str(interaction["address"]),
        "Eic_CallDirection": "I",
    }


def history_defaults(user: str, now: str) -> JsonObject:
    """Sane values for every `historyItem` property a caller did not give."""
    return {
        "initiationTime": now,
        "terminationTime": now,
        "direction": int(Direction.INCOMING),
        "interactionHistoryStatus": int(HistoryStatus.CONNECTED),
        "localAddress": "7001",
        "localId": user,
        "localName": display_name(user),
        "remoteAddress": "",
        "remoteId": "",
        "remoteName": "",
        "notes": "",
        "log": "",
    }


def display_name(user: str) -> str:
    """The display name IC would show for a user id: `agent.one` becomes `Agent One`."""
    words = user.replace("_", ".").replace("-", ".").split(".")
    return " ".join(word.capitalize() for word in words if word) or user
