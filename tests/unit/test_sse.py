"""The SSE decoder turns any chunking of a byte stream into the data of each complete event."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.core.rawjson import Pieces
from bridge.core.sse import SseDecoder, joined, parse_retry

ALERT = (
    '{"__type":"urn:inin.com:interactions:interactionAlertingMessage","isDelta":true,'
    '"alertingInteractionDetails":[{"interactionId":"100123456780170101","name":"José Ñúñez"}]}'
)
STATUS = '{"__type":"urn:inin.com:status:statusMessagesMessage","isDelta":false}'
LINE_ENDS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def stream(end: bytes) -> bytes:
    """Two ICWS messages as the suggested simulator framing, with a keep-alive between them."""
    lines = [f"data: {STATUS}", "", ":ping", "", f"data: {ALERT}", ""]
    return end.join(line.encode() for line in lines) + end


def spec_events(raw: bytes) -> list[str]:
    """The events of a whole stream, read line by line as the SSE specification describes."""
    events: list[str] = []
    data: list[str] = []
    for line in re.split(rb"\r\n|\r|\n", raw)[:-1]:
        name, _, value = line.decode().partition(":")
        if not line:
            if data:
                events.append("\n".join(data))
            data = []
        elif name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    return events


def feed_all(chunks: list[bytes]) -> tuple[list[str], SseDecoder]:
    """The events of the chunks as strings (a long line's pieces joined), and the decoder."""
    decoder = SseDecoder()
    events: list[str] = []
    for chunk in chunks:
        events += [joined(data) for data in decoder.feed(chunk)]
    return events, decoder


class TestFraming:
    """Events end at a blank line, whatever the line ends, and carry their ``data`` lines."""

    @pytest.mark.parametrize("end", LINE_ENDS.values(), ids=LINE_ENDS.keys())
    def test_each_line_end_frames_events(self, end: bytes) -> None:
        """LF, CRLF and a lone CR all frame the same two events."""
        events, decoder = feed_all([stream(end)])
        assert events == [STATUS, ALERT]
        assert [json.loads(e)["__type"] for e in events] == [
            "urn:inin.com:status:statusMessagesMessage",
            "urn:inin.com:interactions:interactionAlertingMessage",
        ]
        assert decoder.pending is False

    def test_mixed_line_ends_in_one_stream(self) -> None:
        """Line ends may differ from line to line."""
        events, _ = feed_all([b"data: a\r\ndata: b\rdata: c\n\r\n"])
        assert events == ["a\nb\nc"]

    def test_multi_line_data_is_joined_with_newlines(self) -> None:
        """Several ``data`` lines make one event, joined by LF."""
        events, _ = feed_all([b'data: {"a":\ndata: 1}\n\n'])
        assert events == ['{"a":\n1}']
        assert json.loads(events[0]) == {"a": 1}

    @pytest.mark.parametrize(
        ("line", "data"),
        [
            (b"data: x", "x"),
            (b"data:x", "x"),
            (b"data:  x", " x"),
            (b"data: x: y", "x: y"),
            (b"data", ""),
            (b"data:", ""),
        ],
    )
    def test_one_leading_space_is_dropped(self, line: bytes, data: str) -> None:
        """The value is what follows the first colon, less one space if there is one."""
        events, _ = feed_all([line + b"\n\n"])
        assert events == [data]

    def test_other_fields_are_ignored(self) -> None:
        """``id``, ``event``, ``retry`` and unknown fields carry nothing the bridge needs."""
        events, _ = feed_all([b"id: 7\nevent: message\nretry: 1000\nfoo: bar\ndata: x\n\n"])
        assert events == ["x"]

    def test_several_events_in_one_chunk_come_out_in_order(self) -> None:
        """One chunk, three events, in the order sent."""
        events, _ = feed_all([b"data: 1\n\ndata: 2\n\ndata: 3\n\n"])
        assert events == ["1", "2", "3"]

    def test_a_blank_line_without_data_is_no_event(self) -> None:
        """Extra blank lines and field-only blocks dispatch nothing."""
        events, decoder = feed_all([b"\n\n\r\n", b"id: 1\nevent: x\n\n"])
        assert events == []
        assert decoder.pending is False

    def test_invalid_utf8_does_not_stop_the_stream(self) -> None:
        """Undecodable bytes become replacement characters; later events still arrive."""
        events, _ = feed_all([b"data: \xff\xfe\n\ndata: ok\n\n"])
        assert events == ["\ufffd\ufffd", "ok"]

    @pytest.mark.parametrize("split", [0, 1, 2, 3])
    def test_a_byte_order_mark_at_the_start_is_skipped(self, split: int) -> None:
        """A UTF-8 BOM before the first field is not part of its name, even split up."""
        raw = b"\xef\xbb\xbfdata: x\n\n"
        events, _ = feed_all([raw[:split], raw[split:]])
        assert events == ["x"]

    def test_a_byte_order_mark_later_is_data(self) -> None:
        """Only the stream's first bytes may be a BOM."""
        events, _ = feed_all([b"data: a\n\n", b"\xef\xbb\xbfdata: b\n\n"])
        assert events == ["a"]


class TestKeepAlives:
    """Comment lines keep the stream alive and yield nothing."""

    @pytest.mark.parametrize("comment", [b":ping\n", b":\n", b": keep-alive\r\n", b":ping\n\n"])
    def test_a_comment_yields_nothing_and_leaves_nothing_pending(self, comment: bytes) -> None:
        """After a whole comment line the decoder is idle."""
        events, decoder = feed_all([comment])
        assert (events, decoder.pending) == ([], False)

    def test_a_comment_inside_an_event_does_not_end_it(self) -> None:
        """A comment between data lines is skipped; the event still ends at its blank line."""
        events, _ = feed_all([b"data: a\n:ping\ndata: b\n\n"])
        assert events == ["a\nb"]


class TestChunking:
    """However the bytes are cut into chunks, the same events come out."""

    @pytest.mark.parametrize("end", LINE_ENDS.values(), ids=LINE_ENDS.keys())
    def test_a_split_at_every_byte_offset(self, end: bytes) -> None:
        """Two chunks, split anywhere (inside a multi-byte character too), decode alike."""
        raw = stream(end)
        for offset in range(len(raw) + 1):
            events, decoder = feed_all([raw[:offset], raw[offset:]])
            assert events == [STATUS, ALERT], offset
            assert decoder.pending is False, offset

    @pytest.mark.parametrize("end", LINE_ENDS.values(), ids=LINE_ENDS.keys())
    def test_one_byte_at_a_time(self, end: bytes) -> None:
        """Fed byte by byte, events come out as soon as their blank line is complete."""
        raw = stream(end)
        decoder = SseDecoder()
        seen: list[tuple[int, str]] = []
        for index in range(len(raw)):
            seen += [(index, event) for event in decoder.feed(raw[index : index + 1])]
        assert [event for _, event in seen] == [STATUS, ALERT]

    def test_a_cr_split_from_its_lf_is_one_line_end(self) -> None:
        """CR then LF in the next chunk is one line end, not a line and a blank line."""
        decoder = SseDecoder()
        assert decoder.feed(b"data: a\r") == []
        assert decoder.feed(b"\ndata: b\r\n\r\n") == ["a\nb"]

    def test_a_cr_split_from_its_lf_before_an_lf_only_chunk(self) -> None:
        """The LF completing a CRLF is not a blank line, even in a chunk holding no CR."""
        decoder = SseDecoder()
        assert decoder.feed(b"data: a\r") == []
        assert decoder.feed(b"\ndata: b\n\n") == ["a\nb"]

    def test_a_cr_only_event_comes_out_without_waiting_for_more_bytes(self) -> None:
        """A lone CR ending a chunk ends its line at once, so the event is not held back."""
        decoder = SseDecoder()
        assert decoder.feed(b"data: a\r\r") == ["a"]
        assert decoder.pending is False
        assert decoder.feed(b"data: b\r") == []
        assert decoder.feed(b"\r") == ["b"]

    @given(
        events=st.lists(
            st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20),
            min_size=1,
            max_size=4,
        ),
        end=st.sampled_from(list(LINE_ENDS.values())),
        cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    )
    def test_any_chunking_of_any_stream(
        self, events: list[str], end: bytes, cuts: list[int]
    ) -> None:
        """Arbitrary data (multi-byte characters included), any line end, any cut points."""
        raw = b"".join(b"data: " + e.encode() + end + b":ping" + end + end for e in events)
        points = sorted({min(c, len(raw)) for c in cuts})
        chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
        decoded, decoder = feed_all(chunks)
        assert decoded == events
        assert decoder.pending is False

    @given(
        lines=st.lists(
            st.tuples(
                st.sampled_from(["data: ", "data:", "data", ":", "id: ", ""]),
                st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=6),
                st.sampled_from(list(LINE_ENDS.values())),
            ),
            max_size=12,
        ),
        cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
    )
    def test_line_ends_mixed_line_by_line_under_any_chunking(
        self, lines: list[tuple[str, str, bytes]], cuts: list[int]
    ) -> None:
        """Chunks with and without CRs alternate freely: the events are the spec's, in order."""
        # A CR as the very last byte may still be half of a CRLF, so the stream ends with LFs.
        raw = b"".join((field + text).encode() + end for field, text, end in lines) + b"\n\n"
        points = sorted({min(c, len(raw)) for c in cuts})
        chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
        decoded, decoder = feed_all(chunks)
        assert decoded == spec_events(raw)
        assert decoder.pending is False


class TestCuts:
    """A stream cut mid-event yields nothing of that event, and says something is pending."""

    @pytest.mark.parametrize(
        "partial",
        [
            b'data: {"__type"',
            b"data: " + STATUS.encode() + b"\n",
            b"data: a\r",
            b"data: a\ndata: b\n",
        ],
        ids=["mid-line", "no-blank-line", "cr-at-end", "two-lines"],
    )
    def test_an_unfinished_event_is_never_returned(self, partial: bytes) -> None:
        """Nothing comes out, and ``pending`` is True."""
        events, decoder = feed_all([b"data: done\n\n", partial])
        assert events == ["done"]
        assert decoder.pending is True

    def test_pending_clears_when_the_event_completes(self) -> None:
        """The rest of the event arrives: it comes out whole and nothing is pending."""
        decoder = SseDecoder()
        assert decoder.feed(b"data: a") == []
        assert decoder.pending is True
        assert decoder.feed(b"\n\n") == ["a"]
        assert decoder.pending is False

    def test_a_new_decoder_has_nothing_pending(self) -> None:
        """Before any byte, nothing is pending."""
        assert SseDecoder().pending is False


class TestRetry:
    """The ``retry:`` field: the server's reconnection delay, kept when it is ASCII digits."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("3000", 3000),
            ("0", 0),
            ("007", 7),
            ("", None),
            ("-5", None),
            ("+5", None),
            ("1.5", None),
            ("5 ", None),
            ("abc", None),
            ("١٢", None),  # Arabic-Indic digits are digits to Python, not to the SSE standard
        ],
    )
    def test_parse_retry(self, value: str, expected: int | None) -> None:
        """Only a value of ASCII digits is a delay in milliseconds (the SSE standard)."""
        assert parse_retry(value) == expected

    def test_the_last_valid_retry_is_kept(self) -> None:
        """A later good ``retry:`` replaces an earlier one; a malformed one changes nothing."""
        events, decoder = feed_all([b"retry: 1500\n\n", b"retry: 250\n\nretry: soon\n\n"])
        assert events == []
        assert decoder.retry_ms == 250

    def test_retry_inside_an_event_does_not_disturb_its_data(self) -> None:
        """A ``retry:`` line between ``data:`` lines sets the delay and the event stays whole."""
        events, decoder = feed_all([f"data: {STATUS}\nretry:100\n\n".encode()])
        assert [json.loads(e) for e in events] == [json.loads(STATUS)]
        assert decoder.retry_ms == 100

    def test_no_retry_field_means_none(self) -> None:
        """A stream that never sent ``retry:`` leaves the delay to the client."""
        _, decoder = feed_all([stream(b"\n")])
        assert decoder.retry_ms is None


class TestLongLines:
    """Lines of a snapshot's size (tens of MB in production) frame and decode like short ones."""

    @given(
        sizes=st.lists(st.sampled_from([0, 5, 65_535, 65_536, 70_000]), min_size=1, max_size=5),
        field=st.sampled_from(["data: ", "data:", ":", "id: "]),
        cuts=st.lists(st.integers(min_value=0, max_value=300_000), max_size=6),
    )
    def test_long_lines_among_short_ones_under_any_chunking(
        self, sizes: list[int], field: str, cuts: list[int]
    ) -> None:
        """Long data, comment and other lines, short events between them: the spec's events."""
        lines = [f"{field}{'é' * (size // 2)}{'x' * (size % 2)}" for size in sizes]
        raw = b"".join(f"{line}\n\ndata: {STATUS}\n\n".encode() for line in lines)
        points = sorted({min(c, len(raw)) for c in cuts})
        chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
        decoded, decoder = feed_all(chunks)
        assert decoded == spec_events(raw)
        assert decoder.pending is False

    @given(
        tail=st.lists(
            st.sampled_from([b"a", "é".encode(), "😀".encode(), b"\xff", b"\xc3", b"\xe2\x82"]),
            max_size=30,
        ),
        cuts=st.lists(st.integers(min_value=65_530, max_value=65_620), max_size=6),
    )
    def test_a_long_line_decodes_as_its_whole_bytes_would(
        self, tail: list[bytes], cuts: list[int]
    ) -> None:
        """Characters, broken sequences and cuts inside them: as decoding the line at once."""
        value = b"a" * 65_536 + b"".join(tail)
        raw = b"data: " + value + b"\n\n"
        points = sorted({min(c, len(raw)) for c in [100, *cuts]})
        chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
        events, _ = feed_all(chunks)
        assert events == [value.decode("utf-8", errors="replace")]

    def test_a_long_line_with_invalid_utf8_is_replaced_like_a_short_one(self) -> None:
        """Invalid bytes in a long data line become U+FFFD, the rest of the line kept."""
        value = b"a" * 70_000 + b"\xff\xfe" + "é".encode() + b"\xc3"
        events, _ = feed_all([b"data: " + value[:100], value[100:] + b"\n\n"])
        assert events == ["a" * 70_000 + "\ufffd\ufffdé\ufffd"]

    def test_a_long_line_in_many_chunks_comes_in_pieces_held_once(self) -> None:
        """Arriving in chunks, a long data line is handed over as the pieces decoded on the way."""
        value = "é" * 50_000 + "x" * 100_000
        raw = f"data: {value}\n\ndata: {STATUS}\n\n".encode()
        decoder = SseDecoder()
        events = [e for n in range(0, len(raw), 4096) for e in decoder.feed(raw[n : n + 4096])]
        assert isinstance(events[0], Pieces)
        assert len(events[0]) > 1
        assert ["".join(events[0]), events[1]] == [value, STATUS]
        assert decoder.pending is False

    @pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
    def test_a_long_line_ends_at_any_line_end_even_split_from_it(self, end: bytes) -> None:
        """CR, LF or CRLF end a long line, even when the CR and the LF come in two chunks."""
        value = "v" * 70_000
        raw = f"data: {value}".encode() + end + end + b"data: 2" + end + end + b":"
        for cut in (len(raw) - 13, len(raw) - 12, len(raw) - 11):
            events, decoder = feed_all([raw[:30_000], raw[30_000:cut], raw[cut:]])
            assert events == [value, "2"]
            assert decoder.pending is True  # the trailing ":" started a line
