"""The HTTP control API under `/_sim/`: the Python API of `Simulator`, for `bridge simulate` users.

One table maps each (method, path) to an action on the simulator. Bodies are JSON objects with
the ICWS property names (camelCase); fault bodies are the keyword arguments of `sim.faults`.
Unknown entities answer 404, unusable input 400, both with `{"error": "..."}`.
`GET /_sim/users` lists the user names (never passwords); `GET /_sim/users/{user}` is one user's
truth (alerting, history, the assistance requests they initiated, their live session ids).
`GET /_sim/state` carries the counters (logins, login attempts, subscription PUTs, streams opened
and recycled, heartbeats, ...), the log of assistance calls (`calls`) and every subscription
PUT's body as received (`subscriptionBodies`); `GET|PATCH
/_sim/config` read and change the runtime knobs of `SimulatorConfig` by field name (PATCH answers
the resulting knobs).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .wire import JsonObject

if TYPE_CHECKING:
    from .server import Simulator

PREFIX = "/_sim"
Action = Callable[["Simulator", Mapping[str, str], JsonObject], Any]

# Only these `sim.faults` methods may be called over HTTP.
FAULTS = frozenset(
    {
        "expire_session",
        "send_down",
        "refuse_logins",
        "accept_logins",
        "fail_requests",
        "repeat_updates",
        "delay_requests",
        "cut_sse",
        "silence_sse",
        "hang_sse",
        "html_sse",
        "fail_subscription",
        "clear",
    }
)


def _take(body: JsonObject, name: str) -> Any:
    if name not in body:
        raise ValueError(f"the body needs {name!r}")
    return body.pop(name)


def _state(sim: Simulator, _match: Mapping[str, str], _body: JsonObject) -> JsonObject:
    sessions = {
        sid: {
            "user": session.user,
            "subscriptions": session.subscriptions,
            "queued": len(session.queue),
            "streaming": session.stream is not None,
        }
        for sid, session in sim.sessions.items()
    }
    calls = [call.as_json() for call in sim.calls]
    bodies = [{"subscription": name, "body": body} for name, body in sim.subscription_bodies]
    return {
        **sim.world.truth(),
        "sessions": sessions,
        "counters": sim.counters,
        "calls": calls,
        "subscriptionBodies": bodies,
    }


def _users(sim: Simulator, _match: Mapping[str, str], _body: JsonObject) -> JsonObject:
    return {"users": list(sim.config.users)}


def _user(sim: Simulator, match: Mapping[str, str], _body: JsonObject) -> JsonObject:
    user = match["user"]
    if user not in sim.config.users:
        raise KeyError(f"unknown user {user!r}")
    sessions = [session.session_id for session in sim.sessions_of(user)]
    return {**sim.world.user_truth(user), "sessions": sessions}


def _add_status(sim: Simulator, _match: Mapping[str, str], body: JsonObject) -> JsonObject:
    return sim.world.add_status_message(_take(body, "statusId"), **body)


def _seed_catalogue(sim: Simulator, _m: Mapping[str, str], _b: JsonObject) -> JsonObject:
    sim.world.seed_default_catalogue()
    return sim.world.status_messages


def _start_alerting(sim: Simulator, match: Mapping[str, str], body: JsonObject) -> JsonObject:
    interaction_id = body.pop("interactionId", None)
    return {"interactionId": sim.world.start_alerting(match["user"], interaction_id, **body)}


def _add_history(sim: Simulator, match: Mapping[str, str], body: JsonObject) -> JsonObject:
    interaction_id = body.pop("interactionId", None)
    return {"interactionId": sim.world.add_history(match["user"], interaction_id, **body)}


def _create_assistance(sim: Simulator, _m: Mapping[str, str], body: JsonObject) -> JsonObject:
    assistance_id = sim.world.create_assistance(
        _take(body, "user"), _take(body, "interactionId"), _take(body, "text")
    )
    return {"assistanceId": assistance_id}


def _accept_assistance(sim: Simulator, match: Mapping[str, str], body: JsonObject) -> None:
    sim.world.accept_assistance(
        match["aid"], _take(body, "supervisorUserId"), _take(body, "displayName")
    )


def _add_assistance_message(sim: Simulator, match: Mapping[str, str], body: JsonObject) -> None:
    sim.world.add_assistance_message(
        match["aid"], _take(body, "participantId"), _take(body, "text")
    )


def _fault(sim: Simulator, match: Mapping[str, str], body: JsonObject) -> None:
    name = match["name"]
    if name not in FAULTS:
        raise KeyError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
    getattr(sim.faults, name)(**body)


# (method, path below /_sim, success status, action); a 204 ignores what the action returns.
_ROUTES: list[tuple[str, str, int, Action]] = [
    ("GET", "/state", 200, _state),
    ("GET", "/users", 200, _users),
    ("GET", "/users/{user}", 200, _user),
    ("POST", "/status-messages", 201, _add_status),
    ("POST", "/status-messages/default-catalogue", 200, _seed_catalogue),
    (
        "PATCH",
        "/status-messages/{status_id}",
        200,
        lambda sim, m, b: sim.world.change_status_message(m["status_id"], **b),
    ),
    (
        "DELETE",
        "/status-messages/{status_id}",
        204,
        lambda sim, m, _b: sim.world.remove_status_message(m["status_id"]),
    ),
    ("POST", "/users/{user}/alerting", 201, _start_alerting),
    (
        "PATCH",
        "/users/{user}/alerting/{iid}",
        200,
        lambda sim, m, b: sim.world.change_alerting(m["user"], m["iid"], **b),
    ),
    (
        "DELETE",
        "/users/{user}/alerting/{iid}",
        200,
        lambda sim, m, _b: sim.world.stop_alerting(m["user"], m["iid"]),
    ),
    ("POST", "/users/{user}/history", 201, _add_history),
    (
        "PATCH",
        "/users/{user}/history/{iid}",
        200,
        lambda sim, m, b: sim.world.change_history(m["user"], m["iid"], **b),
    ),
    (
        "POST",
        "/users/{user}/calls/{iid}/end",
        200,
        lambda sim, m, _b: sim.world.end_call(m["user"], m["iid"]),
    ),
    (
        "PUT",
        "/users/{user}/password",
        204,
        lambda sim, m, b: sim.set_password(m["user"], _take(b, "password")),
    ),
    ("PUT", "/features", 204, lambda sim, _m, b: sim.set_features(b)),
    ("GET", "/config", 200, lambda sim, _m, _b: sim.runtime_config()),
    ("PATCH", "/config", 200, lambda sim, _m, b: sim.configure(**b)),
    ("POST", "/assistance", 201, _create_assistance),
    ("POST", "/assistance/{aid:[^/]+}/accept", 204, _accept_assistance),
    ("POST", "/assistance/{aid:[^/]+}/messages", 204, _add_assistance_message),
    (
        "POST",
        "/assistance/{aid:[^/]+}/complete",
        204,
        lambda sim, m, _b: sim.world.complete_assistance(m["aid"]),
    ),
    ("POST", "/faults/{name}", 204, _fault),
    ("DELETE", "/faults", 204, lambda sim, _m, _b: sim.faults.clear()),
]


def _endpoint(
    sim: Simulator, status: int, action: Action
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        """Run the action on the JSON body; map lookup and input errors to 404 and 400."""
        try:
            text = await request.text()
            body = json.loads(text) if text.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            result = action(sim, request.match_info, body)
        except KeyError as error:
            return web.json_response({"error": str(error.args[0])}, status=404)
        except (TypeError, ValueError) as error:
            return web.json_response({"error": str(error)}, status=400)
        if status == 204:
            return web.Response(status=204)
        return web.json_response(result, status=status)

    return handle


def control_routes(sim: Simulator) -> list[web.RouteDef]:
    """The `/_sim/` routes bound to `sim`."""
    return [
        web.route(method, PREFIX + path, _endpoint(sim, status, action))
        for method, path, status, action in _ROUTES
    ]
