"""Command-line face of the simulator: the options of `bridge simulate` and running it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl

from .config import BAD_CREDENTIALS_BODIES, HEARTBEAT_STATUSES, SimulatorConfig
from .scenario import run_lively
from .server import Simulator

log = logging.getLogger(__name__)

DEFAULT_PORT = 8018
DEFAULT_USER = ("agent.one", "secret")


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
    parser.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="serve HTTPS with this certificate chain (PEM; may hold the key too)",
    )
    parser.add_argument(
        "--tls-key", metavar="PEM", help="the private key of --tls-cert, if not in that file"
    )
    _add_realism_arguments(parser)


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
        users=dict(args.users or [DEFAULT_USER]),
        idle_timeout_seconds=args.idle_timeout,
        sse_keepalive_seconds=args.sse_keepalive if args.sse_keepalive > 0 else None,
        sse_recycle_seconds=args.sse_recycle,
        sse_retry_ms=args.sse_retry,
        bad_credentials_body=args.bad_credentials,
        proxy_names=list(args.proxy_names or []),
        heartbeat_status=args.heartbeat_status,
        opaque_assistance_ids=args.opaque_assistance_ids,
    )
    config.features["messaging"] = args.messaging_version
    return config


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Serve the simulator (and the lively scenario if asked) until `stop` is set."""
    config = config_from_args(args)
    sim = Simulator(config)
    await sim.start(host=args.host, port=args.port, tls=tls_from_args(args))
    log.info("ICWS simulator listening on %s (users: %s)", sim.url, ", ".join(config.users))
    lively: asyncio.Task[None] | None = None
    try:
        if args.lively:
            lively = asyncio.create_task(
                run_lively(sim, list(config.users), args.rate, args.seed, stop=stop),
                name="icws-sim-lively",
            )
        await stop.wait()
    finally:
        if lively is not None:
            lively.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lively
        await sim.stop()
