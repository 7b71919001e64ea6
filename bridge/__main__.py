"""Command line: ``bridge run | demo | simulate | schemas`` (also ``python -m bridge``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

from bridge import __version__, logs
from bridge.errors import ConfigError

Runner = Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]]


async def _run_bridge(_args: argparse.Namespace, stop: asyncio.Event) -> None:
    from bridge.app import Bridge
    from bridge.settings import load_settings

    settings = load_settings()
    logs.configure(settings.log.level, settings.log.format)
    await Bridge(settings).run(stop)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Runner]]:
    """The argument parser and the coroutine each sub-command runs."""
    from bridge import demo, schema_files
    from bridge.simulator import cli as simulator_cli

    parser = argparse.ArgumentParser(
        prog="bridge",
        description="icws-bridge: holds a Genesys PureConnect ICWS session and publishes what it "
        "says as versioned CloudEvents on Kafka. Settings come from BRIDGE_* environment "
        "variables and config/bridge.yaml (see README).",
    )
    parser.add_argument("--version", action="version", version=f"icws-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run",
        help="run the bridge with the configured settings",
        description="Run the bridge until SIGTERM or Ctrl-C, with settings from the environment "
        "(BRIDGE_*), secret files (BRIDGE_SECRETS_DIR) and BRIDGE_CONFIG_FILE.",
    )
    demo.add_arguments(
        commands.add_parser(
            "demo",
            help="run an embedded broker, the simulator and the bridge; print events",
            description="Start an embedded Kafka-protocol broker (Tansu), the ICWS simulator "
            "with lively activity, and the bridge against both; print every event read back "
            "from Kafka until Ctrl-C or --duration.",
        )
    )
    simulator_cli.add_arguments(
        commands.add_parser(
            "simulate",
            help="run the ICWS simulator as a server",
            description="Serve a simulated ICWS server (and its /_sim control API).",
        )
    )
    schema_files.add_arguments(
        commands.add_parser(
            "schemas",
            help="print, write or check the event schemas and AsyncAPI document",
            description="Without arguments list the files; NAME prints one; --out DIR writes "
            "them all; --check fails when bridge/schemas/ differs from the code.",
        )
    )
    return parser, {
        "run": _run_bridge,
        "demo": demo.run,
        "simulate": simulator_cli.run,
        "schemas": schema_files.run,
    }


async def _main(runner: Runner, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner(args, stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bridge`` console script."""
    parser, runners = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        logs.configure("INFO", "auto")
    try:
        asyncio.run(_main(runners[args.command], args))
    except ConfigError as exc:
        print(f"bridge: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
