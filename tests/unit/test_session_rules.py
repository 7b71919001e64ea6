"""The session rules: what a login, a batch, a connection check and a stream end make it do."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.core import messages
from bridge.core.icws_api import MissingFeature
from bridge.core.messages import ConnectionChange
from bridge.core.session_rules import (
    EndSession,
    FallBack,
    Follow,
    Proceed,
    Reopen,
    Resubscribe,
    Step,
    StreamEndReason,
    StreamVerdict,
    Unfollow,
    Unsupported,
    after_batch,
    after_check,
    after_login,
    after_stream_end,
    lost_aggregates,
)

LIST = "urn:inin.com:interactions.assistance:assistanceRequestListMessage"
DETAILS = "urn:inin.com:interactions.assistance:assistanceRequestDetailsMessage"
CONNECTION = "urn:inin.com:connection:connectionStateChangeMessage"
STATUS = "urn:inin.com:status:statusMessagesMessage"
SUB_STATE = "urn:inin.com:messaging:subscriptionStateMessage"
ASSIST_STATE = "urn:inin.com:interactions.assistance:assistanceRequestSubscriptionStateMessage"
ALL = ["alerting", "history", "status_messages", "assistance"]
FULL = {"connection": 11, "messaging": 2, "interactions": 9, "status": 1}


def down(reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "__type": CONNECTION,
        "isDelta": False,
        "newConnectionState": 2,
        "reason": reason,
        **extra,
    }


def steps(*raw: Any) -> list[Step]:
    return after_batch([messages.parse(r) for r in raw])


class TestAfterBatch:
    """A delivered batch: follow what the assistance list adds, drop what it removes, obey Down."""

    @pytest.mark.parametrize(
        ("batch", "expected"),
        [
            pytest.param([], [], id="empty batch: nothing to do"),
            pytest.param(
                [{"__type": LIST, "isDelta": False, "requestsAdded": ["a1", "a2"]}],
                [Follow("a1"), Follow("a2")],
                id="snapshot list: follow each request",
            ),
            pytest.param(
                [
                    {"__type": LIST, "isDelta": False, "requestsAdded": ["a1", "a2"]},
                    {"__type": STATUS, "isDelta": True, "requestsAdded": ["x"]},
                    "not a message",
                    {
                        "__type": LIST,
                        "isDelta": True,
                        "requestsAdded": ["a3", 7, ""],
                        "requestsRemoved": ["a1"],
                    },
                    {"__type": LIST, "isDelta": True, "requestsRemoved": "a2"},
                ],
                [Follow("a1"), Follow("a2"), Follow("a3"), Unfollow("a1")],
                id="all follows then all unfollows; bad ids and other types skipped",
            ),
            pytest.param(
                [{"__type": DETAILS, "isDelta": True, "assistanceId": "a1", "state": 2}],
                [],
                id="a Completed details message is not an unfollow (the list decides)",
            ),
            pytest.param(
                [down("admin", shouldReconnect=False)],
                [EndSession("down_no_reconnect", "admin", should_reconnect=False)],
                id="Down with shouldReconnect false: end and wait",
            ),
            pytest.param(
                [down("restart", shouldReconnect=True)],
                [EndSession("down_message", "restart", should_reconnect=True)],
                id="Down with shouldReconnect true: end and log in again",
            ),
            pytest.param(
                [down("old server")],
                [EndSession("down_message", "old server", should_reconnect=True)],
                id="Down without shouldReconnect: log in again",
            ),
            pytest.param(
                [{"__type": CONNECTION, "isDelta": False, "newConnectionState": 1}],
                [],
                id="Up: nothing to do",
            ),
            pytest.param(
                [down("first", shouldReconnect=False), down("second")],
                [EndSession("down_no_reconnect", "first", should_reconnect=False)],
                id="only the first Down counts",
            ),
            pytest.param(
                [down("bye"), {"__type": LIST, "isDelta": True, "requestsAdded": ["a9"]}],
                [Follow("a9"), EndSession("down_message", "bye", should_reconnect=True)],
                id="the end comes after the batch's follows",
            ),
        ],
    )
    def test_steps(self, batch: list[Any], expected: list[Step]) -> None:
        """Each batch gives exactly the steps the protocol calls for, in order."""
        assert steps(*batch) == expected


def state(urn: str, state: int, name: str | None = None, error: Any = None) -> dict[str, Any]:
    """A subscription-state message as §10 describes it (``subscriptionId`` only if named)."""
    named = {} if name is None else {"subscriptionId": name}
    return {"__type": urn, "isDelta": False, "state": state, "error": error, **named}


BUSY = {"errorId": "error.busy", "message": "Busy"}


class TestSubscriptionLost:
    """A Suspended or Faulted subscription is re-created; other states change nothing."""

    @pytest.mark.parametrize(
        ("batch", "subscribed", "expected"),
        [
            pytest.param(
                [state(SUB_STATE, 3, "interaction-alerting", BUSY)],
                ALL,
                [Resubscribe("alerting", "Faulted", "error.busy: Busy")],
                id="named Faulted alerting: resubscribe alerting only",
            ),
            pytest.param(
                [state(SUB_STATE, 2, "status/status-messages")],
                ALL,
                [Resubscribe("status_messages", "Suspended", "")],
                id="named Suspended status messages",
            ),
            pytest.param(
                [state(SUB_STATE, 3)],
                ALL,
                [
                    Resubscribe("alerting", "Faulted", ""),
                    Resubscribe("history", "Faulted", ""),
                    Resubscribe("status_messages", "Faulted", ""),
                ],
                id="unnamed messaging state: every messaging subscription",
            ),
            pytest.param(
                [state(SUB_STATE, 3)],
                ["history", "assistance"],
                [Resubscribe("history", "Faulted", "")],
                id="unnamed: only the subscriptions the session holds",
            ),
            pytest.param(
                [state(ASSIST_STATE, 2)],
                ALL,
                [Resubscribe("assistance", "Suspended", "")],
                id="unnamed assistance state: the list",
            ),
            pytest.param(
                [state(ASSIST_STATE, 3, "interactions/agent-assistance/{a1|b:2 c/3}")],
                ALL,
                [Resubscribe("assistance", "Faulted", "")],
                id="a details subscription: the list (its snapshot re-follows every request)",
            ),
            pytest.param(
                [state(SUB_STATE, 3, "interaction-history")],
                ["alerting"],
                [],
                id="named but not held: nothing",
            ),
            pytest.param(
                [state(SUB_STATE, 1, "interaction-alerting"), state(SUB_STATE, 0)],
                ALL,
                [],
                id="Normal and None: nothing",
            ),
            pytest.param(
                [
                    state(ASSIST_STATE, 2, "interactions/agent-assistance"),
                    state(ASSIST_STATE, 3, "interactions/agent-assistance/a1"),
                    state(SUB_STATE, 3, "interaction-alerting"),
                ],
                ALL,
                [
                    Resubscribe("assistance", "Suspended", ""),
                    Resubscribe("alerting", "Faulted", ""),
                ],
                id="one resubscription per aggregate, the first state's words",
            ),
            pytest.param(
                [
                    down("bye"),
                    state(SUB_STATE, 2, "interaction-alerting"),
                    {"__type": LIST, "isDelta": True, "requestsAdded": ["a9"]},
                ],
                ALL,
                [
                    Follow("a9"),
                    Resubscribe("alerting", "Suspended", ""),
                    EndSession("down_message", "bye", should_reconnect=True),
                ],
                id="after follows and unfollows, before the end",
            ),
        ],
    )
    def test_steps(self, batch: list[Any], subscribed: list[str], expected: list[Step]) -> None:
        """Each batch gives exactly the resubscriptions §10 calls for, in order."""
        assert after_batch([messages.parse(r) for r in batch], subscribed) == expected

    @pytest.mark.parametrize(
        ("state_value", "reason"), [(2, "subscription_suspended"), (3, "subscription_faulted")]
    )
    def test_the_reason_names_the_state(self, state_value: int, reason: str) -> None:
        """The gap's reason is a fixed word per state, not the server's text."""
        [step] = steps(state(SUB_STATE, state_value, "interaction-alerting", BUSY))
        assert isinstance(step, Resubscribe)
        assert step.reason == reason

    @pytest.mark.parametrize(
        ("urn", "name", "aggregates"),
        [
            (SUB_STATE, "interaction-alerting", ("alerting",)),
            (SUB_STATE, "interaction-history", ("history",)),
            (SUB_STATE, "status/status-messages", ("status_messages",)),
            (ASSIST_STATE, "interactions/agent-assistance", ("assistance",)),
            (ASSIST_STATE, "interactions/agent-assistance/x/y", ("assistance",)),
            (SUB_STATE, "interaction-alerting-v2", ("alerting", "history", "status_messages")),
            (SUB_STATE, None, ("alerting", "history", "status_messages")),
            (ASSIST_STATE, "something-else", ("assistance",)),
        ],
    )
    def test_lost_aggregates(self, urn: str, name: str | None, aggregates: tuple[str]) -> None:
        """The subscription named (its path below messaging/subscriptions/), else the family."""
        message = messages.parse(state(urn, 3, name))
        assert isinstance(message, messages.SubscriptionState)
        assert lost_aggregates(message) == aggregates


class TestAfterCheck:
    """A connection check ends the session only when the server says Down."""

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            (ConnectionChange(up=True, reason="", should_reconnect=None), None),
            (
                ConnectionChange(up=False, reason="timed out", should_reconnect=True),
                EndSession("check_failed", "connection check: timed out", should_reconnect=True),
            ),
            (
                ConnectionChange(up=False, reason="admin", should_reconnect=False),
                EndSession("check_failed", "connection check: admin", should_reconnect=True),
            ),
        ],
    )
    def test_check(self, change: ConnectionChange, expected: EndSession | None) -> None:
        """Up continues; Down ends the session as a failed check."""
        assert after_check(change) == expected


class TestAfterLogin:
    """The server's feature versions decide what to subscribe, how to read, or unsupported."""

    @pytest.mark.parametrize(
        ("mode", "features", "wanted", "expected"),
        [
            pytest.param("auto", FULL, ALL, Proceed("sse", tuple(ALL), ()), id="full server"),
            pytest.param(
                "auto",
                {**FULL, "messaging": 1},
                ALL,
                Proceed("poll", tuple(ALL), ()),
                id="messaging 1: short polling",
            ),
            pytest.param(
                "poll", FULL, ["history"], Proceed("poll", ("history",), ()), id="poll forced"
            ),
            pytest.param(
                "auto",
                {**FULL, "interactions": 8},
                ALL,
                Proceed(
                    "sse",
                    ("alerting", "history", "status_messages"),
                    (MissingFeature("assistance", "interactions", 9, 8),),
                ),
                id="some subscriptions missing: the rest proceed",
            ),
            pytest.param(
                "auto",
                {"connection": 11, "messaging": 2},
                ALL,
                Unsupported(
                    (
                        "subscription alerting needs ICWS feature interactions >= 6, "
                        "server has absent",
                        "subscription history needs ICWS feature interactions >= 4, "
                        "server has absent",
                        "subscription status_messages needs ICWS feature status >= 1, "
                        "server has absent",
                        "subscription assistance needs ICWS feature interactions >= 9, "
                        "server has absent",
                    )
                ),
                id="no subscription possible: unsupported",
            ),
            pytest.param(
                "auto",
                {**FULL, "interactions": 5},
                ["alerting", "assistance"],
                Unsupported(
                    (
                        "subscription alerting needs ICWS feature interactions >= 6, "
                        "server has version 5",
                        "subscription assistance needs ICWS feature interactions >= 9, "
                        "server has version 5",
                    )
                ),
                id="every enabled subscription lacking: unsupported",
            ),
            pytest.param(
                "auto",
                {"connection": 11, "interactions": 9, "status": 1},
                ["status_messages"],
                Unsupported(("the server has no ICWS feature messaging to read messages with",)),
                id="no messaging feature: unsupported",
            ),
            pytest.param("auto", FULL, [], Proceed("sse", (), ()), id="nothing enabled"),
        ],
    )
    def test_login(
        self, mode: Any, features: dict[str, int], wanted: list[str], expected: Any
    ) -> None:
        """The verdict names the transport and subscriptions, or every missing feature."""
        assert after_login(mode, features, wanted) == expected


class TestAfterStreamEnd:
    """A stream that worked is reopened after ``retry:``; failed ones back off, then poll."""

    @pytest.mark.parametrize(
        ("reason", "failures", "retry_ms", "mode", "expected"),
        [
            # Streams that worked: reopen after the server's retry (or the first backoff).
            ("closed", 0, 3000, "auto", Reopen(0, 3.0)),
            ("closed", 0, None, "auto", Reopen(0, 0.5)),
            ("cut", 2, 0, "auto", Reopen(0, 0.0)),
            ("silent", 2, None, "sse", Reopen(0, 0.5)),
            # Failed streams: back off, and the third in a row falls back (auto only).
            ("no_bytes", 0, 3000, "auto", Reopen(1, None)),
            ("not_event_stream", 2, None, "auto", FallBack(3)),
            ("refused", 2, None, "auto", FallBack(3)),
            ("unreachable", 1, None, "auto", Reopen(2, None)),
            ("refused", 2, None, "sse", Reopen(3, None)),
            # SSE tried again after polling: one more failure falls straight back.
            ("no_bytes", 3, None, "auto", FallBack(4)),
        ],
    )
    def test_stream_end(
        self,
        reason: StreamEndReason,
        failures: int,
        retry_ms: int | None,
        mode: Any,
        expected: StreamVerdict,
    ) -> None:
        """Each stream end, with the failures before it, gives the documented verdict."""
        verdict = after_stream_end(reason, failures, retry_ms, mode=mode, limit=3, initial=0.5)
        assert verdict == expected

    def test_a_limit_of_one_falls_back_at_the_first_failure(self) -> None:
        """With the limit at 1 the first failed stream already switches to polling."""
        verdict = after_stream_end("no_bytes", 0, None, mode="auto", limit=1, initial=0.5)
        assert verdict == FallBack(1)
