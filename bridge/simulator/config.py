"""Simulator configuration: the knobs for every behaviour ICWS-PROTOCOL.md marks UNCONFIRMED."""

from __future__ import annotations

from dataclasses import dataclass, field

_DEFAULT_FEATURES = {"connection": 11, "messaging": 2, "interactions": 9, "status": 1}
_LOGOUT_STATUSES = (200, 204)
_ASSISTANCE_UPDATE_STATUSES = (200, 204)
_AFTER_LOGOUT_MODES = ("down", "401")


@dataclass
class SimulatorConfig:
    """How the simulated IC server behaves; mutable at runtime through `Simulator` helpers."""

    users: dict[str, str] = field(default_factory=lambda: {"agent.one": "secret"})
    features: dict[str, int] = field(default_factory=lambda: dict(_DEFAULT_FEATURES))
    server_name: str = "icserver-a"
    alternate_hosts: list[str] = field(default_factory=list)
    idle_timeout_seconds: float | None = None
    sse_counts_as_activity: bool = True
    sse_keepalive_seconds: float | None = 15.0
    logout_status: int = 204
    assistance_update_status: int = 204
    omit_empty_arrays: bool = False
    check_after_logout: str = "down"
    max_queued_messages: int | None = None

    def __post_init__(self) -> None:
        # Fail at construction: a typo here would otherwise surface as a confusing test failure.
        _require(self.logout_status in _LOGOUT_STATUSES, "logout_status", self.logout_status)
        _require(
            self.assistance_update_status in _ASSISTANCE_UPDATE_STATUSES,
            "assistance_update_status",
            self.assistance_update_status,
        )
        _require(
            self.check_after_logout in _AFTER_LOGOUT_MODES,
            "check_after_logout",
            self.check_after_logout,
        )
        _require(
            self.idle_timeout_seconds is None or self.idle_timeout_seconds > 0,
            "idle_timeout_seconds",
            self.idle_timeout_seconds,
        )
        _require(
            self.sse_keepalive_seconds is None or self.sse_keepalive_seconds > 0,
            "sse_keepalive_seconds",
            self.sse_keepalive_seconds,
        )
        _require(
            self.max_queued_messages is None or self.max_queued_messages > 0,
            "max_queued_messages",
            self.max_queued_messages,
        )


def _require(ok: bool, name: str, value: object) -> None:
    if not ok:
        raise ValueError(f"SimulatorConfig.{name} has an unsupported value: {value!r}")
