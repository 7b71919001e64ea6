"""The fleet's accounts as values: which ICWS users to hold, read from a directory listing.

The accounts directory holds one file per ICWS user: the file name is the user id, the content
its password (a Kubernetes Secret with one key per user, mounted as a volume). The shell lists
the directory and reads each file; :func:`accounts_from` judges what it read, so every rule is a
unit-tested value here:

* names starting with ``.`` are the mount's own machinery (``..data``, ``..2026_11_30...``):
  skipped silently;
* a name ICWS cannot accept (control characters, longer than :data:`MAX_USER_ID`) is reported
  and skipped; so is an empty password, or a file that could not be read;
* one trailing newline is not part of the password (``echo`` and editors add it); anything else
  is, spaces included.

Passwords travel as :class:`Secret`, whose ``repr`` hides them, so a log of an account never
shows one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_USER_ID = 256


@dataclass(frozen=True, slots=True)
class Secret:
    """A password; ``repr`` and ``str`` never show it."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Account:
    """One ICWS user the fleet holds a session for."""

    user_id: str
    password: Secret


@dataclass(frozen=True, slots=True)
class Problem:
    """A file that is not an account, and why (never its content)."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Accounts:
    """What a directory listing amounts to: the accounts by user id, and the files skipped."""

    accounts: Mapping[str, Account]
    problems: tuple[Problem, ...] = ()


Unreadable = OSError
Content = bytes | Unreadable


def accounts_from(files: Iterable[tuple[str, Content]]) -> Accounts:
    """Judge each (file name, content or the error reading it) of the accounts directory."""
    accounts: dict[str, Account] = {}
    problems: list[Problem] = []
    for name, content in sorted(files, key=lambda item: item[0]):
        if name.startswith("."):
            continue
        judged = _judge(name, content)
        if isinstance(judged, Problem):
            problems.append(judged)
        else:
            accounts[judged.user_id] = judged
    return Accounts(accounts, tuple(problems))


def _judge(name: str, content: Content) -> Account | Problem:
    if not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return Problem(name.encode("unicode_escape").decode(), "not a user id ICWS can accept")
    if len(name) > MAX_USER_ID:
        return Problem(name[:40] + "...", f"user id longer than {MAX_USER_ID} characters")
    if isinstance(content, OSError):
        return Problem(name, f"unreadable: {type(content).__name__}: {content.strerror or ''}")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return Problem(name, "the password is not UTF-8 text")
    password = text[:-1] if text.endswith("\n") else text
    password = password[:-1] if password.endswith("\r") else password
    if not password:
        return Problem(name, "empty password")
    return Account(name, Secret(password))


@dataclass(frozen=True, slots=True)
class Changes:
    """How the accounts changed between two readings: sessions to start, stop or restart."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]  # same user, new password: log in again with it


def changes(before: Mapping[str, Account], after: Mapping[str, Account]) -> Changes:
    """What a new reading of the directory asks of the fleet."""
    return Changes(
        added=tuple(sorted(after.keys() - before.keys())),
        removed=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(
            sorted(
                user
                for user in before.keys() & after.keys()
                if before[user].password != after[user].password
            )
        ),
    )
