"""Simulator configuration: the knobs for every behaviour docs/icws-protocol.md marks UNCONFIRMED.

Besides the protocol's open questions it holds the *realism* options of issue #12
(docs/icws-protocol.md §10); each one defaults to the simulator's original behaviour, so nothing
gets easier by default:

- `sse_recycle_seconds`: end a healthy SSE stream cleanly after this long (None: never);
  `sse_retry_ms`: the `retry:` field sent at the start of every stream (None: not sent).
- `sse_keepalive_seconds`: the `:ping` interval (None: never sent).
- `bad_credentials_body`: `"full"` (errorId, errorCode, message) or `"error-code-only"` (no
  errorId, as servers before CIC 4.0.6 answer).
- `login_status` (+ `login_error_id`, `login_location`): every login answers this 3xx (an HTML
  page and a `Location` header) or 4xx (an ICWS error body) instead of being handled.
- `proxy_names`: web-proxy mode; every ICWS path is served only under `/api/<name>/icws/...`.
  Logins to a name other than `proxy_primary` (default: the first) answer 503 naming the
  primary, and `alternateHostList` lists the other names.
- `opaque_assistance_ids`: new assistance ids like `{a1|b:2 c/3}` (reserved characters).
- `heartbeat_status`: what `POST .../messaging/heartbeat` answers (404/410: unsupported).

For a contact centre (issue #14): `users_named` builds thousands of users cheaply; the login
pacing knobs `login_latency_seconds` (each login takes this long) and `max_concurrent_logins`
(logins beyond it wait their turn) model a server slowing down under a login storm; and
`assistance_update_by` / `assistance_watch_by` say who may add a message to, or subscribe to the
details of, an assistance request (§8.13 is UNCONFIRMED: only completing is documented as the
initiator's alone): `"initiator"`, `"participants"` (initiator and supervisors) or `"anyone"`.

All fields except `users` and `features` can change at runtime (`Simulator.configure`, or
`PATCH /_sim/config` with the field names as keys); `users` and `features` have their own routes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_DEFAULT_FEATURES = {"connection": 11, "messaging": 2, "interactions": 9, "status": 1}
_LOGOUT_STATUSES = (200, 204)
_ASSISTANCE_UPDATE_STATUSES = (200, 204)
_AFTER_LOGOUT_MODES = ("down", "401")
BAD_CREDENTIALS_BODIES = ("full", "error-code-only")
HEARTBEAT_STATUSES = (200, 204, 404, 410)
ASSISTANCE_SCOPES = ("initiator", "participants", "anyone")
# Fields with their own control routes; everything else is a runtime knob.
NOT_RUNTIME_FIELDS = frozenset({"users", "features"})


@dataclass
class SimulatorConfig:
    """How the simulated IC server behaves; mutable at runtime through `Simulator.configure`."""

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
    sse_recycle_seconds: float | None = None
    sse_retry_ms: int | None = None
    bad_credentials_body: str = "full"
    login_status: int | None = None
    login_error_id: str | None = None
    login_location: str = "/login.html"
    proxy_names: list[str] = field(default_factory=list)
    proxy_primary: str | None = None
    opaque_assistance_ids: bool = False
    heartbeat_status: int = 204
    login_latency_seconds: float | None = None
    max_concurrent_logins: int | None = None
    assistance_update_by: str = "initiator"
    assistance_watch_by: str = "anyone"

    def __post_init__(self) -> None:
        # Fail at construction: a typo here would otherwise surface as a confusing test failure.
        for name, ok in self._checks().items():
            _require(ok, name, getattr(self, name))

    def _checks(self) -> dict[str, bool]:
        return {
            "logout_status": self.logout_status in _LOGOUT_STATUSES,
            "assistance_update_status": self.assistance_update_status
            in _ASSISTANCE_UPDATE_STATUSES,
            "check_after_logout": self.check_after_logout in _AFTER_LOGOUT_MODES,
            "idle_timeout_seconds": _positive_or_none(self.idle_timeout_seconds),
            "sse_keepalive_seconds": _positive_or_none(self.sse_keepalive_seconds),
            "max_queued_messages": _positive_or_none(self.max_queued_messages),
            "sse_recycle_seconds": _positive_or_none(self.sse_recycle_seconds),
            "sse_retry_ms": self.sse_retry_ms is None
            or (isinstance(self.sse_retry_ms, int) and self.sse_retry_ms >= 0),
            "bad_credentials_body": self.bad_credentials_body in BAD_CREDENTIALS_BODIES,
            "login_status": self.login_status is None or 300 <= self.login_status < 500,
            "proxy_names": all(
                isinstance(name, str) and name and "/" not in name for name in self.proxy_names
            ),
            "proxy_primary": self.proxy_primary is None or self.proxy_primary in self.proxy_names,
            "heartbeat_status": self.heartbeat_status in HEARTBEAT_STATUSES,
            "login_latency_seconds": _positive_or_none(self.login_latency_seconds),
            "max_concurrent_logins": self.max_concurrent_logins is None
            or (isinstance(self.max_concurrent_logins, int) and self.max_concurrent_logins > 0),
            "assistance_update_by": self.assistance_update_by in ASSISTANCE_SCOPES,
            "assistance_watch_by": self.assistance_watch_by in ASSISTANCE_SCOPES,
        }

    @property
    def primary_proxy_name(self) -> str | None:
        """In proxy mode, the `<icserver>` name that accepts logins; None in direct mode."""
        if not self.proxy_names:
            return None
        return self.proxy_primary or self.proxy_names[0]


def users_named(prefix: str, count: int, password: str) -> dict[str, str]:
    """`count` users `<prefix>.0001` ... sharing one password: a contact centre in one call.

    Numbers are zero-padded to at least four digits, so names sort in number order.
    """
    if count < 1:
        raise ValueError(f"a user count must be positive, not {count}")
    width = max(4, len(str(count)))
    return {f"{prefix}.{number:0{width}d}": password for number in range(1, count + 1)}


def _positive_or_none(value: float | None) -> bool:
    return value is None or value > 0


def _require(ok: bool, name: str, value: object) -> None:
    if not ok:
        raise ValueError(f"SimulatorConfig.{name} has an unsupported value: {value!r}")
