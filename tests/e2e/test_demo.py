"""End to end: ``bridge demo`` as a user runs it prints events and a command's round trip.

The demo is started as a process (``python -m bridge demo``); its output is read line by line
until every line the README promises has appeared, then it is stopped with Ctrl-C (SIGINT), as a
user would, and must exit cleanly. ``--duration`` is only an upper bound on the run.
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
SENT_LINE = re.compile(r"^command sent: assistance update (?P<id>\S+) on request (?P<request>\S+)$")


@dataclass
class DemoOutput:
    """What the demo printed so far, and what it proves."""

    lines: list[str] = field(default_factory=list)

    def types(self) -> list[str]:
        return [m["type"] for line in self.lines if (m := EVENT_LINE.match(line))]

    def sent_command(self) -> str | None:
        return next((m["id"] for line in self.lines if (m := SENT_LINE.match(line))), None)

    def result_line(self) -> str | None:
        ident = self.sent_command()
        for line in self.lines:
            match = EVENT_LINE.match(line)
            if match and (match["type"], match["subject"]) == (RESULT, ident):
                return line
        return None

    def complete(self) -> bool:
        """A status event, an alerting event and the scripted command's result were printed."""
        types = self.types()
        return (
            any(t.startswith("status.message.") for t in types)
            and any(t.startswith("interaction.alerting.") for t in types)
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
    """Status and alerting events appear, and the scripted update's result says succeeded."""
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
    result = out.result_line()
    assert result is not None
    assert result.endswith("outcome: succeeded")
