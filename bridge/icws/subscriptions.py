"""One session's subscriptions: create those the core allowed, remove them, and log out.

Kept apart from ``session.py`` so that module holds only the session's life. A subscription the
server refuses for good (400, 403/404/410) is named and skipped; anything else ends the session.
The same holds when one the server suspended or faulted is created again (:func:`resubscribe`).
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
from bridge.core.session_rules import Proceed, Resubscribe
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
    live: Live, bodies: Bodies, plan: Proceed, log: structlog.stdlib.BoundLogger
) -> tuple[list[str], dict[str, str]]:
    """Create the subscriptions ``plan`` allows: those made, and those unavailable with why."""
    unavailable = {m.subscription: m.describe() for m in plan.missing}
    for missing in plan.missing:
        log.error("icws.subscription.unsupported", detail=missing.describe())
    done = []
    for name in plan.subscribe:
        refused = await _put(live, name, bodies[name], log)
        if refused is not None:
            unavailable[name] = refused
            continue
        done.append(name)
    return done, unavailable


async def resubscribe(
    live: Live,
    bodies: Bodies,
    step: Resubscribe,
    metrics: Metrics,
    log: structlog.stdlib.BoundLogger,
    unavailable: dict[str, str],
) -> None:
    """PUT again a subscription ICWS suspended or faulted; if refused, it is ``unavailable``."""
    log.warning(
        "icws.subscription.faulted",
        subscription=step.aggregate,
        state=step.state,
        error=step.error,
    )
    metrics.resubscriptions.labels(aggregate=step.aggregate).inc()
    refused = await _put(live, step.aggregate, bodies[step.aggregate], log)
    if refused is not None:
        unavailable[step.aggregate] = refused


async def _put(
    live: Live,
    name: str,
    body: Mapping[str, Any] | None,
    log: structlog.stdlib.BoundLogger,
) -> str | None:
    """PUT one subscription: None when in place, the reason when refused for good; else raise."""
    call = icws_api.subscribe(live.session_id, name, body)
    failure = icws_api.interpret_ok(call, await send_in_session(live.client, live.base, call))
    if isinstance(failure, errors.ResourceGone | errors.RequestRejected):
        log.error("icws.subscription.failed", subscription=name, error=str(failure))
        return str(failure)
    if failure is not None:
        raise failure
    return None


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
