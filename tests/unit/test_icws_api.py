"""ICWS calls are described as values, and every answer is interpreted into a result or an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import errors
from bridge.core import hosts, icws_api, paths
from bridge.core.icws_api import Answer, Call, Login, MissingFeature
from bridge.core.messages import ConnectionChange
from tests.unit.core_strategies import json_values

SAMPLES = sorted((Path(__file__).parents[1] / "samples" / "answers").glob("*.json"))
INTERPRETERS = {
    "login": icws_api.interpret_login,
    "check": icws_api.interpret_connection,
    "messages": icws_api.interpret_messages,
}
AUTH_FAILURE = {
    "errorId": "error.request.connection.authenticationFailure",
    "errorCode": -2147221503,
    "message": "The authentication process failed.",
}


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def described(result: Any) -> dict[str, Any]:
    """An interpreter's result in the JSON shape the answer samples use for ``expect``."""
    if isinstance(result, errors.IcwsError):
        return {
            "error": {
                "class": type(result).__name__,
                "status": result.status,
                "error_id": result.error_id,
                "alternates": list(result.alternates),
                "message": str(result),
            }
        }
    if isinstance(result, Login):
        return {
            "login": {
                "session_id": result.session_id,
                "csrf_token": result.csrf_token,
                "features": dict(result.features),
                "alternates": list(result.alternates),
                "server": result.server,
                "version": result.version,
            }
        }
    if isinstance(result, ConnectionChange):
        return {
            "connection": {
                "up": result.up,
                "reason": result.reason,
                "should_reconnect": result.should_reconnect,
            }
        }
    return {"messages": result}


class TestAnswerSamples:
    """Every recorded answer is interpreted into exactly the value written beside it."""

    @pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
    def test_sample_answer_is_interpreted_as_expected(self, path: Path) -> None:
        """The interpreter named by the sample gives its ``expect`` block."""
        sample = load(path)
        answer = Answer(**sample["answer"])
        assert described(INTERPRETERS[sample["call"]](answer)) == sample["expect"]


class TestLoginCall:
    """The login call is a POST with the user's credentials, asking for features and version."""

    def test_the_call(self) -> None:
        """POST /icws/connection?include=features,version, without CSRF, 201 expected."""
        call = icws_api.login("icws-bridge", "agent.one", "hunter2")
        assert (call.name, call.method, call.path, call.query, call.csrf, call.ok) == (
            "login",
            "POST",
            "/icws/connection",
            (("include", "features,version"),),
            False,
            frozenset({201}),
        )
        assert call.accept == "application/vnd.inin.icws+JSON;charset=utf-8"

    def test_the_body_is_an_ic_auth_request(self) -> None:
        """The body has the icAuth type and ``userID`` spelled with a capital ID."""
        call = icws_api.login("icws-bridge", "agent.one", "hunter2")
        assert call.body == {
            "__type": "urn:inin.com:connection:icAuthConnectionRequestSettings",
            "applicationName": "icws-bridge",
            "userID": "agent.one",
            "password": "hunter2",
        }

    def test_the_password_is_not_in_the_repr(self) -> None:
        """A logged or printed call never shows the password."""
        call = icws_api.login("icws-bridge", "agent.one", "hunter2")
        assert "hunter2" not in repr(call)
        assert "hunter2" not in str(call)

    def test_the_csrf_token_is_not_in_a_login_repr(self) -> None:
        """The session's CSRF token is hidden when a login result is shown."""
        login = icws_api.interpret_login(
            Answer(201, {}, {"sessionId": "1", "csrfToken": "s3cr3t-token"})
        )
        assert isinstance(login, Login)
        assert "s3cr3t-token" not in repr(login)


class TestInterpretLogin:
    """A 201 gives the session; ids come from the body or, failing that, the headers."""

    def test_the_body_wins_over_the_headers(self) -> None:
        """When both carry the ids, the body's are used."""
        answer = Answer(
            201,
            {"ININ-ICWS-Session-ID": "2", "ININ-ICWS-CSRF-Token": "header"},
            {"sessionId": "1", "csrfToken": "body"},
        )
        login = icws_api.interpret_login(answer)
        assert isinstance(login, Login)
        assert (login.session_id, login.csrf_token) == ("1", "body")

    def test_a_missing_token_falls_back_to_its_header_alone(self) -> None:
        """Each id falls back on its own header."""
        answer = Answer(201, {"ININ-ICWS-CSRF-Token": "header"}, {"sessionId": "1"})
        login = icws_api.interpret_login(answer)
        assert isinstance(login, Login)
        assert (login.session_id, login.csrf_token) == ("1", "header")

    def test_the_release_name_stands_in_for_a_missing_patch_name(self) -> None:
        """Version shows the patch display string, else the release display string, else ''."""
        body = {"sessionId": "1", "csrfToken": "t", "version": {"productReleaseDisplayString": "R"}}
        login = icws_api.interpret_login(Answer(201, {}, body))
        assert isinstance(login, Login)
        assert login.version == "R"

    @pytest.mark.parametrize(
        "hosts", ["icserver-b", {"host": "icserver-b"}, None], ids=["string", "object", "null"]
    )
    def test_alternates_that_are_not_a_list_name_no_host(self, hosts: Any) -> None:
        """A lone string is not split into characters; anything but a list is ignored."""
        body = {"sessionId": "1", "csrfToken": "t", "alternateHostList": hosts}
        login = icws_api.interpret_login(Answer(201, {}, body))
        assert isinstance(login, Login)
        assert login.alternates == ()


HTML_PAGE = '<html><body><a href="/login.html">Sign in</a></body></html>'


class TestLoginAnswers:
    """Every login answer real servers and proxies send is classified as ICWS-PROTOCOL §1.1/§10 say.

    Bad credentials are the authenticationFailure errorId, or errorCode -2147221503 with no
    errorId (CIC before 4.0.6). A 3xx is a host that does not take the login, like a 503. Any
    other 4xx, or a 2xx that is not a login, is a refusal; none of them is a reason to stop.
    """

    @pytest.mark.parametrize(
        ("status", "body", "cls"),
        [
            (400, AUTH_FAILURE, errors.AuthenticationFailed),
            (400, {"errorCode": -2147221503}, errors.AuthenticationFailed),
            (400, {"errorCode": -2147221503, "message": "failed"}, errors.AuthenticationFailed),
            (400, {"errorCode": "-2147221503"}, errors.AuthenticationFailed),
            (
                400,
                {"errorId": "error.request.invalidRepresentation.invalidProperty"},
                errors.LoginRefused,
            ),
            (
                400,
                {"errorId": "error.request.something.new", "errorCode": -2147221503},
                errors.LoginRefused,
            ),
            (400, {"errorCode": -2147221499}, errors.LoginRefused),
            (400, None, errors.LoginRefused),
            (401, HTML_PAGE, errors.LoginRefused),
            (
                403,
                {"errorId": "error.request.accessDenied.license", "message": "No licence"},
                errors.LoginRefused,
            ),
            (404, None, errors.LoginRefused),
            (404, {"errorId": "error.request.unsupported"}, errors.LoginRefused),
            (410, None, errors.LoginRefused),
            (429, None, errors.LoginRefused),
            (200, HTML_PAGE, errors.LoginRefused),
            (200, None, errors.LoginRefused),
            (301, HTML_PAGE, errors.ServerUnavailable),
            (302, HTML_PAGE, errors.ServerUnavailable),
            (302, None, errors.ServerUnavailable),
            (307, {"alternateHostList": ["ic-b"]}, errors.ServerUnavailable),
            (503, {"alternateHostList": ["ic-b"]}, errors.ServerUnavailable),
            (500, {"errorCode": -2147467259}, errors.ServerError),
            (502, HTML_PAGE, errors.ServerError),
            (201, None, errors.ServerError),
            (201, HTML_PAGE, errors.ServerError),
        ],
        ids=[
            "400-full-body",
            "400-error-code-only",
            "400-error-code-and-message",
            "400-error-code-as-string",
            "400-other-error-id",
            "400-other-error-id-with-the-code",
            "400-other-error-code",
            "400-no-body",
            "401-proxy-page",
            "403-licence",
            "404-no-body",
            "404-unsupported",
            "410",
            "429",
            "200-html",
            "200-empty",
            "301-html",
            "302-html",
            "302-empty",
            "307-alternates",
            "503-alternates",
            "500",
            "502-html",
            "201-truncated-json",
            "201-html",
        ],
    )
    def test_each_login_answer_has_its_error(
        self, status: int, body: Any, cls: type[errors.IcwsError]
    ) -> None:
        """The class follows status and body as the real clients read them."""
        error = icws_api.interpret_login(Answer(status, {"Location": "/login.html"}, body))
        assert type(error) is cls
        assert isinstance(error, errors.IcwsError)
        assert error.status == status

    def test_a_refusal_names_status_error_id_and_message(self) -> None:
        """The refusal's text is what the log line and readiness show: status, errorId, message."""
        body = {"errorId": "error.request.accessDenied.license", "message": "No licence"}
        error = icws_api.interpret_login(Answer(403, {}, body))
        assert str(error) == "login: HTTP 403 error.request.accessDenied.license: No licence"

    def test_a_redirect_page_names_only_its_status(self) -> None:
        """A 3xx HTML page gives its status; neither the page nor the Location is kept."""
        error = icws_api.interpret_login(
            Answer(302, {"Location": "/sso?SAMLRequest=c2VjcmV0"}, HTML_PAGE)
        )
        assert isinstance(error, errors.ServerUnavailable)
        assert (str(error), error.alternates) == ("login: HTTP 302", ())

    def test_a_truncated_201_with_ids_in_the_headers_still_logs_in(self) -> None:
        """A body that did not decode loses the features, not the session the headers name."""
        headers = {"ININ-ICWS-Session-ID": "7", "ININ-ICWS-CSRF-Token": "t0k3n"}
        login = icws_api.interpret_login(Answer(201, headers, None))
        assert isinstance(login, Login)
        assert (login.session_id, login.features, login.alternates) == ("7", {}, ())

    @pytest.mark.parametrize("features", [5, "messaging", {"featureId": "messaging"}, None])
    def test_a_features_value_that_is_not_a_list_lists_none(self, features: Any) -> None:
        """Only a list of feature objects counts; any other value is no features, not a crash."""
        body = {"sessionId": "1", "csrfToken": "t", "features": features}
        login = icws_api.interpret_login(Answer(201, {}, body))
        assert isinstance(login, Login)
        assert login.features == {}

    @given(
        status=st.integers(min_value=100, max_value=599),
        body=json_values | st.text(max_size=40),
        headers=st.dictionaries(st.sampled_from(["ININ-ICWS-Session-ID", "X"]), st.text()),
    )
    def test_no_login_answer_stops_the_bridge(
        self, status: int, body: Any, headers: dict[str, str]
    ) -> None:
        """Any status and body: a login or an error to retry, never an exception or a give-up."""
        result = icws_api.interpret_login(Answer(status, headers, body))
        assert isinstance(result, Login) or result.retriable


class TestFailures:
    """Unexpected answers become typed errors by status; only errorId and message are kept."""

    @pytest.mark.parametrize(
        ("status", "body", "login", "cls"),
        [
            (400, AUTH_FAILURE, True, errors.AuthenticationFailed),
            (400, AUTH_FAILURE, False, errors.RequestRejected),
            (
                400,
                {"errorId": "error.request.invalidRepresentation.invalidProperty"},
                True,
                errors.LoginRefused,
            ),
            (400, None, False, errors.RequestRejected),
            (401, {"errorCode": 2}, False, errors.SessionLost),
            (403, None, False, errors.ResourceGone),
            (404, {"errorId": "-2147221496"}, False, errors.ResourceGone),
            (410, None, False, errors.ResourceGone),
            (500, {"errorCode": -2147467259}, False, errors.ServerError),
            (502, None, False, errors.ServerError),
            (503, {"alternateHostList": ["b"]}, True, errors.ServerUnavailable),
            (503, None, False, errors.ServerUnavailable),
            (
                405,
                {"errorId": "error.request.accessDenied.httpMethodNotAllowed"},
                False,
                errors.ServerError,
            ),
        ],
        ids=[
            "400-auth-login",
            "400-auth-elsewhere",
            "400-other-login",
            "400-no-body",
            "401",
            "403",
            "404",
            "410",
            "500",
            "502",
            "503-alternates",
            "503-no-body",
            "405-unmapped",
        ],
    )
    def test_each_status_has_its_error(
        self, status: int, body: Any, login: bool, cls: type[errors.IcwsError]
    ) -> None:
        """The class depends on status, and for a 400 on login also on the errorId."""
        error = icws_api.failure("call", Answer(status, {}, body), login=login)
        assert type(error) is cls
        assert error.status == status

    @pytest.mark.parametrize(
        ("cls", "retriable"),
        [
            (errors.AuthenticationFailed, True),
            (errors.LoginRefused, True),
            (errors.SessionLost, True),
            (errors.ServerUnavailable, True),
            (errors.ServerError, True),
            (errors.RequestRejected, False),
            (errors.ResourceGone, False),
        ],
    )
    def test_retriable_says_whether_trying_again_can_help(
        self, cls: type[errors.IcwsError], retriable: bool
    ) -> None:
        """Session, availability, server and login errors are retried; the rest are not."""
        assert cls("x").retriable is retriable

    def test_a_503_carries_the_alternate_hosts(self) -> None:
        """The hosts a refusing server names travel with the error, in order."""
        body = {"alternateHostList": ["b", "c"], "errorId": "error.server.unavailable"}
        error = icws_api.failure("login", Answer(503, {}, body), login=True)
        assert (type(error), error.alternates, error.error_id) == (
            errors.ServerUnavailable,
            ("b", "c"),
            "error.server.unavailable",
        )

    def test_the_message_names_call_status_error_id_and_message(self) -> None:
        """``<call>: HTTP <status> <errorId>: <message>``."""
        error = icws_api.failure("subscribe.alerting", Answer(400, {}, AUTH_FAILURE))
        assert str(error) == (
            "subscribe.alerting: HTTP 400 error.request.connection.authenticationFailure: "
            "The authentication process failed."
        )

    def test_a_long_message_is_cut(self) -> None:
        """Only the first 200 characters of the body's message are kept."""
        error = icws_api.failure("check", Answer(500, {}, {"message": "m" * 5000}))
        assert str(error) == "check: HTTP 500: " + "m" * 200

    def test_a_long_error_id_is_cut(self) -> None:
        """Only the first 100 characters of an errorId are kept."""
        error = icws_api.failure("check", Answer(500, {}, {"errorId": "e" * 5000}))
        assert error.error_id == "e" * 100
        assert str(error) == "check: HTTP 500 " + "e" * 100

    def test_nothing_but_error_id_and_message_leaks(self) -> None:
        """Headers (cookies, tokens) and other body fields never reach the error text."""
        answer = Answer(
            401,
            {
                "Set-Cookie": "icws_1=6eabffb3-c873-4161-a777-6edfb6e189ab; Path=/icws/1",
                "ININ-ICWS-CSRF-Token": "WAlsaW5lYWRtaW5Y",
            },
            {"message": "expired", "password": "hunter2", "csrfToken": "WAlsaW5lYWRtaW5Y"},
        )
        error = icws_api.failure("check", answer)
        text = f"{error} {error!r} {error.args}"
        assert str(error) == "check: HTTP 401: expired"
        for secret in ("6eabffb3", "WAlsaW5lYWRtaW5Y", "hunter2"):
            assert secret not in text

    @pytest.mark.parametrize("body", ["<html>Service Unavailable</html>", [1, 2], None, 7])
    def test_a_body_that_is_not_an_object_is_only_a_status(self, body: Any) -> None:
        """HTML pages, arrays and numbers give an error with the status alone."""
        error = icws_api.failure("login", Answer(503, {}, body), login=True)
        assert (str(error), error.error_id, error.alternates) == ("login: HTTP 503", None, ())

    def test_interpret_ok_accepts_the_calls_own_statuses(self) -> None:
        """A status in ``call.ok`` is no error; any other is the failure it means."""
        call = icws_api.subscribe("1", "status_messages", None)
        assert icws_api.interpret_ok(call, Answer(200, {})) is None
        assert icws_api.interpret_ok(call, Answer(204, {})) is None
        assert isinstance(icws_api.interpret_ok(call, Answer(401, {})), errors.SessionLost)


class TestFeatures:
    """Each subscription needs a minimum feature version (§1.5); missing ones are named."""

    THRESHOLDS = [
        ("alerting", "interactions", 6),
        ("history", "interactions", 4),
        ("assistance", "interactions", 9),
        ("status_messages", "status", 1),
    ]

    @pytest.mark.parametrize(("name", "feature", "needed"), THRESHOLDS)
    def test_the_threshold_version_is_enough(self, name: str, feature: str, needed: int) -> None:
        """At exactly the needed version nothing is missing."""
        assert icws_api.missing_features({feature: needed}, [name]) == []

    @pytest.mark.parametrize(("name", "feature", "needed"), THRESHOLDS)
    def test_one_below_the_threshold_is_missing(self, name: str, feature: str, needed: int) -> None:
        """One version lower, the subscription is reported with what it needs and what there is."""
        assert icws_api.missing_features({feature: needed - 1}, [name]) == [
            MissingFeature(name, feature, needed, needed - 1)
        ]

    @pytest.mark.parametrize(("name", "feature", "needed"), THRESHOLDS)
    def test_an_absent_feature_is_missing(self, name: str, feature: str, needed: int) -> None:
        """A feature the server does not list at all is missing, with ``have`` None."""
        assert icws_api.missing_features({}, [name]) == [
            MissingFeature(name, feature, needed, None)
        ]

    def test_only_the_wanted_subscriptions_are_checked(self) -> None:
        """Interactions 6 serves alerting and history, not assistance; status is not wanted."""
        missing = icws_api.missing_features(
            {"interactions": 6}, ["alerting", "history", "assistance"]
        )
        assert [m.subscription for m in missing] == ["assistance"]

    @pytest.mark.parametrize(
        ("missing", "text"),
        [
            (
                MissingFeature("assistance", "interactions", 9, 6),
                "subscription assistance needs ICWS feature interactions >= 9, "
                "server has version 6",
            ),
            (
                MissingFeature("status_messages", "status", 1, None),
                "subscription status_messages needs ICWS feature status >= 1, server has absent",
            ),
        ],
    )
    def test_describe(self, missing: MissingFeature, text: str) -> None:
        """The description names subscription, feature, needed and present versions."""
        assert missing.describe() == text


class TestTransport:
    """SSE when the server's messaging feature is 2 or more, unless polling is forced."""

    @pytest.mark.parametrize(
        ("mode", "features", "transport"),
        [
            ("auto", {"messaging": 2}, "sse"),
            ("auto", {"messaging": 3}, "sse"),
            ("auto", {"messaging": 1}, "poll"),
            ("auto", {}, "poll"),
            ("sse", {"messaging": 2}, "sse"),
            ("sse", {"messaging": 1}, "poll"),
            ("sse", {}, "poll"),
            ("poll", {"messaging": 2}, "poll"),
            ("poll", {}, "poll"),
        ],
    )
    def test_choose_transport(self, mode: Any, features: dict[str, int], transport: str) -> None:
        """Forcing SSE on an older server falls back to polling."""
        assert icws_api.choose_transport(mode, features) == transport

    @pytest.mark.parametrize(
        ("transport", "name", "accept"),
        [
            ("sse", "messages.sse", "text/event-stream"),
            ("poll", "messages.poll", "application/vnd.inin.icws+JSON;charset=utf-8"),
        ],
    )
    def test_both_transports_read_the_same_url(
        self, transport: Any, name: str, accept: str
    ) -> None:
        """SSE and short polling differ only in what they accept."""
        call = icws_api.messages("1247633034", transport)
        assert (call.name, call.method, call.path, call.accept) == (
            name,
            "GET",
            "/icws/1247633034/messaging/messages",
            accept,
        )


class TestHosts:
    """Alternate host names become URLs like the base; the rotation tries each host once."""

    @pytest.mark.parametrize(
        ("base", "host", "url"),
        [
            ("https://icserver-a:8019", "icserver-b", "https://icserver-b:8019"),
            ("https://icserver-a:8019/", "icserver-b", "https://icserver-b:8019"),
            ("http://10.0.0.5:8018", "otherserver", "http://otherserver:8018"),
            ("https://icserver-a", "icserver-b", "https://icserver-b"),
        ],
    )
    def test_host_url_keeps_scheme_and_port(self, base: str, host: str, url: str) -> None:
        """A direct server (no path): scheme and port come from it, the host is replaced."""
        assert hosts.host_url(base, host) == url

    def test_rotation_is_current_then_configured_then_announced(self) -> None:
        """The host in use first, then the configured list, then what servers announced."""
        assert hosts.rotation(
            ["https://a:8019", "https://b:8019"], ["https://c:8019"], "https://b:8019"
        ) == ["https://b:8019", "https://a:8019", "https://c:8019"]

    def test_rotation_drops_repeats_ignoring_trailing_slashes(self) -> None:
        """A host named twice (with or without ``/``) is tried once, at its first place."""
        assert hosts.rotation(
            ["https://a:8019/", "https://b:8019/"],
            ["https://b:8019", "https://a:8019", "https://c:8019"],
            None,
        ) == ["https://a:8019", "https://b:8019", "https://c:8019"]

    @pytest.mark.parametrize(
        ("base", "host", "url"),
        [
            ("https://proxy/api/ic1", "ic2", "https://proxy/api/ic2"),
            ("https://proxy/api/ic1/", "ic2", "https://proxy/api/ic2"),
            ("http://127.0.0.1:8019/api/ic1", "ic1", "http://127.0.0.1:8019/api/ic1"),
            (
                "https://pod.example.com/PODCONNECT56/client/api/ic1.example.com",
                "ic2.example.com",
                "https://pod.example.com/PODCONNECT56/client/api/ic2.example.com",
            ),
            ("https://proxy:8443/ic-a", "ic-b", "https://proxy:8443/ic-b"),
        ],
        ids=["proxy", "trailing-slash", "same-name", "cloud-path", "one-segment"],
    )
    def test_behind_a_proxy_the_alternate_replaces_the_icserver_segment(
        self, base: str, host: str, url: str
    ) -> None:
        """A base path ending in ``<icserver>``: only that segment changes; the proxy stays."""
        assert hosts.host_url(base, host) == url

    def test_rotation_behind_a_proxy_tries_the_other_icserver_next(self) -> None:
        """The configured proxy path first, then the path naming the announced IC server."""
        configured = ["https://proxy/api/ic1/"]
        announced = [hosts.host_url(configured[0], "ic2")]
        assert hosts.rotation(configured, announced, None) == [
            "https://proxy/api/ic1",
            "https://proxy/api/ic2",
        ]

    def test_announced_entries_that_are_not_host_names_are_dropped(self) -> None:
        """URLs, paths, spaces, empty strings and numbers in alternateHostList name no host."""
        body = {
            "alternateHostList": [
                "ic-b",
                "https://evil/x",
                "a/b",
                "a b",
                "",
                5,
                "../up",
                "ic-c.example.com",
            ]
        }
        error = icws_api.interpret_login(Answer(503, {}, body))
        assert isinstance(error, errors.IcwsError)
        assert error.alternates == ("ic-b", "ic-c.example.com")

    def test_rotation_without_any_host_is_empty(self) -> None:
        """Nothing configured, announced or current: nothing to try."""
        assert hosts.rotation([], [], None) == []


class TestOtherCalls:
    """The other calls the bridge makes, each with its path and expected statuses."""

    @pytest.mark.parametrize(
        ("name", "path", "ok"),
        [
            ("alerting", "messaging/subscriptions/interaction-alerting", {200, 204}),
            ("history", "messaging/subscriptions/interaction-history", {200, 204}),
            ("status_messages", "messaging/subscriptions/status/status-messages", {200, 204}),
            ("assistance", "messaging/subscriptions/interactions/agent-assistance", {200, 204}),
        ],
    )
    def test_subscribe_and_unsubscribe(self, name: str, path: str, ok: set[int]) -> None:
        """PUT creates or replaces a subscription with its body; DELETE cancels it."""
        body = {"attributeNames": ["Eic_RemoteName"]}
        put = icws_api.subscribe("7", name, body)
        delete = icws_api.unsubscribe("7", name)
        assert (put.name, put.method, put.path, put.body, put.ok, put.csrf) == (
            f"subscribe.{name}",
            "PUT",
            f"/icws/7/{path}",
            body,
            frozenset(ok),
            True,
        )
        assert (delete.name, delete.method, delete.path, delete.body) == (
            f"unsubscribe.{name}",
            "DELETE",
            f"/icws/7/{path}",
            None,
        )

    @pytest.mark.parametrize(
        ("subscribe", "name", "method"),
        [
            (True, "subscribe.assistance_details", "PUT"),
            (False, "unsubscribe.assistance_details", "DELETE"),
        ],
    )
    def test_assistance_details_subscription(self, subscribe: bool, name: str, method: str) -> None:
        """One request's details are a subscription below the list's path."""
        call = icws_api.assistance_details("7", "a1b2c3", subscribe=subscribe)
        assert (call.name, call.method, call.path, call.ok) == (
            name,
            method,
            "/icws/7/messaging/subscriptions/interactions/agent-assistance/a1b2c3",
            {200, 204},
        )

    def test_connection_check_and_logout(self) -> None:
        """GET and DELETE on the session's own connection resource."""
        check, logout = icws_api.check_connection("7"), icws_api.logout("7")
        assert (check.method, check.path, check.ok) == ("GET", "/icws/7/connection", {200})
        assert (logout.method, logout.path, logout.ok) == (
            "DELETE",
            "/icws/7/connection",
            {200, 204},
        )

    def test_assistance_commands(self) -> None:
        """Update posts the text; complete deletes the request."""
        update = icws_api.assistance_update("7", "a1b2c3", "Approved")
        complete = icws_api.assistance_complete("7", "a1b2c3")
        assert (update.method, update.path, update.body) == (
            "POST",
            "/icws/7/interactions/agent-assistance/a1b2c3",
            {"text": "Approved"},
        )
        assert (complete.method, complete.path, complete.ok) == (
            "DELETE",
            "/icws/7/interactions/agent-assistance/a1b2c3",
            {200, 204},
        )

    def test_every_call_is_a_frozen_value(self) -> None:
        """Calls cannot be changed after they are made."""
        call: Call = icws_api.logout("7")
        with pytest.raises(AttributeError):
            call.path = "/elsewhere"  # type: ignore[misc]


class TestInterpretMessages:
    """A poll's answer is a list of messages, an empty body is none, anything else an error."""

    @pytest.mark.parametrize(("body", "messages"), [(None, []), ([], []), ([{"a": 1}], [{"a": 1}])])
    def test_a_list_or_nothing(self, body: Any, messages: list[Any]) -> None:
        """An empty or missing body is no messages; a list is returned as is."""
        assert icws_api.interpret_messages(Answer(200, {}, body)) == messages

    @pytest.mark.parametrize("body", [{"__type": "x"}, "[]", 0])
    def test_anything_else_is_a_server_error(self, body: Any) -> None:
        """A 200 whose body is not a JSON array is an unreadable answer."""
        result = icws_api.interpret_messages(Answer(200, {}, body))
        assert isinstance(result, errors.ServerError)
        assert str(result) == "messages answer is not a JSON array"

    def test_a_401_is_a_lost_session(self) -> None:
        """The poll of an expired session fails with SessionLost."""
        result = icws_api.interpret_messages(Answer(401, {}, {"errorCode": 1}))
        assert isinstance(result, errors.SessionLost)


# Written by hand from encodeURIComponent's definition (ECMA-262): every UTF-8 byte is %XX
# (upper-case hex) except A-Z a-z 0-9 - _ . ! ~ * ' ( ).
OPAQUE = "{a1|b:2 c/3}"
OPAQUE_ENCODED = "%7Ba1%7Cb%3A2%20c%2F3%7D"
SESSION = "9 9/9"
SESSION_ENCODED = "9%209%2F9"


class TestPathEncoding:
    """Every path value is percent-encoded as the SDK's encodeURIComponent does (§10)."""

    @pytest.mark.parametrize(
        ("value", "encoded"),
        [
            (OPAQUE, OPAQUE_ENCODED),
            ("AZaz09-_.!~*'()", "AZaz09-_.!~*'()"),
            ("?#&=+,;@$[]", "%3F%23%26%3D%2B%2C%3B%40%24%5B%5D"),
            ('%"<>\\^`', "%25%22%3C%3E%5C%5E%60"),
            ("..", ".."),
            ("é€", "%C3%A9%E2%82%AC"),
            ("😀", "%F0%9F%98%80"),
            ("a%2Fb", "a%252Fb"),
        ],
    )
    def test_segment_is_encode_uri_component(self, value: str, encoded: str) -> None:
        """Unreserved marks stay; every other character is its UTF-8 bytes as %XX."""
        assert paths.segment(value) == encoded

    @pytest.mark.parametrize(
        ("call", "path"),
        [
            (
                icws_api.assistance_details(SESSION, OPAQUE, subscribe=True),
                f"/icws/{SESSION_ENCODED}/messaging/subscriptions/interactions/agent-assistance/"
                f"{OPAQUE_ENCODED}",
            ),
            (
                icws_api.assistance_details(SESSION, OPAQUE, subscribe=False),
                f"/icws/{SESSION_ENCODED}/messaging/subscriptions/interactions/agent-assistance/"
                f"{OPAQUE_ENCODED}",
            ),
            (
                icws_api.assistance_update(SESSION, OPAQUE, "hi"),
                f"/icws/{SESSION_ENCODED}/interactions/agent-assistance/{OPAQUE_ENCODED}",
            ),
            (
                icws_api.assistance_complete(SESSION, OPAQUE),
                f"/icws/{SESSION_ENCODED}/interactions/agent-assistance/{OPAQUE_ENCODED}",
            ),
            (
                icws_api.subscribe(SESSION, "alerting", {}),
                f"/icws/{SESSION_ENCODED}/messaging/subscriptions/interaction-alerting",
            ),
            (
                icws_api.unsubscribe(SESSION, "status_messages"),
                f"/icws/{SESSION_ENCODED}/messaging/subscriptions/status/status-messages",
            ),
            (icws_api.check_connection(SESSION), f"/icws/{SESSION_ENCODED}/connection"),
            (icws_api.logout(SESSION), f"/icws/{SESSION_ENCODED}/connection"),
            (
                icws_api.messages(SESSION, "sse"),
                f"/icws/{SESSION_ENCODED}/messaging/messages",
            ),
            (
                icws_api.messages(SESSION, "poll"),
                f"/icws/{SESSION_ENCODED}/messaging/messages",
            ),
        ],
        ids=lambda value: value.name if isinstance(value, Call) else "",
    )
    def test_every_builder_encodes_its_values(self, call: Call, path: str) -> None:
        """Session and assistance ids are encoded; the fixed path parts are not."""
        assert call.path == path

    def test_an_ordinary_id_is_unchanged(self) -> None:
        """Digit session ids and GUID assistance ids need no escape: paths are as before."""
        guid = "0b0a6f0c-58f5-4f53-9d0f-6d3e2a9f1c11"
        call = icws_api.assistance_complete("1234567", guid)
        assert call.path == f"/icws/1234567/interactions/agent-assistance/{guid}"
