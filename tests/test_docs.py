"""The documentation stays true: generated parts of the README match the code, and it is whole."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bridge.core.commands import COMMAND_TYPES, RESULT_NAME
from bridge.core.events import EVENT_NAMES, LIFECYCLE_NAMES, MAJOR
from bridge.settings import EventSettings
from bridge.settings_docs import settings_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

# Names of files that live beside the repository, not in it: a reader of the repo has none.
# Spelled in pieces, so that this file itself names none of them.
_DESIGN, _PROTOCOL, _STYLE = "DES" + "IGN", "ICWS-PRO" + "TOCOL", "STY" + "LE"
_SHARED = "sha" + "red"
OUTSIDE = re.compile(
    rf"{_DESIGN}\.md|{_DESIGN} §|{_PROTOCOL}\.md|{_STYLE}\.md|\.\./{_SHARED}|/work/{_SHARED}"
)


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next level-2 heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match is not None, f"README lacks the section {title!r}"
    return match.group(1)


def emitted_types() -> list[str]:
    """Every CloudEvents type the bridge can emit or consume, with the default prefix."""
    prefix = EventSettings().type_prefix
    names = [*EVENT_NAMES.values(), *LIFECYCLE_NAMES, RESULT_NAME]
    names += [command.name for command in COMMAND_TYPES]
    return [f"{prefix}.{name}.v{MAJOR}" for name in names]


def tracked_files() -> list[Path]:
    """The files git tracks, plus new ones not ignored (so an uncommitted file counts too)."""
    git = shutil.which("git")
    assert git is not None, "the docs test reads the file list from git"
    listed = subprocess.run(  # noqa: S603 - git found on PATH, a fixed argv, no shell
        [git, "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_settings_table_matches_the_settings_model() -> None:
    """The README's settings table is exactly what bridge.settings generates."""
    match = re.search(
        r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", README, re.S
    )
    assert match is not None, "README lacks the settings-table markers"
    assert match.group(1) == settings_table()


def test_the_type_list_is_the_full_contract() -> None:
    """The list checked below has every event, lifecycle, command and result type once."""
    types = emitted_types()
    assert len(types) == len(set(types)) == 11 + 4 + 1 + 2
    assert "com.pureconnect.icws.interaction.alerting.stopped.v1" in types
    assert "com.pureconnect.icws.command.result.v1" in types


@pytest.mark.parametrize("event_type", emitted_types())
def test_readme_names_every_type_in_full(event_type: str) -> None:
    """Each type appears whole, in backticks, in the Topics and events or Commands section."""
    documented = section("Topics and events") + section("Commands")
    assert f"`{event_type}`" in documented, f"{event_type} missing in full from README"


def test_readme_topic_table_abbreviates_no_type() -> None:
    """The topics table lists no abbreviated type such as `.changed`."""
    assert not re.findall(r"`\.\w+`", section("Topics and events"))


def test_readme_shows_the_two_commands() -> None:
    """The README gives the two set-up commands, and CI runs the test one."""
    assert "make demo" in README
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_protocol_reference_is_in_the_repository() -> None:
    """docs/icws-protocol.md exists and is the protocol reference the code cites."""
    reference = (ROOT / "docs" / "icws-protocol.md").read_text()
    assert reference.startswith("# ICWS (Interaction Center Web Services) protocol reference")
    assert "## 10" in reference


def test_no_file_names_a_document_outside_the_repository() -> None:
    """No tracked file (this one included) cites a design or protocol page beside the repo."""
    offenders = []
    for path in tracked_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_outside_pattern_catches_each_kind_of_reference() -> None:
    """The pattern above matches every form of outside reference it guards against."""
    cited = (f"see {_DESIGN}.md", f"({_DESIGN} §8)", f"{_PROTOCOL}.md §2", f"{_STYLE}.md")
    for line in (*cited, f"../{_SHARED}/x"):
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search("see docs/icws-protocol.md §2 and docs/architecture.md")
