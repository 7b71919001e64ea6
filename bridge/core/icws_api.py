"""ICWS calls as values: what to send for each call, and what each answer means.

Nothing here sends anything. ``session.py`` turns a :class:`Call` into an HTTP request and hands
the :class:`Answer` back to the ``interpret_*`` functions, which return a typed result or an
:class:`~bridge.errors.IcwsError` *value* (never raised here) for the shell to raise, retry or
report. The protocol facts behind each choice are in ``docs/icws-protocol.md``; section numbers are
given where a choice is not obvious.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge import errors
from bridge.core.messages import ConnectionChange
from bridge.core.paths import segment
from bridge.core.paths import session_root as _session

ICWS_JSON = "application/vnd.inin.icws+JSON;charset=utf-8"
EVENT_STREAM = "text/event-stream"
CSRF_HEADER = "ININ-ICWS-CSRF-Token"
SESSION_HEADER = "ININ-ICWS-Session-ID"
AUTH_FAILURE = "error.request.connection.authenticationFailure"
AUTH_FAILURE_CODE = -2147221503

Transport = Literal["sse", "poll"]


@dataclass(frozen=True, slots=True)
class Call:
    """One ICWS request, described. ``body`` is hidden from repr: a login body holds a password."""

    name: str
    method: str
    path: str
    body: Mapping[str, Any] | None = field(default=None, repr=False)
    query: tuple[tuple[str, str], ...] = ()
    csrf: bool = True
    accept: str = ICWS_JSON
    ok: frozenset[int] = frozenset({200})


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: status, headers (as received) and the decoded JSON body, if any."""

    status: int
    headers: Mapping[str, str]
    body: Any = None


@dataclass(frozen=True, slots=True)
class Login:
    session_id: str
    csrf_token: str = field(repr=False)
    features: Mapping[str, int]
    alternates: tuple[str, ...]
    server: str
    version: str


# --- subscriptions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription kind: where it lives, what feature it needs, what success looks like."""

    name: str
    path: str
    feature: str
    min_version: int
    ok: frozenset[int]


SUBSCRIPTIONS: Mapping[str, Subscription] = {
    s.name: s
    for s in (
        Subscription(
            "alerting",
            "messaging/subscriptions/interaction-alerting",
            "interactions",
            6,
            frozenset({200, 204}),
        ),
        Subscription(
            "history",
            "messaging/subscriptions/interaction-history",
            "interactions",
            4,
            frozenset({200, 204}),
        ),
        Subscription(
            "status_messages",
            "messaging/subscriptions/status/status-messages",
            "status",
            1,
            frozenset({200, 204}),
        ),
        Subscription(
            "assistance",
            "messaging/subscriptions/interactions/agent-assistance",
            "interactions",
            9,
            frozenset({200, 204}),
        ),
    )
}


def subscribe(session_id: str, name: str, body: Mapping[str, Any] | None) -> Call:
    """PUT a subscription (creates or replaces it; ICWS then sends a full snapshot)."""
    sub = SUBSCRIPTIONS[name]
    return Call(f"subscribe.{name}", "PUT", f"{_session(session_id)}/{sub.path}", body, ok=sub.ok)


def unsubscribe(session_id: str, name: str) -> Call:
    """DELETE a subscription."""
    sub = SUBSCRIPTIONS[name]
    return Call(f"unsubscribe.{name}", "DELETE", f"{_session(session_id)}/{sub.path}", ok=sub.ok)


def assistance_details(session_id: str, assistance_id: str, *, subscribe: bool) -> Call:
    """PUT (or DELETE) the details subscription of one assistance request."""
    path = f"{_session(session_id)}/{SUBSCRIPTIONS['assistance'].path}/{segment(assistance_id)}"
    verb, method = ("subscribe", "PUT") if subscribe else ("unsubscribe", "DELETE")
    return Call(f"{verb}.assistance_details", method, path, ok=frozenset({200, 204}))


ASSISTANCE_LIST = "urn:inin.com:interactions.assistance:assistanceRequestListMessage"


@dataclass(frozen=True, slots=True)
class MissingFeature:
    subscription: str
    feature: str
    needed: int
    have: int | None

    def describe(self) -> str:
        have = "absent" if self.have is None else f"version {self.have}"
        return (
            f"subscription {self.subscription} needs ICWS feature {self.feature} >= "
            f"{self.needed}, server has {have}"
        )


def missing_features(features: Mapping[str, int], wanted: list[str]) -> list[MissingFeature]:
    """The wanted subscriptions that the server's feature versions cannot serve."""
    missing = []
    for name in wanted:
        sub = SUBSCRIPTIONS[name]
        have = features.get(sub.feature)
        if have is None or have < sub.min_version:
            missing.append(MissingFeature(name, sub.feature, sub.min_version, have))
    return missing


def choose_transport(
    mode: Literal["auto", "sse", "poll"], features: Mapping[str, int]
) -> Transport:
    """SSE needs messaging >= 2 (2016 R3); forcing SSE on an older server falls back to polling."""
    if mode == "poll" or features.get("messaging", 1) < 2:
        return "poll"
    return "sse"


# --- connection ----------------------------------------------------------------------------


def login(application_name: str, user: str, password: str) -> Call:
    """POST /icws/connection with user and password (§1.1)."""
    body = {
        "__type": "urn:inin.com:connection:icAuthConnectionRequestSettings",
        "applicationName": application_name,
        "userID": user,
        "password": password,
    }
    return Call(
        "login",
        "POST",
        "/icws/connection",
        body,
        query=(("include", "features,version"),),
        csrf=False,
        ok=frozenset({201}),
    )


def interpret_login(answer: Answer) -> Login | errors.IcwsError:
    """Read sessionId and csrfToken from the body or, failing that, the headers."""
    if answer.status != 201:
        return failure("login", answer, login=True)
    body = answer.body if isinstance(answer.body, dict) else {}
    headers = {k.lower(): v for k, v in answer.headers.items()}
    session_id = body.get("sessionId") or headers.get(SESSION_HEADER.lower())
    token = body.get("csrfToken") or headers.get(CSRF_HEADER.lower())
    if not session_id or not token:
        return errors.ServerError("login answer has no sessionId or csrfToken", status=201)
    listed = body.get("features")
    features = {
        str(f["featureId"]): _int(f.get("version"))
        for f in (listed if isinstance(listed, list) else ())
        if isinstance(f, dict) and "featureId" in f
    }
    version = body.get("version")
    version = version if isinstance(version, dict) else {}
    return Login(
        session_id=str(session_id),
        csrf_token=str(token),
        features=features,
        alternates=_hosts(body.get("alternateHostList")),
        server=str(body.get("icServer", "")),
        version=str(
            version.get("productPatchDisplayString")
            or version.get("productReleaseDisplayString")
            or ""
        ),
    )


_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


def _hosts(value: Any) -> tuple[str, ...]:
    # A list of host names (§3.3); anything else (a lone string, an object) names no host, and
    # an entry that is no host name (a URL, a path, spaces) is dropped rather than sent to.
    if not isinstance(value, list):
        return ()
    return tuple(h for h in value if isinstance(h, str) and _HOST_NAME.fullmatch(h))


def _int(value: Any) -> int:
    # Some servers and clients carry versions as strings; compare integers (§1.5).
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def features() -> Call:
    """GET /icws/connection/features: sessionless, cheap; any answer means the server is up."""
    return Call("features", "GET", "/icws/connection/features", csrf=False)


def check_connection(session_id: str) -> Call:
    """GET /icws/{sessionId}/connection (§1.2)."""
    return Call("check", "GET", f"{_session(session_id)}/connection")


def interpret_connection(answer: Answer) -> ConnectionChange | errors.IcwsError:
    """Up, or Down with the reason; a 401 is a lost session (§1.2, §3.1).

    The answer is the same connection state a ``connectionStateChangeMessage`` carries, so it
    is the same type, and the session rules read both alike.
    """
    if answer.status != 200:
        return failure("check", answer)
    body = answer.body if isinstance(answer.body, dict) else {}
    reconnect = body.get("shouldReconnect")
    return ConnectionChange(
        up=body.get("connectionState") == 1,
        reason=str(body.get("reason", "")),
        should_reconnect=reconnect if isinstance(reconnect, bool) else None,
    )


def logout(session_id: str) -> Call:
    """DELETE /icws/{sessionId}/connection; 200 and 204 both seen (§1.3)."""
    return Call("logout", "DELETE", f"{_session(session_id)}/connection", ok=frozenset({200, 204}))


def messages(session_id: str, transport: Transport) -> Call:
    """GET the message queue: a drained JSON array, or an SSE stream on the same URL (§2)."""
    return Call(
        f"messages.{transport}",
        "GET",
        f"{_session(session_id)}/messaging/messages",
        accept=EVENT_STREAM if transport == "sse" else ICWS_JSON,
    )


def heartbeat(session_id: str) -> Call:
    """POST /icws/{sessionId}/messaging/heartbeat: CSRF header, no body (§2.3, §10).

    No success code is documented; any 2xx is taken. 404/410 mean the server has no heartbeat.
    """
    return Call(
        "heartbeat",
        "POST",
        f"/icws/{session_id}/messaging/heartbeat",
        ok=frozenset({200, 202, 204}),
    )


def interpret_messages(answer: Answer) -> list[Any] | errors.IcwsError:
    """The drained messages; an empty or missing body is no messages (pitfall 4, §6.5)."""
    if answer.status != 200:
        return failure("messages", answer)
    if answer.body is None:
        return []
    if not isinstance(answer.body, list):
        return errors.ServerError("messages answer is not a JSON array", status=200)
    return answer.body


# --- agent assistance ----------------------------------------------------------------------


def assistance_update(session_id: str, assistance_id: str, text: str) -> Call:
    """POST a message to an assistance request."""
    return Call(
        "assistance.update",
        "POST",
        f"{_session(session_id)}/interactions/agent-assistance/{segment(assistance_id)}",
        {"text": text},
        ok=frozenset({200, 201, 202, 204}),
    )


def assistance_complete(session_id: str, assistance_id: str) -> Call:
    """DELETE an assistance request: complete it."""
    return Call(
        "assistance.complete",
        "DELETE",
        f"{_session(session_id)}/interactions/agent-assistance/{segment(assistance_id)}",
        ok=frozenset({200, 204}),
    )


def interpret_ok(call: Call, answer: Answer) -> errors.IcwsError | None:
    """None when the status is one the call expects, else the failure it means."""
    return None if answer.status in call.ok else failure(call.name, answer)


# --- failures ------------------------------------------------------------------------------

_BY_STATUS: Mapping[int, type[errors.IcwsError]] = {
    400: errors.RequestRejected,
    401: errors.SessionLost,
    403: errors.ResourceGone,
    404: errors.ResourceGone,
    410: errors.ResourceGone,
    503: errors.ServerUnavailable,
}


def failure(what: str, answer: Answer, *, login: bool = False) -> errors.IcwsError:
    """The typed error an unexpected answer means, keeping only errorId and a short message."""
    body = answer.body if isinstance(answer.body, dict) else {}
    error_id = body.get("errorId")
    error_id = str(error_id)[:100] if error_id is not None else None
    message = str(body.get("message") or "")[:200]
    status = answer.status
    cls = _login_failure(status, body) if login else _BY_STATUS.get(status, errors.ServerError)
    text = f"{what}: HTTP {answer.status}" + (f" {error_id}" if error_id else "")
    if message:
        text += f": {message}"
    alternates = _hosts(body.get("alternateHostList"))
    return cls(text, status=answer.status, error_id=error_id, alternates=alternates)


def _login_failure(status: int, body: Mapping[str, Any]) -> type[errors.IcwsError]:
    """A login answer other than 201 (§10): another host, server trouble, or a refusal."""
    if status == 400 and bad_credentials(body):
        return errors.AuthenticationFailed
    # A 3xx (a sign-in page) is never followed: like ruby-ic, take it as a 503.
    if status == 503 or 300 <= status < 400:
        return errors.ServerUnavailable
    if status >= 500:
        return errors.ServerError
    return errors.LoginRefused


def bad_credentials(body: Mapping[str, Any]) -> bool:
    """The authenticationFailure errorId, or its errorCode alone as servers before CIC 4.0.6."""
    error_id = body.get("errorId")
    if error_id is not None:
        return bool(error_id == AUTH_FAILURE)
    return str(body.get("errorCode")) == str(AUTH_FAILURE_CODE)
