"""Reading one ICWS session's message queue, by SSE stream or by short polls, behind one interface.

A :class:`MessageReader` reads the queue of the session described by a :class:`Reading` and
hands each batch of raw messages to ``reading.deliver`` until that says to stop, the session's
``interrupt`` is set, or the session is lost (it raises an :class:`~bridge.errors.IcwsError`).
The session picks the reader through a factory, so a test can hand in a recording one.

Reading is interrupted only where nothing has been taken from ICWS yet (before a poll is sent,
while an SSE chunk is awaited), so a stop or a re-login never loses a message already drained.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bridge import errors
from bridge.core import icws_api
from bridge.core.icws_api import Answer, Call, Transport
from bridge.core.sse import SseDecoder
from bridge.icws.client import Client
from bridge.settings import IcwsSettings

Deliver = Callable[[list[Any]], Awaitable[bool]]  # True: the session must end, stop reading


@dataclass(frozen=True, slots=True)
class Reading:
    """One session's reading: where, which session, and what the session lends the reader."""

    client: Client
    base: str
    session_id: str
    interrupt: asyncio.Event
    deliver: Deliver
    touch: Callable[[], None]  # a message or keep-alive arrived: the session is alive


class MessageReader(Protocol):
    """Reads until told to stop or interrupted (returns) or lost (raises IcwsError)."""

    async def read(self, reading: Reading) -> None: ...


ReaderFactory = Callable[[Transport], MessageReader]


async def send_in_session(client: Client, base: str, call: Call) -> Answer:
    """Send a call of a live session: no connection or a 401 means the session is lost."""
    try:
        answer = await client.send(base, call)
    except errors.ServerUnavailable as exc:
        raise errors.SessionLost(str(exc), status=None) from None
    if answer.status == 401:
        raise errors.SessionLost(f"{call.name}: HTTP 401", status=401)
    return answer


async def interrupted_within(interrupt: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; True if ``interrupt`` was set meanwhile."""
    try:
        await asyncio.wait_for(interrupt.wait(), seconds)
    except TimeoutError:
        return False
    return True


class PollReader:
    """Short polls: each GET drains the queue into a JSON array (docs/icws-protocol.md §2)."""

    def __init__(self, settings: IcwsSettings) -> None:
        self._interval = settings.poll_interval_seconds

    async def read(self, reading: Reading) -> None:
        call = icws_api.messages(reading.session_id, "poll")
        while True:
            # A poll in flight is never cancelled: its answer has already been drained.
            answer = await send_in_session(reading.client, reading.base, call)
            batch = icws_api.interpret_messages(answer)
            if isinstance(batch, errors.IcwsError):
                raise batch
            reading.touch()
            if batch and await reading.deliver(batch):
                return
            if await interrupted_within(reading.interrupt, self._interval):
                return


class SseReader:
    """One long-lived SSE stream on the same URL; a plain array answer falls back to polling."""

    def __init__(self, settings: IcwsSettings) -> None:
        self._idle = settings.sse_idle_timeout_seconds
        self._poll = PollReader(settings)

    async def read(self, reading: Reading) -> None:
        call = icws_api.messages(reading.session_id, "sse")
        async with reading.client.stream(reading.base, call) as stream:
            if isinstance(stream, Answer):
                # The server answered a plain array (no SSE): take it, then keep polling.
                batch = icws_api.interpret_messages(stream)
                if isinstance(batch, errors.IcwsError):
                    raise batch
                if batch and await reading.deliver(batch):
                    return
                await self._poll.read(reading)
                return
            decoder = SseDecoder()
            while True:
                chunk = await self._next_chunk(stream.readany(), reading.interrupt)
                if chunk is None:
                    return
                if not chunk:
                    raise errors.SessionLost(
                        "SSE stream closed" + (" mid-event" if decoder.pending else "")
                    )
                reading.touch()
                batch = [_decode(data) for data in decoder.feed(chunk)]
                if batch and await reading.deliver(batch):
                    return

    async def _next_chunk(self, read: Awaitable[bytes], interrupt: asyncio.Event) -> bytes | None:
        """The next bytes of the stream; None when interrupted; SessionLost when silent."""
        reading = asyncio.ensure_future(read)
        interrupted = asyncio.ensure_future(interrupt.wait())
        done, _ = await asyncio.wait(
            {reading, interrupted}, timeout=self._idle, return_when=asyncio.FIRST_COMPLETED
        )
        interrupted.cancel()
        if reading in done:
            return reading.result()
        reading.cancel()
        if interrupted in done:
            return None
        raise errors.SessionLost(f"SSE stream silent for {self._idle:g}s")


def readers(settings: IcwsSettings) -> ReaderFactory:
    """The real readers: SSE or short polls, as the session chose from the server's features."""
    sse, poll = SseReader(settings), PollReader(settings)

    def reader(transport: Transport) -> MessageReader:
        return sse if transport == "sse" else poll

    return reader


def _decode(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return {"__type": "invalid", "reason": "SSE data is not JSON"}
