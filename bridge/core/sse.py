"""Incremental server-sent-events decoder: bytes in, complete ``data`` payloads out.

ICWS sends one message JSON per event in ``data:`` lines (docs/icws-protocol.md §2.2). Comment lines
(``:ping``) are keep-alives: the shell counts any bytes as life, so they yield nothing here.
The ``retry:`` field (the server's reconnection delay in milliseconds) is kept as
:attr:`SseDecoder.retry_ms`, so the shell can honour it when it reopens a closed stream.
An event is complete only at its blank line, so a stream cut mid-event loses nothing that was
acknowledged: the partial event is simply never returned. A data line of 64 KB or more (a big
snapshot: tens of MB) is decoded as its bytes arrive and comes out as the pieces so decoded
(:class:`~bridge.core.rawjson.Pieces`, which ``rawjson.decode`` reads without joining them), so
its text is held once and its bytes not at all.
"""

from __future__ import annotations

import codecs
import re

from bridge.core.rawjson import Pieces

Data = str | Pieces  # an event's data: a long line comes in the pieces it was decoded in


class SseDecoder:
    """Feed raw chunks; get back the data of every event completed by them."""

    def __init__(self) -> None:
        # The unfinished rest of the stream. A bytearray grows in place, and lines are found by
        # moving an offset rather than slicing the buffer, so an event of megabytes (a large
        # snapshot) arriving in many chunks costs linear, not quadratic, time.
        self._buffer = bytearray()
        self._searched = 0  # bytes of the buffer known to hold no line end
        self._data: list[str | Pieces] = []
        self._started = False
        self._after_cr = False  # the last line ended with a CR at the end of a chunk
        self._long: _LongLine | None = None  # a long data line being read (see _LongLine)
        self.retry_ms: int | None = None  # the last valid ``retry:`` field seen

    def feed(self, chunk: bytes) -> list[Data]:
        """Decode what ``chunk`` completes; keep the unfinished rest for the next call."""
        if self._long is not None:
            return self._long_feed(self._long, chunk)
        buffer = self._buffer
        buffer += chunk
        events: list[Data] = []
        if not self._started:
            # A stream may begin with a UTF-8 byte order mark, which is not part of a field name.
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                return events
            self._started = True
            if buffer.startswith(_BOM):
                del buffer[: len(_BOM)]
        if not self._after_cr and _CR not in chunk:
            # The usual LF-only stream: split in C. What was buffered before holds no line end
            # (see below), so the last LF of the chunk is the last of the buffer, and only the
            # chunk is searched: a huge event in many chunks still costs linear time.
            last = chunk.rfind(b"\n")
            if last >= 0:
                end = len(buffer) - len(chunk) + last
                if end < _LONG:
                    for line in buffer[:end].split(b"\n"):
                        self._line(line, events)
                else:
                    self._long_lines(end, events)
                del buffer[: end + 1]
            if len(buffer) >= _LONG and buffer.startswith(b"data:"):
                self._long = _LongLine(buffer)  # takes the bytes: the buffer is empty now
            self._searched = len(buffer)
            return events
        position = 0
        while True:
            if self._after_cr and position < len(buffer):
                # That CR ended its line at once (a CR-only stream must not wait for more
                # bytes); an LF right after it is the rest of a CRLF, not a blank line.
                self._after_cr = False
                if buffer[position] == _LF:
                    position += 1
            match = _LINE_END.search(buffer, max(position, self._searched))
            if match is None:
                break
            line = buffer[position : match.start()]
            position = match.end()
            self._searched = 0
            self._after_cr = match.group() == b"\r" and position == len(buffer)
            self._line(line, events)
        del buffer[:position]
        self._searched = len(buffer)
        return events

    def _long_feed(self, long: _LongLine, chunk: bytes) -> list[Data]:
        """Go on with a long data line; at its end, take it and read the rest as usual."""
        match = _LINE_END.search(chunk)
        if match is None:
            long.add(chunk)
            return []
        at = match.start()
        long.add(chunk[:at])
        self._data.append(long.text())
        self._long = None
        rest = chunk[match.end() :]
        if match.group() == b"\r" and not rest:
            self._after_cr = True  # an LF in the next chunk would complete this CRLF
        return self.feed(rest) if rest else []

    def _long_lines(self, end: int, events: list[Data]) -> None:
        """The lines of ``buffer[:end]``, a long one decoded where it lies.

        A snapshot's data line can be tens of MB: copying it out of the buffer (and splitting
        it) before decoding would hold it two or three times over beside its text.
        """
        buffer, start = self._buffer, 0
        while start <= end:
            stop = buffer.find(b"\n", start, end)
            stop = end if stop < 0 else stop
            if stop - start >= _LONG and buffer.startswith(b"data:", start):
                start += 6 if buffer.startswith(b" ", start + 5) else 5
                with memoryview(buffer)[start:stop] as value:
                    self._data.append(str(value, "utf-8", "replace"))
            else:
                self._line(buffer[start:stop], events)
            start = stop + 1

    def _line(self, line: bytes | bytearray, events: list[Data]) -> None:
        """Take one complete line: a blank line ends the event, a ``data`` line adds to it."""
        if not line:
            if len(self._data) == 1:
                events.append(self._data[0])  # a long line stays in its pieces
                self._data = []
            elif self._data:
                events.append("\n".join(joined(part) for part in self._data))
                self._data = []
        elif line.startswith(b"data:"):
            # The name is ASCII, so decoding the rest alone gives what decoding the whole line
            # and cutting the name off would.
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._data.append(value.decode("utf-8", errors="replace"))
        elif line == b"data":  # a field name alone has an empty value
            self._data.append("")
        elif line.startswith(b"retry"):
            name, _, text = line.decode("utf-8", errors="replace").partition(":")
            text = text[1:] if text.startswith(" ") else text
            if name == "retry" and (delay := parse_retry(text)) is not None:
                self.retry_ms = delay
        # Other fields (id, event) and comments carry nothing ICWS needs.

    @property
    def pending(self) -> bool:
        """True while an event has started but not ended (a cut here loses only that event)."""
        return bool(self._buffer or self._data) or self._long is not None


class _LongLine:
    """A data line of a snapshot's size, decoded as its bytes arrive, so they are not kept.

    Its text is kept in the pieces decoded from each chunk (:class:`Pieces`), never joined
    here: joined, the line would be held twice for a moment (the pieces and the whole).
    """

    def __init__(self, buffer: bytearray) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pieces = Pieces()
        start = 6 if buffer.startswith(b" ", 5) else 5
        with memoryview(buffer)[start:] as value:
            self.add(value)
        buffer.clear()

    def add(self, part: bytes | memoryview) -> None:
        if piece := self._utf8.decode(part):
            self._pieces.append(piece)

    def text(self) -> Pieces:
        """The line's value; an unfinished character at its end is replaced, as decode does."""
        if rest := self._utf8.decode(b"", final=True):
            self._pieces.append(rest)
        return self._pieces


def joined(data: Data) -> str:
    """An event's data as one string."""
    return data if isinstance(data, str) else "".join(data)


def parse_retry(value: str) -> int | None:
    """The delay a ``retry:`` field gives, in milliseconds; None when it is not ASCII digits.

    The SSE standard ignores a ``retry`` field unless its value consists of ASCII digits only
    (no sign, no space, no decimal point), so a malformed one leaves the last good delay.
    """
    if not value or not value.isascii() or not value.isdigit():
        return None
    return int(value)


_LONG = 64 * 1024  # lines at least this long are decoded in place (see _long_lines)
_LINE_END = re.compile(rb"\r\n|\r|\n")  # SSE allows CRLF, LF or a lone CR as the line end
_BOM = b"\xef\xbb\xbf"
_LF = ord("\n")
_CR = b"\r"
