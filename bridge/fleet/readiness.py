"""The fleet's readiness checks, from its pipelines and its last reading of the accounts.

``icws_sessions`` is ok when every held account's session is up (a replica holding none is ready
if Kafka and the consumer are); its detail counts the accounts per state and names up to five
that are not up. ``icws_subscriptions`` and ``icws_snapshots`` sum the accounts' own. ``accounts``
is ok when at least one account is configured and the directory could be read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from bridge.fleet.accounts import Reading
from bridge.fleet.pipeline import AccountPipeline
from bridge.metrics import SESSION_STATES
from bridge.readiness import Check

NAMED = 5  # accounts named in a detail at most


def fleet_checks(
    pipelines: Mapping[str, AccountPipeline], reading: Reading, directory: Path | None
) -> dict[str, Check]:
    """The fleet's named checks."""
    held = sorted(pipelines.items())
    return {
        "icws_sessions": _sessions(held),
        "icws_subscriptions": _named(
            "all in place",
            [(u, "; ".join(p.session.health.unavailable.values())) for u, p in held],
        ),
        "icws_snapshots": _named(
            "received",
            [
                (u, "awaiting the first snapshot of " + ", ".join(sorted(p.pump.resync_pending)))
                for u, p in held
                if p.pump.resync_pending and p.session.up
            ],
        ),
        "accounts": _accounts(reading, directory),
    }


def _sessions(held: list[tuple[str, AccountPipeline]]) -> Check:
    if not held:
        return Check(True, "no accounts held")
    states = Counter(p.session.health.state for _, p in held)
    counts = ", ".join(f"{states[s]} {s}" for s in SESSION_STATES if states[s])
    down = [
        f"{u} ({p.session.health.problem or p.session.health.state})"
        for u, p in held
        if p.session.health.state != "up"
    ]
    # Up with a note: how it reads, e.g. "a up (polling: SSE failed 3 times: ...)".
    notes = [f"{u} up ({p.session.health.note})" for u, p in held if p.session.health.note]
    if not down:
        return Check(True, "; ".join([counts, *notes[:NAMED]]))
    more = f" and {len(down) - NAMED} more" if len(down) > NAMED else ""
    return Check(False, f"{counts}; not up: {', '.join(down[:NAMED])}{more}")


def _named(fine: str, problems: list[tuple[str, str]]) -> Check:
    shown = [f"{user}: {text}" for user, text in problems if text]
    if not shown:
        return Check(True, fine)
    more = f" and {len(shown) - NAMED} more" if len(shown) > NAMED else ""
    return Check(False, "; ".join(shown[:NAMED]) + more)


def _accounts(reading: Reading, directory: Path | None) -> Check:
    configured = len(reading.accounts.accounts)
    skipped = len(reading.accounts.problems)
    if reading.error:
        return Check(False, reading.error)
    where = f"in {directory}" if directory is not None else "(icws.username)"
    detail = f"{configured} configured {where}, {skipped} files skipped"
    if not configured:
        return Check(False, f"no accounts: {detail}")
    return Check(True, detail)
