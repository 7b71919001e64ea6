"""End to end: ``bridge demo`` as a user runs it prints agents' events and a command's round trip.

The demo is started as a process (``python -m bridge demo``); its output is read line by line
until every line the README promises has appeared (events of every account it lists, the
scripted command keyed by its owner and that command's result), then it is stopped with Ctrl-C
(SIGINT), as a user would, and must exit cleanly. ``--duration`` is only an upper bound on the run.
"""

from __future__ import annotations

import asyncio
import re
import signal
from dataclasses import dataclass, field

import pytest

from tests.conftest import bridge_cli

pytestmark = pytest.mark.e2e

# `<time>  <type without prefix>  <subject> ...`, as the README's sample lines show.
EVENT_LINE = re.compile(r"^\S+Z\s+(?P<type>[a-z.]+\.v1)\s+(?P<subject>.+?)\s{2,}")
RESULT = "command.result.v1"
SENT_LINE = re.compile(
    r"^command sent: assistance update (?P<id>\S+) on request (?P<request>\S+)"
    r" keyed by (?P<key>\S+)$"
)
ACCOUNTS_LINE = re.compile(r"^accounts: (?P<users>\S.*?) \((?P<source>.+)\)$")


def user_of(line: str) -> str:
    """The user column of an event line whose subject has no spaces (after any #sequence)."""
    rest = line.split()[3:]
    if rest and rest[0].startswith("#"):
        rest = rest[1:]
    return rest[0] if rest else ""


@dataclass
class DemoOutput:
    """What the demo printed so far, and what it proves."""

    lines: list[str] = field(default_factory=list)

    def types(self) -> list[str]:
        return [m["type"] for line in self.lines if (m := EVENT_LINE.match(line))]

    def sent_command(self) -> str | None:
        return next((m["id"] for line in self.lines if (m := SENT_LINE.match(line))), None)

    def command_key(self) -> str | None:
        return next((m["key"] for line in self.lines if (m := SENT_LINE.match(line))), None)

    def accounts(self) -> list[str]:
        """The users the demo says its bridge holds (its second line)."""
        found = next((m["users"] for line in self.lines if (m := ACCOUNTS_LINE.match(line))), "")
        return found.split(", ") if found else []

    def alerting_users(self) -> set[str]:
        """The user column of the printed alerting events: the agent each one belongs to."""
        return {
            user_of(line)
            for line in self.lines
            if (m := EVENT_LINE.match(line)) and m["type"].startswith("interaction.alerting.")
        }

    def result_line(self) -> str | None:
        ident = self.sent_command()
        for line in self.lines:
            match = EVENT_LINE.match(line)
            if match and (match["type"], match["subject"]) == (RESULT, ident):
                return line
        return None

    def complete(self) -> bool:
        """A status event, alerting events of every account and the command's result printed."""
        types = self.types()
        return (
            any(t.startswith("status.message.") for t in types)
            and bool(self.accounts())
            and set(self.accounts()) <= self.alerting_users()
            and self.result_line() is not None
        )


async def read_until_complete(process: asyncio.subprocess.Process, out: DemoOutput) -> None:
    """Collect output lines until ``out.complete()``; fail if the demo ends first."""
    assert process.stdout is not None
    while not out.complete():
        line = await process.stdout.readline()
        if not line:
            raise AssertionError(f"demo ended early: {out.lines[-20:]}")
        out.lines.append(line.decode().rstrip("\n"))


async def test_demo_prints_events_and_a_command_round_trip() -> None:
    """Every agent's alerting events appear; the update keyed by its owner succeeds as that user."""
    out = DemoOutput()
    args = ("demo", "--duration", "180", "--health-port", "0", "--rate", "10")
    async with bridge_cli(*args, stdout=asyncio.subprocess.PIPE) as demo:
        try:
            await asyncio.wait_for(read_until_complete(demo, out), 120)
        except TimeoutError:
            raise AssertionError(f"demo output incomplete: {out.lines[-20:]}") from None
        demo.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(demo.wait(), 60) == 0
    assert out.lines[0].startswith("broker 127.0.0.1:")
    owner = out.accounts()[0]
    assert owner == "agent.0001"
    assert out.command_key() == owner
    result = out.result_line()
    assert result is not None
    assert user_of(result) == owner
    assert result.endswith("outcome: succeeded")
