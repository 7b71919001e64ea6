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
            line, sep, rest = _split_line(self._buffer)
            if not sep:
                return events
            self._buffer = rest
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


_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


def _split_line(buffer: bytes) -> tuple[bytes, bytes, bytes]:
    # SSE allows CRLF, LF or a lone CR as the line end.
    match = _LINE_END.search(buffer)
    if match is None or (match.group() == b"\r" and match.end() == len(buffer)):
        return buffer, b"", b""  # no line end yet, or a CR that may be the start of CRLF
    return buffer[: match.start()], match.group(), buffer[match.end() :]
