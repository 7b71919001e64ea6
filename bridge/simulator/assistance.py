"""Agent-assistance truth (§4.4) and the list and details deltas its changes produce.

The list of requests is scoped to the initiator (assumed, §8.13); the details of one request go
to every session watching it. Ids look like GUIDs (their real format is UNCONFIRMED) and come
from a fixed-seed generator, so a scripted run always produces the same ids. With
`opaque_assistance_ids` they are opaque strings full of reserved characters, like
`{a1|b:2 c/3}`, so clients must percent-encode them in paths (§10).
"""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

from .catalogue import display_name
from .config import SimulatorConfig
from .messages import (
    ASSISTANCE_LIST,
    Publisher,
    assistance_details,
    assistance_details_message,
    assistance_list_message,
    assistance_snapshot,
)
from .wire import AssistanceState, JsonObject, ParticipantAction, compact_time


def _participant(user_id: str, name: str, action: ParticipantAction) -> JsonObject:
    return {"userId": user_id, "displayName": name, "action": int(action)}


class AssistanceBook:
    """Every assistance request, by id, with its initiator, state, messages and participants."""

    def __init__(self, config: SimulatorConfig, publisher: Publisher):
        self._config = config
        self._publisher = publisher
        self._requests: dict[str, JsonObject] = {}
        # Open request ids by initiator, so scenarios need not scan every request ever made.
        self._open_ids: dict[str, dict[str, None]] = {}
        self._ids = random.Random(0)

    @property
    def requests(self) -> dict[str, JsonObject]:
        """The truth itself (callers copy before handing it out)."""
        return self._requests

    def request(self, assistance_id: str) -> JsonObject:
        """One request; KeyError when unknown."""
        try:
            return self._requests[assistance_id]
        except KeyError:
            raise KeyError(f"unknown assistance request {assistance_id!r}") from None

    def open_ids(self, user: str | None = None) -> list[str]:
        """The ids of the open requests (of those `user` initiated, when given)."""
        if user is not None:
            return list(self._open_ids.get(user, ()))
        return [assistance_id for mine in self._open_ids.values() for assistance_id in mine]

    def of_user(self, user: str) -> dict[str, JsonObject]:
        """The truth of every request `user` initiated, open or completed (callers copy)."""
        return {
            assistance_id: request
            for assistance_id, request in self._requests.items()
            if request["initiator"] == user
        }

    def allows(self, user: str, assistance_id: str, scope: str) -> bool:
        """Whether `user` is within `scope` (a `ASSISTANCE_SCOPES` value) of the request."""
        request = self.request(assistance_id)
        if scope == "initiator":
            return bool(request["initiator"] == user)
        if scope == "participants":
            return user in request["participants"]
        return True

    def create(self, user: str, interaction_id: str, text: str) -> str:
        """Open a request from `user` about an interaction; returns its id."""
        assistance_id = self._new_id()
        self._requests[assistance_id] = {
            "assistanceId": assistance_id,
            "initiator": user,
            "interactionId": interaction_id,
            "state": int(AssistanceState.NONE),
            "messages": [{"text": text, "participantId": user, "timeAdded": compact_time()}],
            "participants": {
                user: _participant(user, display_name(user), ParticipantAction.INITIATED)
            },
        }
        self._open_ids.setdefault(user, {})[assistance_id] = None
        self._publish_list(user, added=[assistance_id])
        return assistance_id

    def _new_id(self) -> str:
        bits = self._ids.getrandbits(128)
        if self._config.opaque_assistance_ids:
            number = len(self._requests) + 1
            return f"{{a{number}|b:{bits % 1000} c/{bits >> 120:x}}}"
        return str(uuid.UUID(int=bits, version=4))

    def accept(self, assistance_id: str, supervisor_user_id: str, name: str) -> None:
        """A supervisor accepts: state Accepted, and the supervisor joins (or changes)."""
        request = self._open(assistance_id)
        participant = _participant(supervisor_user_id, name, ParticipantAction.ACCEPTED)
        known = supervisor_user_id in request["participants"]
        request["participants"][supervisor_user_id] = participant
        request["state"] = int(AssistanceState.ACCEPTED)
        self._publish_details(
            assistance_id,
            fields={"state": request["state"]},
            **{"participants_changed" if known else "participants_added": [participant]},
        )

    def add_message(self, assistance_id: str, participant_id: str, text: str) -> None:
        """A participant adds a message to an open request."""
        request = self._open(assistance_id)
        message = {"text": text, "participantId": participant_id, "timeAdded": compact_time()}
        request["messages"].append(message)
        self._publish_details(assistance_id, messages_added=[message])

    def complete(self, assistance_id: str) -> None:
        """Complete a request: it leaves the initiator's list and its state becomes 2."""
        request = self._open(assistance_id)
        request["state"] = int(AssistanceState.COMPLETED)
        mine = self._open_ids[request["initiator"]]
        del mine[assistance_id]
        if not mine:
            del self._open_ids[request["initiator"]]
        self._publish_list(request["initiator"], removed=[assistance_id])
        self._publish_details(assistance_id, fields={"state": request["state"]})

    def list_snapshot(self, user: str) -> JsonObject:
        """The `isDelta:false` list: every open request `user` initiated."""
        return assistance_list_message(
            is_delta=False, omit_empty=self._config.omit_empty_arrays, added=self.open_ids(user)
        )

    def details_snapshot(self, assistance_id: str) -> JsonObject:
        """The `isDelta:false` details of one request; KeyError when unknown."""
        return assistance_snapshot(
            self.request(assistance_id), omit_empty=self._config.omit_empty_arrays
        )

    def _open(self, assistance_id: str) -> JsonObject:
        request = self.request(assistance_id)
        if request["state"] == AssistanceState.COMPLETED:
            raise ValueError(f"assistance request {assistance_id} is already completed")
        return request

    def _publish_list(self, user: str, **arrays: list[str]) -> None:
        self._publisher.publish(
            ASSISTANCE_LIST,
            lambda _params: assistance_list_message(
                is_delta=True, omit_empty=self._config.omit_empty_arrays, **arrays
            ),
            user=user,
        )

    def _publish_details(self, assistance_id: str, **parts: Any) -> None:
        frozen = copy.deepcopy(parts)
        self._publisher.publish(
            assistance_details(assistance_id),
            lambda _params: assistance_details_message(
                assistance_id, is_delta=True, omit_empty=self._config.omit_empty_arrays, **frozen
            ),
        )
