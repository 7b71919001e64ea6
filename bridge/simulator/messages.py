"""The ICWS messages the simulator queues (protocol §2.4, §3.1, §4) and where they are sent.

Pure builders from truth to message dicts; each returns a fresh structure, so a queued message
never changes when the truth it was built from changes later. Messages are addressed by
subscription name through a `Publisher`, which the session registry implements.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from .wire import ConnectionState, JsonObject, SubscriptionState, Urn

# Subscription names: the resource path below `/messaging/subscriptions/`.
ALERTING = "interaction-alerting"
HISTORY = "interaction-history"
STATUS_MESSAGES = "status/status-messages"
ASSISTANCE_LIST = "interactions/agent-assistance"


def assistance_details(assistance_id: str) -> str:
    """The subscription name watching one assistance request's details."""
    return f"{ASSISTANCE_LIST}/{assistance_id}"


Render = Callable[[Mapping[str, Any]], JsonObject | None]
"""Shapes one message for a subscription's parameters; None means "nothing for this one"."""


class Publisher(Protocol):
    """Where the world sends deltas: every live session subscribed to `subscription`."""

    def publish(self, subscription: str, render: Render, *, user: str | None = None) -> None:
        """Queue `render(params)` to each matching session (only `user`'s when given)."""


class Nobody:
    """A `Publisher` for a world nobody watches (tests, offline scenario runs)."""

    def publish(self, subscription: str, render: Render, *, user: str | None = None) -> None:
        """Drop the message: there are no sessions."""


# The required properties of `interactionAlertDetails`: a delta entry always carries all of them.
ALERT_REQUIRED = (
    "interactionId",
    "interactionType",
    "name",
    "address",
    "alertType",
    "alertAction",
    "autoAnswer",
)
ALERT_OPTIONAL = ("monitoredQueue", "attributes")


def _envelope(urn: str, *, is_delta: bool) -> JsonObject:
    return {"__type": urn, "isDelta": is_delta}


def _with_arrays(
    message: JsonObject, omit_empty: bool, arrays: Mapping[str, Iterable[Any]]
) -> JsonObject:
    """Attach optional array properties; empty ones are dropped when the config says so (§8.9)."""
    for name, items in arrays.items():
        values = [copy.deepcopy(item) for item in items]
        if values or not omit_empty:
            message[name] = values
    return message


def status_messages_message(
    *,
    is_delta: bool,
    omit_empty: bool,
    added: Iterable[JsonObject] = (),
    changed: Iterable[JsonObject] = (),
    removed: Iterable[str] = (),
) -> JsonObject:
    """A `statusMessagesMessage`: added/changed carry full status messages, removed only ids."""
    return _with_arrays(
        _envelope(Urn.STATUS_MESSAGES, is_delta=is_delta),
        omit_empty,
        {
            "statusMessagesAdded": added,
            "statusMessagesChanged": changed,
            "statusMessagesRemoved": removed,
        },
    )


def alert_entry(
    interaction: JsonObject,
    params: Mapping[str, Any],
    *,
    changed: Iterable[str] | None = None,
) -> JsonObject | None:
    """One `interactionAlertDetails` shaped for a subscription, or None if it has nothing new.

    `changed` maps to a delta: the properties it names, with `attributes` holding only the
    attributes that changed. None means the full entry (snapshot, start, stop). Attributes are
    always cut to the subscription's `attributeNames` and omitted when none were asked for.
    """
    entry = {name: copy.deepcopy(interaction[name]) for name in ALERT_REQUIRED}
    wanted = params.get("attributeNames") or ()
    news = set(ALERT_OPTIONAL) if changed is None else set(changed)
    if "monitoredQueue" in news and "monitoredQueue" in interaction:
        entry["monitoredQueue"] = copy.deepcopy(interaction["monitoredQueue"])
    attributes = interaction.get("attributes", {})
    shown = {name: attributes[name] for name in wanted if name in attributes}
    if "attributes" in news and wanted:
        entry["attributes"] = shown
    if changed is not None and news == {"attributes"} and not shown:
        # Only attributes this subscriber did not ask for changed: it would learn nothing.
        return None
    return entry


def alerting_message(entries: Iterable[JsonObject], *, is_delta: bool) -> JsonObject:
    """An `interactionAlertingMessage`; `alertingInteractionDetails` is required, even if empty."""
    message = _envelope(Urn.ALERTING, is_delta=is_delta)
    message["alertingInteractionDetails"] = list(entries)
    return message


def history_message(items: Iterable[JsonObject], *, is_delta: bool, omit_empty: bool) -> JsonObject:
    """A `historyMessage` holding `historyItem`s (full ones, or an id plus changed properties)."""
    return _with_arrays(
        _envelope(Urn.HISTORY, is_delta=is_delta), omit_empty, {"interactionHistory": items}
    )


def assistance_list_message(
    *,
    is_delta: bool,
    omit_empty: bool,
    added: Iterable[str] = (),
    removed: Iterable[str] = (),
) -> JsonObject:
    """An `assistanceRequestListMessage` listing assistance ids added to or removed from view."""
    return _with_arrays(
        _envelope(Urn.ASSISTANCE_LIST, is_delta=is_delta),
        omit_empty,
        {"requestsAdded": added, "requestsRemoved": removed},
    )


def assistance_details_message(
    assistance_id: str,
    *,
    is_delta: bool,
    omit_empty: bool,
    fields: Mapping[str, Any] | None = None,
    messages_added: Iterable[JsonObject] = (),
    participants_added: Iterable[JsonObject] = (),
    participants_changed: Iterable[JsonObject] = (),
) -> JsonObject:
    """An `assistanceRequestDetailsMessage`; only `assistanceId` is required, the rest is news."""
    message = _envelope(Urn.ASSISTANCE_DETAILS, is_delta=is_delta)
    message["assistanceId"] = assistance_id
    message.update(copy.deepcopy(dict(fields or {})))
    return _with_arrays(
        message,
        omit_empty,
        {
            "messagesAdded": messages_added,
            "participantsAdded": participants_added,
            "participantsChanged": participants_changed,
        },
    )


def assistance_snapshot(request: JsonObject, *, omit_empty: bool) -> JsonObject:
    """The `isDelta:false` details message for one assistance request's whole truth."""
    return assistance_details_message(
        request["assistanceId"],
        is_delta=False,
        omit_empty=omit_empty,
        fields={"interactionId": request["interactionId"], "state": request["state"]},
        messages_added=request["messages"],
        participants_added=request["participants"].values(),
    )


def connection_state_message(
    reason: str, should_reconnect: bool | None, *, previous: int = ConnectionState.UP
) -> JsonObject:
    """A `connectionStateChangeMessage` announcing the session went Down (§3.1).

    `isDelta` is UNCONFIRMED (§8.8); false is used because the message carries every property.
    """
    message = _envelope(Urn.CONNECTION_STATE_CHANGE, is_delta=False)
    message.update(
        {
            "previousConnectionState": int(previous),
            "newConnectionState": int(ConnectionState.DOWN),
            "reason": reason,
        }
    )
    if should_reconnect is not None:
        message["shouldReconnect"] = should_reconnect
    return message


def subscription_state_message(subscription: str, state: int, error_message: str) -> JsonObject:
    """A subscription-state message saying `subscription` is Suspended (2) or Faulted (3).

    The assistance subscriptions have their own derived `__type` (§4.4). `state` and `error` are
    the SDK's properties; the SDK names no property identifying the subscription, so
    `subscriptionId` (the resource path below `/messaging/subscriptions/`, as the SDK's
    `multipleSubscriptionMessage` names its id) and the errorIds are the simulator's invention.
    """
    urn = (
        Urn.ASSISTANCE_SUBSCRIPTION_STATE
        if subscription.startswith(ASSISTANCE_LIST)
        else Urn.SUBSCRIPTION_STATE
    )
    message = _envelope(urn, is_delta=False)
    kind = "faulted" if state == SubscriptionState.FAULTED else "suspended"
    message.update(
        {
            "subscriptionId": subscription,
            "state": int(state),
            "error": {"errorId": f"error.messaging.subscription.{kind}", "message": error_message},
        }
    )
    return message
