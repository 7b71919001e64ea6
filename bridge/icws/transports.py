"""Reading one ICWS session's message queue, by SSE stream or by short polls, behind one interface.

A :class:`MessageReader` reads the queue of the session described by a :class:`Reading` and
hands each batch of raw messages to ``reading.deliver`` until that says to stop, the session's
``interrupt`` is set, or the session is lost (it raises an :class:`~bridge.errors.IcwsError`).
The session picks the reader through a factory, so a test can hand in a recording one.

An SSE stream's end is not the session's: a stream that closes, breaks, falls silent, or never
works (no byte within the idle limit, an HTML page, a refusal) raises :class:`StreamEnded`
with a fixed-vocabulary reason, and the session decides (``bridge/icws/streams.py``). Only a 401
on the stream request itself raises SessionLost here.

Reading is interrupted only where nothing has been taken from ICWS yet (before a poll is sent,
while an SSE chunk is awaited), so a stop or a re-login never loses a message already drained.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bridge import errors
from bridge.core import icws_api, rawjson
from bridge.core.icws_api import Answer, Call, Transport
from bridge.core.session_rules import StreamEndReason
from bridge.core.sse import Data, SseDecoder
from bridge.icws.client import ByteStream, Client
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
    opened: asyncio.Event  # the reader reached ICWS once: subscriptions may be created


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


async def first_of(*events: asyncio.Event, seconds: float | None = None) -> None:
    """Wait until any of ``events`` is set (or ``seconds`` passed)."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def reached_icws(opened: asyncio.Event, reader: asyncio.Task[Any], seconds: float) -> bool:
    """Wait until the reader reached ICWS (``opened``), at most ``seconds``.

    A hanging stream must not hold the subscriptions back. False when the reader already ended.
    """
    ended = asyncio.Event()
    reader.add_done_callback(lambda _: ended.set())
    await first_of(opened, ended, seconds=seconds)
    return not reader.done()


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
            reading.opened.set()
            reading.touch()
            if batch and await reading.deliver(batch):
                return
            if await interrupted_within(reading.interrupt, self._interval):
                return


class StreamEnded(Exception):
    """The SSE stream ended, but the session may live on: the session checks, then reopens."""

    def __init__(self, reason: StreamEndReason, detail: str, retry_ms: int | None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_ms = retry_ms  # the stream's last ``retry:`` field, if it sent one


class SseReader:
    """One SSE stream on the same URL; its end (or failure) raises StreamEnded."""

    def __init__(self, settings: IcwsSettings) -> None:
        self._idle = settings.sse_idle_timeout_seconds

    async def read(self, reading: Reading) -> None:
        call = icws_api.messages(reading.session_id, "sse")
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with _cut_short(reading.interrupt, self._idle):
                    stream = await stack.enter_async_context(
                        reading.client.stream(reading.base, call)
                    )
            except TimeoutError:
                if reading.interrupt.is_set():
                    return
                raise StreamEnded("no_bytes", f"no answer within {self._idle:g}s", None) from None
            except errors.ServerUnavailable as exc:
                raise StreamEnded("unreachable", str(exc), None) from None
            reading.opened.set()
            if isinstance(stream, Answer):
                await _not_a_stream(stream, reading)
                return
            await self._events(stream, reading)

    async def _events(self, stream: ByteStream, reading: Reading) -> None:
        """Deliver the stream's events until told to stop; raise StreamEnded when it ends."""
        decoder = SseDecoder()
        started = False
        while True:
            try:
                chunk = await self._next_chunk(stream.readany(), reading.interrupt)
            except errors.ServerError as exc:
                raise _ended(started, "cut", str(exc), decoder) from None
            except TimeoutError:
                detail = f"SSE stream silent for {self._idle:g}s"
                raise _ended(started, "silent", detail, decoder) from None
            if chunk is None:
                return
            if not chunk:
                detail = "SSE stream closed" + (" mid-event" if decoder.pending else "")
                raise _ended(started, "closed", detail, decoder)
            started = True
            reading.touch()
            batch = [_decode(data) for data in decoder.feed(chunk)]
            if batch and await reading.deliver(batch):
                return

    async def _next_chunk(self, read: Awaitable[bytes], interrupt: asyncio.Event) -> bytes | None:
        """The next bytes of the stream; None when interrupted; TimeoutError when silent."""
        reading = asyncio.ensure_future(read)
        interrupted = asyncio.ensure_future(interrupt.wait())
        done, _ = await asyncio.wait(
            {reading, interrupted}, timeout=self._idle, return_when=asyncio.FIRST_COMPLETED
        )
        interrupted.cancel()
        if reading in done:
            return reading.result()
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        if interrupted in done:
            return None
        raise TimeoutError


def _ended(started: bool, reason: StreamEndReason, detail: str, decoder: SseDecoder) -> StreamEnded:
    """How a stream ended; one that never sent a byte failed (a buffering or closing proxy)."""
    if not started:
        return StreamEnded("no_bytes", f"{detail}, before sending a byte", None)
    return StreamEnded(reason, detail, decoder.retry_ms)


async def _not_a_stream(answer: Answer, reading: Reading) -> None:
    """The SSE request got a plain answer: a 401 is the session; anything else a failed stream.

    A JSON array (a server that does not stream) is delivered first: it was drained.
    """
    if answer.status == 401:
        raise errors.SessionLost("messages.sse: HTTP 401", status=401)
    kind = _content_type(answer)
    if answer.status != 200:
        raise StreamEnded("refused", f"SSE request answered HTTP {answer.status} {kind}", None)
    if "json" in kind.casefold():
        batch = icws_api.interpret_messages(answer)
        if isinstance(batch, list) and batch and await reading.deliver(batch):
            return
    raise StreamEnded("not_event_stream", f"SSE request answered {kind or 'no content type'}", None)


def _content_type(answer: Answer) -> str:
    for name, value in answer.headers.items():
        if name.casefold() == "content-type":
            return value.partition(";")[0].strip()[:60]
    return ""


@contextlib.asynccontextmanager
async def _cut_short(interrupt: asyncio.Event, seconds: float) -> AsyncIterator[None]:
    """A timeout of ``seconds`` that also expires at once when ``interrupt`` is set."""
    async with asyncio.timeout(seconds) as timeout:

        async def expire() -> None:
            await interrupt.wait()
            timeout.reschedule(asyncio.get_running_loop().time())

        watcher = asyncio.ensure_future(expire())
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


def readers(settings: IcwsSettings) -> ReaderFactory:
    """The real readers: SSE or short polls, as the session chose from the server's features."""
    sse, poll = SseReader(settings), PollReader(settings)

    def reader(transport: Transport) -> MessageReader:
        return sse if transport == "sse" else poll

    return reader


def _decode(data: Data) -> Any:
    try:
        return rawjson.decode(data)
    except ValueError:
        return {"__type": "invalid", "reason": "SSE data is not JSON"}
