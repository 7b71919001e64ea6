"""Who runs a command: its owner, the ICWS user resolved from the record key and the held views.

ICWS lets only the user who initiated an assistance request act on it, and a session acts as the
user it is logged in as, so a command runs on its owner's session and never on another user's.
Commands are keyed by the owning user id (every assistance event names it), so they land on the
partition, and so the replica, that holds that user. The owner is then, by :func:`resolve`:

* **Key = a held user**: that user, if that user's reconciled view shows the request; else
  ``rejected`` ("request X is not open for user U").
* **Key = anything else** (the assistance id, as single-account senders key commands, or no
  key): the views of every held account are searched. Exactly one shows the request: its user.
  Two or more: ``rejected`` as ambiguous, naming them. None: ``rejected`` ("no account of this
  fleet holds request X"); when the key belongs on another partition than the record came on
  (a sender using another partitioner), the reason says so, naming both partitions.

What a view says is a :data:`Sight`. A view that is not up to date (its session down, or its
snapshot not yet reconciled) proves nothing, so the answer is :class:`Unsettled` (look again; the
shell gives up at the command's deadline: ``expired``) where it could matter: the key's own user,
or a search that found nobody. And since a view lags ICWS by the time a message takes to arrive,
a request missing from up-to-date views is looked for again for :data:`LOOK_AGAIN_SECONDS` before
the command is rejected. Nothing here does I/O or reads a clock: the time waited comes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bridge.core.command_rules import Problem, Verdict

Sight = Literal["open", "absent", "unknown"]  # what one held account's view says of a request

# A request created in ICWS just before its command was sent may not have reached the view yet.
LOOK_AGAIN_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class RunAs:
    """Run the command on this user's session."""

    user: str


@dataclass(frozen=True, slots=True)
class Reject:
    """The command cannot run here: result ``rejected`` with this reason, nothing sent."""

    reason: str

    @property
    def verdict(self) -> Verdict:
        return Verdict("rejected", Problem(self.reason))


@dataclass(frozen=True, slots=True)
class Unsettled:
    """Not known yet (a view not up to date, or not long enough): look again later."""

    reason: str

    @property
    def verdict(self) -> Verdict:
        """The verdict once the deadline passed while it stayed unsettled."""
        return Verdict(
            "expired", Problem(f"the deadline passed before the owner was known: {self.reason}")
        )


Resolution = RunAs | Reject | Unsettled


@dataclass(frozen=True, slots=True)
class Routing:
    """Where the record was and where its key belongs (the default partitioner), if known."""

    partition: int
    key_partition: int | None = None


def resolve(
    key: str | None,
    request: str,
    sights: Mapping[str, Sight],
    *,
    waited: float,
    routing: Routing,
) -> Resolution:
    """The owner of the command on ``request``, given what each held user's view says of it."""
    if key is not None and key in sights:
        return _keyed_by_user(key, request, sights[key], waited)
    owners = sorted(user for user, sight in sights.items() if sight == "open")
    if len(owners) > 1:
        named = ", ".join(owners)
        return Reject(f"request {request} is ambiguous: users {named} all hold it")
    if owners:
        return RunAs(owners[0])
    unknown = sorted(user for user, sight in sights.items() if sight == "unknown")
    if unknown:
        return Unsettled(f"{len(unknown)} account(s) not up to date, e.g. {unknown[0]}")
    if sights and waited < LOOK_AGAIN_SECONDS:
        return Unsettled(f"request {request} is in no account's view yet")
    return Reject(f"no account of this fleet holds request {request}{_misrouted(key, routing)}")


def _keyed_by_user(user: str, request: str, sight: Sight, waited: float) -> Resolution:
    if sight == "open":
        return RunAs(user)
    if sight == "unknown":
        return Unsettled(f"the view of user {user} is not up to date")
    if waited < LOOK_AGAIN_SECONDS:
        return Unsettled(f"request {request} is not in the view of user {user} yet")
    return Reject(f"request {request} is not open for user {user}")


def _misrouted(key: str | None, routing: Routing) -> str:
    """Why a user's command may have come here: its key belongs on another partition."""
    expected = routing.key_partition
    if key is None or expected is None or expected == routing.partition:
        return ""
    return (
        f" (its key {key!r} belongs on partition {expected}, but the record came on partition "
        f"{routing.partition}: was it sent with another partitioner?)"
    )
