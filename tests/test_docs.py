"""The documentation stays true: generated parts of the README match the code."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.core.events import EVENT_NAMES, LIFECYCLE_NAMES
from bridge.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_settings_table_matches_the_settings_model() -> None:
    """The README's settings table is exactly what bridge.settings generates."""
    match = re.search(
        r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", README, re.S
    )
    assert match is not None, "README lacks the settings-table markers"
    assert match.group(1) == settings_table()


def test_readme_names_every_event_type() -> None:
    """Every event type the bridge can emit is named in the README's topic table."""
    names = list(EVENT_NAMES.values())
    names += list(LIFECYCLE_NAMES)
    short = {name.rsplit(".", 1)[-1] for name in names}
    for name in names:
        head = name.rsplit(".", 1)[0]
        assert head in README, f"{name} missing from README"
    for word in short:
        assert word in README


def test_readme_shows_the_two_commands() -> None:
    """The README gives the two set-up commands, and CI runs the test one."""
    assert "make demo" in README
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
