"""The big-message decoder: ``json.loads`` exactly, with the entry lists of a big message left raw.

Expected values come from ``json.loads`` itself (the decoder must equal it), compared strictly:
an int is not a float, ``-0.0`` is not ``0.0``, and floats are compared by their text.
"""

from __future__ import annotations

import json
import math
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.rawjson import Pieces, RawList, decode, materialized

from .core_strategies import ALERTING, HISTORY_URN, near_messages

EVERYTHING = 0  # raw_above: leave the lists raw whatever the size


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values, and of the same types (floats by their repr: NaN, -0.0 included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def decoded(text: str, cuts: list[int] | None = None) -> Any:
    """The decoder's reading of ``text``, given whole or (``cuts``) in pieces, raw lists read."""
    if cuts is None:
        return materialized(decode(text, raw_above=EVERYTHING))
    points = sorted({cut % (len(text) + 1) for cut in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    return materialized(decode(Pieces(pieces), raw_above=EVERYTHING))


cut_points = st.none() | st.lists(st.integers(min_value=0), max_size=8)


number_texts = st.from_regex(
    r"-?(0|[1-9][0-9]{0,45})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
)
odd_strings = st.sampled_from(
    ['"\\ud800"', '"\\ud83d\\ude00"', '"\\u00e9\\n\\t\\"\\\\/"', '"é→😀"', '"\\u0000"', '"a\\/b"']
)
odd_values = number_texts | odd_strings | st.sampled_from(["NaN", "Infinity", "-Infinity"])
spacing = st.sampled_from(["", " ", "\n", "\r\n\t "])


def big_text(values: list[str], pad: str, key: str = "alertingInteractionDetails") -> str:
    """An alerting snapshot whose entries hold ``values`` as written, ``pad`` between tokens."""
    entries = [
        f'{{{pad}"v"{pad}:{pad}{v}{pad},"interactionId":"i{n}"}}' for n, v in enumerate(values)
    ]
    items = f"{pad},{pad}".join(entries)
    return (
        f'{pad}{{{pad}"__type"{pad}:{pad}"{ALERTING}"{pad},{pad}"isDelta":false,'
        f'{pad}"{key}"{pad}:{pad}[{pad}{items}{pad}]{pad}}}{pad}'
    )


class TestEqualsJsonLoads:
    """Whatever the text, the decoder gives what json.loads gives."""

    @settings(max_examples=300)
    @given(
        message=near_messages,
        indent=st.sampled_from([None, 0, 2]),
        ascii_=st.booleans(),
        cuts=cut_points,
    )
    def test_icws_shaped_messages(
        self, message: Any, indent: int | None, ascii_: bool, cuts: list[int] | None
    ) -> None:
        """Near-valid messages of every family, compact or indented, escaped or not, in pieces."""
        text = json.dumps(message, indent=indent, ensure_ascii=ascii_)
        assert same(decoded(text, cuts), json.loads(text))

    @settings(max_examples=300)
    @given(values=st.lists(odd_values, max_size=6), pad=spacing, cuts=cut_points)
    def test_numbers_and_strings_as_written(
        self, values: list[str], pad: str, cuts: list[int] | None
    ) -> None:
        """Integers beyond 64 bits, float text of any precision, escapes, surrogates, NaN."""
        text = big_text(values, pad)
        assert same(decoded(text, cuts), json.loads(text))

    @given(huge=st.integers(min_value=2**64, max_value=10**60), pad=spacing)
    def test_huge_integers_stay_integers(self, huge: int, pad: str) -> None:
        """An integer beyond 64 bits is read exactly, as an int."""
        (entry,) = decoded(big_text([str(-huge)], pad))["alertingInteractionDetails"]
        assert entry["v"] == -huge
        assert type(entry["v"]) is int

    def test_nan_and_infinity_as_json_loads_reads_them(self) -> None:
        """NaN and Infinity (which json.loads accepts) come out as json.loads gives them."""
        entries = decoded(big_text(["NaN", "Infinity", "1e400"], ""))["alertingInteractionDetails"]
        assert math.isnan(entries[0]["v"])
        assert entries[1]["v"] == entries[2]["v"] == math.inf

    @pytest.mark.parametrize("key", ["alertingInteractionDetails", "interactionHistory"])
    def test_a_duplicate_key_keeps_the_last_value(self, key: str) -> None:
        """As json.loads: the last of two equal keys wins, raw list or not."""
        text = f'{{"__type":"{HISTORY_URN}","{key}":[1],"isDelta":true,"{key}":[2,3]}}'
        assert decoded(text) == {"__type": HISTORY_URN, key: [2, 3], "isDelta": True}


class TestNumbersCutByAPiece:
    """A piece that ends inside a number, where its start reads as a number too."""

    @pytest.mark.parametrize("number", ["-9.839161221125118e-111", "12.5", "3e7", "4E+2", "-0.25"])
    def test_every_cut_of_the_number_reads_it_whole(self, number: str) -> None:
        """Cut after each of its characters: the value is the number, as json.loads reads it."""
        text = f'{{"__type":"{ALERTING}","isDelta":true,"extra":{number},"n":1}}'
        start = text.index(number)
        for cut in range(start + 1, start + len(number)):
            assert same(decoded(text, [cut]), json.loads(text)), text[:cut]


class TestMalformed:
    """Malformed text is refused whole (JSONDecodeError) exactly when json.loads refuses it."""

    @settings(max_examples=400)
    @given(
        values=st.lists(odd_values, min_size=1, max_size=4),
        pad=spacing,
        cut=st.integers(min_value=0),
        edit=st.sampled_from(["truncate", "delete", "insert"]),
        char=st.sampled_from(list('{}[],:"\\ 0e-.x')),
        cuts=cut_points,
    )
    def test_any_edit_is_refused_when_json_loads_refuses_it(
        self, values: list[str], pad: str, cut: int, edit: str, char: str, cuts: list[int] | None
    ) -> None:
        """Cut short, a character lost or one inserted anywhere: the same verdict as json.loads."""
        text = big_text(values, pad)
        at = cut % (len(text) + 1)
        broken = {
            "truncate": text[:at],
            "delete": text[:at] + text[at + 1 :],
            "insert": text[:at] + char + text[at:],
        }[edit]
        try:
            expected = json.loads(broken)
        except json.JSONDecodeError:
            with pytest.raises(json.JSONDecodeError):
                decoded(broken, cuts)
        else:
            assert same(decoded(broken, cuts), expected)

    @pytest.mark.parametrize(
        "text",
        [
            '{"alertingInteractionDetails":[{"a":1},]}',
            '{"alertingInteractionDetails":[{"a":1} {"a":2}]}',
            '{"alertingInteractionDetails":[{"a":1}]} x',
            '{"alertingInteractionDetails":[{"a":1}]',
            '{"alertingInteractionDetails" [1]}',
            '\ufeff{"alertingInteractionDetails":[]}',
            "",
        ],
        ids=["trailing-comma", "no-comma", "extra-data", "unclosed", "no-colon", "bom", "empty"],
    )
    def test_known_malformations(self, text: str) -> None:
        """Each is a JSONDecodeError, as from json.loads."""
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        with pytest.raises(json.JSONDecodeError):
            decoded(text)
        with pytest.raises(json.JSONDecodeError):
            decoded(text, [1, 5, 9, 20])


class TestWhatIsLeftRaw:
    """Only the named entry lists of a big message are left raw; everything else is decoded."""

    def test_a_big_messages_entry_list_is_raw_and_reads_each_element(self) -> None:
        """Above the size limit the entry list is a RawList of its elements, in order."""
        text = big_text([str(n) for n in range(3)], " ")
        message = decode(text, raw_above=len(text))
        raws = message["alertingInteractionDetails"]
        assert isinstance(raws, RawList)
        assert len(raws) == 3
        assert [e["v"] for e in raws] == [0, 1, 2]
        assert [e["v"] for e in raws] == [0, 1, 2]  # iterating again reads them again

    def test_a_small_message_is_decoded_whole(self) -> None:
        """Below the size limit nothing is raw: the message is json.loads's."""
        text = big_text(["1"], "")
        assert type(decode(text, raw_above=len(text) + 1)["alertingInteractionDetails"]) is list

    def test_other_lists_and_other_top_levels_are_decoded(self) -> None:
        """A list under another name, or a top level that is not an object, is plain JSON."""
        assert decode('{"requestsAdded":["a"]}', raw_above=EVERYTHING) == {"requestsAdded": ["a"]}
        assert decode('[{"alertingInteractionDetails":[1]}]', raw_above=EVERYTHING) == [
            {"alertingInteractionDetails": [1]}
        ]


class TestHeldOnce:
    """A big message's text is held once while it is decoded, and no tree is built."""

    @staticmethod
    def _peak(decoding: Any) -> tuple[int, Any]:
        tracemalloc.start()
        try:
            result = decoding()
            return tracemalloc.get_traced_memory()[1], result
        finally:
            tracemalloc.stop()

    def _snapshot(self) -> str:
        entry = '{"interactionId":"%d","name":"Jos\u00e9 N\u00fa\u00f1ez","alertType":5}'
        return big_text([entry % n for n in range(20_000)], "")

    def test_in_pieces_the_text_is_held_about_once(self) -> None:
        """Given in 64 KB pieces, decoding holds under 1.25 times the text (json.loads: 6)."""
        text = self._snapshot()
        size = len(text)
        pieces = Pieces(text[n : n + 65_536] for n in range(0, size, 65_536))
        del text
        peak, message = self._peak(lambda: decode(pieces))
        assert len(message["alertingInteractionDetails"]) == 20_000
        assert peak < 1.25 * size

    def test_given_whole_the_text_is_not_copied(self) -> None:
        """Given as one string, decoding adds under a third of the text (the element index)."""
        text = self._snapshot()
        peak, message = self._peak(lambda: decode(text))
        assert len(message["alertingInteractionDetails"]) == 20_000
        assert peak < 0.3 * len(text)  # a copy would be 1.0, json.loads over 6
