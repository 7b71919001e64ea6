"""The one place that speaks HTTP to ICWS: sends a described :class:`Call`, returns an Answer.

It owns the aiohttp ``ClientSession`` (cookie jar, TLS, timeouts) and translates aiohttp's
exceptions into the bridge's, so no other module sees aiohttp. Secrets never leave it: the CSRF
token goes only into the request header, cookies only into the jar, and error texts carry the
call name and status, never headers or bodies.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, Self

import aiohttp
from yarl import URL

from bridge import errors
from bridge.core import icws_api
from bridge.core.icws_api import Answer, Call
from bridge.metrics import Metrics
from bridge.settings import IcwsSettings


class ByteStream(Protocol):
    """An open response body read in chunks; ``b""`` means the server closed it."""

    async def readany(self) -> bytes: ...


class Client(Protocol):
    """What the rest of the ICWS adapter needs of a client: :class:`IcwsClient`, or a fake."""

    csrf_token: str | None

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def new_session(self, token: str | None) -> None: ...

    async def send(self, base: str, call: Call) -> Answer: ...

    def stream(self, base: str, call: Call) -> AbstractAsyncContextManager[ByteStream | Answer]: ...


def tls_context(settings: IcwsSettings) -> ssl.SSLContext | bool:
    """Verification on (with an optional extra CA) unless explicitly turned off.

    Every account's client shares one context per (verification, CA file): a context holds the
    whole CA store (about 0.8 MB), so one each would cost 800 MB for 1,000 accounts (BENCHMARKS.md,
    Fleet). A context may be shared by any number of connections.
    """
    if not settings.verify_tls:
        return False
    return _shared_context(str(settings.ca_file) if settings.ca_file else None)


@functools.lru_cache(maxsize=4)
def _shared_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class IcwsClient:
    """Sends ICWS calls with the session's cookie jar and CSRF token."""

    def __init__(self, settings: IcwsSettings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        # unsafe=True: the jar must also keep cookies of servers addressed by IP.
        self._jar = aiohttp.CookieJar(unsafe=True)
        self._http: aiohttp.ClientSession | None = None
        self.csrf_token: str | None = None

    async def __aenter__(self) -> IcwsClient:
        self._http = aiohttp.ClientSession(
            cookie_jar=self._jar,
            connector=aiohttp.TCPConnector(ssl=tls_context(self._settings), limit=8),
            timeout=aiohttp.ClientTimeout(total=self._settings.request_timeout_seconds),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    def new_session(self, token: str | None) -> None:
        """Forget the old session's cookies and token; the login answer brings new ones."""
        self._jar.clear()
        self.csrf_token = token

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"Accept-Language": self._settings.language, "Accept": call.accept}
        if call.body is not None:
            headers["Content-Type"] = icws_api.ICWS_JSON
        if call.csrf and self.csrf_token:
            headers[icws_api.CSRF_HEADER] = self.csrf_token
        return headers

    def _count(self, call: Call, status: int | str) -> None:
        label = f"{status // 100}xx" if isinstance(status, int) else status
        self._metrics.icws_requests.labels(call=call.name, status=label).inc()

    async def send(self, base: str, call: Call) -> Answer:
        """Send ``call`` to ``base``; connection trouble raises ServerUnavailable."""
        assert self._http is not None, "use IcwsClient as an async context manager"
        try:
            async with self._http.request(
                call.method,
                _url(base, call),
                params=list(call.query),
                data=None if call.body is None else json.dumps(call.body),
                headers=self._headers(call),
                # A 3xx is an answer to judge (at login: like a 503), never a GET to follow.
                allow_redirects=False,
            ) as response:
                body = await _json_body(response)
                self._count(call, response.status)
                return Answer(response.status, dict(response.headers), body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count(call, "error")
            raise errors.ServerUnavailable(f"{call.name}: {base} {_unreachable(exc)}") from None

    @asynccontextmanager
    async def stream(self, base: str, call: Call) -> AsyncIterator[ByteStream | Answer]:
        """Open a long-lived response: its byte stream, or the Answer if it is not a stream.

        No connection raises ServerUnavailable; a stream broken after it opened raises
        ServerError from ``readany``. Neither says the session is lost: the caller checks.
        The Answer keeps the headers, so the caller can tell a proxy's HTML page (by its
        Content-Type) from ICWS's JSON array.
        """
        assert self._http is not None, "use IcwsClient as an async context manager"
        no_total = aiohttp.ClientTimeout(
            total=None, sock_connect=self._settings.request_timeout_seconds
        )
        try:
            async with self._http.get(
                _url(base, call), headers=self._headers(call), timeout=no_total
            ) as response:
                self._count(call, response.status)
                if response.status != 200 or not response.content_type.startswith(
                    icws_api.EVENT_STREAM
                ):
                    yield Answer(
                        response.status, dict(response.headers), await _json_body(response)
                    )
                    return
                yield _Body(response.content)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count(call, "error")
            raise errors.ServerUnavailable(
                f"stream: {base} unreachable ({type(exc).__name__})"
            ) from None


class _Body:
    """An open stream's body; a connection broken mid-stream becomes ServerError."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content

    async def readany(self) -> bytes:
        try:
            return await self._content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.ServerError(f"stream broken ({type(exc).__name__})") from None


def _url(base: str, call: Call) -> URL:
    # The core percent-encodes every path value as the SDK does; encoded=True stops yarl from
    # decoding or re-quoting it (it would turn %3A back into ":", and %2F is an id's slash).
    return URL(base + call.path, encoded=True)


def _unreachable(exc: Exception) -> str:
    """Why no answer came, in words an operator can act on (TLS failures named as such)."""
    # A refused certificate is a setting to fix (ca_file), not a host that is down: say so.
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        detail = getattr(cause, "verify_message", None) or type(cause).__name__
        return f"TLS certificate verify failed for host {exc.host} ({detail})"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS handshake with host {exc.host} failed ({type(exc).__name__})"
    return f"unreachable ({type(exc).__name__})"


async def _json_body(response: aiohttp.ClientResponse) -> Any:
    # 204s and some 200s have empty bodies (pitfall 4); an unreadable body is an error for the
    # interpreter to judge from the status, so it becomes None rather than an exception.
    raw = await response.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
