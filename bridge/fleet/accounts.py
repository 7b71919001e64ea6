"""Where the fleet's accounts come from: the accounts directory (read again and again), or one.

The reading is the only I/O here: list the directory, read each file (a failure to read one is
that file's problem, not the reading's); :func:`bridge.core.accounts.accounts_from` judges the
result. Without ``icws.accounts_dir`` the one-account shorthand (``icws.username`` and
``icws.password``) is the whole fleet. A skipped file is logged when it first appears (name and
reason, never content), not on every reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bridge.core.accounts import Account, Accounts, Problem, Secret, accounts_from
from bridge.logs import get_logger
from bridge.settings import IcwsSettings


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of the accounts: what it found, and why the directory could not be read."""

    accounts: Accounts = field(default_factory=lambda: Accounts({}))
    error: str = ""  # the directory itself could not be listed


def read_directory(directory: Path) -> Reading:
    """List and read the accounts directory (blocking I/O: run it in a thread)."""
    try:
        entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        return Reading(error=f"cannot read {directory}: {type(exc).__name__}: {exc.strerror}")
    files: list[tuple[str, bytes | OSError]] = []
    for entry in entries:
        if entry.is_dir():
            continue
        try:
            files.append((entry.name, entry.read_bytes()))
        except OSError as exc:
            files.append((entry.name, exc))
    return Reading(accounts_from(files))


def shorthand(settings: IcwsSettings) -> Reading:
    """The one-account shorthand: ``icws.username`` with ``icws.password``."""
    account = Account(settings.username, Secret(settings.password.get_secret_value()))
    return Reading(Accounts({settings.username: account}))


class AccountSource:
    """Reads the accounts (the directory, or the shorthand) and reports what changed to say."""

    def __init__(self, settings: IcwsSettings, read: Callable[[Path], Reading] = read_directory):
        self._settings = settings
        self._read = read
        self._log = get_logger("bridge.fleet.accounts")
        self._reported: set[Problem] = set()
        self._error = ""
        self.last = Reading(error="not read yet")
        if settings.accounts_dir is not None and settings.username:
            self._log.warning(
                "fleet.accounts.shorthand_ignored",
                accounts_dir=str(settings.accounts_dir),
                reason="icws.accounts_dir is set: icws.username and icws.password are not used",
            )

    @property
    def directory(self) -> Path | None:
        return self._settings.accounts_dir

    async def read(self) -> Reading:
        """Read the accounts now (in a thread: a mounted Secret may be slow); log news."""
        if self.directory is None:
            self.last = shorthand(self._settings)
            return self.last
        reading = await asyncio.to_thread(self._read, self.directory)
        for problem in reading.accounts.problems:
            if problem not in self._reported:
                self._log.warning("fleet.account.skipped", name=problem.name, reason=problem.reason)
        self._reported = set(reading.accounts.problems)
        if reading.error and reading.error != self._error:
            self._log.error("fleet.accounts.unreadable", error=reading.error)
        self._error = reading.error
        self.last = reading
        return reading
