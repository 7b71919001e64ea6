"""Command-line face of the simulator: the options of `bridge simulate` and running it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl
from pathlib import Path

from .config import (
    ASSISTANCE_SCOPES,
    BAD_CREDENTIALS_BODIES,
    HEARTBEAT_STATUSES,
    SimulatorConfig,
    users_named,
)
from .scenario import SPREADS, LivelyScenario, run_lively
from .server import Simulator

log = logging.getLogger(__name__)

DEFAULT_PORT = 8018
DEFAULT_USER = ("agent.one", "secret")
# A log line lists the users only up to this many; a contact centre is summarised.
_LISTED_USERS = 5


def _user(text: str) -> tuple[str, str]:
    name, separator, password = text.partition(":")
    if not name or not separator:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD, got {text!r}")
    return name, password


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to `parser`."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TCP port, 0 for any (default %(default)s)"
    )
    parser.add_argument(
        "--user",
        dest="users",
        action="append",
        type=_user,
        metavar="NAME:PASSWORD",
        help="a user who may log in; repeatable (default agent.one:secret)",
    )
    parser.add_argument(
        "--messaging-version",
        type=int,
        default=2,
        help="messaging feature version; 2 or more offers SSE (default %(default)s)",
    )
    parser.add_argument(
        "--lively",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="generate seeded random activity (default on)",
    )
    parser.add_argument(
        "--rate", type=float, default=1.0, help="lively actions per second (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="lively seed (default %(default)s)")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help="seconds without requests before a session expires (default: never)",
    )
    parser.add_argument(
        "--sse-keepalive",
        type=float,
        default=15.0,
        help="seconds between ':ping' comments on SSE streams, 0 for none (default %(default)s)",
    )
    _add_tls_arguments(parser)
    _add_realism_arguments(parser)
    _add_centre_arguments(parser)


def _add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """Options to serve HTTPS."""
    parser.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="serve HTTPS with this certificate chain (PEM; may hold the key too)",
    )
    parser.add_argument(
        "--tls-key", metavar="PEM", help="the private key of --tls-cert, if not in that file"
    )


def _add_centre_arguments(parser: argparse.ArgumentParser) -> None:
    """Options for a contact centre (issue #14): many users, login pacing, assistance scope."""
    parser.add_argument(
        "--users",
        dest="user_count",
        type=int,
        default=None,
        metavar="N",
        help="serve N users PREFIX.0001 ... PREFIX.N besides any --user (see --user-prefix, "
        "--password-file)",
    )
    parser.add_argument(
        "--user-prefix", default="agent", help="name prefix for --users (default %(default)s)"
    )
    parser.add_argument(
        "--password-file",
        dest="password",
        type=_password_file,
        default=None,
        metavar="FILE",
        help="the password of the --users users, read from FILE (default: secret)",
    )
    parser.add_argument(
        "--spread",
        choices=SPREADS,
        default="random",
        help="how lively steps pick users; cycle visits each once per round (default %(default)s)",
    )
    parser.add_argument(
        "--login-latency",
        type=float,
        default=None,
        metavar="SECONDS",
        help="every login takes SECONDS to answer (default: at once)",
    )
    parser.add_argument(
        "--max-concurrent-logins",
        type=int,
        default=None,
        metavar="N",
        help="handle N logins at a time, the others wait their turn (default: no cap)",
    )
    for name, default in (("update", "initiator"), ("watch", "anyone")):
        parser.add_argument(
            f"--assistance-{name}-by",
            choices=ASSISTANCE_SCOPES,
            default=default,
            help=f"who may {name} an assistance request (UNCONFIRMED; default %(default)s)",
        )


def _password_file(text: str) -> str:
    """The password held in the file `text` names (one trailing newline dropped)."""
    try:
        content = Path(text).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise argparse.ArgumentTypeError(f"cannot read the password file: {error}") from None
    password = content.removesuffix("\n").removesuffix("\r")
    if not password:
        raise argparse.ArgumentTypeError(f"the password file {text} is empty")
    return password


def _users(args: argparse.Namespace) -> dict[str, str]:
    """Every user the options name: --user entries, plus --users generated ones."""
    users = dict(args.users or [])
    if args.user_count is not None:
        password = DEFAULT_USER[1] if args.password is None else args.password
        users.update(users_named(args.user_prefix, args.user_count, password))
    elif args.password is not None:
        raise ValueError("--password-file is the password of --users; give --users N too")
    return users or dict([DEFAULT_USER])


def describe_users(users: list[str]) -> str:
    """The users for a log line: every name for a few, a count and the range for many."""
    if len(users) <= _LISTED_USERS:
        return ", ".join(users)
    return f"{len(users)} users, {users[0]} ... {users[-1]}"


def tls_from_args(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server TLS context the options describe, or None to serve plain HTTP."""
    if args.tls_key and not args.tls_cert:
        raise SystemExit("--tls-key needs --tls-cert")
    if not args.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    return context


def _add_realism_arguments(parser: argparse.ArgumentParser) -> None:
    """Options for real-server realism (issue #12); every default is the plain behaviour."""
    parser.add_argument(
        "--sse-recycle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="end healthy SSE streams cleanly after SECONDS (default: never)",
    )
    parser.add_argument(
        "--sse-retry",
        type=int,
        default=None,
        metavar="MS",
        help="send 'retry: MS' at the start of every SSE stream (default: not sent)",
    )
    parser.add_argument(
        "--bad-credentials",
        choices=BAD_CREDENTIALS_BODIES,
        default="full",
        help="body of a bad-credentials 400; error-code-only as before CIC 4.0.6 "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--proxy-name",
        dest="proxy_names",
        action="append",
        metavar="ICSERVER",
        help="serve ICWS under /api/ICSERVER/icws/ (web-proxy mode); repeatable, the first is "
        "the primary, the others answer logins 503 naming it (default: direct /icws/)",
    )
    parser.add_argument(
        "--heartbeat-status",
        type=int,
        choices=HEARTBEAT_STATUSES,
        default=204,
        help="answer of POST .../messaging/heartbeat; 404/410 act unsupported "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--opaque-assistance-ids",
        action="store_true",
        help="new assistance ids hold reserved characters, like {a1|b:2 c/3}",
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The simulator configuration the parsed options describe."""
    config = SimulatorConfig(
        users=_users(args),
        idle_timeout_seconds=args.idle_timeout,
        sse_keepalive_seconds=args.sse_keepalive if args.sse_keepalive > 0 else None,
        sse_recycle_seconds=args.sse_recycle,
        sse_retry_ms=args.sse_retry,
        bad_credentials_body=args.bad_credentials,
        proxy_names=list(args.proxy_names or []),
        heartbeat_status=args.heartbeat_status,
        opaque_assistance_ids=args.opaque_assistance_ids,
        login_latency_seconds=args.login_latency,
        max_concurrent_logins=args.max_concurrent_logins,
        assistance_update_by=args.assistance_update_by,
        assistance_watch_by=args.assistance_watch_by,
    )
    config.features["messaging"] = args.messaging_version
    return config


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Serve the simulator (and the lively scenario if asked) until `stop` is set."""
    config = config_from_args(args)
    sim = Simulator(config)
    await sim.start(host=args.host, port=args.port, tls=tls_from_args(args))
    users = list(config.users)
    log.info("ICWS simulator listening on %s (users: %s)", sim.url, describe_users(users))
    lively: asyncio.Task[LivelyScenario] | None = None
    try:
        if args.lively:
            lively = asyncio.create_task(
                run_lively(sim, users, args.rate, args.seed, stop=stop, spread=args.spread),
                name="icws-sim-lively",
            )
        await stop.wait()
    finally:
        if lively is not None:
            lively.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lively
        await sim.stop()
