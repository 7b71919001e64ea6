"""What the ICWS session must do next, decided from values: after a login, a batch, a check.

The session (``bridge/icws/session.py``) only holds the session; these rules say what each thing
ICWS told it means for that session, as values it dispatches with ``match``:

- after a login, :func:`after_login` decides between :class:`Proceed` (the transport to read
  with, the subscriptions to create, those the server's feature versions cannot serve) and
  :class:`Unsupported` (nothing the bridge needs can work on this server: retry slowly);
- after a batch of parsed messages is delivered, :func:`after_batch` lists the :class:`Follow`
  and :class:`Unfollow` steps for assistance requests the list added or removed (all follows,
  then all unfollows, in message order), then one :class:`Resubscribe` per subscribed aggregate
  whose subscription the server suspended or faulted (:func:`lost_aggregates` says which), and
  ends with at most one :class:`EndSession`, for the first Down connection state in the batch;
- after a connection check, :func:`after_check` ends the session when the server says Down;
- after an SSE stream ended while the session is up, :func:`after_stream_end` says whether to
  :class:`Reopen` it (after the server's ``retry:`` delay, or backing off while streams keep
  failing) or to :class:`FallBack` to short polling on the same session.

A stream is not a session (docs/icws-protocol.md §10): servers and proxies close healthy streams,
and a stream that ends says nothing about the session, which the connection check judges. A
stream *failed* when SSE itself did not work: not one byte within the idle limit (a buffering
proxy), an answer that is not an event stream (an HTML page, a JSON array), a refusal, or no
connection. A stream that worked and then ended (closed, cut, silent) resets the count.

Reasons are a fixed vocabulary (they label the reconnect metric); the server's own words travel
separately as ``detail``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bridge.core import icws_api, messages
from bridge.core.icws_api import MissingFeature, Transport
from bridge.core.messages import (
    AGGREGATES,
    Aggregate,
    ConnectionChange,
    Family,
    Message,
    SubscriptionState,
)

ASSISTANCE_LIST = messages.short_type(icws_api.ASSISTANCE_LIST)
MESSAGING = "messaging"

EndReason = Literal["down_message", "down_no_reconnect", "check_failed"]
StreamEndReason = Literal[
    "closed", "cut", "silent", "no_bytes", "not_event_stream", "refused", "unreachable"
]
STREAM_END_REASONS: tuple[StreamEndReason, ...] = (
    "closed",
    "cut",
    "silent",
    "no_bytes",
    "not_event_stream",
    "refused",
    "unreachable",
)
FAILED_STREAM: frozenset[StreamEndReason] = frozenset(
    {"no_bytes", "not_event_stream", "refused", "unreachable"}
)


@dataclass(frozen=True, slots=True)
class EndSession:
    """End this session; log in again at once, or (``should_reconnect`` False) after a while."""

    reason: EndReason
    detail: str
    should_reconnect: bool


@dataclass(frozen=True, slots=True)
class Follow:
    """Subscribe to the details of one assistance request the list added."""

    assistance_id: str


@dataclass(frozen=True, slots=True)
class Unfollow:
    """Drop the details subscription of one assistance request the list removed."""

    assistance_id: str


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """PUT one aggregate's subscription again: the server suspended or faulted it.

    Until then it sends that subscription nothing, so what changed meanwhile may be missed: the
    new PUT's snapshot is reconciled. ``reason`` labels the gap; ``state`` and ``error`` are the
    server's words.
    """

    aggregate: Aggregate
    state: str
    error: str

    @property
    def reason(self) -> str:
        return f"subscription_{self.state.lower()}"


Step = EndSession | Follow | Unfollow | Resubscribe


@dataclass(frozen=True, slots=True)
class Proceed:
    """The server can serve the bridge: read with ``transport``, create ``subscribe``."""

    transport: Transport
    subscribe: tuple[str, ...]
    missing: tuple[MissingFeature, ...]


@dataclass(frozen=True, slots=True)
class Unsupported:
    """The server lacks what the bridge needs at all; ``missing`` names each feature."""

    missing: tuple[str, ...]


LoginVerdict = Proceed | Unsupported


def after_login(
    mode: Literal["auto", "sse", "poll"], features: Mapping[str, int], wanted: Sequence[str]
) -> LoginVerdict:
    """Proceed with what the server supports, or Unsupported when it can serve nothing.

    Unsupported when the server lists no ``messaging`` feature (no way to read messages: a
    feature missing from the list is not supported, docs/icws-protocol.md §1.5), or when every
    wanted subscription lacks its feature version. Some missing is not unsupported: those are
    skipped and named in readiness.
    """
    missing = tuple(icws_api.missing_features(features, list(wanted)))
    lacking = {m.subscription for m in missing}
    usable = tuple(name for name in wanted if name not in lacking)
    reasons: list[str] = []
    if features.get(MESSAGING) is None:
        reasons.append(f"the server has no ICWS feature {MESSAGING} to read messages with")
    if wanted and not usable:
        reasons += [m.describe() for m in missing]
    if reasons:
        return Unsupported(tuple(reasons))
    return Proceed(icws_api.choose_transport(mode, features), usable, missing)


def after_batch(batch: Sequence[Message], subscribed: Collection[str] = AGGREGATES) -> list[Step]:
    """Follows, unfollows, resubscriptions (of ``subscribed`` only), then the first Down."""
    follows: list[Step] = []
    unfollows: list[Step] = []
    lost: dict[Aggregate, Resubscribe] = {}
    end: list[Step] = []
    for message in batch:
        match message:
            case messages.Update(kind=kind) if kind == ASSISTANCE_LIST:
                follows += [Follow(upsert.key) for upsert in message.upserts]
                unfollows += [Unfollow(key) for key in message.removals]
            case SubscriptionState(lost=True):
                for aggregate in lost_aggregates(message):
                    if aggregate in subscribed and aggregate not in lost:
                        lost[aggregate] = Resubscribe(aggregate, message.state, message.error)
            case ConnectionChange(up=False) if not end:
                end.append(_down(message))
            case _:
                pass
    return follows + unfollows + list(lost.values()) + end


# Which aggregates a state message may concern when it does not say (§10: the SDK names no
# property for it): every subscription of its family.
FAMILIES: Mapping[Family, tuple[Aggregate, ...]] = {
    "messaging": ("alerting", "history", "status_messages"),
    "assistance": ("assistance",),
}
_BELOW = "messaging/subscriptions/"


def lost_aggregates(change: SubscriptionState) -> tuple[Aggregate, ...]:
    """The aggregate whose subscription the message names, else every one of its family.

    A details subscription (``…/agent-assistance/{id}``) counts as the assistance list's: the
    list's new snapshot makes the session follow every request's details again.
    """
    name = change.subscription
    if name is not None:
        for aggregate in AGGREGATES:
            path = icws_api.SUBSCRIPTIONS[aggregate].path.removeprefix(_BELOW)
            if name == path or name.startswith(path + "/"):
                return (aggregate,)
    return FAMILIES[change.family]


def _down(change: ConnectionChange) -> EndSession:
    # shouldReconnect absent (older servers, §3.1) means reconnect, as ICWS clients do.
    if change.should_reconnect is False:
        return EndSession("down_no_reconnect", change.reason, should_reconnect=False)
    return EndSession("down_message", change.reason, should_reconnect=True)


def after_check(change: ConnectionChange) -> EndSession | None:
    """A connection check that says Down ends the session (whatever it says of reconnecting)."""
    if change.up:
        return None
    return EndSession("check_failed", f"connection check: {change.reason}", should_reconnect=True)


@dataclass(frozen=True, slots=True)
class Reopen:
    """Open a new stream on the same session after ``wait`` seconds (None: back off)."""

    failures: int  # consecutive failed streams so far
    wait: float | None


@dataclass(frozen=True, slots=True)
class FallBack:
    """SSE does not work here: short-poll on the same session for a while, then try again."""

    failures: int


StreamVerdict = Reopen | FallBack


def after_stream_end(
    reason: StreamEndReason,
    failures: int,
    retry_ms: int | None,
    *,
    mode: Literal["auto", "sse", "poll"],
    limit: int,
    initial: float,
) -> StreamVerdict:
    """What to do after a stream ended on a session the check found up.

    ``failures`` counts the failed streams in a row before this one. A stream that worked is
    reopened after the server's last ``retry:`` delay (``initial`` seconds if it sent none), as
    browsers' EventSource does. A failed one backs off; the ``limit``-th failure in a row falls
    back to polling when the transport is ``auto`` (a forced ``sse`` keeps trying). The count
    is not reset by the polling that follows, so SSE tried again after it and failing once
    more falls straight back.
    """
    if reason not in FAILED_STREAM:
        return Reopen(0, initial if retry_ms is None else retry_ms / 1000)
    failures += 1
    if mode == "auto" and failures >= limit:
        return FallBack(failures)
    return Reopen(failures, None)
