"""The bridge's one exception tree; each error says whether trying again can help.

    BridgeError (retriable: bool)
    ├── ConfigError                 settings invalid or missing; start-up stops   (not retriable)
    ├── IcwsError                   an ICWS call failed; carries status, errorId, message
    │   ├── AuthenticationFailed    400 bad credentials at login                 (retried slowly)
    │   ├── LoginRefused            any other 4xx or a non-ICWS answer at login  (retried slowly)
    │   ├── SessionLost             401, Down message, dead stream, failed check (retriable)
    │   ├── ServerUnavailable       503 (alternates), a 3xx at login, no answer  (retriable)
    │   ├── RequestRejected         400 on a call: bad data, unknown id          (not retriable)
    │   ├── ResourceGone            403 / 404 / 410 on a call                    (not retriable)
    │   └── ServerError             5xx or an unreadable answer                  (retriable)
    └── KafkaError                  delivery or consumption trouble              (retriable)

aiohttp's exceptions are translated into these in one place, ``icws/client.py``; aiokafka's in
one place too, ``kafka/clients.py`` (``translated``), used by every client of the Kafka adapter.
Messages never contain passwords, tokens or cookies: response bodies are truncated and only
their ``errorId`` and ``message`` fields are kept.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    retriable: bool = False


class ConfigError(BridgeError):
    """A setting is invalid or missing; the message names it."""


class IcwsError(BridgeError):
    """An ICWS call did not do what was asked."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_id: str | None = None,
        alternates: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.alternates = alternates


class AuthenticationFailed(IcwsError):
    """ICWS refused the credentials (400 authenticationFailure, or its errorCode alone)."""

    retriable = True


class LoginRefused(IcwsError):
    """ICWS answered a login with neither a session nor a redirect to another host.

    A licence, permission or missing-feature refusal, an unknown errorId, a proxy's sign-in or
    error page: nothing the bridge can fix by trying at once, nor a reason to stop the process.
    """

    retriable = True


class SessionLost(IcwsError):
    """The session is gone: log in again and re-create the subscriptions."""

    retriable = True


class ServerUnavailable(IcwsError):
    """The host does not accept connections now; try an alternate host."""

    retriable = True


class RequestRejected(IcwsError):
    """ICWS rejected the request itself (400); sending it again cannot help."""


class ResourceGone(IcwsError):
    """The resource is forbidden, missing or removed (403, 404, 410)."""


class ServerError(IcwsError):
    """ICWS failed (5xx) or answered something unreadable."""

    retriable = True


class KafkaError(BridgeError):
    """Kafka did not take or give records."""

    retriable = True
