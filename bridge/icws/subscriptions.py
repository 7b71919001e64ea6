"""One session's subscriptions: create those the core allowed, remove them, and log out.

Kept apart from ``session.py`` so that module holds only the session's life. A subscription the
server refuses for good (400, 403/404/410) is named and skipped; anything else ends the session.
Leaving is bounded: nothing here may hang a shutdown or a re-login.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from bridge import errors
from bridge.core import icws_api
from bridge.core.session_rules import Proceed
from bridge.icws.client import Client
from bridge.icws.transports import send_in_session
from bridge.metrics import Metrics
from bridge.settings import SubscriptionSettings

Bodies = Mapping[str, Mapping[str, Any] | None]


def subscription_bodies(subs: SubscriptionSettings) -> dict[str, dict[str, Any] | None]:
    """The enabled subscriptions and the body each PUT sends."""
    bodies: dict[str, dict[str, Any] | None] = {}
    if subs.alerting.enabled:
        bodies["alerting"] = (
            {"attributeNames": list(subs.alerting.attribute_names)}
            if subs.alerting.attribute_names
            else {}
        )
    if subs.history.enabled:
        count = subs.history.number_of_messages
        bodies["history"] = {"numberOfHistoryMessages": count} if count else {}
    if subs.status_messages.enabled:
        bodies["status_messages"] = None
    if subs.assistance.enabled:
        bodies["assistance"] = None
    return bodies


@dataclass(frozen=True, slots=True)
class Live:
    """Where one live session is: the client, its host and its id."""

    client: Client
    base: str
    session_id: str


async def subscribe_all(
    live: Live, bodies: Bodies, plan: Proceed, metrics: Metrics, log: structlog.stdlib.BoundLogger
) -> tuple[list[str], dict[str, str]]:
    """Create the subscriptions ``plan`` allows: those made, and those unavailable with why."""
    unavailable = {m.subscription: m.describe() for m in plan.missing}
    for missing in plan.missing:
        log.error("icws.subscription.unsupported", detail=missing.describe())
    done = []
    for name in plan.subscribe:
        call = icws_api.subscribe(live.session_id, name, bodies[name])
        failure = icws_api.interpret_ok(call, await send_in_session(live.client, live.base, call))
        if isinstance(failure, errors.ResourceGone | errors.RequestRejected):
            unavailable[name] = str(failure)
            log.error("icws.subscription.failed", subscription=name, error=str(failure))
            continue
        if failure is not None:
            raise failure
        metrics.subscriptions.labels(subscription=name).set(1)
        done.append(name)
    return done, unavailable


async def close(
    live: Live, names: list[str], seconds: float, log: structlog.stdlib.BoundLogger
) -> None:
    """Unsubscribe ``names`` and log out, within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            for name in names:
                await live.client.send(live.base, icws_api.unsubscribe(live.session_id, name))
            await live.client.send(live.base, icws_api.logout(live.session_id))
        log.info("icws.session.closed")
    except (TimeoutError, errors.IcwsError) as exc:
        log.warning("icws.session.close_failed", error=str(exc) or "timeout")


async def logout_quietly(live: Live) -> None:
    """Free a session that may still be alive server-side; any failure is fine."""
    try:
        async with asyncio.timeout(1.0):
            await live.client.send(live.base, icws_api.logout(live.session_id))
    except (TimeoutError, errors.IcwsError):
        pass
