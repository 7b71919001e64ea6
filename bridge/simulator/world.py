"""The simulated IC server's truth and the delta messages every change of it produces.

`World` owns the status catalogue, each user's alerting interactions and call history, and (in
an `AssistanceBook`) the agent-assistance requests. Every mutation updates the truth first and
then publishes the matching `isDelta:true` message to the subscribed sessions through a
`Publisher`; snapshots for new subscriptions are built from the same truth. Alerting, history and
the assistance list are scoped to one user; the status catalogue is global; assistance details go
to whoever watches that request. The world knows nothing about HTTP or sessions.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .assistance import AssistanceBook
from .catalogue import (
    DEFAULT_CATALOGUE,
    STATUS_DEFAULTS,
    alert_attributes,
    alert_defaults,
    history_defaults,
    status_message,
)
from .config import SimulatorConfig
from .messages import (
    ALERT_OPTIONAL,
    ALERT_REQUIRED,
    ALERTING,
    HISTORY,
    STATUS_MESSAGES,
    Nobody,
    Publisher,
    alert_entry,
    alerting_message,
    history_message,
    status_messages_message,
)
from .wire import AlertAction, JsonObject, compact_time

_STATUS_FIELDS = frozenset(STATUS_DEFAULTS)
_ALERT_FIELDS = frozenset(ALERT_REQUIRED + ALERT_OPTIONAL) - {"interactionId"}
_HISTORY_FIELDS = frozenset(history_defaults("", ""))
_DATE_FIELDS = ("initiationTime", "terminationTime")
_FIRST_INTERACTION_ID = 100123456780170101


def _check_fields(kind: str, props: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(props) - set(allowed))
    if unknown:
        raise TypeError(f"unknown {kind} properties: {', '.join(unknown)}")


def _with_compact_dates(props: Mapping[str, Any]) -> JsonObject:
    return {
        name: compact_time(value) if name in _DATE_FIELDS and isinstance(value, datetime) else value
        for name, value in props.items()
    }


class World:
    """The truth of one simulated IC server; every mutation publishes its delta."""

    def __init__(self, config: SimulatorConfig, publisher: Publisher | None = None):
        self._config = config
        self._publisher: Publisher = publisher or Nobody()
        self._statuses: dict[str, JsonObject] = {}
        self._alerting: dict[str, dict[str, JsonObject]] = {}
        self._alert_started: dict[str, str] = {}
        self._history: dict[str, dict[str, JsonObject]] = {}
        self._assistance = AssistanceBook(config, self._publisher)
        # Counters keep ids reproducible run to run.
        self._interaction_numbers = itertools.count(_FIRST_INTERACTION_ID)
        self._system_numbers = itertools.count(1)

    @property
    def _omit(self) -> bool:
        return self._config.omit_empty_arrays

    def truth(self) -> JsonObject:
        """A copy of everything the world holds, as plain JSON-ready data."""
        return copy.deepcopy(
            {
                "statusMessages": self._statuses,
                "alerting": self._alerting,
                "history": self._history,
                "assistance": self._assistance.requests,
            }
        )

    def user_truth(self, user: str) -> JsonObject:
        """A copy of what `user`'s sessions see: alerting, history and the requests they made.

        `assistance` holds every request `user` initiated, completed ones included (state 2).
        """
        return copy.deepcopy(
            {
                "alerting": self._alerting.get(user, {}),
                "history": self._history.get(user, {}),
                "assistance": self._assistance.of_user(user),
            }
        )

    # ---- status catalogue (global) ------------------------------------------------------------

    @property
    def status_messages(self) -> dict[str, JsonObject]:
        """A copy of the status catalogue, keyed by status id."""
        return copy.deepcopy(self._statuses)

    def seed_default_catalogue(self) -> None:
        """Add the statuses a fresh CIC install ships with (those not already present)."""
        for status_id, props in DEFAULT_CATALOGUE:
            if self._find_status(status_id) is None:
                self.add_status_message(status_id, **props)

    def add_status_message(self, status_id: str, **props: Any) -> JsonObject:
        """Define a status; every required property not given gets a sane default."""
        _check_fields("statusMessage", props, _STATUS_FIELDS)
        if self._find_status(status_id) is not None:
            raise ValueError(f"status message {status_id!r} already exists")
        message = status_message(status_id, next(self._system_numbers), props)
        self._statuses[status_id] = message
        self._publish_statuses(added=[message])
        return copy.deepcopy(message)

    def change_status_message(self, status_id: str, **changes: Any) -> JsonObject:
        """Change properties of a status; subscribers get its full new representation."""
        _check_fields("statusMessage", changes, _STATUS_FIELDS)
        message = self._statuses[self._status_key(status_id)]
        message.update(changes)
        self._publish_statuses(changed=[message])
        return copy.deepcopy(message)

    def remove_status_message(self, status_id: str) -> None:
        """Delete a status; subscribers get its id in `statusMessagesRemoved`."""
        key = self._status_key(status_id)
        del self._statuses[key]
        self._publish_statuses(removed=[key])

    def status_snapshot(self) -> JsonObject:
        """The `isDelta:false` message for a new status-messages subscription."""
        return status_messages_message(
            is_delta=False, omit_empty=self._omit, added=self._statuses.values()
        )

    def _find_status(self, status_id: str) -> str | None:
        # Status ids are case-insensitive (§2.4).
        wanted = status_id.casefold()
        return next((key for key in self._statuses if key.casefold() == wanted), None)

    def _status_key(self, status_id: str) -> str:
        key = self._find_status(status_id)
        if key is None:
            raise KeyError(f"unknown status message {status_id!r}")
        return key

    def _publish_statuses(self, **arrays: Iterable[Any]) -> None:
        lists = {name: copy.deepcopy(list(items)) for name, items in arrays.items()}
        self._publisher.publish(
            STATUS_MESSAGES,
            lambda _params: status_messages_message(is_delta=True, omit_empty=self._omit, **lists),
        )

    # ---- interaction alerting (per user) ------------------------------------------------------

    def alerting(self, user: str) -> dict[str, JsonObject]:
        """A copy of the interactions currently alerting for `user`, keyed by interaction id."""
        return copy.deepcopy(self._alerting.get(user, {}))

    def start_alerting(self, user: str, interaction_id: str | None = None, **props: Any) -> str:
        """Make an interaction alert for `user`; returns its (possibly generated) id."""
        _check_fields("interactionAlertDetails", props, _ALERT_FIELDS)
        interaction_id = interaction_id or str(next(self._interaction_numbers))
        if interaction_id in self._alerting.get(user, {}):
            raise ValueError(f"interaction {interaction_id} is already alerting for {user}")
        interaction = {"interactionId": interaction_id, **alert_defaults(user), **props}
        interaction.setdefault("attributes", alert_attributes(interaction))
        self._alerting.setdefault(user, {})[interaction_id] = interaction
        self._alert_started[interaction_id] = compact_time()
        self._publish_alert(user, interaction, changed=None)
        return interaction_id

    def change_alerting(self, user: str, interaction_id: str, **changes: Any) -> JsonObject:
        """Change an alerting interaction; `attributes` given here are merged, not replaced."""
        _check_fields("interactionAlertDetails", changes, _ALERT_FIELDS - {"alertAction"})
        interaction = self._alerting_item(user, interaction_id)
        new_attributes = changes.pop("attributes", None)
        interaction.update(changes)
        delta_view = copy.deepcopy(interaction)
        changed = set(changes)
        if new_attributes is not None:
            interaction.setdefault("attributes", {}).update(new_attributes)
            delta_view["attributes"] = dict(new_attributes)
            changed.add("attributes")
        self._publish_alert(user, delta_view, changed=changed)
        return copy.deepcopy(interaction)

    def stop_alerting(self, user: str, interaction_id: str) -> JsonObject:
        """Stop an interaction alerting: a delta entry with `alertAction` 2 (§4.1, UNCONFIRMED)."""
        interaction = self._alerting_item(user, interaction_id)
        del self._alerting[user][interaction_id]
        interaction["alertAction"] = int(AlertAction.STOP_ALERTING)
        self._publish_alert(user, interaction, changed=())
        return interaction

    def alerting_snapshot(self, user: str, params: Mapping[str, Any]) -> JsonObject:
        """The `isDelta:false` message for a new alerting subscription of `user`."""
        entries = [alert_entry(item, params) for item in self._alerting.get(user, {}).values()]
        return alerting_message([entry for entry in entries if entry], is_delta=False)

    def _alerting_item(self, user: str, interaction_id: str) -> JsonObject:
        try:
            return self._alerting[user][interaction_id]
        except KeyError:
            raise KeyError(f"interaction {interaction_id} is not alerting for {user}") from None

    def _publish_alert(
        self, user: str, interaction: JsonObject, *, changed: Iterable[str] | None
    ) -> None:
        view, names = copy.deepcopy(interaction), None if changed is None else list(changed)

        def render(params: Mapping[str, Any]) -> JsonObject | None:
            """The delta for one subscriber, or None when it would learn nothing."""
            entry = alert_entry(view, params, changed=names)
            return None if entry is None else alerting_message([entry], is_delta=True)

        self._publisher.publish(ALERTING, render, user=user)

    # ---- interaction history (per user) -------------------------------------------------------

    def history(self, user: str) -> dict[str, JsonObject]:
        """A copy of `user`'s call history in insertion order, keyed by interaction id."""
        return copy.deepcopy(self._history.get(user, {}))

    def add_history(self, user: str, interaction_id: str | None = None, **props: Any) -> str:
        """Append a `historyItem` for `user`; datetimes are stored in the compact form."""
        _check_fields("historyItem", props, _HISTORY_FIELDS)
        interaction_id = interaction_id or str(next(self._interaction_numbers))
        if interaction_id in self._history.get(user, {}):
            raise ValueError(f"interaction {interaction_id} is already in {user}'s history")
        item = {
            "interactionId": interaction_id,
            **history_defaults(user, compact_time()),
            **_with_compact_dates(props),
        }
        self._history.setdefault(user, {})[interaction_id] = item
        self._publish_history(user, item)
        return interaction_id

    def change_history(self, user: str, interaction_id: str, **changes: Any) -> JsonObject:
        """Change a history item (e.g. its notes); the delta holds the id and the changes."""
        _check_fields("historyItem", changes, _HISTORY_FIELDS)
        try:
            item = self._history[user][interaction_id]
        except KeyError:
            raise KeyError(f"interaction {interaction_id} is not in {user}'s history") from None
        changes = _with_compact_dates(changes)
        item.update(changes)
        self._publish_history(user, {"interactionId": interaction_id, **changes})
        return copy.deepcopy(item)

    def end_call(self, user: str, interaction_id: str) -> JsonObject:
        """Disconnect a call: stop its alerting if needed, then record it in history."""
        started = self._alert_started.pop(interaction_id, None)
        props: JsonObject = {"terminationTime": compact_time()}
        if interaction_id in self._alerting.get(user, {}):
            interaction = self.stop_alerting(user, interaction_id)
            props.update(
                remoteName=interaction["name"],
                remoteAddress=interaction["address"],
                remoteId=interaction["address"],
            )
        if started is not None:
            props["initiationTime"] = started
        self.add_history(user, interaction_id, **props)
        return copy.deepcopy(self._history[user][interaction_id])

    def history_snapshot(self, user: str, params: Mapping[str, Any]) -> JsonObject:
        """The `isDelta:false` message: the last `numberOfHistoryMessages` items, or all."""
        items = list(self._history.get(user, {}).values())
        limit = params.get("numberOfHistoryMessages")
        if limit is not None:
            items = items[-limit:] if limit else []
        return history_message(items, is_delta=False, omit_empty=self._omit)

    def _publish_history(self, user: str, item: JsonObject) -> None:
        view = copy.deepcopy(item)
        self._publisher.publish(
            HISTORY,
            lambda _params: history_message([view], is_delta=True, omit_empty=self._omit),
            user=user,
        )

    def has_interaction(self, user: str, interaction_id: str) -> bool:
        """Whether the interaction is alerting for, or in the history of, `user`."""
        return any(
            interaction_id in truth.get(user, {}) for truth in (self._alerting, self._history)
        )

    # ---- agent assistance (kept in `AssistanceBook`) ------------------------------------------

    @property
    def assistance(self) -> dict[str, JsonObject]:
        """A copy of every assistance request, keyed by assistance id."""
        return copy.deepcopy(self._assistance.requests)

    def open_assistance(self, user: str | None = None) -> list[str]:
        """The ids of open assistance requests (those `user` initiated, when given)."""
        return self._assistance.open_ids(user)

    def assistance_allows(self, user: str, assistance_id: str, scope: str) -> bool:
        """Whether `user` is within `scope` (initiator, participants, anyone) of a request."""
        return self._assistance.allows(user, assistance_id, scope)

    def assistance_request(self, assistance_id: str) -> JsonObject:
        """A copy of one assistance request; KeyError when unknown."""
        return copy.deepcopy(self._assistance.request(assistance_id))

    def create_assistance(self, user: str, interaction_id: str, text: str) -> str:
        """Open an assistance request from `user` about an interaction; returns its id."""
        return self._assistance.create(user, interaction_id, text)

    def accept_assistance(
        self, assistance_id: str, supervisor_user_id: str, display_name: str
    ) -> None:
        """A supervisor accepts the request: state Accepted and the supervisor joins."""
        self._assistance.accept(assistance_id, supervisor_user_id, display_name)

    def add_assistance_message(self, assistance_id: str, participant_id: str, text: str) -> None:
        """A participant adds a message to an open request."""
        self._assistance.add_message(assistance_id, participant_id, text)

    def complete_assistance(self, assistance_id: str) -> None:
        """Complete a request: it leaves the initiator's list and its state becomes 2."""
        self._assistance.complete(assistance_id)

    def assistance_list_snapshot(self, user: str) -> JsonObject:
        """The `isDelta:false` list: every open request `user` initiated."""
        return self._assistance.list_snapshot(user)

    def assistance_details_snapshot(self, assistance_id: str) -> JsonObject:
        """The `isDelta:false` details message of one request; KeyError when unknown."""
        return self._assistance.details_snapshot(assistance_id)
