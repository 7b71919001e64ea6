"""Keeping one session alive and judged while it reads: the connection check and the heartbeat.

The connection check (``GET /icws/{sessionId}/connection``, docs/icws-protocol.md §1.2) is the judge
of a session: it runs every ``connection_check_seconds``, and the stream keeper asks it after
every stream end. The heartbeat (``POST .../messaging/heartbeat``, §2.3) only keeps the session
alive: a server without it (404/410) has it turned off for the session, logged once, and any
other failure is left to the connection check to judge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from bridge import errors
from bridge.core import icws_api, session_rules
from bridge.core.icws_api import Answer, Call
from bridge.core.messages import ConnectionChange
from bridge.icws.transports import interrupted_within
from bridge.logs import get_logger
from bridge.settings import IcwsSettings

Send = Callable[[Call], Awaitable[Answer]]  # a call of the live session (401: SessionLost)
Lost = Callable[[str], None]  # the session is lost, with the detail why

_NO_HEARTBEAT = frozenset({404, 410})


async def connection_state(send: Send, session_id: str) -> ConnectionChange | errors.IcwsError:
    """What the connection check says: the state, or the error it met (never raised)."""
    try:
        return icws_api.interpret_connection(await send(icws_api.check_connection(session_id)))
    except errors.IcwsError as exc:
        return exc


def lost_detail(state: ConnectionChange | errors.IcwsError) -> str | None:
    """None when the check found the session up; otherwise why it is lost."""
    if isinstance(state, errors.IcwsError):
        return f"connection check: {state}"
    end = session_rules.after_check(state)
    return None if end is None else end.detail


async def still_up(send: Send, session_id: str, lost: Lost) -> bool:
    """Check once: True when up; False after telling ``lost`` why not.

    A 401 or no connection raises SessionLost (the session is gone, or the server is).
    """
    state = await connection_state(send, session_id)
    if isinstance(state, errors.SessionLost):
        raise state
    detail = lost_detail(state)
    if detail is None:
        return True
    lost(detail)
    return False


@contextlib.asynccontextmanager
async def kept_alive(
    send: Send,
    session_id: str,
    settings: IcwsSettings,
    interrupt: asyncio.Event,
    lost: Lost,
) -> AsyncIterator[None]:
    """Check the session and send heartbeats while the body runs."""
    tasks = [
        asyncio.create_task(
            check_periodically(
                send, session_id, settings.connection_check_seconds, interrupt, lost
            ),
            name="icws-check",
        ),
        asyncio.create_task(
            heartbeat_periodically(send, session_id, settings.heartbeat_seconds, interrupt),
            name="icws-heartbeat",
        ),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def check_periodically(
    send: Send, session_id: str, seconds: float, interrupt: asyncio.Event, lost: Lost
) -> None:
    """Check the session every ``seconds`` until interrupted or until a check finds it lost."""
    while not await interrupted_within(interrupt, seconds):
        detail = lost_detail(await connection_state(send, session_id))
        if detail is not None:
            lost(detail)
            return


async def heartbeat_periodically(
    send: Send, session_id: str, seconds: float, interrupt: asyncio.Event
) -> None:
    """Send the heartbeat every ``seconds`` (0: never) until interrupted or unsupported."""
    if seconds <= 0:
        return
    log = get_logger("bridge.icws.keepalive")
    call = icws_api.heartbeat(session_id)
    while not await interrupted_within(interrupt, seconds):
        try:
            answer = await send(call)
        except errors.IcwsError as exc:
            # Not fatal by itself: the connection check judges the session.
            log.warning("icws.heartbeat.failed", error=str(exc))
            continue
        if answer.status in _NO_HEARTBEAT:
            log.info("icws.heartbeat.unsupported", status=answer.status, detail="turned off")
            return
        if (failure := icws_api.interpret_ok(call, answer)) is not None:
            log.warning("icws.heartbeat.failed", error=str(failure))
