"""A big message's upserts, read one entry at a time from its raw list as the state applies them.

Parsed whole, a 100,000-entity snapshot's normalized entries sit in memory beside its JSON tree.
:class:`StreamedUpserts` instead reads each entry from a :class:`~bridge.core.rawjson.RawList`
when :meth:`~bridge.core.state.AggregateState.apply` takes it, and lets it go after. What the
eager parser finds on the way, the entries that end their entity (removals) and those that
cannot be read (problems), is found here on the way too, into lists the :class:`Update` holds:
they are complete once the upserts have been iterated, and ``apply`` reads them only after.
Each iteration starts them afresh, so iterating twice gives the same upserts and lists.
"""

from __future__ import annotations

from collections.abc import Iterator

from bridge.core.entries import Malformed, Shape, read_entry
from bridge.core.rawjson import RawList
from bridge.core.state import FamilyRules, Upsert


class StreamedUpserts:
    """The upserts of one raw entry list, as the eager parser would make them, one at a time."""

    __slots__ = (
        "_creates",
        "_raws",
        "_replace",
        "_rules",
        "_shape",
        "_what",
        "problems",
        "removals",
    )

    def __init__(
        self,
        shape: Shape,
        raws: RawList,
        what: str,
        rules: FamilyRules,
        *,
        replace: bool,
        creates: bool,
    ) -> None:
        self._shape = shape
        self._raws = raws
        self._what = what
        self._rules = rules
        self._replace = replace
        self._creates = creates
        self.removals: list[str] = []
        self.problems: list[str] = []

    def __iter__(self) -> Iterator[Upsert]:
        self.removals.clear()
        self.problems.clear()
        rules, shape = self._rules, self._shape
        for index, raw in enumerate(self._raws):
            try:
                key, props = read_entry(shape, raw)
            except Malformed as exc:
                self.problems.append(f"{self._what}[{index}]: {exc}")
                continue
            if rules.ends(props):
                self.removals.append(rules.name(key))
            else:
                yield Upsert(rules.name(key), props, self._replace, (), self._creates)

    def __repr__(self) -> str:
        return f"StreamedUpserts({self._what}, {len(self._raws)} entries)"
