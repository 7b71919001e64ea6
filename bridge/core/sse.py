"""Incremental server-sent-events decoder: bytes in, complete ``data`` payloads out.

ICWS sends one message JSON per event in ``data:`` lines (ICWS-PROTOCOL.md §2.2). Comment lines
(``:ping``) are keep-alives: the shell counts any bytes as life, so they yield nothing here.
An event is complete only at its blank line, so a stream cut mid-event loses nothing that was
acknowledged: the partial event is simply never returned.
"""

from __future__ import annotations

import re


class SseDecoder:
    """Feed raw chunks; get back the data of every event completed by them."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._started = False
        self._after_cr = False  # the last line ended with a CR at the end of a chunk

    def feed(self, chunk: bytes) -> list[str]:
        """Decode what ``chunk`` completes; keep the unfinished rest for the next call."""
        self._buffer += chunk
        events: list[str] = []
        if not self._started:
            # A stream may begin with a UTF-8 byte order mark, which is not part of a field name.
            if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
                return events
            self._started = True
            self._buffer = self._buffer.removeprefix(_BOM)
        while True:
            if self._after_cr and self._buffer:
                # That CR ended its line at once (a CR-only stream must not wait for more
                # bytes); an LF right after it is the rest of a CRLF, not a blank line.
                self._after_cr = False
                self._buffer = self._buffer.removeprefix(b"\n")
            match = _LINE_END.search(self._buffer)
            if match is None:
                return events
            line, self._buffer = self._buffer[: match.start()], self._buffer[match.end() :]
            self._after_cr = match.group() == b"\r" and not self._buffer
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
                continue
            name, _, value = line.decode("utf-8", errors="replace").partition(":")
            if name == "data":
                self._data.append(value[1:] if value.startswith(" ") else value)
            # Other fields (id, event, retry) and comments carry nothing ICWS needs.

    @property
    def pending(self) -> bool:
        """True while an event has started but not ended (a cut here loses only that event)."""
        return bool(self._buffer or self._data)


_LINE_END = re.compile(rb"\r\n|\r|\n")  # SSE allows CRLF, LF or a lone CR as the line end
_BOM = b"\xef\xbb\xbf"
