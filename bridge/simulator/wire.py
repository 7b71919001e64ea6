"""ICWS wire vocabulary: media type, message URNs, enum values, dates and error bodies.

Everything here is transcribed from docs/icws-protocol.md (§2.4, §3.1, §4, §5); the rest of the
simulator builds on these names so that one table, not scattered literals, says what the wire holds.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from aiohttp import web

# The SDK checks for `application/vnd.inin.icws+json`; the charset parameter is a guess (§8.12).
CONTENT_TYPE = "application/vnd.inin.icws+json; charset=utf-8"
WWW_AUTHENTICATE = 'ICWS realm="ICWS" location="/ICWS/connection"'
SESSION_ID_HEADER = "ININ-ICWS-Session-ID"
CSRF_HEADER = "ININ-ICWS-CSRF-Token"

JsonObject = dict[str, Any]


class Urn:
    """The `__type` constants of every message and request body the simulator speaks."""

    IC_AUTH_SETTINGS = "urn:inin.com:connection:icAuthConnectionRequestSettings"
    # A type URN, not a secret.
    TOKEN_SETTINGS = "urn:inin.com:connection:authTokenConnectionRequestSettings"  # noqa: S105
    SSO_SETTINGS = "urn:inin.com:connection:singleSignOnTokenConnectionRequestSettings"
    CONNECTION_STATE_CHANGE = "urn:inin.com:connection:connectionStateChangeMessage"
    ALERTING = "urn:inin.com:interactions:interactionAlertingMessage"
    HISTORY = "urn:inin.com:interactions:historyMessage"
    STATUS_MESSAGES = "urn:inin.com:status:statusMessagesMessage"
    # The dot after "interactions" is real (§4.4, pitfall 8).
    ASSISTANCE_LIST = "urn:inin.com:interactions.assistance:assistanceRequestListMessage"
    ASSISTANCE_DETAILS = "urn:inin.com:interactions.assistance:assistanceRequestDetailsMessage"
    SUBSCRIPTION_STATE = "urn:inin.com:messaging:subscriptionStateMessage"
    ASSISTANCE_SUBSCRIPTION_STATE = (
        "urn:inin.com:interactions.assistance:assistanceRequestSubscriptionStateMessage"
    )
    MISSING_PROPERTY = "urn:inin.com:common:missingPropertyError"
    INVALID_PROPERTY = "urn:inin.com:common:invalidPropertyError"


class ConnectionState(IntEnum):
    """`urn:inin.com:connection:connectionState`."""

    NONE = 0
    UP = 1
    DOWN = 2


class SubscriptionState(IntEnum):
    """`urn:inin.com:messaging:subscriptionState`."""

    NONE = 0
    NORMAL = 1
    SUSPENDED = 2
    FAULTED = 3


class AlertType(IntEnum):
    """`interactionAlertTypes` of an alerting interaction."""

    NONE = 0
    USER = 1
    STATION = 2
    WORKGROUP = 3
    STATION_GROUP = 4
    ACD_USER = 5
    ACD_STATION = 6


class AlertAction(IntEnum):
    """`interactionAlertActions`: start or stop alerting."""

    NONE = 0
    START_ALERTING = 1
    STOP_ALERTING = 2


class QueueType(IntEnum):
    """`urn:inin.com:queues:queueType` of a monitored queue."""

    SYSTEM = 0
    USER = 1
    WORKGROUP = 2
    STATION = 3


class Direction(IntEnum):
    """`interactionDirection` of a history item."""

    NONE = 0
    INCOMING = 1
    OUTGOING = 2


class HistoryStatus(IntEnum):
    """`interactionHistoryStatusType` of a history item."""

    NONE = 0
    CONNECTED = 1
    FORWARDED = 2


class AssistanceState(IntEnum):
    """State of an assistance request."""

    NONE = 0
    ACCEPTED = 1
    COMPLETED = 2


class ParticipantAction(IntEnum):
    """What a participant did with an assistance request."""

    NONE = 0
    INITIATED = 1
    IGNORED = 2
    ACCEPTED = 3


def compact_time(moment: datetime | None = None) -> str:
    """Format a moment as ICWS compact ISO-8601 UTC, e.g. `20240105T141502Z`."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# kind -> (HTTP status, body). Bodies are the ones quoted from real servers in §3.1 and §5.
_ERRORS: dict[str, tuple[int, JsonObject]] = {
    "authentication_failed": (
        400,
        {
            "errorId": "error.request.connection.authenticationFailure",
            "errorCode": -2147221503,
            "message": "The authentication process failed.",
        },
    ),
    "invalid_representation": (
        400,
        {
            "errorId": "error.request.invalidRepresentation",
            "message": "The request body could not be read.",
        },
    ),
    "invalid_property": (
        400,
        {
            "errorId": "error.request.invalidRepresentation.invalidProperty",
            "message": "A property of the request is invalid.",
        },
    ),
    "missing_session_id": (401, {"errorCode": 1, "message": "This request requires a session ID!"}),
    "missing_csrf_token": (
        401,
        {
            "errorCode": 2,
            "message": "An authentication token was expected in the request, but not found.",
        },
    ),
    "invalid_session": (
        401,
        {
            "errorId": "error.request.connection.authenticationFailure",
            "errorCode": -2147221499,
            "message": "The session identifier is invalid.",
        },
    ),
    "unsupported": (
        404,
        {"errorId": "error.request.unsupported", "message": "The resource is not supported."},
    ),
    # No errorId was ever observed for a missing sub-resource; this one is invented.
    "not_found": (
        404,
        {"errorId": "error.request.notFound", "message": "The resource was not found."},
    ),
    "method_not_allowed": (
        405,
        {
            "errorId": "error.request.accessDenied.httpMethodNotAllowed",
            "message": "The HTTP method is not allowed for this resource.",
        },
    ),
    "gone": (
        410,
        {
            "errorId": "error.request.gone",
            "message": "This resource has been deprecated and removed from the API.",
        },
    ),
    "internal": (
        500,
        {
            "errorId": "error.server.internal",
            "errorCode": -2147467259,
            "message": "An unexpected error occurred while processing the request.",
        },
    ),
    "not_accepting_connections": (
        503,
        {
            "alternateHostList": [],
            "errorId": "error.server.notAcceptingConnections",
            "message": "This Session Manager is not currently accepting connections.",
        },
    ),
}
_KIND_BY_STATUS = {
    400: "invalid_representation",
    401: "invalid_session",
    404: "unsupported",
    405: "method_not_allowed",
    410: "gone",
    500: "internal",
    503: "not_accepting_connections",
}


class IcwsError(Exception):
    """An ICWS error answer; raised by handlers and rendered once by the app's middleware."""

    def __init__(self, status: int, body: JsonObject, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {body.get('message', '')}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if status == 401:
            # §3.1: every 401 carries this challenge; clients key their re-login on it.
            self.headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)

    @classmethod
    def of(cls, kind: str, message: str | None = None, **extra: Any) -> IcwsError:
        """Build the catalogued error `kind`, optionally with a specific message and fields."""
        status, body = _ERRORS[kind]
        body = copy.deepcopy(body)
        if message is not None:
            body["message"] = message
        body.update(extra)
        return cls(status, body)

    @classmethod
    def for_status(cls, status: int, message: str | None = None) -> IcwsError:
        """Build the most plausible ICWS error for an arbitrary injected HTTP status."""
        kind = _KIND_BY_STATUS.get(status)
        if kind is None:
            return cls(
                status,
                {"errorId": "error.server.simulated", "message": message or "Injected failure."},
            )
        return cls.of(kind, message)

    @classmethod
    def missing_property(cls, name: str) -> IcwsError:
        """The `missingPropertyError` for a required body property that is absent."""
        return cls.of(
            "invalid_property",
            f"The property '{name}' is required.",
            # Spelled as a dict: a `__type=` keyword would be name-mangled inside the class.
            **{"__type": Urn.MISSING_PROPERTY, "propertyName": name},
            errorId="error.request.invalidRepresentation.missingProperty",
        )

    @classmethod
    def invalid_property(cls, name: str, why: str) -> IcwsError:
        """The `invalidPropertyError` for a body property with an unusable value."""
        return cls.of(
            "invalid_property", why, **{"__type": Urn.INVALID_PROPERTY, "propertyName": name}
        )


def encode(value: Any) -> bytes:
    """Compact JSON, as a real server writes it."""
    return json.dumps(value, separators=(",", ":")).encode()


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A response carrying `body` as JSON with the ICWS media type."""
    return web.Response(
        status=status,
        body=encode(body),
        headers={"Content-Type": CONTENT_TYPE, **(headers or {})},
    )


def empty_response(status: int) -> web.Response:
    """A bodiless success (204, or 200 where ICWS documents no body)."""
    if status == 204:
        return web.Response(status=204)
    # pitfall 4: ICWS sends some 200s with a JSON content type and an empty body; keep that quirk.
    return web.Response(status=status, body=b"", headers={"Content-Type": CONTENT_TYPE})


def error_response(error: IcwsError) -> web.Response:
    """Render an `IcwsError` as the ICWS error body and headers."""
    return json_response(error.body, error.status, error.headers)
