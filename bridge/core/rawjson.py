"""One ICWS message's JSON, with the entry lists of a big message left raw until they are read.

A snapshot can list 100,000 entities in one message (tens of MB of text). Decoded whole, its
tree is three to four times the text, and the parser's entries as much again, all alive at once.
:func:`decode` gives what ``json.loads`` gives, except that in a text of ``raw_above`` characters
or more, a top-level list named in ``raw_lists`` becomes a :class:`RawList`: where each element
starts in the text, each decoded only when the list is iterated (the parser reads one entry at
a time and lets it go). The whole text is still checked first, element by element, so a
malformed message is refused whole (``ValueError``, as ``json.loads`` raises) before anything
is read from it.

Every value is decoded by the standard library's own scanner (the one ``json.loads`` uses), so
numbers (integers beyond 64 bits, float text), strings and duplicate keys come out exactly as
they do from ``json.loads``; only the top level and the raw lists' brackets and commas are
walked here, by the grammar of ``json.decoder``.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterator
from json.decoder import JSONDecodeError
from typing import Any

RAW_ABOVE = 256 * 1024
"""Texts shorter than this (characters) are decoded whole: a raw list only pays when big."""

RAW_LISTS = frozenset({"alertingInteractionDetails", "interactionHistory"})
"""The entry lists a snapshot can make huge (one entry per live interaction or recent call)."""

# The C scanner and string reader json.loads uses (typeshed declares neither), and its
# whitespace (json.decoder.WHITESPACE).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_whitespace: Callable[[str, int], re.Match[str]] = re.compile(r"[ \t\n\r]*").match  # type: ignore[assignment]


class RawList:
    """A list in a text, its elements decoded one at a time as it is iterated (not kept)."""

    __slots__ = ("_starts", "_text")

    def __init__(self, text: str, starts: array[int]) -> None:
        self._text = text
        self._starts = starts

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[Any]:
        text = self._text
        for start in self._starts:
            yield _scan(text, start)[0]

    def __repr__(self) -> str:
        return f"RawList({len(self)} elements)"


def decode(text: str, raw_lists: frozenset[str] = RAW_LISTS, raw_above: int = RAW_ABOVE) -> Any:
    """``json.loads(text)``, but with the big message's ``raw_lists`` left as :class:`RawList`."""
    if len(text) < raw_above:
        return json.loads(text)
    start = _skip(text, 0)
    if not text.startswith("{", start):
        return json.loads(text)  # not a message object: nothing to leave raw
    result, end = _object(text, start + 1, raw_lists)
    end = _skip(text, end)
    if end != len(text):
        raise JSONDecodeError("Extra data", text, end)
    return result


def materialized(value: Any) -> Any:
    """``value`` with its raw lists decoded into lists: what ``json.loads`` would have given."""
    if isinstance(value, dict):
        return {k: list(v) if isinstance(v, RawList) else v for k, v in value.items()}
    return value


def _skip(text: str, index: int) -> int:
    """The index of the first character at or after ``index`` that is not JSON whitespace."""
    return _whitespace(text, index).end()  # the pattern ends in '*': it always matches


def _value(text: str, index: int) -> tuple[Any, int]:
    try:
        value, end = _scan(text, index)
    except StopIteration as exc:
        raise JSONDecodeError("Expecting value", text, exc.value) from None
    return value, end


def _object(text: str, index: int, raw_lists: frozenset[str]) -> tuple[dict[str, Any], int]:
    """The top-level object from after its ``{``, as ``json.decoder.JSONObject`` reads one."""
    result: dict[str, Any] = {}
    end = _skip(text, index)
    if text.startswith("}", end):
        return result, end + 1
    while True:
        if not text.startswith('"', end):
            raise JSONDecodeError("Expecting property name enclosed in double quotes", text, end)
        key, end = scanstring(text, end + 1)
        end = _skip(text, end)
        if not text.startswith(":", end):
            raise JSONDecodeError("Expecting ':' delimiter", text, end)
        end = _skip(text, end + 1)
        if key in raw_lists and text.startswith("[", end):
            result[key], end = _raw_list(text, end + 1)
        else:
            result[key], end = _value(text, end)
        end = _skip(text, end)
        if text.startswith("}", end):
            return result, end + 1
        if not text.startswith(",", end):
            raise JSONDecodeError("Expecting ',' delimiter", text, end)
        end = _skip(text, end + 1)


def _raw_list(text: str, index: int) -> tuple[RawList, int]:
    """A list from after its ``[``: each element checked (decoded, then dropped), its start kept."""
    starts = array("q")
    end = _skip(text, index)
    if text.startswith("]", end):
        return RawList(text, starts), end + 1
    while True:
        starts.append(end)
        _, end = _value(text, end)
        end = _skip(text, end)
        if text.startswith("]", end):
            return RawList(text, starts), end + 1
        if not text.startswith(",", end):
            raise JSONDecodeError("Expecting ',' delimiter", text, end)
        end = _skip(text, end + 1)
