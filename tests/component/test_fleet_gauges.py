"""The fleet's gauges count its accounts at each scrape: no account's write hides another's."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .test_fleet import World, until

IC1, IC2 = "https://ic1:8019", "https://ic2:8019"


@pytest.fixture(name="fleet")
async def fixture_fleet(tmp_path: Path) -> AsyncIterator[World]:
    """Three accounts up with fake sessions; each then says how it is, as a session would."""
    w = World(tmp_path)
    w.write(**{"agent.a": "pa", "agent.b": "pb", "agent.c": "pc"})
    await w.reload()
    await until(lambda: w.gauge("accounts", state="up") == 3)
    a, b, c = (w.live(user).health for user in ("agent.a", "agent.b", "agent.c"))
    a.host, a.icws_version, a.transport = IC1, "2024 R1", "sse"
    a.subscribed, a.unavailable = ("alerting", "history", "assistance"), {"history": "HTTP 404"}
    b.host, b.icws_version, b.transport = IC2, "2024 R1", "poll"
    b.subscribed = ("alerting", "history")
    c.host, c.icws_version, c.state = IC1, "2024 R1", "down"  # logged in once, now down
    yield w
    await w.fleet.stop()


class TestCountedOverAccounts:
    """Each gauge is a count or an extreme over the held accounts, never the last writer."""

    async def test_accounts_per_transport(self, fleet: World) -> None:
        """One account streams, one polls, the one that is down reads with neither."""
        assert fleet.gauge("transport", transport="sse") == 1
        assert fleet.gauge("transport", transport="poll") == 1

    async def test_accounts_per_subscription_in_place(self, fleet: World) -> None:
        """A subscription ICWS refused and a session that is down do not count."""
        counts = {
            name: fleet.gauge("icws_subscription_active", subscription=name)
            for name in ("alerting", "history", "status_messages", "assistance")
        }
        assert counts == {"alerting": 2, "history": 1, "status_messages": 0, "assistance": 1}

    async def test_accounts_per_host_and_version(self, fleet: World) -> None:
        """Accounts count on the host of their last login, down ones included."""
        assert fleet.gauge("icws_hosts", host=IC1, icws_version="2024 R1") == 2
        assert fleet.gauge("icws_hosts", host=IC2, icws_version="2024 R1") == 1

    async def test_newest_message_and_longest_silence(self, fleet: World) -> None:
        """The timestamp is the newest message of any account; the age the oldest's silence."""
        now = time.time()
        for user, ago in (("agent.a", 5.0), ("agent.b", 100.0), ("agent.c", 40.0)):
            fleet.live(user).last_message = now - ago
        assert fleet.gauge("icws_last_message_timestamp_seconds") == now - 5.0
        silence = fleet.gauge("icws_seconds_since_last_message")
        assert silence is not None
        assert 100.0 <= silence < 110.0

    async def test_a_removed_account_no_longer_counts(self, fleet: World) -> None:
        """Removing the polling account on ic2 takes it out of every count at once."""
        (fleet.directory / "agent.b").unlink()
        await fleet.reload()
        assert fleet.gauge("transport", transport="poll") == 0
        assert fleet.gauge("icws_hosts", host=IC2, icws_version="2024 R1") is None
        assert fleet.gauge("icws_subscription_active", subscription="alerting") == 1
