"""One ICWS message's JSON, with the entry lists of a big message left raw until they are read.

A snapshot can list 100,000 entities in one message (tens of MB of text). Decoded whole, its
tree is three to four times the text, and the parser's entries as much again, all alive at once.
:func:`decode` gives what ``json.loads`` gives, except that in a text of ``raw_above`` characters
or more, a top-level list named in ``raw_lists`` becomes a :class:`RawList`: where each element
lies in the text, each decoded only when the list is iterated (the parser reads one entry at a
time and lets it go). The whole text is still checked first, element by element, so a malformed
message is refused whole (``JSONDecodeError``, as from ``json.loads``) before anything is read
from it.

The text may come whole or as :class:`Pieces` (the SSE decoder hands a long line over as the
pieces it decoded as its bytes arrived): it is then read through windows a piece or so long and
never joined, so it is held once. Every value is decoded by the standard library's own scanner
(the one ``json.loads`` uses), so numbers (integers beyond 64 bits, float text), strings and
duplicate keys come out exactly as from ``json.loads``; only the top level and the raw lists'
brackets and commas are walked here, by the grammar of ``json.decoder``. A value is taken from
a window only if it ends before the window does (so a number cannot go on in the next piece);
otherwise the window grows, doubling, until the value fits or the text is done.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterator
from json.decoder import JSONDecodeError
from typing import Any

from bridge.core.encoding import read_json

RAW_ABOVE = 256 * 1024
"""Texts shorter than this (characters) are decoded whole: a raw list only pays when big."""

RAW_LISTS = frozenset({"alertingInteractionDetails", "interactionHistory"})
"""The entry lists a snapshot can make huge (one entry per live interaction or recent call)."""

# The C scanner and string reader json.loads uses (typeshed declares neither), and its
# whitespace (json.decoder.WHITESPACE).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_string: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_SPACE = " \t\n\r"
# What a number's text may go on with: a value followed by only these up to the window's end
# may be a number the window cut (``-9.`` of ``-9.8``); anything else after it is for the caller.
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")
_whitespace: Callable[[str, int], re.Match[str]] = re.compile(r"[ \t\n\r]*").match  # type: ignore[assignment]


class Pieces(list[str]):
    """One text as consecutive pieces, in order; :func:`decode` consumes them as it reads."""


class RawList:
    """A list in a text, its elements decoded one at a time as it is iterated (not kept)."""

    __slots__ = ("_starts", "_windows", "_within")

    def __init__(self) -> None:
        self._windows: list[str] = []  # the stretches of text that hold the elements
        self._within = array("l")  # each element's window
        self._starts = array("q")  # and where in it the element starts

    def add(self, window: str, start: int) -> None:
        """One more element: it starts at ``start`` in ``window``."""
        if not self._windows or self._windows[-1] is not window:
            self._windows.append(window)
        self._within.append(len(self._windows) - 1)
        self._starts.append(start)

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[Any]:
        windows = self._windows
        for within, start in zip(self._within, self._starts, strict=True):
            yield _scan(windows[within], start)[0]

    def __repr__(self) -> str:
        return f"RawList({len(self)} elements)"


def decode(
    text: str | Pieces, raw_lists: frozenset[str] = RAW_LISTS, raw_above: int = RAW_ABOVE
) -> Any:
    """``json.loads(text)``, but with the big message's ``raw_lists`` left as :class:`RawList`."""
    if isinstance(text, Pieces) and sum(map(len, text)) < max(raw_above, 1):
        text = "".join(text)
    if isinstance(text, str):
        if len(text) < raw_above:
            return read_json(text)  # json.loads's values, through orjson where it reads them
        text = Pieces([text])
    cursor = _Cursor(text)
    if cursor.peek() != "{":
        return json.loads(cursor.rest())  # not a message object: nothing to leave raw
    cursor.pos += 1
    result = _object(cursor, raw_lists)
    if cursor.peek():
        raise JSONDecodeError("Extra data", cursor.text, cursor.pos)
    return result


def materialized(value: Any) -> Any:
    """``value`` with its raw lists decoded into lists: what ``json.loads`` would have given."""
    if isinstance(value, dict):
        return {k: list(v) if isinstance(v, RawList) else v for k, v in value.items()}
    return value


class _Cursor:
    """A position in a text read through a window: what is left of the last piece, and more."""

    def __init__(self, pieces: Pieces) -> None:
        pieces.reverse()  # popped from the end: each piece is let go as it is taken
        self._pieces = pieces
        self.text = ""
        self.pos = 0
        self.start = 0  # where the last value taken starts in the window
        self.more()

    def more(self) -> bool:
        """Add at least as much text as is left to the window; False when there is no more."""
        if not self._pieces:
            return False
        parts, wanted = [self.text[self.pos :]], len(self.text) - self.pos
        while self._pieces and (wanted > 0 or len(parts) == 1):
            parts.append(self._pieces.pop())
            wanted -= len(parts[-1])
        if not parts[0]:
            del parts[0]  # so that a text given whole is not copied
        self.text, self.pos = parts[0] if len(parts) == 1 else "".join(parts), 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end), the cursor moved to it."""
        char = self.text[self.pos : self.pos + 1]
        if char and char not in _SPACE:  # compact JSON (ICWS's) has no whitespace to skip
            return char
        while True:
            self.pos = _whitespace(self.text, self.pos).end()
            if self.pos < len(self.text) or not self.more():
                return self.text[self.pos : self.pos + 1]

    def take(self, read: Callable[[str, int], tuple[Any, int]]) -> Any:
        """What ``read`` reads at the cursor, in a window that holds it and a character more.

        Any failure short of the text's end may be a value cut by the window: it grows first.
        So may a value read whole but followed by what cannot follow a value: the window ends
        in ``-9.`` or ``1e``, and ``-9`` or ``1`` alone read well.
        """
        while True:
            self.start = self.pos
            try:
                value, end = read(self.text, self.pos)
            except (JSONDecodeError, StopIteration) as exc:
                if not self.more():
                    if isinstance(exc, StopIteration):
                        raise JSONDecodeError("Expecting value", self.text, exc.value) from None
                    raise
                continue
            cut = _NUMBER_TAIL.match(self.text, end).end() == len(self.text)  # type: ignore[union-attr]
            if not cut or not self.more():
                self.pos = end
                return value

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise JSONDecodeError(f"Expecting {what}", self.text, self.pos)
        self.pos += 1

    def rest(self) -> str:
        return self.text[self.pos :] + "".join(reversed(self._pieces))


def _key(text: str, index: int) -> tuple[str, int]:
    if not text.startswith('"', index):
        raise JSONDecodeError("Expecting property name enclosed in double quotes", text, index)
    return _string(text, index + 1)


def _object(cursor: _Cursor, raw_lists: frozenset[str]) -> dict[str, Any]:
    """The top-level object from after its ``{``, as ``json.decoder.JSONObject`` reads one."""
    result: dict[str, Any] = {}
    if cursor.peek() == "}":
        cursor.pos += 1
        return result
    while True:
        cursor.peek()
        key = cursor.take(_key)
        cursor.expect(":", "':' delimiter")
        if key in raw_lists and cursor.peek() == "[":
            cursor.pos += 1
            result[key] = _raw_list(cursor)
        else:
            cursor.peek()
            result[key] = cursor.take(_scan)
        if cursor.peek() == "}":
            cursor.pos += 1
            return result
        cursor.expect(",", "',' delimiter")


def _raw_list(cursor: _Cursor) -> RawList:
    """A list from after its ``[``: each element checked (decoded, dropped), where it lies kept."""
    raws = RawList()
    if cursor.peek() == "]":
        cursor.pos += 1
        return raws
    while True:
        cursor.peek()
        cursor.take(_scan)
        raws.add(cursor.text, cursor.start)
        if cursor.peek() == "]":
            cursor.pos += 1
            return raws
        cursor.expect(",", "',' delimiter")
